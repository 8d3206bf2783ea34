"""When to ask the provider again. Polls cost provider requests (and rate-limit budget), so the
first poll waits for a share of the model's typical duration, and failures back off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PollSchedule:
    first_poll_factor: float = 0.6  # first poll after this share of the model's typical duration
    interval_seconds: int = 15  # then every interval (the provider's own examples use 10-15 s)
    max_backoff_seconds: int = 300

    def first_delay(self, typical_seconds: int) -> float:
        return self.first_poll_factor * typical_seconds

    def next_delay(self) -> float:
        return float(self.interval_seconds)

    def failure_delay(self, failures: int, retry_after: float | None = None) -> float:
        """Exponential backoff after consecutive poll failures; a Retry-After is honoured."""
        backoff = min(self.interval_seconds * 2 ** max(failures - 1, 0), self.max_backoff_seconds)
        return max(backoff, retry_after or 0.0)
