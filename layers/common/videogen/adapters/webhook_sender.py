"""Signed webhook attempts: Standard Webhooks (https://www.standardwebhooks.com) with the
`standardwebhooks` package. Headers `webhook-id` (stable across attempts), `webhook-timestamp`
(this attempt, epoch seconds) and `webhook-signature`, `v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` once per current secret of the owner (videogen.logic.webhook_secrets),
space-separated, so a receiver holding either the old or the new secret verifies during a
rotation. Retrying is videogen.logic.webhook_delivery's.

An attempt is bounded: it ends at `timeout_seconds` after it started whatever the receiver does
(pinned_http.Deadline: a receiver that drips one byte every few seconds is cut off), it connects
to the address that was checked (pinned_http.PinnedAdapter), and at most `max_body_bytes` of the
answer are read (and thrown away): a receiver that streams gigabytes costs 64 KiB."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook
from urllib3.exceptions import HTTPError

from videogen.adapters.pinned_http import Deadline, UnsafeAddressError, pinned_session
from videogen.domain.errors import UnsafeUrlError
from videogen.domain.ports import DeliveryOutcome, WebhookAttempt

USER_AGENT = "videogen-webhooks/1"


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: one `v1,<signature>` per secret, space-separated. A secret
    is base64 (optionally prefixed `whsec_`), as Standard Webhooks libraries take it."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets)


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


MAX_BODY_BYTES = 64 * 1024
_CHUNK = 8192


class WebhookSender:
    """One attempt: re-check the URL (DNS may have changed since submit), sign with the owner's
    secrets, POST to the checked address within the deadline, read at most MAX_BODY_BYTES."""

    def __init__(
        self,
        *,
        secrets: Callable[[str], Sequence[str]],
        check_callback_url: Callable[[str], None],
        timeout_seconds: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        """`secrets(owner)`: the owner's signing secrets, newest first. `session`: one built by
        pinned_http.pinned_session (the default trusts no host: every address is checked)."""
        self.secrets = secrets
        self.check_callback_url = check_callback_url
        self.timeout_seconds = timeout_seconds
        self.session = session or pinned_session()
        self.clock = clock
        self.max_body_bytes = max_body_bytes

    def send(self, msg_id: str, url: str, body: str, *, owner: str) -> WebhookAttempt:
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
            "webhook-signature": sign(self.secrets(owner), msg_id, timestamp, body),
        }
        with Deadline(self.timeout_seconds) as deadline:
            try:
                answer = self.session.post(
                    url,
                    data=body.encode(),
                    headers=headers,
                    # per socket operation, never longer than what is left of the attempt
                    timeout=(min(5.0, self.timeout_seconds), self.timeout_seconds),
                    allow_redirects=False,
                    stream=True,
                )
            except UnsafeAddressError as exc:  # resolved to a private address since the check
                return WebhookAttempt(DeliveryOutcome.FAILED, f"unsafe_url: {exc}")
            except requests.RequestException as exc:
                if deadline.expired or isinstance(exc, requests.Timeout):
                    return WebhookAttempt(DeliveryOutcome.RETRY, "timeout")
                return WebhookAttempt(DeliveryOutcome.RETRY, f"connection_error: {type(exc).__name__}")
            try:
                self._discard_body(answer)
            except (requests.RequestException, OSError, HTTPError):
                if deadline.expired:
                    return WebhookAttempt(DeliveryOutcome.RETRY, "timeout")
                # the answer's status and headers arrived; a body cut short does not change them
            finally:
                answer.close()
            if deadline.expired:
                return WebhookAttempt(DeliveryOutcome.RETRY, "timeout")
        return classify(answer.status_code, answer.headers)

    def _discard_body(self, answer: requests.Response) -> None:
        """Read (and drop) the body up to the cap, undecoded: a receiver's answer is never kept."""
        read = 0
        while read < self.max_body_bytes:
            chunk = answer.raw.read(min(_CHUNK, self.max_body_bytes - read), decode_content=False)
            if not chunk:
                return
            read += len(chunk)
