"""The use cases: submit, refresh, sweep, queries and cancel, the workflow's steps, uploads,
notifications, webhook delivery, the poll schedule and the sweep's fan-out. They speak the
domain's types and reach the world only through the ports handed to them (never an adapter)."""
