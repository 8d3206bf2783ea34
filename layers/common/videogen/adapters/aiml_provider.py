"""The AIML API client: submit a generation, poll it, and classify every failure.

Retries are layered on urllib3's ``Retry``. A poll is a read, so it is retried on 429, 5xx, read
timeouts and connection errors. A submit costs credits, so it is retried only where the provider
certainly did not take the job: connection failures and 429 (`submit_retry_statuses`; the submit
queue's client retries no status at all, so every 429 reaches the learned limit). After a read
timeout, any 5xx (the docs' 5xx page does not say a 503 took no work: "could not complete your
request") or a broken 2xx answer the job may exist: the error says ``outcome_unknown`` and is
never resent.

Failures are classified by status code and exception type, never by message text. The API key comes
from a callable on each request and never appears in an error message, a repr or a log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from videogen.domain.ports import ErrorClass, PollResult, ProviderError, ProviderStatus, SubmitResult
from videogen.lazy import lazy_import

if TYPE_CHECKING:
    import requests

    from videogen.domain.catalog import ModelSpec

# requests, urllib3 and the client's retry classes, loaded at the first request.
_http = lazy_import("videogen.adapters.aiml_http")

UNIFIED_PATH = "/v2/video/generations"
LEGACY_PATH = "/v2/generate/video/{provider}/generation"

_STATUS_CLASSES = {
    400: ErrorClass.VALIDATION,
    401: ErrorClass.AUTH,
    403: ErrorClass.OUT_OF_CREDITS,
    404: ErrorClass.NOT_FOUND,
    422: ErrorClass.VALIDATION,
    429: ErrorClass.RATE_LIMITED,
    504: ErrorClass.TIMEOUT,
}


_RAW_STATUSES = {
    "queued": ProviderStatus.QUEUED,
    "waiting": ProviderStatus.QUEUED,
    "generating": ProviderStatus.GENERATING,
    "active": ProviderStatus.GENERATING,
    "processing": ProviderStatus.GENERATING,
    "dreaming": ProviderStatus.GENERATING,
    "completed": ProviderStatus.COMPLETED,
    "succeeded": ProviderStatus.COMPLETED,
    "error": ProviderStatus.FAILED,
    "failed": ProviderStatus.FAILED,
    "cancelled": ProviderStatus.CANCELLED,
    "expired": ProviderStatus.EXPIRED,
}


def map_provider_status(raw: str | None) -> ProviderStatus:
    """The provider's raw status string as a ProviderStatus; anything unexpected is UNKNOWN."""
    if not isinstance(raw, str):
        return ProviderStatus.UNKNOWN
    return _RAW_STATUSES.get(raw.strip().lower(), ProviderStatus.UNKNOWN)


