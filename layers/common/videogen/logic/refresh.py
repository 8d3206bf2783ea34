"""Refresh: bring one active generation one step forward. Poll the provider, archive a finished
video into our bucket, or end the generation (age limit, provider failure, a submit whose
outcome is unknown). Provider and archive faults never raise: they leave the generation active
with a later poll time."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from videogen.domain.catalog import ModelSpec, get_model
from videogen.domain.models import ACTIVE_ORDER, Generation, GenerationError, Status, utc_now_iso
from videogen.domain.ports import (
    Archive,
    ArchiveError,
    ErrorClass,
    PollResult,
    Provider,
    ProviderError,
    ProviderStatus,
    StaleWriteError,
)
from videogen.logic.queue import SubmitQueue, expire
from videogen.logic.recorder import Recorder
from videogen.logic.schedule import PollSchedule, poll_at
from videogen.logic.timers import TimerArming


class RefreshOutcome(StrEnum):
    """What one refresh did; sweeps and workflow fetches count these as metrics."""

    WAITING = "waiting"  # still queued/generating, next poll scheduled
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    FLAGGED = "flagged"  # submit outcome unknown: marked failed and flagged for a human
    PROVIDER_ERROR = "provider_error"  # poll failed; retried on a later sweep
    ARCHIVE_ERROR = "archive_error"  # video ready but the copy failed; retried on a later sweep
    UNKNOWN_STATUS = "unknown_status"  # provider said something unmapped; kept active
    CONFLICT = "conflict"  # another writer changed the record first
    SKIPPED = "skipped"  # terminal or not ours to poll
    EXPIRED = "expired"  # still pending at the queue deadline: failed with queue_expired


# The metric each outcome is counted under (outcomes not listed are not counted).
OUTCOME_METRICS = {
    RefreshOutcome.COMPLETED: "GenerationsCompleted",
    RefreshOutcome.FAILED: "GenerationsFailed",
    RefreshOutcome.FLAGGED: "GenerationsFlagged",
    RefreshOutcome.TIMED_OUT: "GenerationsTimedOut",
    RefreshOutcome.PROVIDER_ERROR: "ProviderPollErrors",
    RefreshOutcome.ARCHIVE_ERROR: "ArchiveErrors",
    RefreshOutcome.UNKNOWN_STATUS: "UnknownProviderStatus",
}

Refreshed = tuple[Generation, RefreshOutcome]


class Refresher:
    def __init__(
        self,
        recorder: Recorder,
        provider: Provider,
        archive: Archive,
        schedule: PollSchedule,
        *,
        max_age_seconds: int,
        submit_grace_seconds: int,
        archive_lease_seconds: int,
        arming: TimerArming | None = None,
        queue: SubmitQueue | None = None,
    ) -> None:
        self.queue = queue
        self.recorder = recorder
        self.provider = provider
        self.archive = archive
        self.schedule = schedule
        self.max_age_seconds = max_age_seconds
        self.submit_grace_seconds = submit_grace_seconds
        # How long a claimed archive copy is left to its claimant before another worker retries it.
        self.archive_lease_seconds = archive_lease_seconds
        # Every write that leaves the generation waiting for a later poll arms its timer
        # (videogen.logic.timers): the timer path and the sweep both go through here.
        self.arming = arming or TimerArming(recorder)

    def refresh(self, generation: Generation) -> Refreshed:
        if generation.is_terminal:
            return generation, RefreshOutcome.SKIPPED
        with self.recorder.about(generation.id):
            try:
                updated, outcome = self._refresh(generation)
            except StaleWriteError:
                return generation, RefreshOutcome.CONFLICT
            if updated.version != generation.version:  # this refresh wrote a new due time
                self.arming.arm(updated)
            return updated, outcome

    def _refresh(self, gen: Generation) -> Refreshed:
        now = self.recorder.clock()
        ended = self._end_if_overdue(gen, now)
        if ended is not None:
            return ended
        if gen.archive_claim_until is not None and now < gen.archive_claim_until:
            return gen, RefreshOutcome.WAITING  # another worker is copying the video right now
        model = get_model(gen.model)
        assert gen.provider_id is not None  # set by submit for every non-submitting record
        try:
            result = self.provider.poll(model, gen.provider_id)
        except ProviderError as exc:
            return self._poll_failed(gen, exc, now)
        return self._apply(gen, model, result, now)

    def _end_if_overdue(self, gen: Generation, now: float) -> Refreshed | None:
        """A generation that must not be polled again: a submit that never finished (flagged),
        a job past the age limit, a finished video that could never be copied. None otherwise
        (and for a submit still within its grace period, which waits)."""
        age = now - gen.started_epoch
        end = self.recorder.end
        if gen.status is Status.PENDING:
            # Waiting in our queue: nothing to poll. Ended at the queue deadline; the dispatcher
            # submits it before then.
            if self.queue is not None and now >= self.queue.deadline(gen):
                expired = expire(self.recorder, gen, now, self.queue.settings.deadline_seconds)
                return expired, RefreshOutcome.EXPIRED
            return gen, RefreshOutcome.WAITING
        if gen.status is Status.SUBMITTING:
            if age < self.submit_grace_seconds:
                return gen, RefreshOutcome.WAITING
            error = GenerationError(
                code="submit_outcome_unknown",
                message="the submit did not finish; the provider may have accepted the job; not resubmitted",
            )
            return end(
                gen, Status.FAILED, now, error=error, submit_outcome_unknown=True
            ), RefreshOutcome.FLAGGED
        if gen.video_provider_url is None and age > self.max_age_seconds:
            error = GenerationError(code="timed_out", message=f"not finished after {self.max_age_seconds} s")
            return end(gen, Status.TIMED_OUT, now, error=error), RefreshOutcome.TIMED_OUT
        if gen.video_provider_url is not None and age > 2 * self.max_age_seconds:
            error = GenerationError(code="archive_failed", message="the finished video could not be copied")
            return end(gen, Status.FAILED, now, error=error), RefreshOutcome.FAILED
        return None

    def _poll_failed(self, gen: Generation, exc: ProviderError, now: float) -> Refreshed:
        # by class, as submits count theirs: ProviderAuthAlarm and ProviderOutOfCreditsAlarm add both
        self.recorder.count(f"ProviderPollErrors_{exc.error_class.value}")
        failures = gen.poll_failures + 1
        throttled = exc.error_class is ErrorClass.RATE_LIMITED
        delay = self.schedule.failure_delay(failures, exc.retry_after, throttled=throttled)
        updated = self.recorder.store.save(
            gen,
            poll_failures=failures,
            last_poll_error=exc.error_class.value,
            poll_count=gen.poll_count + 1,
            updated_at=utc_now_iso(now),
            next_poll_at=poll_at(now, delay),
        )
        self.recorder.event("info", "poll failed; will retry", updated, error_class=exc.error_class.value)
        return updated, RefreshOutcome.PROVIDER_ERROR

    def _apply(self, gen: Generation, model: ModelSpec, result: PollResult, now: float) -> Refreshed:
        """Record what the provider said about the job."""
        age = now - gen.started_epoch
        end = self.recorder.end
        common = {
            "provider_status": result.raw_status,
            "poll_count": gen.poll_count + 1,
            "poll_failures": 0,
            "last_poll_error": None,
            "updated_at": utc_now_iso(now),
            "usage": {**gen.usage, **result.usage},
        }
        if result.status in (
            ProviderStatus.COMPLETED,
            ProviderStatus.FAILED,
            ProviderStatus.EXPIRED,
            ProviderStatus.CANCELLED,
        ):
            self.recorder.left(gen)  # the provider's job is over: its slot is free (before any copy)
        match result.status:
            case ProviderStatus.COMPLETED:
                return self._complete(gen, result, now, common, model=model, age=age)
            case ProviderStatus.FAILED | ProviderStatus.EXPIRED:
                code = "provider_expired" if result.status is ProviderStatus.EXPIRED else "provider_failed"
                error = GenerationError(
                    code=code, message=result.error_message or f"provider status {result.raw_status}"
                )
                return end(gen, Status.FAILED, now, error=error, **common), RefreshOutcome.FAILED
            case ProviderStatus.CANCELLED:
                error = GenerationError(code="provider_cancelled", message="the provider cancelled the job")
                return end(gen, Status.CANCELLED, now, error=error, **common), RefreshOutcome.CANCELLED
            case ProviderStatus.QUEUED | ProviderStatus.GENERATING:
                status = Status(result.status.value)
                if ACTIVE_ORDER[status] < ACTIVE_ORDER[gen.status]:
                    status = gen.status  # never move backwards
                delay = self.schedule.next_delay(
                    model=model.id,
                    typical_seconds=model.typical_seconds,
                    elapsed=age,
                    urgent=self.queue is not None and self.queue.backlogged(),
                )
                updated = self.recorder.store.save(
                    gen, status=status, next_poll_at=poll_at(now, delay), **common
                )
                return updated, RefreshOutcome.WAITING
            case _:
                self.recorder.event(
                    "warning", "unknown provider status", gen, provider_status=result.raw_status
                )
                delay = self.schedule.next_delay(
                    model=model.id, typical_seconds=model.typical_seconds, elapsed=age
                )
                updated = self.recorder.store.save(gen, next_poll_at=poll_at(now, delay), **common)
                return updated, RefreshOutcome.UNKNOWN_STATUS

    def _learn_duration(self, gen: Generation, model: ModelSpec, age: float) -> None:
        """Teach the schedule how long this model took: the job finished between the previous
        poll (the record's last write) and this one. `DetectionDelaySeconds` is the bound the
        service can know: the provider's answer carries no completion time, so the delay between
        the job finishing and this poll is at most the time since the previous poll found it
        running (the benchmark measures the true delay against the simulator's ground truth)."""
        try:
            last_poll = datetime.fromisoformat(gen.updated_at).timestamp() - gen.started_epoch
        except ValueError:
            last_poll = age
        last_poll = min(max(last_poll, 0.0), age)
        self.recorder.count("DetectionDelaySeconds", age - last_poll, "Seconds")
        seconds = (last_poll + age) / 2
        self.schedule.observe(model.id, seconds, typical_seconds=model.typical_seconds)

    def _complete(
        self,
        gen: Generation,
        result: PollResult,
        now: float,
        common: dict[str, Any],
        *,
        model: ModelSpec,
        age: float,
    ) -> Refreshed:
        store = self.recorder.store
        seen_before = gen  # the record as this poll found it (for what the duration was)
        if not result.video_url:
            updated = store.save(
                gen,
                **{
                    **common,
                    "last_poll_error": ErrorClass.MALFORMED_RESPONSE.value,
                    "poll_failures": gen.poll_failures + 1,
                },
                next_poll_at=poll_at(now, self.schedule.next_delay()),
            )
            return updated, RefreshOutcome.PROVIDER_ERROR
        # Claim the copy with a write conditional on the version read: of the sweeps and fetches
        # that found this job done at the same time, exactly one copies it (the others conflict),
        # so the video is written to our bucket once. The claim keeps the provider's (expiring)
        # link on record until our copy exists, and lapses after the lease: if the copier dies,
        # a later sweep takes the copy up.
        lease_end = now + self.archive_lease_seconds
        gen = store.save(
            gen,
            video_provider_url=result.video_url,
            status=Status.GENERATING,
            archive_claim_until=lease_end,
            next_poll_at=math.ceil(lease_end),
            **common,
        )
        # Learned once per job, by the one poll whose claim won (a racing timer and sweep both see
        # it done; the loser's claim raised StaleWriteError above). Not again on an archive retry.
        if seen_before.video_provider_url is None:
            self._learn_duration(seen_before, model, age)
        try:
            key = self.archive.archive(gen.id, result.video_url)
        except ArchiveError as exc:
            updated = store.save(
                gen,
                archive_claim_until=None,
                last_poll_error=f"archive: {exc}",
                updated_at=utc_now_iso(now),
                next_poll_at=poll_at(now, self.schedule.failure_delay(gen.poll_failures + 1)),
                poll_failures=gen.poll_failures + 1,
            )
            self.recorder.event("warning", "archive failed; will retry", updated)
            return updated, RefreshOutcome.ARCHIVE_ERROR
        done = self.recorder.end(
            gen,
            Status.COMPLETED,
            self.recorder.clock(),
            video_key=key,
            video_provider_url=None,
            archive_claim_until=None,
            completed_at=utc_now_iso(now),
        )
        return done, RefreshOutcome.COMPLETED
