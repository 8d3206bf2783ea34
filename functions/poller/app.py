"""Scheduled poller: every tick, refresh the generations that are due (EventBridge schedule)."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build
from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

components = build(Settings.from_env(os.environ))


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = components.service.sweep(context.get_remaining_time_in_millis)
    logger.info("sweep finished", extra={"due": report.due, "deferred": report.deferred, **report.outcomes})
    return {"due": report.due, "deferred": report.deferred, "outcomes": report.outcomes}
