"""Clocks for tests and scenarios. Clock: wall time plus an offset they advance (the simulator keeps
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


class ScaledClock:
    """Epoch time running `rate` times faster than the wall clock, from the moment it is made:
    `rate` = 10 plays ten minutes of a production workload in one. The timeliness benchmark
    (bench/timeliness.py) shares one between everything that measures a wait: the simulator's
    jobs, the service's clock (videogen.bootstrap.CLOCK: poll times, SQS delays it computes), the
    local SQS's delays and visibility timeouts (moto's clock, see LocalStack) and the EventBridge
    tick (its period divided by `rate`). What is not scaled is the work itself (a poll, a
    DynamoDB write, an invocation): it takes `rate` times longer in scaled seconds than it does on
    the wall clock, so every processing delay the benchmark measures is overstated `rate` times.
    """

    def __init__(self, rate: float, origin: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.origin = time.time() if origin is None else origin

    def __call__(self) -> float:
        return self.origin + (time.time() - self.origin) * self.rate

    def millis(self) -> float:
        return self() * 1000

    def wall_seconds(self, scaled_seconds: float) -> float:
        """How long `scaled_seconds` take on the wall clock."""
        return scaled_seconds / self.rate
