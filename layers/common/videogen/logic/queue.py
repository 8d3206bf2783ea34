"""The submit queue: accept first, submit when the provider has room.

A request is validated and recorded `pending` at once (Submitter.accept); a dispatcher
(logic/dispatch.py) submits pending generations while the learned capacity
(videogen.domain.capacity) has a free slot. This module holds what both share:

- Fair order. Each pending generation gets a rank; the dispatcher takes the lowest first. A new
  generation's rank is max(its owner's last queued rank + 1, the queue head's rank): start-time
  fair queuing with the head as virtual time. An owner's burst of 1,000 takes ranks h, h+1, ...,
  h+999; another owner's single request arriving later takes the head's rank and is next, not
  1,001st. Ties go to the older request.
- Per-owner cap: an owner with `owner_cap` generations queued gets 429 `queue_full` (our limit,
  not the provider's). The owner's count changes in the same transaction as its entries, so it
  is exact and the cap holds under concurrent requests.
- Slots: the semaphore's leases. `SlotKeeper` names the changes made to it.
- The deadline: a generation still pending `deadline_seconds` after it was accepted ends
  `failed` with the code `queue_expired` (the sweep, a workflow fetch or the dispatcher finds it).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from videogen.domain.capacity import Capacity, CapacityRules
from videogen.domain.errors import QueueFull
from videogen.domain.models import QUEUE_EXPIRED, Generation, GenerationError, Status
from videogen.domain.ports import MetricsSink, NullMetrics, QueueEntry, QueueIndex, Semaphore, Waker
from videogen.logic.recorder import Recorder

RANK_DIGITS = 12
# Statuses during which a generation may hold a slot (a provider-side job, or a submit in flight).
SLOT_STATUSES = frozenset({Status.SUBMITTING, Status.QUEUED, Status.GENERATING})


def rank_number(rank: str) -> int:
    return int(rank.split("#", 1)[0])


def make_rank(number: int, created_at: str, generation_id: str) -> str:
    """Sorts by number, then age, then id (unique)."""
    return f"{number:0{RANK_DIGITS}d}#{created_at}#{generation_id}"


def fair_number(owner_last: str | None, head: str | None) -> int:
    """The rank number of an owner's next generation (see the module's docstring)."""
    floor = rank_number(head) if head else 0
    if owner_last is None:
        return floor
    return max(rank_number(owner_last) + 1, floor)


class NullWaker:
    def wake(self, delay_seconds: int = 0) -> None:
        return None


@dataclass(frozen=True)
class QueueSettings:
    owner_cap: int = 1000
    deadline_seconds: int = 3 * 3600
    claim_seconds: int = 120  # a slot taken for a submit: the submit's window
    job_lease_seconds: int = 1800  # a slot held by a running job, at most (then it lapses)
    # How long a process trusts what it read of `Capacity.waiting` (polls tighten while work waits).
    backlog_ttl_seconds: float = 5.0


class SlotKeeper:
    """The semaphore's changes, by name. Each is one conditional rewrite of the capacity item."""

    def __init__(
        self,
        semaphore: Semaphore,
        rules: CapacityRules,
        settings: QueueSettings,
        clock: Callable[[], float],
    ) -> None:
        self.semaphore = semaphore
        self.rules = rules
        self.settings = settings
        self.clock = clock

    def read(self) -> Capacity:
        return self.semaphore.read()

    def acquire(self, generation_id: str) -> Capacity | None:
        now = self.clock()
        return self.semaphore.update(
            lambda c: c.acquire(generation_id, now, now + self.settings.claim_seconds)
        )

    def accepted(self, generation_id: str) -> Capacity | None:
        """The provider took the job: its slot is held for the job (at most the job lease)."""
        now = self.clock()
        until = now + self.settings.job_lease_seconds
        return self.semaphore.update(lambda c: c.extend(generation_id, until).succeeded(self.rules, now))

    def throttled(self, generation_id: str) -> Capacity | None:
        now = self.clock()
        return self.semaphore.update(lambda c: c.release(generation_id).throttled(self.rules, now))

    def release(self, generation_id: str) -> Capacity | None:
        return self.release_many([generation_id])

    def release_many(self, generation_ids: Sequence[str]) -> Capacity | None:
        """Give back the slots of these generations that still hold one, in one rewrite; None
        when none did (nothing written)."""

        def change(capacity: Capacity) -> Capacity | None:
            held = [g for g in generation_ids if g in capacity.leases]
            for generation_id in held:
                capacity = capacity.release(generation_id)
            return capacity if held else None

        return self.semaphore.update(change)


