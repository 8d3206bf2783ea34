"""What the logic needs from the outside world, in its own terms: the provider, the video
archive, the record store and a metrics sink, with the result and error types they speak. The
adapters implement these; the logic never imports an adapter."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from videogen.domain.errors import ConflictError

if TYPE_CHECKING:
    from videogen.domain.catalog import ModelSpec
    from videogen.domain.models import Generation, Status


class ErrorClass(StrEnum):
    """Why a provider call failed, from its status code or transport error (never its text)."""

    AUTH = "auth"  # 401
    OUT_OF_CREDITS = "out_of_credits"  # 403
    VALIDATION = "validation"  # 400, 422 (and other 4xx)
    NOT_FOUND = "not_found"  # 404
    RATE_LIMITED = "rate_limited"  # 429
    SERVER = "server"  # 5xx other than 504; a connection dropped after the request was sent
    TIMEOUT = "timeout"  # read timeout, 504
    MALFORMED_RESPONSE = "malformed_response"  # 2xx with an unparseable body or missing fields
    CONNECTION = "connection"  # could not connect: certain the request was not taken


class ProviderStatus(StrEnum):
    """A provider job's state, whatever the vendor calls it."""

    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class ProviderError(Exception):
    """A failed provider call. ``outcome_unknown``: a submit that the provider may have taken."""

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown

    def __str__(self) -> str:
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        unknown = " [outcome unknown]" if self.outcome_unknown else ""
        return f"{self.error_class}{status}: {self.message}{unknown}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(error_class={self.error_class.value!r}, status_code={self.status_code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r}, "
            f"outcome_unknown={self.outcome_unknown!r})"
        )


@dataclass(frozen=True)
class SubmitResult:
    provider_id: str
    raw_status: str | None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    provider_id: str
    raw_status: str
    status: ProviderStatus
    video_url: str | None
    usage: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None


class Provider(Protocol):
    def submit(self, model: ModelSpec, fields: Mapping[str, Any]) -> SubmitResult: ...
    def poll(self, model: ModelSpec, provider_id: str) -> PollResult: ...


class ArchiveError(Exception):
    """The copy did not complete; the generation stays active and the copy is retried."""


@dataclass(frozen=True)
class VideoLink:
    url: str
    expires_at: float


class Archive(Protocol):
    def archive(self, generation_id: str, source_url: str) -> str: ...
    def link(self, key: str, *, expires_in: int, now: float) -> VideoLink: ...


class StaleWriteError(ConflictError):
    """The record changed since it was read (another writer won)."""


class Store(Protocol):
    """Generation records. Every write is conditional: `create` on the id being new, `save` on
    the version read; a lost race raises StaleWriteError."""

    due_shards: int

    def create(self, generation: Generation) -> Generation: ...
    def save(self, current: Generation, **changes: Any) -> Generation: ...
    def get(self, generation_id: str) -> Generation | None: ...
    def list_by_owner(
        self, owner: str, *, status: Status | None, limit: int, next_token: str | None
    ) -> tuple[list[Generation], str | None]: ...
    def due(self, shard: str, now: float) -> Iterator[Generation]: ...


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class NullMetrics:
    """A MetricsSink that drops everything (tests and tools that measure nothing)."""

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        return None


class DeliveryOutcome(StrEnum):
    """How one webhook attempt ended."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class WebhookAttempt:
    outcome: DeliveryOutcome
    reason: str  # http_<code>, timeout, connection_error, unsafe_url, ...
    http_status: int | None = None
    retry_after: int | None = None
