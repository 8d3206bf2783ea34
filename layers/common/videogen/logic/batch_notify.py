"""The end of a batch, told: one `Batch Completed` event on the stack's bus (source `videogen`;
its detail's `status` says completed, cancelled or failed) and, when the batch has a
`callback_url`, one webhook message on the webhook queue, signed and delivered by the same
machinery as a generation's (videogen.logic.webhook_delivery: the owner's secret, retries, the
dead-letter queue).

Called by BatchService.finish/fail before the batch's terminal write, so a crash in between
sends it again on the retried step (at least once; the webhook id is the same every time, so a
receiver de-duplicates on it) rather than never."""

from __future__ import annotations

import json
from typing import Any

from videogen.domain.batches import Batch
from videogen.domain.ports import MetricsSink
from videogen.logic.notify import publish_event

DETAIL_TYPE = "Batch Completed"
WEBHOOK_TYPES = {"completed": "batch.completed", "cancelled": "batch.cancelled", "failed": "batch.failed"}


def batch_detail(batch: Batch, outputs_bucket: str) -> dict[str, Any]:
    return {
        "id": batch.id,
        "owner": batch.owner,
        "status": batch.status.value,
        "lines": batch.lines,
        "valid": batch.valid,
        "invalid": batch.invalid,
        "counts": batch.counts,
        "credits_used": batch.credits_used,
        "results": {"bucket": outputs_bucket, "key": f"batches/{batch.id}/results.jsonl"},
        "created_at": batch.created_at,
        "completed_at": batch.completed_at,
        "error": batch.error,
    }


class BatchNotifier:
    def __init__(
        self,
        *,
        events: Any,
        sqs: Any,
        event_bus_name: str,
        webhook_queue_url: str,
        outputs_bucket: str,
        metrics: MetricsSink,
        log: Any = None,
    ) -> None:
        self.events = events
        self.sqs = sqs
        self.event_bus_name = event_bus_name
        self.webhook_queue_url = webhook_queue_url
        self.outputs_bucket = outputs_bucket
        self.metrics = metrics
        self.log = log

    def __call__(self, batch: Batch) -> None:
        detail = batch_detail(batch, self.outputs_bucket)
        publish_event(self.events, self.event_bus_name, DETAIL_TYPE, detail, self.metrics)
        if batch.callback_url and self.webhook_queue_url:
            message = {
                "webhook_id": f"msg_{batch.id}_{batch.status.value}",
                "url": batch.callback_url,
                "batch_id": batch.id,
                "status": batch.status.value,
                "owner": batch.owner,  # whose secret signs it
                "payload": json.dumps(
                    {
                        "type": WEBHOOK_TYPES[batch.status.value],
                        "timestamp": batch.updated_at,
                        "data": detail,
                    },
                    separators=(",", ":"),
                ),
            }
            self.sqs.send_message(QueueUrl=self.webhook_queue_url, MessageBody=json.dumps(message))
            self.metrics.add_metric("WebhooksQueued", "Count", 1)
        if self.log is not None:
            self.log.info("batch ended", extra={"batch_id": batch.id, "status": batch.status.value})
