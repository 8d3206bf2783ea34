"""S3 uploads: ObjectCreated events of the uploads bucket -> one generation per image
(videogen.entrypoints.s3_events). Bad uploads end as `failed` generations and the invocation
succeeds; only unexpected infrastructure errors raise, so Lambda retries the event."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_upload_events, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_upload_events)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
