"""A clock for tests and scenarios: wall time plus an offset they advance (the simulator keeps
real time, so jobs still finish; the service sees time jump)."""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
