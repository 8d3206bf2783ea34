"""Spend: the generations table's stream -> each generation's reserved credits replaced by what
the provider reported, or released when the submit was refused (videogen.entrypoints.spend_stream,
videogen.logic.budget)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_spend_settlement, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_spend_settlement)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
