"""Polling schedule on a simulated clock, every poll exactly when due: provider status calls and
detection delay of the project's PollSchedule against fixed 15 s polling. No longer a figure of
`make bench` (its delays assumed perfect timers; bench/timeliness.py measures the deployed
mechanism end to end): bench/timeliness.py's `frontier` uses it to show the schedule's trade-off.

No real time passes: 500 generations arrive over 50 minutes, each model's true durations follow
a log-normal spread (20 s to 9 min overall, most 1-4 min), and each poll asks "done yet?" at the
time the schedule chose. The schedule starts from the catalog's `typical_seconds`, which for
several models is off (the catalog marks them "inferred"), and learns from the completions it
sees, as the poller does.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Any

from videogen.domain.catalog import CATALOG
from videogen.logic.schedule import PollSchedule

FIXED_INTERVAL = 15.0
MIN_SECONDS, MAX_SECONDS = 20.0, 540.0

# model -> (true median seconds, log-spread, share of traffic). Medians deliberately differ from
# the catalog's guesses for most models (by -25% to +40%): the schedule must learn them.
TRUTH: dict[str, tuple[float, float, float]] = {
    "video-01": (40, 0.35, 0.14),
    "video-01-live2d": (70, 0.30, 0.03),
    "minimax/hailuo-02": (200, 0.30, 0.12),
    "kling-video/v1.6/standard/text-to-video": (150, 0.35, 0.12),
    "klingai/v2.5-turbo/pro/image-to-video": (90, 0.30, 0.10),
    "runway/gen4_turbo": (45, 0.30, 0.07),
    "google/veo3": (180, 0.30, 0.10),
    "luma/ray-2": (110, 0.40, 0.05),
    "alibaba/wan2.1-t2v-plus": (330, 0.30, 0.05),
    "pixverse/v5/text-to-video": (70, 0.35, 0.06),
    "bytedance/seedance-1-0-lite-t2v": (80, 0.35, 0.06),
    "openai/sora-2-t2v": (240, 0.40, 0.06),
    "openai/sora-2-i2v": (260, 0.40, 0.04),
}


@dataclass
class Job:
    model: str
    submitted: float
    duration: float
    calls: int = 0
    last_pending_poll: float = 0.0
    detected_after: float | None = None


def make_jobs(count: int = 500, *, seed: int = 4, over_seconds: float = 3000) -> list[Job]:
    rng = random.Random(seed)
    models = list(TRUTH)
    weights = [TRUTH[m][2] for m in models]
    jobs = []
    for _ in range(count):
        model = rng.choices(models, weights)[0]
        median, spread, _ = TRUTH[model]
        duration = min(max(median * math.exp(rng.gauss(0, spread)), MIN_SECONDS), MAX_SECONDS)
        jobs.append(Job(model, rng.uniform(0, over_seconds), duration))
    return sorted(jobs, key=lambda job: job.submitted)


def run_schedule(jobs: list[Job], schedule: PollSchedule, *, learn: bool = True) -> dict[str, float]:
    """Event-driven: every poll happens exactly when the schedule asked for it."""
    events: list[tuple[float, int]] = []
    for index, job in enumerate(jobs):
        typical = CATALOG[job.model].typical_seconds
        first = job.submitted + schedule.first_delay(typical, model=job.model)
        heapq.heappush(events, (first, index))
    while events:
        now, index = heapq.heappop(events)
        job = jobs[index]
        job.calls += 1
        elapsed = now - job.submitted
        typical = CATALOG[job.model].typical_seconds
        if elapsed >= job.duration:
            job.detected_after = elapsed - job.duration
            if learn:
                # what the service can know: it finished between the last two polls
                schedule.observe(job.model, (job.last_pending_poll + elapsed) / 2, typical_seconds=typical)
            continue
        job.last_pending_poll = elapsed
        wait = schedule.next_delay(model=job.model, typical_seconds=typical, elapsed=elapsed)
        heapq.heappush(events, (now + max(wait, 0.001), index))
    return _summary(jobs)


def run_fixed(jobs: list[Job], interval: float = FIXED_INTERVAL) -> dict[str, float]:
    """The provider's examples: wait `interval`, ask, repeat."""
    for job in jobs:
        job.calls = math.ceil(job.duration / interval)
        job.detected_after = job.calls * interval - job.duration
    return _summary(jobs)


def _summary(jobs: list[Job]) -> dict[str, float]:
    delays = [job.detected_after for job in jobs if job.detected_after is not None]
    assert len(delays) == len(jobs), "every job must be detected"
    delays.sort()
    return {
        "calls": float(sum(job.calls for job in jobs)),
        "calls_per_job": sum(job.calls for job in jobs) / len(jobs),
        "mean_delay_s": sum(delays) / len(delays),
        "p95_delay_s": delays[int(0.95 * (len(delays) - 1))],
    }


def fresh(jobs: list[Job]) -> list[Job]:
    return [Job(job.model, job.submitted, job.duration) for job in jobs]


def bench(**schedule_options: Any) -> dict[str, Any]:
    jobs = make_jobs()
    fixed = run_fixed(fresh(jobs))
    ours = run_schedule(fresh(jobs), PollSchedule(**schedule_options))
    unlearned = run_schedule(fresh(jobs), PollSchedule(**schedule_options), learn=False)
    durations = sorted(job.duration for job in jobs)
    return {
        "fixed15": fixed,
        "schedule": ours,
        "schedule_catalog_only": unlearned,
        "jobs": len(jobs),
        "duration_s": {
            "min": durations[0],
            "median": durations[len(durations) // 2],
            "max": durations[-1],
            "share_1_to_4_min": sum(60 <= d <= 240 for d in durations) / len(durations),
        },
        "poll_calls_vs_fixed15s": ours["calls"] / fixed["calls"],
        "detection_delay_vs_fixed15s": ours["mean_delay_s"] / fixed["mean_delay_s"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(bench(), indent=2))
