"""The generation record: one per requested video, from the moment it is accepted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    PENDING = "pending"  # accepted and queued here; not yet sent to the provider (see logic/queue.py)
    SUBMITTING = "submitting"  # record written, provider call in flight
    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"  # video archived in our bucket
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})
# Forward order of the active states: a refresh never moves a generation back in this order.
ACTIVE_ORDER = {Status.PENDING: 0, Status.SUBMITTING: 1, Status.QUEUED: 2, Status.GENERATING: 3}
# The error code of a generation that waited in our queue past the queue deadline (status failed).
QUEUE_EXPIRED = "queue_expired"


class Source(StrEnum):
    API = "api"
    S3 = "s3"
    WORKFLOW = "workflow"
    BATCH = "batch"  # a line of a batch (domain/batches.py)


class Driver(StrEnum):
    """Who polls the provider for this generation."""

    POLLER = "poller"
    WORKFLOW = "workflow"


class GenerationError(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use, not at a cold start

    code: str = Field(description="machine-readable reason, e.g. provider_validation, submit_outcome_unknown")
    message: str
    provider_class: str | None = Field(None, description="the provider error class, when the provider failed")


# Who a generation belongs to: an API key id, or a name given with an upload or a workflow input.
OWNER_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"


def utc_now_iso(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds: sorts lexicographically in time order."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_generation_id() -> str:
    return "gen_" + uuid.uuid4().hex


class Generation(BaseModel):
    """One generation as stored. `version` increases by one on every write; writes are
    conditional on it, so concurrent writers can never regress or double-complete a record."""

    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use, not at a cold start

    id: str
    owner: str
    status: Status
    model: str
    request: dict[str, Any]
    source: Source = Source.API
    driver: Driver = Driver.POLLER
    created_at: str
    updated_at: str
    created_epoch: float
    version: int = 1
    provider_id: str | None = None
    provider_status: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    error: GenerationError | None = None
    submit_outcome_unknown: bool = False
    video_provider_url: str | None = None
    video_key: str | None = None
    # Set (epoch seconds) while one worker copies the finished video: the others leave it alone.
    archive_claim_until: float | None = None
    completed_at: str | None = None
    next_poll_at: int | None = None
    poll_count: int = 0
    poll_failures: int = 0
    last_poll_error: str | None = None
    callback_url: str | None = None  # receives a signed webhook on the terminal transition
    # The submit queue (logic/queue.py): the fair rank while pending, when the record left the
    # queue for the provider, and private inputs the dispatcher turns into provider-side values at
    # submit time (an upload's pinned S3 object -> a fresh presigned GET URL, never stored).
    queue_rank: str | None = None
    submitted_epoch: float | None = None
    provider_refs: dict[str, dict[str, str]] = Field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.status.terminal

    @property
    def started_epoch(self) -> float:
        """When the provider's part began: the submit (a queued generation waited before it),
        or the creation for a record written before the queue existed."""
        return self.submitted_epoch if self.submitted_epoch is not None else self.created_epoch

    @property
    def due_for_poller(self) -> bool:
        """Whether the record belongs in the sparse due-index."""
        return not self.is_terminal and self.driver is Driver.POLLER and self.next_poll_at is not None
