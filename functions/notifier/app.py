"""Notifier: the generations table's stream -> one completion event per terminal transition on
the stack's EventBridge bus, and the webhook message when a callback_url was given
(videogen.entrypoints.batches, videogen.logic.notify)."""

# Imported before anything loads pydantic: Powertools' batch utility then skips building its
# pydantic parser models (SQS, Kinesis, DynamoDB, Kafka records), which this function never uses
# (videogen.entrypoints.batches reads records as data classes). A tenth of the cold start.
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_notifier, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_notifier)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
