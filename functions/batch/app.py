"""Step Functions tasks of the batch state machine (statemachine/batch.asl.json): prepare,
enqueue (one Distributed Map child's lines), track, finish and fail, chosen by the `step` the
definition puts in each task's payload (videogen.entrypoints.batch_tasks)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_batch_tasks, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_batch_tasks)


@logger.inject_lambda_context(correlation_id_path="batch_id", log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
