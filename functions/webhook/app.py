"""Webhook delivery: messages of the webhook queue -> signed POSTs to each generation's
callback_url (videogen/webhooks.py). Powertools batch reports the messages to retry as batch
item failures (their visibility timeout already set to the next backoff); delivered and
dead-lettered messages are deleted by Lambda.

Settings are read at the cold start (a bad value fails it); the delivery (requests, boto3) and
Powertools batch are loaded at the first invocation, off the import path."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = Settings.from_env(os.environ)


@functools.cache
def _parts() -> tuple[Any, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    from videogen.bootstrap import build_delivery

    return build_delivery(settings), BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    _parts()[0].handle(record.raw_event)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    _, processor = _parts()
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
