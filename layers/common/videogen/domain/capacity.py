"""The provider's capacity as we learn it: an AIMD limit (additive increase, multiplicative
decrease) over a set of slot leases. Pure values and rules; the DynamoDB item that holds them
(adapters/dynamodb_queue.py) applies them with conditional writes, so any number of dispatchers
share one limit and one set of leases.

- A slot is a lease: generation id -> epoch second it lapses. A dispatcher takes one before the
  paid call (short: the submit window), the job's lease is extended when the provider accepts it
  and at every poll that finds the job running, and it is released when the job ends. A crashed
  dispatcher or poller never leaks a slot: its lease lapses.
- The limit shrinks by `decrease_factor` on a 429 (at most once per `decrease_cooldown_seconds`,
  so the burst of 429s of one overload halves it once, as TCP halves once per round trip), but
  never below the slots the provider was holding for us when it refused (`held`): unlike a lost
  packet, a 429 is exact evidence. The provider counts our running jobs; it took every one of
  them, so the cap it enforces now is at most that many and, unless it was just cut, that many.
  A blind halving would leave half the provider idle until additive growth climbs back, which
  over a burst of ten times the cap averaged ~3/4 of it (bench/burst.py); the floor keeps the
  limit one below the refusal. Only the first 429 after an accepted submit is taken that way: a
  second one with no acceptance in between means the cap moved (cut by the provider, or taken by
  another client of the account), and our count may include jobs that ended unseen, so it
  halves as before.
- Growth: before the first 429 (slow start), every accepted submit that found the window full
  grows the limit by one, so a new stack reaches the provider's cap within its first burst
  instead of over several rounds of jobs; after it, by one per `increase_after` consecutive such
  submits (growing while the window is not even used would learn nothing). It stays within
  [floor, ceiling].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class CapacityRules:
    floor: int = 1
    ceiling: int = 50
    initial: int = 4
    increase_after: int = 3
    decrease_factor: float = 0.5
    decrease_cooldown_seconds: float = 5.0

    def bound(self, limit: float) -> float:
        return min(max(limit, float(self.floor)), float(self.ceiling))


@dataclass(frozen=True)
class Capacity:
    """One semaphore's state: the learned limit, the run of successes, and the leases."""

    limit: float
    successes: int = 0
    decreased_at: float = 0.0
    throttles: int = 0  # 429s since the last accepted submit (the dispatcher's retry backoff)
    leases: dict[str, float] = field(default_factory=dict)
    # Pending generations the last dispatcher run left in the queue (0: none waits for a slot):
    # while work waits, polls of running jobs come tighter (logic/schedule.py, `urgent`).
    waiting: int = 0
    version: int = 0

    @classmethod
    def initial(cls, rules: CapacityRules) -> Capacity:
        return cls(limit=rules.bound(rules.initial))

    @property
    def slots(self) -> int:
        """Jobs the provider is allowed to hold at once (the limit, whole)."""
        return max(1, math.floor(self.limit))

    def live(self, now: float) -> dict[str, float]:
        """The leases that have not lapsed."""
        return {gid: until for gid, until in self.leases.items() if until > now}

    def free(self, now: float) -> int:
        return max(0, self.slots - len(self.live(now)))

    def acquire(self, generation_id: str, now: float, until: float) -> Capacity | None:
        """The state with a lease for `generation_id` (lapsed leases dropped), or None when every
        slot is taken. Holding a lease already renews it."""
        live = self.live(now)
        if generation_id not in live and len(live) >= self.slots:
            return None
        return replace(self, leases={**live, generation_id: until})

    def extend(self, generation_id: str, until: float) -> Capacity:
        return replace(self, leases={**self.leases, generation_id: until})

    def release(self, generation_id: str) -> Capacity:
        return replace(self, leases={k: v for k, v in self.leases.items() if k != generation_id})

    @property
    def probing(self) -> bool:
        """Slow start: no 429 has been seen yet."""
        return self.decreased_at == 0.0

    def succeeded(self, rules: CapacityRules, now: float) -> Capacity:
        """An accepted submit. Counts toward growth only when the window is full."""
        if len(self.live(now)) < self.slots:
            return replace(self, successes=0, throttles=0)
        successes = self.successes + 1
        if successes >= (1 if self.probing else rules.increase_after):
            return replace(self, limit=rules.bound(math.floor(self.limit) + 1), successes=0, throttles=0)
        return replace(self, successes=successes, throttles=0)

    def throttled(self, rules: CapacityRules, now: float) -> Capacity:
        """A 429 (the refused submit's lease already released): shrink, never grow; unless this
        overload already shrank the limit. A 429 takes no work and the provider counts exactly
        the jobs it runs, so the limit shrinks by `decrease_factor` but not below the slots still
        held (the jobs it was running for us, and submits in flight). Those may include jobs
        that ended unseen, so a refusal that follows another with no accepted submit in between
        also takes at least one slot off: the limit steps down to what is held, one refusal at a
        time, and settles on the provider's cap without idling it (measured in bench/burst.py:
        halving there left the provider half idle until additive growth climbed back). Within
        the cooldown after a decrease a refusal cuts no further, except down to what is held."""
        throttles = self.throttles + 1
        held = float(len(self.live(now)))
        # Within the cooldown it is the same overload: no second cut, but a slot that freed and
        # was refused again says the provider holds no more than we do now, so the limit still
        # follows what is held down (never below half): a cut is learned at the pace jobs end.
        cooling = now - self.decreased_at < rules.decrease_cooldown_seconds
        ceiling = self.limit if cooling or self.throttles == 0 else self.limit - 1
        limit = rules.bound(min(ceiling, max(self.limit * rules.decrease_factor, held)))
        decreased_at = self.decreased_at if cooling else now
        return replace(self, limit=limit, successes=0, decreased_at=decreased_at, throttles=throttles)

    def retry_delay(self, longest: int = 60) -> int:
        """Seconds before a throttled dispatcher tries again: 2, 4, 8, ... up to `longest`."""
        return int(min(longest, 2 ** min(max(self.throttles, 1), 6)))
