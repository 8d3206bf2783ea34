"""Timeliness end to end: how long after the provider finishes a job does its generation read
`completed`, and how many status calls did it take, on the local stack with the production
mechanism (API submit -> poll timer on SQS with per-message delays -> PollTimerFunction, the
1-minute sweep as the safety net, the schedule learning through ModelStatsTable), against the
simulator's ground truth (each job's completion time is its creation + its duration, on the
simulator's clock). The baseline, fixed 15 s polling (the provider's own examples), runs the
same jobs through the same stack (PollFixedIntervalSeconds=15).

Durations are not the schedule's prior (a log-normal around the catalog's time): for a few
models whose docs state a generation time, each job takes
- "stated": the docs' time, +-15% (uniform);
- "heavy": the docs' time x a Pareto(1.5) factor from 0.6 (a long tail: 1 job in 10 over 2.8x);
- "bimodal": 0.4x or 1.8x the docs' time (a fast and a slow path), +-10%.

Minutes of production in seconds: one ScaledClock (local/clock.py, `RATE` x the wall clock)
drives the simulator's jobs, the functions' clock (poll times, the SQS delays they ask for), moto's
SQS delays and visibility timeouts, and the EventBridge tick (60 s / RATE). Everything that is a
wait is in scaled seconds; the work itself (an invocation, a moto call) is not scaled, so it takes
RATE x longer in scaled seconds than on the wall clock: every processing delay in the figures is
overstated RATE times (on AWS, an SQS event source delivers a message that became visible in
well under a second; here, the local poller looks every EVENT_POLL wall seconds = RATE x that in
scaled seconds). The figures are therefore upper bounds of what the same mechanism gives on AWS.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

RATE = 10.0  # scaled seconds per wall second
EVENT_POLL = 0.02  # wall seconds between two looks at the queues and the stream
FIXED_INTERVAL = 15
# (model, the docs' stated seconds): short, medium and long ones, all with a page-stated time.
MODELS = (
    "bytedance/seedance-1-0-lite-t2v",
    "pixverse/v5/text-to-video",
    "runway/gen4_turbo",
    "luma/ray-2",
    "google/veo3",
    "kling-video/v1.6/standard/text-to-video",
    "minimax/hailuo-02",
    "klingai/v2-master-text-to-video",
)
FAMILIES = ("stated", "heavy", "bimodal")
FIGURES = (
    "detection_delay_p50_s",
    "detection_delay_p95_s",
    "detection_delay_vs_fixed15s",
    "poll_calls_vs_fixed15s",
)
MAX_DURATION = 900.0


@dataclass
class Job:
    model: str
    family: str
    arrival: float  # scaled seconds after the run starts
    duration: float  # the simulator's ground truth
    generation_id: str | None = None
    provider_id: str | None = None
    finished_at: float | None = None  # the simulator's completion time (scaled epoch)
    completed_at: float | None = None  # the generation's completed_at (scaled epoch)
    polls: int = 0
    status: str | None = None


def make_jobs(count: int, *, seed: int = 12, over_seconds: float = 300.0) -> list[Job]:
    from videogen.domain.catalog import CATALOG

    rng = random.Random(seed)
    jobs = []
    for index in range(count):
        model = MODELS[index % len(MODELS)]
        stated = float(CATALOG[model].typical_seconds)
        family = FAMILIES[rng.randrange(len(FAMILIES))]
        if family == "stated":
            factor = rng.uniform(0.85, 1.15)
        elif family == "heavy":
            factor = 0.6 * rng.paretovariate(1.5)
        else:
            factor = (0.4 if rng.random() < 0.5 else 1.8) * rng.uniform(0.9, 1.1)
        duration = min(max(stated * factor, 5.0), MAX_DURATION)
        jobs.append(Job(model, family, rng.uniform(0, over_seconds), round(duration, 1)))
    return sorted(jobs, key=lambda job: job.arrival)


def _body(model: str, duration: float) -> dict[str, Any]:
    from tests.catalog_bodies import minimal_body
    from videogen.domain.catalog import CATALOG

    body = dict(minimal_body(CATALOG[model]))
    body["prompt"] = f"A slow pan over a quiet harbour at dawn [sim:duration={duration}]"
    return {"model": model, **body}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@contextlib.contextmanager
def _stack(clock: Any, env: dict[str, str]) -> Iterator[Any]:
    from local.stack import LocalStack

    stack = LocalStack(
        port=0,
        poll_seconds=60.0 / clock.rate,  # the EventBridge tick: rate(1 minute)
        write_endpoints=False,
        clock=clock,
        env_overrides=env,
    )
    stack.event_poll_seconds = EVENT_POLL
    with stack:
        yield stack


def run(
    jobs: list[Job], *, fixed: bool, rate: float = RATE, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Submit `jobs` through the API at their arrival times; wait until every one has ended."""
    from local.clock import ScaledClock

    clock = ScaledClock(rate)
    env = {
        # production's schedule, not the local stack's poll-at-once defaults
        "FIRST_POLL_FACTOR": "0.6",
        "POLL_INTERVAL_SECONDS": "60",
        "POLL_TIMER_GRACE_SECONDS": "30",
        "MAX_GENERATION_AGE_SECONDS": "1800",
        "POLL_FIXED_INTERVAL_SECONDS": str(FIXED_INTERVAL if fixed else 0),
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    with _stack(clock, env) as stack:
        session = requests.Session()
        session.headers["x-api-key"] = stack.api_key
        start = clock()
        errors: list[str] = []

        def submit_all() -> None:
            for job in jobs:
                wait = clock.wall_seconds(start + job.arrival - clock())
                if wait > 0:
                    time.sleep(wait)
                answer = session.post(
                    f"{stack.api_url}/generations", json=_body(job.model, job.duration), timeout=60
                )
                if answer.status_code != 202 and answer.status_code != 201:
                    errors.append(f"{job.model}: {answer.status_code} {answer.text[:200]}")
                    continue
                data = answer.json()
                job.generation_id = data["id"]

        submitter = threading.Thread(target=submit_all, name="bench-submit", daemon=True)
        submitter.start()
        dynamodb = stack.client("dynamodb")
        table = stack.environment["TABLE_NAME"]
        deadline = time.monotonic() + clock.wall_seconds(300 + MAX_DURATION + 600)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            pending = [job for job in jobs if job.status is None]
            for job in pending:
                if job.generation_id is None:
                    continue
                item = (
                    dynamodb.get_item(TableName=table, Key={"id": {"S": job.generation_id}}).get("Item") or {}
                )
                status = item.get("status", {}).get("S")
                if status in ("completed", "failed", "timed_out", "cancelled"):
                    job.status = status
                    job.provider_id = item.get("provider_id", {}).get("S")
                    if "completed_at" in item:
                        job.completed_at = _epoch(item["completed_at"]["S"])
            if not submitter.is_alive() and all(job.status is not None for job in jobs if job.generation_id):
                break
        submitter.join(timeout=5)
        sim_jobs = stack.simulator.jobs
        for job in jobs:
            sim_job = sim_jobs.get(job.provider_id or "")
            if sim_job is not None:
                job.finished_at = sim_job.created + sim_job.duration
                job.polls = sim_job.polls
    if errors:
        raise RuntimeError(f"submits refused: {errors[:3]}")
    return summary(jobs)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(jobs: list[Job]) -> dict[str, Any]:
    done = [job for job in jobs if job.completed_at is not None and job.finished_at is not None]
    if len(done) != len(jobs):
        missing = [(job.model, job.status) for job in jobs if job not in done][:5]
        raise RuntimeError(f"{len(jobs) - len(done)} of {len(jobs)} jobs not completed: {missing}")
    delays = [job.completed_at - job.finished_at for job in done]  # type: ignore[operator]
    by_family = {
        family: {
            "jobs": len(d := [j.completed_at - j.finished_at for j in done if j.family == family]),  # type: ignore[operator]
            "mean_delay_s": sum(d) / len(d) if d else 0.0,
            "p95_delay_s": _percentile(d, 0.95) if d else 0.0,
        }
        for family in FAMILIES
    }
    return {
        "jobs": len(done),
        "calls": sum(job.polls for job in done),
        "calls_per_job": sum(job.polls for job in done) / len(done),
        "mean_delay_s": sum(delays) / len(delays),
        "p50_delay_s": _percentile(delays, 0.50),
        "p95_delay_s": _percentile(delays, 0.95),
        "max_delay_s": max(delays),
        "min_delay_s": min(delays),
        "by_family": by_family,
    }


def fresh(jobs: list[Job]) -> list[Job]:
    return [Job(job.model, job.family, job.arrival, job.duration) for job in jobs]


def frontier(count: int = 1000) -> list[dict[str, float]]:
    """What the schedule's own knobs can reach on this workload with perfect timers (every poll
    exactly when due, on a simulated clock, bench/schedule_sim.py): status calls and delays
    against fixed 15 s for a range of `delay_cost` and `interval_seconds`. Not a goal: it shows
    where the trade-off between the call and the delay goals lies, whatever the mechanism."""
    from bench import schedule_sim
    from videogen.logic.schedule import PollSchedule

    jobs = [schedule_sim.Job(j.model, j.arrival, j.duration) for j in make_jobs(count, over_seconds=10_000)]

    def measure(runner: Callable[[list[Any]], Any]) -> tuple[float, float, float, float]:
        run_jobs = schedule_sim.fresh(jobs)
        runner(run_jobs)
        delays = [float(j.detected_after or 0.0) for j in run_jobs]
        calls = sum(j.calls for j in run_jobs)
        return calls, sum(delays) / len(delays), _percentile(delays, 0.5), _percentile(delays, 0.95)

    base = measure(schedule_sim.run_fixed)
    rows = []
    for interval in (60, 20):
        for cost in (0.5, 2.0, 8.0):
            schedule = PollSchedule(delay_cost=cost, interval_seconds=interval)

            def timed(run_jobs: list[Any], schedule: PollSchedule = schedule) -> Any:
                return schedule_sim.run_schedule(run_jobs, schedule)

            calls, mean, p50, p95 = measure(timed)
            rows.append(
                {
                    "delay_cost": cost,
                    "interval_seconds": interval,
                    "poll_calls_vs_fixed15s": round(calls / base[0], 3),
                    "detection_delay_vs_fixed15s": round(mean / base[1], 3),
                    "detection_delay_p50_s": round(p50, 1),
                    "detection_delay_p95_s": round(p95, 1),
                }
            )
    return rows


def bench(*, count: int = 72, rate: float = RATE, log: Callable[[str], None] = print) -> dict[str, Any]:
    jobs = make_jobs(count)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    log(f"  fixed 15 s: {count} jobs through the local stack at {rate:g}x")
    fixed = run(fresh(jobs), fixed=True, rate=rate, log=log)
    log(f"  timers + learning schedule: the same {count} jobs")
    ours = run(fresh(jobs), fixed=False, rate=rate, log=log)
    durations = sorted(job.duration for job in jobs)
    log("  the schedule's trade-off with perfect timers (simulated clock)")
    return {
        "frontier": frontier(),
        "fixed15": fixed,
        "schedule": ours,
        "rate": rate,
        "event_poll_wall_s": EVENT_POLL,
        "processing_overstated_x": rate,
        "jobs": len(jobs),
        "models": list(MODELS),
        "duration_s": {
            "min": durations[0],
            "median": durations[len(durations) // 2],
            "max": durations[-1],
            "families": {f: sum(j.family == f for j in jobs) for f in FAMILIES},
        },
        "detection_delay_p50_s": ours["p50_delay_s"],
        "detection_delay_p95_s": ours["p95_delay_s"],
        "detection_delay_vs_fixed15s": ours["mean_delay_s"] / fixed["mean_delay_s"],
        "poll_calls_vs_fixed15s": ours["calls"] / fixed["calls"],
    }


if __name__ == "__main__":
    import argparse
    import json
    import logging
    import sys
    import warnings

    from bench.common import LAYER

    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))
    parser = argparse.ArgumentParser(description="timeliness on the local stack")
    parser.add_argument("--count", type=int, default=72)
    parser.add_argument("--rate", type=float, default=RATE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    print(
        json.dumps(bench(count=args.count, rate=args.rate, log=lambda m: print(m, file=sys.stderr)), indent=2)
    )
