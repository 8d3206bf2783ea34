"""When to ask the provider again. Every poll is a paid-for request against the provider's rate
limit, and every second between the provider finishing and us noticing is a second the caller
waits, so the schedule spends polls where completion is likely:

- The first poll comes at `first_poll_factor` x the model's expected duration (the catalog's
  `typical_seconds` until the model's own completions have been seen).
- Each model's duration is a log-normal belief (median and spread), seeded from the catalog and
  moved by every completion (`observe`). With `shared` statistics (production: one DynamoDB item
  per model, videogen.adapters.dynamodb_model_stats) every completion of every path (poller, poll
  timers, workflow) adds to them with one UpdateItem ADD, and every function (the API's and the
  uploads' first poll too) reads them, cached for `shared_ttl_seconds`: what was learned is the
  fleet's and survives cold starts. The shared sums are all-time (ADD cannot decay them); without
  them, the belief is this process's own, weighted towards its recent completions.
- After the first poll, the wait is the one that balances a poll against the delay it saves:
  with hazard h (the chance per second that a job still running finishes now), a poll every
  `d` seconds costs 1/d polls per second and makes the caller wait d/2 on average, so the best
  `d` solves d * h_avg(t, t + d) = 2 / delay_cost: short where completion is likely, long
  before it. `delay_cost` is what one second of detection delay is worth, in polls.
- Waits stay within [`min_interval_seconds`, `interval_seconds`].
- While pending work waits in the submit queue for a slot (`urgent`), a second of detection delay
  also holds a slot idle that the next job could use: the balance uses `urgent_delay_cost` and
  waits down to `urgent_min_interval_seconds`, so a job's end is seen (and its slot freed) sooner.
- Failures back off exponentially and honour Retry-After; a throttled poll (429) also slows the
  whole fleet's polling (`pressure`, doubled per throttle, decaying with each good poll), since
  the provider's rate limit is per account, not per job.

Thread-safe: one schedule serves a whole concurrent sweep.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from videogen.domain.polling import DurationSums, SharedDurations

_MIN_SPREAD, _MAX_SPREAD = 0.12, 1.2  # bounds of a model's log-duration spread


def poll_at(now: float, delay: float) -> int:
    """The next poll time as stored (whole epoch seconds): a wait rounds up, so a poll never
    comes before its delay has passed; no wait is due now."""
    return math.ceil(now + delay) if delay > 0 else math.floor(now + delay)


@dataclass
class DurationBelief:
    """Log-normal belief about one model's generation time: ln(seconds) ~ N(mu, spread^2)."""

    mu: float
    spread: float
    weight: float  # how many observations the belief is worth (capped by `memory`)

    @property
    def median(self) -> float:
        return math.exp(self.mu)

    def survival(self, seconds: float) -> float:
        """Probability that a job is still running `seconds` after its submit."""
        if seconds <= 0:
            return 1.0
        z = (math.log(seconds) - self.mu) / self.spread
        return 0.5 * math.erfc(z / math.sqrt(2))  # 1 - the standard normal CDF at z

    def cumulative_hazard(self, seconds: float) -> float:
        return -math.log(max(self.survival(seconds), 1e-12))


