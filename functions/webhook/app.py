"""Webhook delivery: messages of the webhook queue -> signed POSTs to each generation's
callback_url (videogen/webhooks.py). Powertools batch reports the messages to retry as batch
item failures (their visibility timeout already set to the next backoff); delivered and
dead-lettered messages are deleted by Lambda."""

import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_delivery
from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

delivery = build_delivery(Settings.from_env(os.environ))
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    delivery.handle(record.raw_event)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
