"""The videogen REST API over HTTPS: x-api-key, JSON in and out, the API's one error shape.

Retries, and why they are safe:
- reads (GET) are retried on network failures, 429 and 5xx;
- `POST /generations` always carries an `Idempotency-Key`; the same key is sent again on a network
  failure (the first attempt may have reached the API: the key makes the API return its first
  answer instead of submitting twice), on `409 request_in_progress` (after `Retry-After`), and on
  API Gateway's own 429/5xx: `gateway_throttled`, `gateway_timeout`, `gateway_error` (the
  template's GatewayResponses give them these codes), or any 429/5xx carrying `x-amzn-ErrorType` or
  not in the API's error shape (a proxy's). The handler may or may not have run; the key covers
  both. `quota_exceeded` is not retried: the quota does not come back within seconds. An answer of
  the API's handlers (a provider failure, a validation error, `submit_outcome_unknown`) is final:
  the same key would only replay it;
- `DELETE` is retried on network failures; a 409 after such a retry means the first attempt got
  through, which is checked with a GET.
Every retry waits (Retry-After, capped, else an exponential backoff) and there are at most
`attempts` tries.

Redirects are never followed: requests would send `x-api-key` to wherever a 3xx points (it only
drops `Authorization` across hosts). A 3xx is reported as `redirect_not_followed`, naming the
target, so the user can decide to use that URL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urljoin

import requests

from videogen_cli import __version__
from videogen_cli.errors import ApiError, NetworkError

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 35.0  # API Gateway ends every request at 29 s
RETRY_AFTER_CAP = 10.0
TERMINAL = frozenset({"completed", "failed", "timed_out", "cancelled"})
# API Gateway's own failures, as the template's GatewayResponses name them: the handler may or may
# not have run, so a POST is sent again with the same Idempotency-Key.
GATEWAY_RETRY_CODES = frozenset({"gateway_throttled", "gateway_timeout", "gateway_error"})
# Retrying cannot help until the usage plan's quota resets (a day or a month).
NO_RETRY_CODES = frozenset({"quota_exceeded"})
NO_RETRY_ERROR_TYPES = frozenset({"LimitExceededException"})
USER_AGENT = f"videogen-cli/{__version__}"


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, min(float(raw), RETRY_AFTER_CAP))
    except ValueError:
        return None


def _gateway_error_type(response: requests.Response) -> str | None:
    """`x-amzn-ErrorType` without its optional `:namespace` suffix."""
    raw = response.headers.get("x-amzn-ErrorType")
    if not raw:
        return None
    return raw.split(":", 1)[0].strip() or None


def error_from_response(response: requests.Response) -> ApiError:
    """The API's `{"error": {...}}`, or API Gateway's own `{"message": ...}`, as an ApiError."""
    retry_after = _retry_after(response)
    error_type = _gateway_error_type(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        details = error.get("details")
        return ApiError(
            response.status_code,
            str(error.get("code") or f"http_{response.status_code}"),
            str(error.get("message") or response.reason or ""),
            details if isinstance(details, list) else None,
            retry_after=retry_after,
            gateway_error_type=error_type,
        )
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
    else:
        message = (response.text or "").strip()[:300] or (response.reason or "no answer")
    return ApiError(
        response.status_code,
        f"http_{response.status_code}",
        message,
        retry_after=retry_after,
        gateway_error_type=error_type,
    )


def redirect_error(response: requests.Response) -> ApiError:
    """A 3xx the CLI does not follow, and why (the key would go along)."""
    location = response.headers.get("Location")
    target = urljoin(response.url, location) if location else "an unnamed location"
    error = ApiError(
        response.status_code,
        "redirect_not_followed",
        f"the API answered a redirect to {target}; it is not followed, so the API key is not sent there",
    )
    error.hints.append("  if that is the API, give it as --api-url (or VIDEOGEN_API_URL)")
    return error


def _is_own_error(error: ApiError) -> bool:
    """An answer of the API's handlers (as opposed to API Gateway's, or a proxy's)."""
    return not (
        error.code.startswith("http_")
        or error.code in GATEWAY_RETRY_CODES
        or error.gateway_error_type is not None
    )


