"""Notifier: DynamoDB stream of the generations table -> one completion event per terminal
transition on the stack's EventBridge bus, and the webhook message when a callback_url was given
(videogen/notify.py). Records are handled one by one with Powertools batch: a failed record is
reported as a batch item failure and retried from there; the steps are idempotent, so records of
the batch that already succeeded are not notified twice.

Settings are read at the cold start (a bad value fails it); the notifier itself, with Powertools
idempotency and boto3, and Powertools batch are loaded at the first invocation, off the import path."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = Settings.from_env(os.environ)


@functools.cache
def _parts() -> tuple[Any, Any, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    from videogen.bootstrap import build_notifier

    notifier, idempotency_config = build_notifier(settings)
    return notifier, idempotency_config, BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    _parts()[0].handle(record.raw_event)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    _, idempotency_config, processor = _parts()
    idempotency_config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
