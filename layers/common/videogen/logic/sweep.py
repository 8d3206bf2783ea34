"""The sweep: refresh every due generation with a bounded number of provider calls in flight,
within the time the invocation has left."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from videogen.domain.models import Generation
from videogen.logic import fanout
from videogen.logic.recorder import Recorder
from videogen.logic.refresh import OUTCOME_METRICS, Refreshed, Refresher, RefreshOutcome

T = TypeVar("T")
# Due generations the sweep's reader may hold ahead of the workers (about one page of the index).
READ_AHEAD = 256


@dataclass
class SweepReport:
    due: int = 0
    deferred: int = 0  # due but left for the next tick (time budget)
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0
    shard: str | None = None  # the one shard swept, for a fanned-out invocation
    delegated: list[str] = field(default_factory=list)  # shards handed to other invocations

    def count(self, outcome: RefreshOutcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "deferred": self.deferred,
            "shard": self.shard,
            "delegated": self.delegated,
            "outcomes": self.outcomes,
        }


def read_ahead(items: Iterable[T], size: int) -> Iterator[T]:
    """`items`, iterated by a thread of its own up to `size` items ahead of the consumer. The
    sweep reads the due-index this way so that the next page's query runs while the current
    page's provider calls are in flight, instead of stalling every worker while it is read. An
    error of the reader surfaces at the consumer, in order; closing the iterator stops the reader."""
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(size, 1))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, which raises it)
            put(("error", exc))

    reader = threading.Thread(target=produce, name="sweep-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


class Sweeper:
    def __init__(
        self,
        recorder: Recorder,
        refresher: Refresher,
        *,
        concurrency: int,
        lag_seconds: float = 0,
        batched: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        """`lag_seconds`: take only what has been due for longer than this (with poll timers
        on: a generation whose timer was lost; see videogen.logic.timers). `batched`: the block
        a sweep runs in, whose side effects go out together (GenerationService.batched)."""
        self.recorder = recorder
        self.refresher = refresher
        self.concurrency = concurrency
        self.lag_seconds = lag_seconds
        self.batched = batched

    def due(self, now: float) -> Iterator[Generation]:
        store = self.recorder.store
        for shard in range(store.due_shards):
            yield from store.due(str(shard), now - self.lag_seconds)

    def tick(
        self,
        remaining_ms: Callable[[], int],
        *,
        shard: str | None = None,
        delegate: Callable[[Sequence[str]], Sequence[str]] | None = None,
    ) -> SweepReport:
        """One poller invocation: sweep `shard`, or (a scheduled tick) every shard, handing all
        but the first to other invocations through `delegate` when the backlog outgrows one
        invocation (see videogen.logic.fanout)."""
        plan = fanout.plan_sweep(
            self.recorder.store,
            self.recorder.clock() - self.lag_seconds,
            capacity=fanout.capacity(self.concurrency),
            shard=shard,
            delegate=delegate,
        )
        if plan.delegated:
            self.recorder.count("SweepFanOut", len(plan.delegated))
        report = self.sweep(remaining_ms, generations=plan.generations)
        report.shard, report.delegated = plan.shard, plan.delegated
        return report

    def sweep(
        self,
        remaining_ms: Callable[[], int],
        *,
        reserve_ms: int = 10_000,
        generations: Iterable[Generation] | None = None,
    ) -> SweepReport:
        """Refresh every due generation (or `generations`, e.g. one shard's) with at most
        `concurrency` provider calls in flight. Stops taking new work when less than `reserve_ms`
        of the invocation is left; what is left stays due and is taken by the next tick."""
        started = time.perf_counter()
        report = SweepReport()
        source = self.due(self.recorder.clock()) if generations is None else generations
        with (
            self.batched(),
            ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sweep") as pool,
        ):
            in_flight: set[Future[Refreshed]] = set()
            for generation in read_ahead(source, READ_AHEAD):
                report.due += 1
                if remaining_ms() < reserve_ms:
                    report.deferred += 1
                    continue
                while len(in_flight) >= self.concurrency:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    self._collect(finished, report)
                in_flight.add(pool.submit(self.refresher.refresh, generation))
            self._collect(wait(in_flight).done, report)
        report.duration_ms = (time.perf_counter() - started) * 1000
        self._count(report)
        return report

    def _collect(self, finished: set[Future[Refreshed]], report: SweepReport) -> None:
        for future in finished:
            try:
                _, outcome = future.result()
            except Exception as exc:  # one bad record must not end the sweep
                if self.recorder.log:
                    self.recorder.log.exception("refresh crashed", extra={"error": type(exc).__name__})
                outcome = RefreshOutcome.PROVIDER_ERROR
            report.count(outcome)

    def _count(self, report: SweepReport) -> None:
        self.recorder.count("SweepDue", report.due)
        self.recorder.count("SweepDeferred", report.deferred)
        self.recorder.count("SweepDuration", report.duration_ms, "Milliseconds")
        for outcome, name in OUTCOME_METRICS.items():
            if report.outcomes.get(outcome.value):
                self.recorder.count(name, report.outcomes[outcome.value])
