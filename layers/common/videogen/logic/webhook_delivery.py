"""Webhook delivery: one SQS message of the webhook queue (queued by videogen.logic.notify) ->
one signed attempt (videogen.adapters.webhook_sender), then delete, retry later or dead-letter.

Retries are SQS's: a retryable failure (timeout, connection error, 408, 429, 5xx) sets the
message's visibility timeout to the next backoff (doubling, capped; at least Retry-After) and
reports the message as a batch item failure, so it comes back later; no thread waits. A
permanent failure (any other 4xx, a redirect, a URL that is no longer public) or the last
attempt goes to the dead-letter queue with the reason, and the message is deleted.

A batch never outlives its function: before each record the time left in the invocation is
compared with what one record may take (`record_budget_seconds`: the attempt's deadline plus
the calls around it). A record that no longer fits is not attempted: a copy goes back on the
queue carrying the attempts made so far (`attempts_made`) and the record itself is deleted, so
SQS's receive count, which counts attempts, does not count the skip. Its batch-mates already
delivered are not sent again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from videogen.domain.ports import DeliveryOutcome, MetricsSink, WebhookAttempt

MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit (12 h)


# Seconds around one attempt in a record: the owner's secret version (DynamoDB), the secret
# (Secrets Manager, cached), and the SQS call that follows a failure.
RECORD_MARGIN_SECONDS = 5
# Seconds of an invocation before the first record: a cold start, the batch's set-up.
BATCH_MARGIN_SECONDS = 10


class WebhookSender(Protocol):
    def send(self, msg_id: str, url: str, body: str, *, owner: str) -> WebhookAttempt: ...


def message_owner(message: dict[str, Any]) -> str:
    """The owner whose secret signs the message: `owner`, or the payload's `data.owner` for a
    message queued before messages named it."""
    owner = message.get("owner")
    if not owner:
        owner = json.loads(message["payload"])["data"]["owner"]
    if not isinstance(owner, str) or not owner:
        raise ValueError("the message names no owner")
    return owner


class RetryLater(Exception):
    """The message is reported as a batch item failure: SQS hands it back after its (now longer)
    visibility timeout."""


class WebhookDelivery:
    """An SQS record of the webhook queue -> an attempt, then delete, retry later or dead-letter."""

    def __init__(
        self,
        *,
        sender: WebhookSender,
        sqs: Any,
        queue_url: str,
        dead_letter_queue_url: str,
        max_attempts: int = 10,
        backoff_seconds: int = 30,
        backoff_max_seconds: int = 7200,
        metrics: MetricsSink,
        log: Any = None,
        record_budget_seconds: float = 10 + RECORD_MARGIN_SECONDS,
    ) -> None:
        """`record_budget_seconds`: the time one record may take, the sender's deadline plus
        RECORD_MARGIN_SECONDS; a record is only attempted when at least that much is left."""
        self.record_budget_seconds = record_budget_seconds
        self.sender = sender
        self.sqs = sqs
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = min(backoff_max_seconds, MAX_VISIBILITY_SECONDS)
        self.metrics = metrics
        self.log = log

    def backoff(self, attempt: int, retry_after: int | None = None) -> int:
        """Seconds before attempt `attempt + 1`: base x 2^(attempt-1), capped; at least Retry-After."""
        delay = min(self.backoff_seconds * 2 ** max(attempt - 1, 0), self.backoff_max_seconds)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_seconds))
        return int(delay)

    def handle(
        self, record: Mapping[str, Any], time_left: Callable[[], float] | None = None
    ) -> WebhookAttempt | None:
        """Raises RetryLater when the message must come back (a batch item failure). `time_left`:
        seconds left in the invocation; when a record no longer fits it is deferred (None)."""
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        try:
            message = json.loads(record["body"])
            msg_id, url, payload = message["webhook_id"], message["url"], message["payload"]
            owner = message_owner(message)
            attempt_no = int(message.get("attempts_made") or 0) + receives
        except (ValueError, TypeError, KeyError, AttributeError):  # not ours: retrying cannot help
            message = {"body": record.get("body"), "webhook_id": None}
            attempt_no = receives
            attempt = WebhookAttempt(DeliveryOutcome.FAILED, "malformed_message")
        else:
            if time_left is not None and time_left() < self.record_budget_seconds:
                self._defer(message, attempt_no - 1)
                return None
            attempt = self.sender.send(msg_id, url, payload, owner=owner)
        extra = {
            "webhook_id": message["webhook_id"],
            "generation_id": message.get("generation_id"),
            "attempt": attempt_no,
            "reason": attempt.reason,
        }
        if attempt.outcome is DeliveryOutcome.DELIVERED:
            self.metrics.add_metric("WebhooksDelivered", "Count", 1)
            self._log("info", "webhook delivered", extra)
            return attempt
        if attempt.outcome is DeliveryOutcome.RETRY and attempt_no < self.max_attempts:
            delay = self.backoff(attempt_no, attempt.retry_after)
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay
            )
            self.metrics.add_metric("WebhooksRetried", "Count", 1)
            self._log("warning", "webhook attempt failed; retrying", {**extra, "retry_in_seconds": delay})
            raise RetryLater(f"{message['webhook_id']}: {attempt.reason}; retry in {delay} s")
        reason = attempt.reason if attempt.outcome is DeliveryOutcome.FAILED else f"gave up: {attempt.reason}"
        self.sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=json.dumps(
                {
                    **message,
                    "reason": reason,
                    "http_status": attempt.http_status,
                    "attempts": attempt_no,
                    "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            ),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256]}},
        )
        self.metrics.add_metric("WebhooksFailed", "Count", 1)
        self._log(
            "warning", "webhook not delivered; sent to the dead-letter queue", {**extra, "reason": reason}
        )
        return attempt

    def _defer(self, message: dict[str, Any], attempts_made: int) -> None:
        """Put the message back, unattempted, as a new message that carries its attempts so far;
        the record is then deleted (not a batch item failure, which would count a receive)."""
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps({**message, "attempts_made": attempts_made})
        )
        self.metrics.add_metric("WebhooksDeferred", "Count", 1)
        self._log(
            "info",
            "webhook deferred: not enough time left in this invocation",
            {"webhook_id": message["webhook_id"], "attempts_made": attempts_made},
        )

    def _log(self, level: str, message: str, extra: dict[str, Any]) -> None:
        if self.log is not None:
            getattr(self.log, level)(message, extra=extra)
