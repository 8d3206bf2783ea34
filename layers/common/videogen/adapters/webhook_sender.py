"""Signed webhook attempts: Standard Webhooks (https://www.standardwebhooks.com) with the
`standardwebhooks` package. Headers `webhook-id` (stable across attempts), `webhook-timestamp`
(this attempt, epoch seconds) and `webhook-signature`, `v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` once per current secret, space-separated, so a receiver holding either the
old or the new secret verifies during a rotation. Retrying is videogen.logic.webhook_delivery's."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook

from videogen.domain.errors import UnsafeUrlError
from videogen.domain.ports import DeliveryOutcome, WebhookAttempt

USER_AGENT = "videogen-webhooks/1"


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


def classify(status: int, headers: Mapping[str, str]) -> WebhookAttempt:
    if 200 <= status < 300:
        return WebhookAttempt(DeliveryOutcome.DELIVERED, f"http_{status}", status)
    if status in (408, 429) or status >= 500:
        return WebhookAttempt(
            DeliveryOutcome.RETRY, f"http_{status}", status, _retry_after(headers.get("Retry-After"))
        )
    return WebhookAttempt(
        DeliveryOutcome.FAILED, f"http_{status}", status
    )  # other 4xx, and redirects (not followed)


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
        check_callback_url: Callable[[str], None],
        timeout_seconds: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secrets
        self.check_callback_url = check_callback_url
        self.timeout = (min(5.0, timeout_seconds), timeout_seconds)
        self.session = session or requests.Session()
        self.clock = clock

    def send(self, msg_id: str, url: str, body: str) -> WebhookAttempt:
        try:
            self.check_callback_url(url)
        except UnsafeUrlError as exc:
            return WebhookAttempt(DeliveryOutcome.FAILED, f"unsafe_url: {exc.message}")
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
            return WebhookAttempt(DeliveryOutcome.RETRY, "timeout")
        except requests.RequestException as exc:
            return WebhookAttempt(DeliveryOutcome.RETRY, f"connection_error: {type(exc).__name__}")
        answer.close()
        return classify(answer.status_code, answer.headers)
