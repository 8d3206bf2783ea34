"""Completion events and webhook hand-off: the transactional outbox of the generations table.

Every write of a generation is a conditional put, so exactly one write moves a record from an
active status (or from nothing) to a terminal one, and DynamoDB Streams carries that write, old
and new image, to the notifier exactly in order and at least once. The notifier turns each such
transition into:
- one EventBridge event on the stack's bus (source `videogen`, detail-type `Generation Completed`,
  `Generation Failed`, `Generation Timed Out` or `Generation Cancelled`);
- when the generation has a `callback_url`, one message on the webhook queue (delivered, signed,
  by videogen.logic.webhook_delivery).
Both steps are idempotent, keyed on (generation id, status, step) with Powertools idempotency, so
a redelivered stream record (a retried batch) neither publishes nor enqueues twice. Writers never
call EventBridge themselves: a sweep is never slowed by it, and a crash after the terminal write
cannot lose the event (the stream still holds the record).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from videogen.domain.models import Generation, Status
from videogen.domain.ports import MetricsSink

# A stream image (DynamoDB attribute values) as a Generation: the store adapter's codec.
ImageDecoder = Callable[[Mapping[str, Any]], Generation]

EVENT_SOURCE = "videogen"
DETAIL_TYPES = {
    Status.COMPLETED: "Generation Completed",
    Status.FAILED: "Generation Failed",
    Status.TIMED_OUT: "Generation Timed Out",
    Status.CANCELLED: "Generation Cancelled",
}
WEBHOOK_TYPES = {
    Status.COMPLETED: "generation.completed",
    Status.FAILED: "generation.failed",
    Status.TIMED_OUT: "generation.timed_out",
    Status.CANCELLED: "generation.cancelled",
}


class PublishError(Exception):
    """EventBridge refused the event (the record fails and the stream batch is retried)."""


def publish_event(
    events: Any, event_bus_name: str, detail_type: str, detail: Mapping[str, Any], metrics: MetricsSink
) -> str:
    """One event on the stack's bus (source `videogen`); its id. PublishError (counted) when
    EventBridge did not take it, so the caller's record is retried."""
    answer = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": event_bus_name,
            }
        ]
    )
    entry = (answer.get("Entries") or [{}])[0]
    if answer.get("FailedEntryCount") or not entry.get("EventId"):
        metrics.add_metric("EventPublishErrors", "Count", 1)
        raise PublishError(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
    metrics.add_metric("EventsPublished", "Count", 1)
    return str(entry["EventId"])


def terminal_transition(record: Mapping[str, Any], decode: ImageDecoder) -> Generation | None:
    """The generation of a stream record that ended it (INSERT or MODIFY whose new image is
    terminal and whose old image, if any, was not); None for every other record."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    images = record.get("dynamodb") or {}
    new, old = images.get("NewImage"), images.get("OldImage")
    if not new or not _terminal(new) or (old and _terminal(old)):
        return None
    return decode(new)


def _terminal(image: Mapping[str, Any]) -> bool:
    raw = (image.get("status") or {}).get("S")
    return raw in {s.value for s in DETAIL_TYPES}


def completion_detail(generation: Generation, outputs_bucket: str) -> dict[str, Any]:
    """The event's detail, and the webhook's `data`: what a consumer needs to act on the end."""
    return {
        "id": generation.id,
        "owner": generation.owner,
        "model": generation.model,
        "status": generation.status.value,
        "source": generation.source.value,
        "error": generation.error.model_dump(mode="json", exclude_none=True) if generation.error else None,
        "video": {"bucket": outputs_bucket, "key": generation.video_key} if generation.video_key else None,
        "created_at": generation.created_at,
        "completed_at": generation.completed_at,
        "updated_at": generation.updated_at,
        "provider_generation_id": generation.provider_id,
        "submit_outcome_unknown": generation.submit_outcome_unknown,
    }


def webhook_id(generation: Generation) -> str:
    """The Standard Webhooks message id: one per (generation, terminal status), the same on every
    attempt and even if the message were enqueued twice, so receivers can de-duplicate on it."""
    return f"msg_{generation.id}_{generation.status.value}"


class Notifier:
    """Publishes the event and enqueues the webhook of one terminal transition.

    `once(step, generation, action)`: runs `action()` at most once per (generation id, status,
    step), returning its first answer on a repeat; the handler passes a Powertools idempotent
    function, tests may pass a dict-backed one."""

    def __init__(
        self,
        *,
        events: Any,
        sqs: Any,
        event_bus_name: str,
        webhook_queue_url: str,
        outputs_bucket: str,
        once: Callable[[str, Generation, Callable[[], dict[str, Any]]], dict[str, Any]],
        decode: ImageDecoder,
        metrics: MetricsSink,
        log: Any = None,
    ) -> None:
        self.events = events
        self.sqs = sqs
        self.event_bus_name = event_bus_name
        self.webhook_queue_url = webhook_queue_url
        self.outputs_bucket = outputs_bucket
        self.once = once
        self.decode = decode
        self.metrics = metrics
        self.log = log

    def handle(self, record: Mapping[str, Any]) -> bool:
        """One stream record; True when it was a terminal transition (and is now notified).
        Raises when a step failed: the record is reported as a batch item failure and retried."""
        generation = terminal_transition(record, self.decode)
        if generation is None:
            return False
        detail = completion_detail(generation, self.outputs_bucket)
        self.once("event", generation, lambda: self._publish(generation, detail))
        if generation.callback_url:
            self.once("webhook", generation, lambda: self._enqueue(generation, detail))
        return True

    def _publish(self, generation: Generation, detail: dict[str, Any]) -> dict[str, Any]:
        detail_type = DETAIL_TYPES[generation.status]
        event_id = publish_event(self.events, self.event_bus_name, detail_type, detail, self.metrics)
        self._info("completion event published", generation, event_id=event_id)
        return {"event_id": event_id}

    def _enqueue(self, generation: Generation, detail: dict[str, Any]) -> dict[str, Any]:
        message = {
            "webhook_id": webhook_id(generation),
            "url": generation.callback_url,
            "generation_id": generation.id,
            "status": generation.status.value,
            "owner": generation.owner,  # whose secret signs it (videogen.logic.webhook_secrets)
            # The exact bytes that are signed and sent on every attempt.
            "payload": json.dumps(
                {
                    "type": WEBHOOK_TYPES[generation.status],
                    "timestamp": generation.updated_at,
                    "data": detail,
                },
                separators=(",", ":"),
            ),
        }
        answer = self.sqs.send_message(QueueUrl=self.webhook_queue_url, MessageBody=json.dumps(message))
        self.metrics.add_metric("WebhooksQueued", "Count", 1)
        self._info("webhook queued", generation, webhook_id=message["webhook_id"])
        return {"message_id": answer.get("MessageId")}

    def _info(self, message: str, generation: Generation, **extra: Any) -> None:
        if self.log is not None:
            self.log.info(
                message,
                extra={"generation_id": generation.id, "status": generation.status.value, **extra},
            )