class SubmitQueue:
    """The queue's index, slots and wake-ups, shared by accept, the dispatcher, refresh and reads."""

    def __init__(
        self,
        index: QueueIndex,
        slots: SlotKeeper,
        waker: Waker | None = None,
        *,
        settings: QueueSettings | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.index = index
        self.slots = slots
        self.waker: Waker = waker or NullWaker()
        self.settings = settings or slots.settings
        self.metrics: MetricsSink = metrics or NullMetrics()
        self._lock = threading.Lock()
        self._freed: list[str] | None = None  # slots to give back when the batch ends
        self._backlog: tuple[float, bool] | None = None  # (read at, work waiting), cached

    # -- accept ----------------------------------------------------------------------------
    def admit(self, owner: str, created_at: str, generation_id: str) -> str:
        """The rank of an owner's new generation."""
        head = self.index.head(1)
        number = fair_number(self.index.owner_last(owner), head[0].rank if head else None)
        return make_rank(number, created_at, generation_id)

    def enter(self, generation: Generation, now: float) -> None:
        """The generation's entry; QueueFull when its owner has `owner_cap` queued already."""
        assert generation.queue_rank is not None
        cap = self.settings.owner_cap
        entry = QueueEntry(generation.queue_rank, generation.id, generation.owner, now)
        if not self.index.add(entry, cap):
            raise QueueFull(
                f"{cap} generations of this caller are already queued; retry once some have started",
                details=[{"limit": cap}],
            )

    def deadline(self, generation: Generation) -> float:
        return generation.created_epoch + self.settings.deadline_seconds

    def wake(self, delay_seconds: int = 0) -> None:
        self.waker.wake(delay_seconds)

    # -- a generation leaves (recorder hook) -----------------------------------------------
    def left(self, before: Generation) -> None:
        """`before` (its state before this write) leaves the queue or gives its slot back."""
        if before.status is Status.PENDING and before.queue_rank:
            self.index.remove(before.queue_rank, before.owner)
        elif before.status in SLOT_STATUSES:
            with self._lock:
                if self._freed is not None:
                    self._freed.append(before.id)
                    return
            if self.slots.release(before.id) is not None:
                self.wake()

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Within (a sweep, a batch of fired timers): the slots of the jobs that end are given
        back together when the block ends, in one rewrite of the capacity item, and the
        dispatcher is woken once. One by one, a sweep's concurrent completions all rewrite that
        one item and lose races to each other (each retry a read and a conditional write); a
        slot whose release failed would stay taken until its lease lapsed. A slot still held
        when the invocation dies lapses with its lease, as before."""
        with self._lock:
            outermost = self._freed is None
            if outermost:
                self._freed = []
        try:
            yield
        finally:
            if outermost:
                with self._lock:  # a generation may leave twice (the archive claim, then the end)
                    freed, self._freed = list(dict.fromkeys(self._freed or [])), None
                try:
                    if freed and self.slots.release_many(freed) is not None:
                        self.wake()
                except Exception:  # noqa: BLE001 (the records' writes stand; the slots lapse)
                    self.metrics.add_metric("SlotReleaseErrors", "Count", len(freed))

    # -- backlog: does work wait for a slot? ----------------------------------------------
    def backlogged(self) -> bool:
        """Whether pending work waited for a slot when a dispatcher last looked (the capacity
        item's `waiting`), read at most once per `backlog_ttl_seconds` in this process. A failed
        read answers False: polling goes on at its normal cadence."""
        now = self.slots.clock()
        with self._lock:
            cached = self._backlog
        if cached is not None and now - cached[0] < self.settings.backlog_ttl_seconds:
            return cached[1]
        try:
            waiting = self.slots.read().waiting > 0
        except Exception:  # noqa: BLE001 (a hint for the poll cadence, never a failure)
            waiting = False
        with self._lock:
            self._backlog = (now, waiting)
        return waiting

    def note_backlog(self, depth: int, seen: Capacity | None = None) -> None:
        """A dispatcher run ended with `depth` generations still queued: record whether work
        waits in the capacity item, written only when that changes (`seen`: the item as the run
        last read it, to skip a read when nothing changed). Best effort: a failed write leaves
        polls at their normal cadence, the dispatch stands."""
        waiting = depth > 0
        with self._lock:
            self._backlog = (self.slots.clock(), waiting)
        if seen is not None and (seen.waiting > 0) == waiting:
            return

        def change(capacity: Capacity) -> Capacity | None:
            return None if (capacity.waiting > 0) == waiting else replace(capacity, waiting=depth)

        try:
            self.slots.semaphore.update(change)
        except Exception:  # noqa: BLE001 (a hint for the poll cadence, never a failure)
            self.metrics.add_metric("BacklogNoteErrors", "Count", 1)

    # -- visibility ------------------------------------------------------------------------
    def position(self, generation: Generation) -> int | None:
        """Generations ahead of this pending one (0: next), None when it is not pending."""
        if generation.status is not Status.PENDING or not generation.queue_rank:
            return None
        return self.index.ahead_of(generation.queue_rank)

    def estimated_wait(self, position: int, typical_seconds: float, capacity: Capacity, now: float) -> float:
        """Seconds until a generation `position` places back starts, if every job ahead takes
        `typical_seconds` and the learned limit holds: free slots take the first ones at once,
        then one wave of `slots` generations per typical job."""
        free = capacity.free(now)
        if position < free:
            return 0.0
        waves = math.ceil((position + 1 - free) / capacity.slots)
        return waves * typical_seconds


def expire(recorder: Recorder, generation: Generation, now: float, deadline_seconds: int) -> Generation:
    """End a generation that waited past the queue deadline: `failed`, code `queue_expired`.
    Never sent to the provider, so nothing was paid."""
    error = GenerationError(
        code=QUEUE_EXPIRED,
        message=(
            f"not submitted within the queue deadline ({deadline_seconds} s): the provider had no "
            "room for it in time; nothing was sent or charged"
        ),
    )
    ended = recorder.end(generation, Status.FAILED, now, error=error)
    recorder.count("QueueExpired")
    return ended
