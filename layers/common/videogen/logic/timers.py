"""Poll timers: each active generation is polled at its own due time, to the second, instead of
at the poller's next 1-minute tick.

Whoever writes a due time onto a poller-driven generation (the submit that got the provider's
id, a refresh that found the job still running) arms one timer for it: a message that comes back
at that second (production: SQS with a per-message DelaySeconds, videogen.adapters.sqs_timers).
When the timer fires (`TimerFiring.fire`), the generation is refreshed if it still waits for
exactly that poll, and that refresh arms the next timer. A wait longer than the queue's longest
delay (SQS: 900 s) is covered by hops: a timer that fires early is armed again for the rest.

The scheduled sweep over the due-index stays, as the safety net: with timers on it takes only
generations overdue by more than `grace` seconds (their timer was lost: a failed SendMessage, a
crashed consumer, an expired message) and its refresh arms a new one, so the chain resumes.

Exactly-once: a timer and the sweep (or two deliveries of one message) may refresh the same
generation at the same time; every write is conditional on the version read, so only one of
them records the poll's outcome (the other gets StaleWriteError: a `conflict`), one archive copy
is claimed and one completion written. A timer whose generation has moved on (polled by someone
else, ended, cancelled) is dropped: its due time no longer matches the record's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from videogen.domain.models import Generation
from videogen.domain.polling import PollTimers, Timer, delay_seconds

__all__ = ["PollTimers", "Timer", "TimerArming", "TimerFiring", "delay_seconds"]

if TYPE_CHECKING:
    from videogen.logic.recorder import Recorder
    from videogen.logic.refresh import Refreshed

# A timer firing this close before its due time polls now (SQS delays are whole seconds, and the
# sender's and the consumer's clocks may differ by a little); earlier than that, it is re-armed.
EARLY_TOLERANCE_SECONDS = 1.0


class NullTimers:
    """No timers: the scheduled sweep alone polls (tests, and a stack without the timer queue)."""

    enabled = False

    def arm(self, timer: Timer, *, now: float) -> None:
        return None

    def arm_many(self, timers: Sequence[Timer], *, now: float) -> list[Timer]:
        return []


class TimerArming:
    """Arms a generation's timer after a write that set its due time. Never raises: a timer
    that could not be armed is a lost timer, and the sweep polls the generation instead.

    Inside `batched()` (a sweep, a batch of fired timers) the timers are collected and sent
    `BATCH` at a time (SQS: one SendMessageBatch for ten timers instead of ten SendMessage calls,
    the largest share of a poll's CPU after the provider call and the record's write); the last
    ones when the block ends. A timer held in the buffer when the invocation dies is lost like
    any other, and the sweep takes its generation once it is overdue."""

    BATCH = 10

    def __init__(self, recorder: Recorder, timers: PollTimers | None = None) -> None:
        self.recorder = recorder
        self.timers: PollTimers = timers or NullTimers()
        self._lock = threading.Lock()
        self._buffer: list[tuple[Timer, Generation]] | None = None

    @property
    def enabled(self) -> bool:
        return bool(getattr(self.timers, "enabled", True))

    def arm(self, generation: Generation) -> None:
        if not self.enabled or not generation.due_for_poller or generation.next_poll_at is None:
            return
        timer = Timer(generation.id, generation.next_poll_at)
        with self._lock:
            buffered = self._buffer is not None
            if self._buffer is not None:
                self._buffer.append((timer, generation))
                full, self._buffer = (
                    (self._buffer, []) if len(self._buffer) >= self.BATCH else ([], self._buffer)
                )
        if buffered:
            if full:
                self._send(full)
            return
        try:
            self.timers.arm(timer, now=self.recorder.clock())
        except Exception as exc:  # noqa: BLE001 (a lost timer: the sweep is the safety net)
            self._lost(generation, str(exc))

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Collect the timers armed inside the block and send them in batches (see above)."""
        with self._lock:
            outermost = self._buffer is None and self.enabled
            if outermost:
                self._buffer = []
        try:
            yield
        finally:
            if outermost:
                with self._lock:
                    rest, self._buffer = self._buffer or [], None
                self._send(rest)

    def _send(self, armed: list[tuple[Timer, Generation]]) -> None:
        if not armed:
            return
        try:
            failed = {
                t.generation_id
                for t in self.timers.arm_many([t for t, _ in armed], now=self.recorder.clock())
            }
            error = "the queue refused the message"
        except Exception as exc:  # noqa: BLE001 (lost timers: the sweep is the safety net)
            failed, error = {t.generation_id for t, _ in armed}, str(exc)
        for timer, generation in armed:
            if timer.generation_id in failed:
                self._lost(generation, error)

    def _lost(self, generation: Generation, error: str) -> None:
        self.recorder.count("PollTimerArmErrors")
        message = "poll timer not armed; the sweep will poll"
        self.recorder.event("warning", message, generation, error=error)


class TimerFiring:
    """What the timer queue's consumer does with one timer."""

    def __init__(self, recorder: Recorder, refresher: Any, arming: TimerArming) -> None:
        self.recorder = recorder
        self.refresher = refresher  # videogen.logic.refresh.Refresher (it arms the next timer)
        self.arming = arming

    def fire(self, timer: Timer) -> str:
        """Refresh the timer's generation if it still waits for this poll. Returns what happened:
        `rearmed` (fired before its due time: a hop of a long wait), `stale` (the generation
        moved on, or is gone), or the refresh's outcome."""
        now = self.recorder.clock()
        if timer.due - now > EARLY_TOLERANCE_SECONDS:
            self.arming.timers.arm(timer, now=now)  # raises: the message is retried
            return "rearmed"
        generation = self.recorder.store.get(timer.generation_id)
        if generation is None or not generation.due_for_poller or generation.next_poll_at != timer.due:
            self.recorder.count("PollTimersStale")
            return "stale"
        self.recorder.count("PollTimersFired")
        self.recorder.count("PollTimerLateness", max(now - timer.due, 0.0), "Seconds")
        refreshed: Refreshed = self.refresher.refresh(generation)
        outcome = refreshed[1]
        # Counted as the sweep and the workflow count theirs: a completion (or failure, timeout)
        # a timer found is on the dashboard and its alarms like any other. (refresh imports this
        # module, so its table is imported here.)
        from videogen.logic.refresh import OUTCOME_METRICS

        if name := OUTCOME_METRICS.get(outcome):
            self.recorder.count(name)
        return outcome.value
