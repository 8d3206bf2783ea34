"""Step Functions tasks of the generation workflow (statemachine/generation.asl.json): submit,
fetch and record_failure, chosen by the `action` the definition puts in each task's payload
(videogen.entrypoints.workflow_tasks). One function serves the three: one cold start, one role."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_workflow, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_workflow)


@logger.inject_lambda_context(correlation_id_path="execution", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
