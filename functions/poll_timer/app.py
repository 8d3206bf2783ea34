"""Poll timers: messages of the poll timer queue, each due at one generation's next poll time ->
that generation refreshed at its second (videogen.entrypoints.poll_timers, videogen.logic.timers)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_poll_timers, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_poll_timers)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
