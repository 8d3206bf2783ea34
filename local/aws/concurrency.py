"""How many invocations of each function the local stack runs at once, and what they cost.

In Lambda, every concurrent invocation gets an execution environment of its own: the uploads'
S3 notifications (asynchronous invocations), the dispatch queue's batches (at most the SQS event
source's `ScalingConfig.MaximumConcurrency`), the poll timers' batches and the API's requests all
run side by side. The local stack runs a function's invocations in-process, one at a time across
all functions (its invocation lock, see local/stack.py), unless the function is given worker
processes (local/aws/api_workers.py): `LOCAL_FUNCTION_WORKERS="UploadFunction=4,DispatcherFunction=2"`
(or `LocalStack(function_workers=...)`). A function's workers are bounded as Lambda bounds its
concurrency: by its `ReservedConcurrentExecutions` and, for a function fed by SQS, by its event
sources' `MaximumConcurrency` (`template_bound`); the machine's cores are the other bound, which
is why nothing runs in workers unless asked.

`InvocationStats` counts, per function, the invocations, the seconds they took and the most that
ran at once, on every path (API, event sources, asynchronous and synchronous Lambda invocations,
the schedule): what Lambda's `Invocations`, `Duration` and `ConcurrentExecutions` would show.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from local.aws.cfn import Template


def parse_workers(text: str | None) -> dict[str, int]:
    """`"UploadFunction=4, DispatcherFunction=2"` -> {"UploadFunction": 4, "DispatcherFunction": 2}."""
    workers: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, count = part.partition("=")
        if not sep or not name.strip() or not count.strip().isdigit():
            raise ValueError(f"LOCAL_FUNCTION_WORKERS: expected Function=N, got {part.strip()!r}")
        workers[name.strip()] = int(count)
    return workers


def template_bound(template: Template, logical_id: str) -> int | None:
    """The most invocations of the function Lambda would run at once by the template alone: its
    ReservedConcurrentExecutions, and, when SQS feeds it, its queues' MaximumConcurrency summed
    (each event source mapping scales on its own); None when the template sets no bound."""
    props = template.properties(logical_id)
    bounds: list[int] = []
    reserved = props.get("ReservedConcurrentExecutions")
    if isinstance(reserved, (int, str)) and str(reserved).isdigit():
        bounds.append(int(reserved))
    events = list(((template.resources_doc[logical_id].get("Properties") or {}).get("Events") or {}).values())
    queue_bounds = [maximum_concurrency(template, event) for event in events if event.get("Type") == "SQS"]
    if events and len(queue_bounds) == len(events) and None not in queue_bounds:
        bounds.append(sum(b for b in queue_bounds if b is not None))  # only queues invoke it
    return min(bounds) if bounds else None


def maximum_concurrency(template: Template, event: Mapping[str, Any]) -> int | None:
    """An SQS event's ScalingConfig.MaximumConcurrency (None: unbounded)."""
    scaling = template.resolve(event.get("Properties") or {}).get("ScalingConfig") or {}
    return int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None


class InvocationStats:
    """Per function: invocations, seconds, the most at once (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self.running: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    @contextmanager
    def timing(self, function: str) -> Iterator[None]:
        with self._lock:
            self.running[function] += 1
            self.peak[function] = max(self.peak[function], self.running[function])
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.running[function] -= 1
                self.calls[function] += 1
                self.seconds[function] = self.seconds.get(function, 0.0) + elapsed

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "seconds": dict(self.seconds),
                "peak": dict(self.peak),
            }

    def reset_peaks(self) -> None:
        with self._lock:
            self.peak = Counter(dict(self.running))

    @staticmethod
    def since(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """Per function, the calls and seconds between two snapshots (and the peak of `after`)."""
        out: dict[str, dict[str, float]] = {}
        for name in sorted(after["calls"]):
            calls = after["calls"][name] - before["calls"].get(name, 0)
            if calls <= 0:
                continue
            seconds = after["seconds"].get(name, 0.0) - before["seconds"].get(name, 0.0)
            out[name] = {"calls": calls, "seconds": round(seconds, 1), "peak": after["peak"].get(name, 0)}
        return out
