"""Poller: every tick (EventBridge schedule), refresh the generations that are due; past one
invocation's capacity, hand shards to asynchronous invocations of itself
(videogen.entrypoints.poller)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_poller, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_poller)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
