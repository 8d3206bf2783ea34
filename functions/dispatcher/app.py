"""Dispatcher: wake-up messages of the dispatch queue -> submit pending generations while the
provider has room (videogen.entrypoints.dispatcher, videogen.logic.dispatch)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_dispatcher, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_dispatcher)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
