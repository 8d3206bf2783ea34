"""What polling needs from the outside world: poll timers (delivered back at a generation's due
time; videogen.logic.timers) and the fleet's shared per-model duration statistics
(videogen.logic.schedule). The adapters implement these."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Timer:
    """Poll generation `generation_id` at epoch second `due` (its `next_poll_at` when armed)."""

    generation_id: str
    due: int

    def to_json(self) -> str:
        return json.dumps({"id": self.generation_id, "due": self.due}, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> Timer:
        data = json.loads(body)
        return cls(generation_id=str(data["id"]), due=int(data["due"]))


class PollTimers(Protocol):
    """Delivers a timer back (to TimerFiring.fire) at its due time, or earlier when the wait is
    longer than the transport allows (then fire re-arms it for the rest)."""

    def arm(self, timer: Timer, *, now: float) -> None: ...

    def arm_many(self, timers: Sequence[Timer], *, now: float) -> list[Timer]:
        """Arm several at once (fewer calls); returns those that were not armed."""
        ...


def delay_seconds(due: float, now: float, *, max_delay: int) -> int:
    """The whole-second delay that delivers a timer due at `due` no earlier than it (rounded up),
    capped at `max_delay` (a longer wait is re-armed when the capped delay runs out)."""
    return min(max(math.ceil(due - now), 0), max_delay)


@dataclass(frozen=True)
class DurationSums:
    """What is known of a model's completions: their count, and the sum and the sum of squares
    of their log-durations (ln seconds)."""

    count: float
    total: float
    squares: float

    def plus(self, x: float) -> DurationSums:
        return DurationSums(self.count + 1, self.total + x, self.squares + x * x)


class SharedDurations(Protocol):
    """Per-model duration statistics every function shares (and that survive cold starts)."""

    def add(self, model: str, log_seconds: float) -> None: ...
    def read(self, model: str) -> DurationSums | None: ...
