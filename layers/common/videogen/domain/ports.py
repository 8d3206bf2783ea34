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
    from videogen.domain.capacity import Capacity
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


@dataclass(frozen=True)
class QueueEntry:
    """One pending generation in the submit queue, in fair order (see logic/queue.py)."""

    rank: str
    generation_id: str
    owner: str
    added_epoch: float = 0.0


class QueueIndex(Protocol):
    """The submit queue's order: entries kept beside the records. An entry is a pointer (the
    record decides whether it is still pending). `add` and `remove` change the owner's count and
    the queue's depth in the same transaction as the entry; `add` is False (nothing written)
    when the owner already has `cap` entries; `remove` of an absent entry changes nothing."""

    def add(self, entry: QueueEntry, cap: int) -> bool: ...
    def remove(self, rank: str, owner: str) -> None: ...
    def head(self, limit: int) -> list[QueueEntry]: ...
    def ahead_of(self, rank: str) -> int: ...
    def depth(self) -> int: ...
    def owner_last(self, owner: str) -> str | None: ...
    def owner_count(self, owner: str) -> int: ...


class Semaphore(Protocol):
    """The provider's learned capacity with its leases (videogen.domain.capacity), shared by
    every dispatcher. `update` applies a change with a write conditional on the version read,
    re-reading and re-applying after a lost race; the change returns None to write nothing."""

    def read(self) -> Capacity: ...
    def update(self, change: Any) -> Capacity | None: ...


class Waker(Protocol):
    """Wakes the dispatcher (an SQS message; `delay_seconds` for a throttled retry)."""

    def wake(self, delay_seconds: int = 0) -> None: ...


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
