"""The dispatcher: submits pending generations while the provider has room.

Woken by a message on the dispatch queue (SQS -> DispatcherFunction, at most 2 at once): one is
sent when a generation is accepted, when a job ends and frees its slot, at every poller tick (the
safety net), and, delayed, by a dispatcher the provider throttled. One run loops:

1. read the capacity; no free slot -> stop (a job's end wakes the next run);
2. take the queue's head (fair order, logic/queue.py), as many entries as free slots;
3. for each: read its record (a stale entry, whose record is no longer pending, is dropped; one
   past the deadline is expired), take a slot (a lease), claim the record (`pending` ->
   `submitting`, a write conditional on its version: two dispatchers never submit one
   generation), drop its entry;
4. submit the claimed ones in parallel. Accepted: the slot is held for the job and counts toward
   the limit's growth. 429: the record goes back to `pending` under its old rank, the limit
   shrinks, and the run stops with a delayed wake-up (2, 4, 8 ... 60 s). Any other answer: as
   before the queue (failed, or flagged when the outcome is unknown: never resent).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from videogen.domain.capacity import Capacity
from videogen.domain.catalog import get_model
from videogen.domain.errors import VideogenError
from videogen.domain.models import Generation, GenerationError, Status, utc_now_iso
from videogen.domain.ports import QueueEntry, StaleWriteError
from videogen.logic.queue import SubmitQueue, expire
from videogen.logic.recorder import Recorder
from videogen.logic.schedule import poll_at
from videogen.logic.submit import Submitter

# An entry whose record never appeared (its writer crashed between the two writes) is dropped
# after this long; younger, its record may still be on its way.
ORPHAN_SECONDS = 60
# Parallel submits of one run (each holds a slot already).
MAX_PARALLEL_SUBMITS = 8


@dataclass
class DispatchReport:
    submitted: int = 0
    throttled: int = 0
    failed: int = 0
    expired: int = 0
    stale: int = 0
    rounds: int = 0
    depth: int | None = None
    limit: float | None = None
    retry_in: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The counts and the queue's state; the per-generation outcomes stay out of the log line."""
        return {name: value for name, value in asdict(self).items() if name != "outcomes"}


