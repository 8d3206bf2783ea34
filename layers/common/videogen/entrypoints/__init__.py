"""Where events come in: the HTTP API, S3 upload events, the workflow's tasks, the poller's tick,
the table's stream and idempotency. Each turns an event into calls of the logic and its answer
into the event source's shape; none builds an adapter (bootstrap does)."""
