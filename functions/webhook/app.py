"""Webhook delivery: messages of the webhook queue -> signed POSTs to each generation's
callback_url (videogen.entrypoints.batches, videogen.logic.webhook_delivery)."""

# Imported before anything loads pydantic: Powertools' batch utility then skips building its
# pydantic parser models (SQS, Kinesis, DynamoDB, Kafka records), which this function never uses
# (videogen.entrypoints.batches reads records as data classes). A tenth of the cold start.
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_webhook_deliveries, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_webhook_deliveries)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