class AimlClient:
    """Submit and poll video generations at ``base_url`` (``https://api.aimlapi.com`` or a simulator).

    ``api_key`` is called for every request (cache it in the callable). A ``session`` passed in gets
    the client's retrying adapters mounted for http:// and https://. Safe to share between threads.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        submit_read_timeout: float = 30,
        poll_read_timeout: float = 15,
        poll_retries: int = 3,
        submit_retries: int = 2,
        submit_retry_statuses: tuple[int, ...] = (429,),
        backoff_factor: float = 0.5,
        backoff_jitter: float | None = None,
        backoff_max: float = 10,
        retry_after_max: int = 30,
        pool_maxsize: int = 32,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._submit_timeout = (connect_timeout, submit_read_timeout)
        self._poll_timeout = (connect_timeout, poll_read_timeout)
        self._retry_options: dict[str, Any] = {
            "backoff_factor": backoff_factor,
            "backoff_jitter": backoff_factor if backoff_jitter is None else backoff_jitter,
            "backoff_max": backoff_max,
            "retry_after_max": retry_after_max,
            "raise_on_status": False,  # give back the last answer, to classify it
            "respect_retry_after_header": True,
        }
        self._poll_retries, self._submit_retries = poll_retries, submit_retries
        self._submit_retry_statuses = submit_retry_statuses
        self._pool_maxsize = pool_maxsize
        self._given_session = session
        self._made_session: requests.Session | None = None
        self._session_lock = threading.Lock()

    @property
    def _session(self) -> requests.Session:
        """The HTTP session, made on the first request (by whichever thread gets there first)."""
        if self._made_session is None:
            with self._session_lock:
                if self._made_session is None:
                    self._made_session = self._make_session()
        return self._made_session

    def _make_session(self) -> requests.Session:
        poll_retry = _http.BackoffRetry(
            total=self._poll_retries,
            allowed_methods={"GET"},
            status_forcelist={429, 500, 502, 503, 504},
            **self._retry_options,
        )
        submit_retry = _http.BackoffRetry(
            total=self._submit_retries,
            read=0,  # never resend a submit the provider may have received
            other=0,
            allowed_methods={"POST"},
            status_forcelist=set(self._submit_retry_statuses),  # refused before any work: safe to resend
            **self._retry_options,
        )
        adapter = _http.ByMethodAdapter(
            _http.HTTPAdapter(max_retries=submit_retry, pool_maxsize=self._pool_maxsize),
            _http.HTTPAdapter(max_retries=poll_retry, pool_maxsize=self._pool_maxsize),
        )
        session: requests.Session = self._given_session or _http.requests.Session()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        if session.trust_env:
            # requests reads proxy, CA bundle and netrc settings from the environment on every
            # request (a walk over os.environ each time: a good part of a poll's CPU in a sweep).
            # Read them once here instead; the environment does not change within a process.
            found = session.merge_environment_settings(self._base_url, {}, None, None, None)
            session.proxies.update(found["proxies"])
            session.verify = found["verify"]
            session.trust_env = False
        return session

    def __repr__(self) -> str:
        return f"AimlClient(base_url={self._base_url!r})"

    def close(self) -> None:
        session = self._made_session or self._given_session
        if session is not None:
            session.close()

    def submit(self, model: ModelSpec, fields: Mapping[str, Any]) -> SubmitResult:
        """Start a generation. ``fields`` are named as the schema of the model's path names them."""
        body = {"model": model.id, **{name: value for name, value in fields.items() if name != "model"}}
        answer = self._call("POST", self._url(model), json=body, timeout=self._submit_timeout)
        provider_id = answer.get("id") or answer.get("generation_id")
        if isinstance(provider_id, int) and not isinstance(provider_id, bool):
            provider_id = str(provider_id)
        if not isinstance(provider_id, str) or not provider_id:
            raise ProviderError(
                ErrorClass.MALFORMED_RESPONSE, "submit answer has no generation id", outcome_unknown=True
            )
        raw_status = answer.get("status")
        return SubmitResult(
            provider_id=provider_id,
            raw_status=raw_status if isinstance(raw_status, str) else None,
            usage=_usage(answer),
        )

    def poll(self, model: ModelSpec, provider_id: str) -> PollResult:
        """The generation's current state; a finished job carries ``video_url``."""
        params = {"generation_id": provider_id}
        answer = self._call("GET", self._url(model), params=params, timeout=self._poll_timeout)
        raw_status = answer.get("status")
        if not isinstance(raw_status, str):
            raise ProviderError(ErrorClass.MALFORMED_RESPONSE, "poll answer has no status")
        status = map_provider_status(raw_status)
        video_url = _video_url(answer.get("video"))
        if status is ProviderStatus.COMPLETED and video_url is None:
            raise ProviderError(ErrorClass.MALFORMED_RESPONSE, "completed poll answer has no video URL")
        return PollResult(
            provider_id=provider_id,
            raw_status=raw_status,
            status=status,
            video_url=video_url,
            usage=_usage(answer),
            error_message=_error_message(answer.get("error")),
        )

    # internals
    def _url(self, model: ModelSpec) -> str:
        if model.family == "legacy":
            return self._base_url + LEGACY_PATH.format(provider=quote(model.provider, safe=""))
        return self._base_url + UNIFIED_PATH

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One request (urllib3 retrying inside); the JSON object answered, or a ProviderError."""
        is_submit = method == "POST"
        key = self._api_key()
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        try:
            response = self._session.request(method, url, headers=headers, allow_redirects=False, **kwargs)
        except _http.requests.RequestException as exc:
            raise _transport_error(exc, is_submit, key) from None
        if not 200 <= response.status_code < 300:
            raise _http_error(response, is_submit, key)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderError(
                ErrorClass.MALFORMED_RESPONSE,
                f"{method} answered HTTP {response.status_code} with a body that is not a JSON object",
                status_code=response.status_code,
                outcome_unknown=is_submit,
            )
        return answer


def _redact(text: str, key: str) -> str:
    return text.replace(key, "***") if key else text


def _transport_error(exc: requests.RequestException, is_submit: bool, key: str) -> ProviderError:
    """Classify a call that got no HTTP answer by the type of what went wrong underneath."""
    requests = _http.requests
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, _http.MaxRetryError):
        reason = reason.reason
    detail = _redact(f"{type(reason or exc).__name__}: {reason or exc}", key)[:300]
    if isinstance(exc, requests.ConnectTimeout) or isinstance(reason, _http.ConnectTimeoutError):
        return ProviderError(ErrorClass.CONNECTION, f"could not connect ({detail})")  # incl. DNS, refused
    if isinstance(exc, requests.ReadTimeout) or isinstance(reason, _http.ReadTimeoutError):
        return ProviderError(ErrorClass.TIMEOUT, f"no answer in time ({detail})", outcome_unknown=is_submit)
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(reason, _http.Urllib3SSLError):
        return ProviderError(ErrorClass.CONNECTION, f"TLS failure ({detail})")
    if isinstance(exc, _http.NEVER_SENT):
        return ProviderError(ErrorClass.CONNECTION, f"request not sent ({detail})")
    # Connected and sent, then the connection broke: like a 502, the provider may have the job.
    return ProviderError(ErrorClass.SERVER, f"connection lost ({detail})", outcome_unknown=is_submit)


def _http_error(response: requests.Response, is_submit: bool, key: str) -> ProviderError:
    status = response.status_code
    default = ErrorClass.SERVER if status >= 500 or status < 400 else ErrorClass.VALIDATION
    error_class = _STATUS_CLASSES.get(status, default)
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = _error_message(body.get("error") if isinstance(body, dict) else None) or response.reason
    return ProviderError(
        error_class,
        _redact(str(message or f"HTTP {status}"), key)[:500],
        status_code=status,
        retry_after=_retry_after(response.headers.get("Retry-After")),
        # Only a 501 says the request was refused before any work; any other 5xx may hide a job
        # (a 503 included: the provider's docs do not say it took none; docs/reliability-and-security.md).
        outcome_unknown=is_submit and status >= 500 and status != 501,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare here, the retry policy has honoured it already


def _usage(answer: Mapping[str, Any]) -> dict[str, Any]:
    meta = answer.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else answer.get("usage")
    return dict(usage) if isinstance(usage, dict) else {}


def _video_url(video: Any) -> str | None:
    """The URL of ``{"url": ...}``, ``[{"url": ...}, ...]`` or ``["https://...", ...]``."""
    if isinstance(video, list):
        video = video[0] if video else None
    if isinstance(video, dict):
        video = video.get("url")
    return video if isinstance(video, str) and video else None


def _error_message(error: Any) -> str | None:
    """Text of ``{"name", "message"}``, ``{"detail": [{"loc", "msg", "type"}]}`` or a plain string."""
    if isinstance(error, str):
        return error or None
    if not isinstance(error, dict):
        return None
    if isinstance(error.get("detail"), list):
        parts = []
        for item in error["detail"]:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc") or [])
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts) or None
    name, message = error.get("name"), error.get("message")
    text = ": ".join(str(part) for part in (name, message) if part)
    return text or None