def _worth_retrying(error: ApiError) -> bool:
    """A 429/5xx that a later attempt may get past."""
    if error.code in NO_RETRY_CODES or error.gateway_error_type in NO_RETRY_ERROR_TYPES:
        return False
    return error.status == 429 or error.status >= 500


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        self.http = session or requests.Session()
        self.http.headers.update(
            {"x-api-key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}
        )
        self._models: list[dict[str, Any]] | None = None

    # -- transport --------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.base_url + path
        try:
            # never allow_redirects: the session's x-api-key would go wherever a 3xx points
            return self.http.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.Timeout:
            raise NetworkError(f"the API did not answer in time ({method} {url})") from None
        except requests.ConnectionError:
            raise NetworkError(f"cannot reach the API at {self.base_url} ({method} {path})") from None
        except requests.RequestException as exc:
            raise NetworkError(f"{method} {url} failed: {exc.__class__.__name__}") from None

    def _delay(self, attempt: int, retry_after: float | None = None) -> None:
        self.sleep(retry_after if retry_after is not None else self.backoff * (2**attempt))

    def call(
        self,
        method: str,
        path: str,
        *,
        retry: Callable[[ApiError | NetworkError], bool],
        **kwargs: Any,
    ) -> tuple[Any, int]:
        """JSON answer and the number of attempts it took; ApiError / NetworkError when it fails."""
        for attempt in range(self.attempts):
            failure: ApiError | NetworkError
            try:
                response = self._send(method, path, **kwargs)
            except NetworkError as exc:
                failure = exc
            else:
                if response.is_redirect or 300 <= response.status_code < 400:
                    raise redirect_error(response)
                if response.ok:
                    try:
                        return response.json(), attempt + 1
                    except ValueError:
                        raise ApiError(
                            response.status_code, "invalid_response", "the API's answer is not JSON"
                        ) from None
                failure = error_from_response(response)
            if attempt + 1 >= self.attempts or not retry(failure):
                raise failure
            self._delay(attempt, failure.retry_after if isinstance(failure, ApiError) else None)
        raise AssertionError("unreachable")

    @staticmethod
    def _retry_read(failure: ApiError | NetworkError) -> bool:
        return isinstance(failure, NetworkError) or _worth_retrying(failure)

    @staticmethod
    def _retry_submit(failure: ApiError | NetworkError) -> bool:
        if isinstance(failure, NetworkError):
            return True
        if failure.code == "request_in_progress":
            return True
        return not _is_own_error(failure) and _worth_retrying(failure)

    # -- routes -------------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        """GET /models (once per client)."""
        if self._models is None:
            answer, _ = self.call("GET", "/models", retry=self._retry_read)
            models = answer.get("models") if isinstance(answer, dict) else None
            self._models = [m for m in models or [] if isinstance(m, dict)]
        return self._models

    def model(self, model_id: str) -> dict[str, Any] | None:
        for model in self.models():
            if model.get("id") == model_id:
                return model
        return None

    def create(self, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """POST /generations with the Idempotency-Key (the same one on every retry)."""
        answer, _ = self.call(
            "POST",
            "/generations",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
            retry=self._retry_submit,
        )
        return dict(answer)

    def usage(self, days: int) -> dict[str, Any]:
        """GET /usage: the key's spend by day and model, and its budgets."""
        answer, _ = self.call("GET", "/usage", params={"days": days}, retry=self._retry_read)
        return dict(answer)

    def get(self, generation_id: str) -> dict[str, Any]:
        answer, _ = self.call("GET", "/generations/" + quote(generation_id, safe=""), retry=self._retry_read)
        return dict(answer)

    def page(
        self, *, status: str | None = None, limit: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if status:
            params["status"] = status
        if limit is not None:
            params["limit"] = limit
        if next_token:
            params["next_token"] = next_token
        answer, _ = self.call("GET", "/generations", params=params, retry=self._retry_read)
        return dict(answer)

    def iter_generations(
        self, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every generation of this key, newest first, page after page."""
        token: str | None = None
        while True:
            page = self.page(status=status, limit=page_size, next_token=token)
            yield from page.get("items") or []
            token = page.get("next_token")
            if not token:
                return

    def cancel(self, generation_id: str) -> dict[str, Any]:
        path = "/generations/" + quote(generation_id, safe="")
        tries: list[int] = []

        def retry(failure: ApiError | NetworkError) -> bool:
            tries.append(1)
            return isinstance(failure, NetworkError)

        try:
            answer, _ = self.call("DELETE", path, retry=retry)
        except ApiError as exc:
            if exc.status == 409 and len(tries) > 1:
                # an earlier attempt whose answer was lost may have cancelled it already
                current = self.get(generation_id)
                if current.get("status") == "cancelled":
                    return current
            raise
        return dict(answer)

    def webhook_secret(self) -> dict[str, Any]:
        """GET /webhook-secret: this key's webhook signing secret."""
        answer, _ = self.call("GET", "/webhook-secret", retry=self._retry_read)
        return dict(answer)

    def rotate_webhook_secret(self) -> dict[str, Any]:
        """POST /webhook-secret/rotate, never retried: a second rotation after a lost answer would
        end the grace of the secret the receivers still hold."""
        answer, _ = self.call("POST", "/webhook-secret/rotate", retry=lambda failure: False)
        return dict(answer)

    # -- batches (docs/batches.md) ------------------------------------------------------------
    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /batches, never retried after it was sent: the route has no Idempotency-Key and a
        second attempt after a lost answer would start a second batch (`videogen batch list`
        shows what was made)."""
        answer, _ = self.call("POST", "/batches", json=body, retry=lambda failure: False)
        return dict(answer)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        answer, _ = self.call("GET", "/batches/" + quote(batch_id, safe=""), retry=self._retry_read)
        return dict(answer)

    def batches(self, *, limit: int = 20, next_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if next_token:
            params["next_token"] = next_token
        answer, _ = self.call("GET", "/batches", params=params, retry=self._retry_read)
        return dict(answer)

    def iter_batch_results(self, batch_id: str, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row of a batch's results manifest, in line order, page after page."""
        token: str | None = None
        path = "/batches/" + quote(batch_id, safe="") + "/results"
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if token:
                params["next_token"] = token
            page, _ = self.call("GET", path, params=params, retry=self._retry_read)
            yield from page.get("items") or []
            token = page.get("next_token")
            if not token:
                return

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        answer, _ = self.call("DELETE", "/batches/" + quote(batch_id, safe=""), retry=self._retry_read)
        return dict(answer)

    def resume_batch(self, batch_id: str) -> dict[str, Any]:
        """POST /batches/{id}/resume; a retry is harmless (a run skips every line already taken)."""
        answer, _ = self.call(
            "POST", "/batches/" + quote(batch_id, safe="") + "/resume", retry=self._retry_read
        )
        return dict(answer)
