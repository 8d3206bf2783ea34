"""Batch event sources, record by record with Powertools batch: a failed record is reported as a
batch item failure and retried from there.

- `StreamNotifications`: the generations table's DynamoDB stream -> the notifier (one completion
  event per terminal transition, and the webhook message). Its steps are idempotent, so records
  of a batch that already succeeded are not notified twice when the batch is retried.
- `WebhookDeliveries`: messages of the webhook queue -> signed POSTs. A message to retry is a
  batch item failure (its visibility timeout already set to the next backoff); delivered and
  dead-lettered messages are deleted by Lambda. Each record first checks the time left in the
  invocation (the Lambda context): one that no longer fits is deferred, not attempted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from videogen.logic.notify import Notifier
from videogen.logic.webhook_delivery import WebhookDelivery


class StreamNotifications:
    def __init__(self, notifier: Notifier, idempotency_config: Any) -> None:
        self.notifier = notifier
        self.idempotency_config = idempotency_config
        self.processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def handle(self, event: dict[str, Any], context: Any) -> Any:
        self.idempotency_config.register_lambda_context(context)
        return process_partial_response(
            event=event,
            record_handler=lambda record: self.notifier.handle(record.raw_event),
            processor=self.processor,
            context=context,
        )


class WebhookDeliveries:
    def __init__(self, delivery: WebhookDelivery) -> None:
        self.delivery = delivery
        self.processor = BatchProcessor(event_type=EventType.SQS)

    def handle(self, event: dict[str, Any], context: Any) -> Any:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        time_left = (lambda: remaining() / 1000) if callable(remaining) else None
        return process_partial_response(
            event=event,
            record_handler=lambda record: self.delivery.handle(record.raw_event, time_left),
            processor=self.processor,
            context=context,
        )
