"""Signed webhook delivery: one SQS message (queued by videogen.notify) -> one signed POST.

Signing follows Standard Webhooks (https://www.standardwebhooks.com), with the `standardwebhooks`
package: headers `webhook-id` (stable across attempts), `webhook-timestamp` (this attempt, epoch
seconds) and `webhook-signature`, `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` once per
current secret, space-separated, so a receiver holding either the old or the new secret verifies
during a rotation.

Retries are SQS's: a retryable failure (timeout, connection error, 408, 429, 5xx) sets the
message's visibility timeout to the next backoff (doubling, capped; at least Retry-After) and
reports the message as a batch item failure, so it comes back later; no thread waits. A
permanent failure (any other 4xx, a redirect, a URL that is no longer public) or the last
attempt goes to the dead-letter queue with the reason, and the message is deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import requests
from standardwebhooks.webhooks import Webhook

from videogen.errors import UnsafeUrlError

MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit (12 h)
USER_AGENT = "videogen-webhooks/1"


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    reason: str  # http_<code>, timeout, connection_error, unsafe_url, ...
    http_status: int | None = None
    retry_after: int | None = None


class RetryLater(Exception):
    """The message is reported as a batch item failure: SQS hands it back after its (now longer)
    visibility timeout."""


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: one `v1,<signature>` per secret, space-separated. A secret
    is base64 (optionally prefixed `whsec_`), as Standard Webhooks libraries take it."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets)


def split_secrets(value: str) -> list[str]:
    """The secret string holds one or more secrets separated by whitespace; the first is the new
    one. Rotation: put "NEW OLD", move receivers to NEW, then put "NEW"."""
    secrets = value.split()
    if not secrets:
        raise ValueError("the webhook secret is empty")
    return secrets


def classify(status: int, headers: Mapping[str, str]) -> Attempt:
    if 200 <= status < 300:
        return Attempt(Outcome.DELIVERED, f"http_{status}", status)
    if status in (408, 429) or status >= 500:
        return Attempt(Outcome.RETRY, f"http_{status}", status, _retry_after(headers.get("Retry-After")))
    return Attempt(Outcome.FAILED, f"http_{status}", status)  # other 4xx, and redirects (not followed)


def _retry_after(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None


class WebhookSender:
    """One attempt: re-check the URL (DNS may have changed since submit), sign, POST."""

    def __init__(
        self,
        *,
        secrets: Callable[[], Sequence[str]],
        check_url: Callable[[str], None],
        timeout_seconds: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secrets
        self.check_url = check_url
        self.timeout = (min(5.0, timeout_seconds), timeout_seconds)
        self.session = session or requests.Session()
        self.clock = clock

    def send(self, msg_id: str, url: str, body: str) -> Attempt:
        try:
            self.check_url(url)
        except UnsafeUrlError as exc:
            return Attempt(Outcome.FAILED, f"unsafe_url: {exc.message}")
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.secrets(), msg_id, timestamp, body),
        }
        try:
            answer = self.session.post(
                url, data=body.encode(), headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout:
            return Attempt(Outcome.RETRY, "timeout")
        except requests.RequestException as exc:
            return Attempt(Outcome.RETRY, f"connection_error: {type(exc).__name__}")
        answer.close()
        return classify(answer.status_code, answer.headers)


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
    ) -> None:
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

    def handle(self, record: Mapping[str, Any]) -> Attempt:
        """Raises RetryLater when the message must come back (a batch item failure)."""
        attempt_no = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        try:
            message = json.loads(record["body"])
            msg_id, url, payload = message["webhook_id"], message["url"], message["payload"]
        except (ValueError, TypeError, KeyError):  # not ours: retrying cannot help
            message = {"body": record.get("body"), "webhook_id": None}
            attempt = Attempt(Outcome.FAILED, "malformed_message")
        else:
            attempt = self.sender.send(msg_id, url, payload)
        extra = {
            "webhook_id": message["webhook_id"],
            "generation_id": message.get("generation_id"),
            "attempt": attempt_no,
            "reason": attempt.reason,
        }
        if attempt.outcome is Outcome.DELIVERED:
            self.metrics.add_metric("WebhooksDelivered", "Count", 1)
            self._log("info", "webhook delivered", extra)
            return attempt
        if attempt.outcome is Outcome.RETRY and attempt_no < self.max_attempts:
            delay = self.backoff(attempt_no, attempt.retry_after)
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay
            )
            self.metrics.add_metric("WebhooksRetried", "Count", 1)
            self._log("warning", "webhook attempt failed; retrying", {**extra, "retry_in_seconds": delay})
            raise RetryLater(f"{message['webhook_id']}: {attempt.reason}; retry in {delay} s")
        reason = attempt.reason if attempt.outcome is Outcome.FAILED else f"gave up: {attempt.reason}"
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

    def _log(self, level: str, message: str, extra: dict[str, Any]) -> None:
        if self.log is not None:
            getattr(self.log, level)(message, extra=extra)
