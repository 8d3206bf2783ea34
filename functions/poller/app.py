"""Poller: every tick (EventBridge schedule), refresh the generations that are due.

A scheduled event sweeps every shard of the due-index, unless the backlog outgrows one
invocation: then this function invokes itself asynchronously once per other shard with
`{"shard": "<n>"}` and sweeps the first shard itself (see videogen/fanout.py). An event with a
`shard` sweeps that shard only and never fans out again.

Settings are read at the cold start (a bad one fails it loudly); the service and its AWS clients
are made at the first invocation, once."""

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import fanout
from videogen.bootstrap import Components, LazyClient, build
from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

settings = Settings.from_env(os.environ)
_components: Components | None = None
_lock = threading.Lock()
# Invokes the fanned-out sweeps; a test or the benchmark may put a fake with `invoke(**kwargs)`.
lambda_client: Any = LazyClient("lambda", retries={"mode": "standard", "max_attempts": 3})


def components() -> Components:
    global _components
    if _components is None:
        with _lock:
            if _components is None:
                _components = build(settings)
    return _components


def invoke_shards(function_arn: str, shards: Sequence[str]) -> list[str]:
    """Start one asynchronous sweep per shard; the shards that could not be handed off."""
    failed = []
    for shard in shards:
        try:
            lambda_client.invoke(
                FunctionName=function_arn,
                InvocationType="Event",
                Payload=json.dumps({"shard": shard}).encode(),
            )
        except Exception as exc:  # noqa: BLE001 (whatever failed, this invocation sweeps the shard)
            logger.warning("fan-out invoke failed", extra={"shard": shard, "error": type(exc).__name__})
            failed.append(shard)
    return failed


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    service = components().service
    plan = fanout.plan_sweep(
        service.store,
        service.clock(),
        capacity=fanout.capacity(settings.poll_concurrency),
        shard=fanout.shard_of_event(event, service.store.due_shards),
        delegate=lambda shards: invoke_shards(context.invoked_function_arn, shards),
    )
    if plan.delegated:
        metrics.add_metric("SweepFanOut", "Count", len(plan.delegated))
    report = service.sweep(context.get_remaining_time_in_millis, generations=plan.generations)
    summary = {
        "due": report.due,
        "deferred": report.deferred,
        "shard": plan.shard,
        "delegated": plan.delegated,
    }
    logger.info("sweep finished", extra={**summary, **report.outcomes})
    return {**summary, "outcomes": report.outcomes}