class Dispatcher:
    def __init__(
        self,
        recorder: Recorder,
        submitter: Submitter,
        queue: SubmitQueue,
        *,
        submit_grace_seconds: int,
        mint: Callable[[Mapping[str, str]], str] | None = None,
    ) -> None:
        self.recorder = recorder
        self.submitter = submitter
        self.queue = queue
        self.submit_grace_seconds = submit_grace_seconds
        # An upload's pinned S3 object -> the presigned URL the provider fetches (made now).
        self.mint = mint

    def run(self, remaining_ms: Callable[[], int], *, reserve_ms: int = 25_000) -> DispatchReport:
        """Submit while there is room, pending work and time (`reserve_ms` is kept for the last
        submits' answers). Ends with the queue's metrics."""
        report = DispatchReport()
        capacity: Capacity | None = None
        while remaining_ms() > reserve_ms:
            capacity = self.queue.slots.read()
            free = capacity.free(self.recorder.clock())
            report.limit = capacity.limit
            if free <= 0:
                break
            entries = self.queue.index.head(free)
            if not entries:
                break
            report.rounds += 1
            cleared = report.stale + report.expired
            claimed = self._claim_all(entries, report)
            if claimed is None:  # no slot after all (another dispatcher took them)
                break
            if not claimed:
                if report.stale + report.expired == cleared:
                    break  # only entries whose records are on their way: the next wake-up
                continue  # stale or expired entries were dropped: look again
            if self._submit_all(claimed, report):
                break
        self._measure(report, capacity)
        return report

    # -- claim -----------------------------------------------------------------------------
    def _claim_all(self, entries: list[QueueEntry], report: DispatchReport) -> list[Generation] | None:
        claimed: list[Generation] = []
        for entry in entries:
            generation = self._current(entry, report)
            if generation is None:
                continue
            if self.queue.slots.acquire(generation.id) is None:
                return claimed or None
            taken = self._claim(generation, entry)
            if taken is None:
                self.queue.slots.release(generation.id)
                report.stale += 1
                continue
            claimed.append(taken)
        return claimed

    def _current(self, entry: QueueEntry, report: DispatchReport) -> Generation | None:
        """The entry's record if it is still waiting; stale entries are dropped, and a record past
        the queue deadline ends here."""
        now = self.recorder.clock()
        generation = self.recorder.store.get(entry.generation_id)
        if generation is None:
            if now - entry.added_epoch > ORPHAN_SECONDS:
                self.queue.index.remove(entry.rank, entry.owner)
                report.stale += 1
            return None
        if generation.status is not Status.PENDING or generation.queue_rank != entry.rank:
            self.queue.index.remove(entry.rank, entry.owner)
            report.stale += 1
            return None
        if now >= self.queue.deadline(generation):
            try:
                expire(self.recorder, generation, now, self.queue.settings.deadline_seconds)
                report.expired += 1
            except StaleWriteError:
                pass
            return None
        return generation

    def _claim(self, generation: Generation, entry: QueueEntry) -> Generation | None:
        now = self.recorder.clock()
        try:
            claimed = self.recorder.store.save(
                generation,
                status=Status.SUBMITTING,
                submitted_epoch=now,
                updated_at=utc_now_iso(now),
                # If this run dies mid-submit, the sweep flags the record after the grace period.
                next_poll_at=poll_at(now, self.submit_grace_seconds),
            )
        except StaleWriteError:  # cancelled, or another dispatcher took it
            return None
        self.queue.index.remove(entry.rank, entry.owner)
        self.recorder.count("QueueWaitSeconds", max(0.0, now - generation.created_epoch), "Seconds")
        return claimed

    # -- submit ----------------------------------------------------------------------------
    def _submit_all(self, claimed: list[Generation], report: DispatchReport) -> bool:
        """Submit the claimed generations in parallel; True when the provider throttled."""
        workers = min(MAX_PARALLEL_SUBMITS, len(claimed))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatch") as pool:
            results = list(pool.map(self._submit_one, claimed))
        throttled = False
        for _generation, outcome in results:
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            if outcome == "submitted":
                report.submitted += 1
            elif outcome == "throttled":
                report.throttled += 1
                throttled = True
            else:
                report.failed += 1
        if throttled:
            delay = self.queue.slots.read().retry_delay()
            report.retry_in = delay
            self.queue.wake(delay)
        return throttled

    def _submit_one(self, generation: Generation) -> tuple[Generation, str]:
        model = get_model(generation.model)
        try:
            minted = {name: self._mint(ref) for name, ref in generation.provider_refs.items()}
        except Exception as exc:  # noqa: BLE001 (the input cannot be reached: fail, nothing was sent)
            error = GenerationError(code="input_unavailable", message=f"an input could not be read: {exc}")
            failed = self.recorder.end(generation, Status.FAILED, self.recorder.clock(), error=error)
            return failed, "failed"
        sent, throttled = self.submitter.send(generation, model, minted, requeue=True)
        if throttled:
            return self._requeue(generation), "throttled"
        if sent.status is Status.FAILED:
            return sent, "failed"
        self.queue.slots.accepted(generation.id)
        return sent, "submitted"

    def _mint(self, ref: Mapping[str, str]) -> str:
        if self.mint is None:
            raise VideogenError("no way to mint provider-side links here")
        return self.mint(ref)

    def _requeue(self, generation: Generation) -> Generation:
        """A 429: nothing was taken. Back to `pending` under its old rank; the limit shrinks."""
        self.recorder.count("ProviderThrottles")
        self.queue.slots.throttled(generation.id)
        now = self.recorder.clock()
        assert generation.queue_rank is not None
        # its old place back (past the owner's cap if need be: it was admitted already)
        self.queue.index.add(QueueEntry(generation.queue_rank, generation.id, generation.owner, now), 10**9)
        try:
            back = self.recorder.store.save(
                generation,
                status=Status.PENDING,
                submitted_epoch=None,
                updated_at=utc_now_iso(now),
                next_poll_at=math.ceil(self.queue.deadline(generation)),
            )
        except StaleWriteError:
            self.recorder.event("warning", "a throttled generation changed before its requeue", generation)
            return generation
        self.recorder.event("info", "provider throttled the submit; back in the queue", back)
        return back

    def _measure(self, report: DispatchReport, seen: Capacity | None) -> None:
        report.depth = self.queue.index.depth()
        self.recorder.count("QueueDepth", report.depth)
        self.queue.note_backlog(report.depth, seen)
        if report.limit is None:
            report.limit = self.queue.slots.read().limit
        self.recorder.count("ProviderLimit", report.limit)
