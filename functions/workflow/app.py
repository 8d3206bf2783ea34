"""Step Functions tasks of the generation workflow (statemachine/generation.asl.json).

One function for the workflow's three steps (submit, fetch, record_failure; see
videogen/workflow.py), chosen by the `action` the definition puts in each task's payload: they
share one cold start, one role (the same table, bucket and secret), one log group and one set of
alarms, and the definition, not the caller, decides which step runs."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build
from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings
from videogen.workflow import handle

components = build(Settings.from_env(os.environ))


@logger.inject_lambda_context(correlation_id_path="execution", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    logger.append_keys(action=event.get("action"))
    return handle(event, components.service)
