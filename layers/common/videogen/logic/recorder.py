"""What every use case shares: the store, the clock, metrics and the log, and the one way a
generation ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from videogen.domain.models import Generation, Status, utc_now_iso
from videogen.domain.ports import MetricsSink, NullMetrics, Store


class Recorder:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        metrics: MetricsSink | None = None,
        log: Any = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics: MetricsSink = metrics or NullMetrics()
        self.log = log
        # Called with a generation's state before it ends (or its provider job ends): the submit
        # queue drops its entry or frees its slot (videogen.logic.queue.SubmitQueue.left).
        self.on_leave: list[Callable[[Generation], None]] = []

    def end(self, generation: Generation, status: Status, now: float, **changes: Any) -> Generation:
        """Write the generation's terminal status (conditional on its version, like every write)."""
        changes.setdefault("updated_at", utc_now_iso(now))
        ended = self.store.save(generation, status=status, next_poll_at=None, **changes)
        self.event("info", f"generation {status.value}", ended)
        self.left(generation)
        return ended

    def left(self, before: Generation) -> None:
        """Tell the queue that `before` no longer waits or runs. A failure here is logged, never
        raised: the record's write stands, and a slot not freed lapses with its lease."""
        for hook in self.on_leave:
            try:
                hook(before)
            except Exception as exc:  # noqa: BLE001 (the lease lapses; the entry is dropped as stale)
                if self.log is not None:
                    extra = {"generation_id": before.id, "error": type(exc).__name__}
                    self.log.warning("queue release failed", extra=extra)

    def count(self, name: str, value: float = 1, unit: str = "Count") -> None:
        self.metrics.add_metric(name, unit, value)

    def event(self, level: str, message: str, generation: Generation, **extra: Any) -> None:
        """A log line about one generation, with its id, status and model."""
        if self.log is not None:
            getattr(self.log, level)(
                message,
                extra={
                    "generation_id": generation.id,
                    "status": generation.status.value,
                    "model": generation.model,
                    **extra,
                },
            )