class PollSchedule:
    def __init__(
        self,
        *,
        first_poll_factor: float = 0.6,
        interval_seconds: float = 60,
        min_interval_seconds: float = 5,
        max_backoff_seconds: float = 300,
        delay_cost: float = 0.5,
        urgent_delay_cost: float = 8.0,
        urgent_min_interval_seconds: float = 2,
        prior_spread: float = 0.4,
        prior_weight: float = 2,
        memory: float = 30,
        max_pressure: float = 8,
        pressure_decay: float = 0.9,
        shared: SharedDurations | None = None,
        shared_ttl_seconds: float = 60,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`first_poll_factor`: first poll after this x the expected duration. `interval_seconds`:
        the longest wait between two polls of a running job. `delay_cost`: polls one second of
        detection delay is worth (higher: tighter cadence, more polls). `prior_spread` /
        `prior_weight`: the catalog's belief (log-spread, worth this many observations).
        `memory`: how many recent completions a model's belief follows. `urgent_delay_cost` /
        `urgent_min_interval_seconds`: the same while work waits for a slot (`next_delay(urgent=)`)."""
        self.first_poll_factor = first_poll_factor
        self.interval_seconds = float(interval_seconds)
        self.min_interval_seconds = min(float(min_interval_seconds), self.interval_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.delay_cost = delay_cost
        self.urgent_delay_cost = max(urgent_delay_cost, delay_cost)
        self.urgent_min_interval_seconds = min(float(urgent_min_interval_seconds), self.min_interval_seconds)
        self.prior_spread = prior_spread
        self.prior_weight = prior_weight
        self.memory = memory
        self.max_pressure = max_pressure
        self.pressure_decay = pressure_decay
        self._beliefs: dict[str, DurationBelief] = {}
        self._pressure = 1.0
        self._lock = threading.Lock()
        # `shared`: the fleet's statistics; read at most once per `shared_ttl_seconds` per model.
        self.shared = shared
        self.shared_ttl_seconds = shared_ttl_seconds
        self.shared_errors = 0  # reads and writes that failed (the local belief is used then)
        self._monotonic = monotonic
        self._sums: dict[str, tuple[float, DurationSums | None]] = {}  # model -> (read at, sums)

    # -- what the service asks ------------------------------------------------------------
    def first_delay(self, typical_seconds: float, *, model: str | None = None) -> float:
        """Seconds from the submit to the first poll."""
        median = self.belief(model, typical_seconds).median if model else float(typical_seconds)
        return self.first_poll_factor * median

    def next_delay(
        self,
        *,
        model: str | None = None,
        typical_seconds: float | None = None,
        elapsed: float | None = None,
        urgent: bool = False,
    ) -> float:
        """Seconds until the next poll of a job still running `elapsed` seconds after its submit.
        Without the job's model and age: the longest interval (nothing to learn from). `urgent`:
        other work waits for this job's slot (the tighter balance)."""
        with self._lock:
            pressure = self._pressure
            self._pressure = max(1.0, self._pressure * self.pressure_decay)  # a poll went through
        if model is None or typical_seconds is None or elapsed is None:
            return self.interval_seconds * pressure
        belief = self.belief(model, typical_seconds)
        cost, shortest = (
            (self.urgent_delay_cost, self.urgent_min_interval_seconds)
            if urgent
            else (self.delay_cost, self.min_interval_seconds)
        )
        return self._balanced_wait(belief, max(elapsed, 0.0), cost, shortest) * pressure

    def failure_delay(
        self, failures: int, retry_after: float | None = None, *, throttled: bool = False
    ) -> float:
        """Exponential backoff after consecutive poll failures; a Retry-After is honoured. A
        throttled poll also slows every other job's polling for a while."""
        if throttled:
            with self._lock:
                self._pressure = min(self._pressure * 2, self.max_pressure)
        backoff = min(self.interval_seconds * 2 ** max(failures - 1, 0), self.max_backoff_seconds)
        return max(backoff, retry_after or 0.0)

    def observe(self, model: str, seconds: float, *, typical_seconds: float) -> None:
        """A job of `model` took about `seconds` (e.g. the midpoint between the last poll that
        found it running and the one that found it done): move the model's belief towards it."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        x = math.log(max(seconds, 1.0))
        if self.shared is not None:
            self._add_shared(model, x)
        with self._lock:
            belief = self._beliefs.get(model) or self._prior(typical_seconds)
            weight = min(belief.weight + 1, self.memory)
            mu = belief.mu + (x - belief.mu) / weight
            var = belief.spread**2 + ((x - belief.mu) * (x - mu) - belief.spread**2) / weight
            spread = min(max(math.sqrt(max(var, 0.0)), _MIN_SPREAD), _MAX_SPREAD)
            self._beliefs[model] = DurationBelief(mu=mu, spread=spread, weight=weight)

    # -- state ----------------------------------------------------------------------------
    @property
    def pressure(self) -> float:
        """How much slower than normal the fleet is polling because of recent throttling."""
        return self._pressure

    def belief(self, model: str | None, typical_seconds: float) -> DurationBelief:
        if model and self.shared is not None:
            sums = self._shared_sums(model)
            if sums is not None and sums.count > 0:
                return self._posterior(sums, typical_seconds)
        with self._lock:
            return (self._beliefs.get(model) if model else None) or self._prior(typical_seconds)

    def _posterior(self, sums: DurationSums, typical_seconds: float) -> DurationBelief:
        """The catalog's prior (worth `prior_weight` observations) pooled with the shared sums."""
        prior = self._prior(typical_seconds)
        n, w0 = sums.count, prior.weight
        mean = sums.total / n
        var = max(sums.squares / n - mean * mean, 0.0)
        mu = (w0 * prior.mu + n * mean) / (w0 + n)
        pooled = (w0 * prior.spread**2 + n * var + w0 * n / (w0 + n) * (mean - prior.mu) ** 2) / (w0 + n)
        spread = min(max(math.sqrt(pooled), _MIN_SPREAD), _MAX_SPREAD)
        return DurationBelief(mu=mu, spread=spread, weight=min(w0 + n, self.memory))

    def _shared_sums(self, model: str) -> DurationSums | None:
        now = self._monotonic()
        with self._lock:
            cached = self._sums.get(model)
        if cached is not None and now - cached[0] < self.shared_ttl_seconds:
            return cached[1]
        assert self.shared is not None
        try:
            sums = self.shared.read(model)
        except Exception:  # noqa: BLE001 (the schedule must never fail a submit or a poll)
            self.shared_errors += 1
            sums = cached[1] if cached is not None else None
        with self._lock:
            self._sums[model] = (now, sums)
        return sums

    def _add_shared(self, model: str, x: float) -> None:
        assert self.shared is not None
        try:
            self.shared.add(model, x)
        except Exception:  # noqa: BLE001 (a lost observation only slows the learning)
            self.shared_errors += 1
            return
        with self._lock:  # this process sees its own observation before its cache expires
            cached = self._sums.get(model)
            if cached is not None:
                base = cached[1] or DurationSums(0, 0.0, 0.0)
                self._sums[model] = (cached[0], base.plus(x))

    def _prior(self, typical_seconds: float) -> DurationBelief:
        return DurationBelief(
            mu=math.log(max(float(typical_seconds), 1.0)), spread=self.prior_spread, weight=self.prior_weight
        )

    def _balanced_wait(
        self, belief: DurationBelief, elapsed: float, delay_cost: float, min_interval: float
    ) -> float:
        """The wait d with d * (H(t + d) - H(t)) = 2 / delay_cost (H: cumulative hazard), i.e.
        d = sqrt(2 / (delay_cost * mean hazard over the wait)), kept within the bounds."""
        low, high = min_interval, self.interval_seconds
        if high <= low:
            return high
        target = 2.0 / delay_cost
        start = belief.cumulative_hazard(elapsed)

        def excess(wait: float) -> float:
            return wait * (belief.cumulative_hazard(elapsed + wait) - start) - target

        if excess(high) <= 0:
            return high  # completion is unlikely soon: the longest wait
        if excess(low) >= 0:
            return low
        for _ in range(40):  # bisection: excess grows with the wait
            middle = (low + high) / 2
            if excess(middle) > 0:
                high = middle
            else:
                low = middle
            if high - low < 0.25:
                break
        return (low + high) / 2


class FixedSchedule(PollSchedule):
    """Poll every `interval_seconds`, from the submit on, whatever the model: the provider's own
    examples (wait 15 s, ask, repeat). The timeliness benchmark's baseline
    (PollFixedIntervalSeconds); failures still back off."""

    def first_delay(self, typical_seconds: float, *, model: str | None = None) -> float:
        return self.interval_seconds

    def next_delay(
        self,
        *,
        model: str | None = None,
        typical_seconds: float | None = None,
        elapsed: float | None = None,
        urgent: bool = False,
    ) -> float:
        return super().next_delay()
