"""Fan-out of the poller's sweep over the shards of the due-index.

One invocation refreshes about `concurrency` generations per provider round trip and should be
done well within one schedule tick (a minute by default). When more is due than that, the
scheduled invocation hands every shard but the first to an invocation of its own (the poller
invokes itself asynchronously with `{"shard": "<n>"}`) and sweeps the first shard itself, so a
tick is served by `DueShards` invocations in parallel instead of one.

Deciding costs no extra read: the scheduled invocation reads the first shard's due items (which
it sweeps anyway) up to its share of one invocation's capacity. A generation's shard is a hash of
its id, so every shard holds about the same number of due items: if the first shard holds more
than capacity / shards, so does the whole backlog exceed the capacity. A shard that could not be
handed off (the invoke failed) is swept by this invocation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from videogen.domain.models import Generation

# One invocation takes up to ROUNDS_PER_TICK x concurrency due generations per tick: 40 rounds of
# provider calls is 40 s at a 1 s provider round trip (8 s at the 200 ms of the benchmark).
ROUNDS_PER_TICK = 40


class DueIndex(Protocol):
    due_shards: int

    def due(self, shard: str, now: float) -> Iterator[Generation]: ...


@dataclass
class SweepPlan:
    generations: Iterable[Generation]  # what this invocation refreshes (lazily read)
    delegated: list[str] = field(default_factory=list)  # shards handed to other invocations
    shard: str | None = None  # the one shard this invocation was asked to sweep, if any


def capacity(concurrency: int) -> int:
    """Due generations one invocation takes per tick before the sweep fans out."""
    return ROUNDS_PER_TICK * concurrency


def shard_of_event(event: Any, shards: int) -> str | None:
    """The shard a fanned-out invocation must sweep (`{"shard": n}`), None for a scheduled tick."""
    if not isinstance(event, dict) or event.get("shard") is None:
        return None
    shard = event["shard"]
    if isinstance(shard, bool) or not str(shard).isdigit() or not 0 <= int(shard) < shards:
        raise ValueError(f"shard must be an integer in [0, {shards}), got {shard!r}")
    return str(int(shard))


def plan_sweep(
    index: DueIndex,
    now: float,
    *,
    capacity: int,
    shard: str | None = None,
    delegate: Callable[[Sequence[str]], Sequence[str]] | None = None,
) -> SweepPlan:
    """What this invocation sweeps. `delegate(shards)` hands shards to other invocations and
    returns those it could not hand off; without it (or with one shard) nothing fans out."""
    if shard is not None:
        return SweepPlan(index.due(shard, now), shard=shard)
    shards = [str(n) for n in range(index.due_shards)]
    first = index.due(shards[0], now)
    rest = shards[1:]
    if not rest or delegate is None:
        return SweepPlan(_chain(first, index, rest, now))
    share = max(capacity // len(shards), 1)
    peeked = list(itertools.islice(first, share + 1))
    if len(peeked) <= share:  # the first shard fits its share: so does the whole backlog
        return SweepPlan(_chain(itertools.chain(peeked, first), index, rest, now))
    failed = set(delegate(rest))
    delegated = [s for s in rest if s not in failed]
    kept = [s for s in rest if s in failed]
    return SweepPlan(_chain(itertools.chain(peeked, first), index, kept, now), delegated=delegated)


def _chain(
    first: Iterable[Generation], index: DueIndex, shards: list[str], now: float
) -> Iterator[Generation]:
    yield from first
    for shard in shards:
        yield from index.due(shard, now)  # each shard is queried only when reached
