"""`make bench`'s burst: ten times the provider's concurrency cap submitted at once through the
local stack, by two callers, over the API and the uploads bucket, against a simulator that plays
the cap (local/simulator/limits.py) and tells no one its number.

The workload (`Burst`):
- the simulator caps the provider account at `cap` jobs queued or generating at once, per its
  API key (the service's one key); a submit over it is the documented 429, no Retry-After;
- the big caller sends `multiple x cap - small` generations at once, half `POST /generations`,
  half images put into the uploads bucket (owned by the same caller through their metadata);
- the moment the big caller's requests are all in, the small caller sends `small` generations
  (one API, the rest uploads): the worst case for a first-come queue, which would put them last;
- the stack's own timer plays the EventBridge schedule, the event source mappings run as in
  `make local`; nothing else is driven by hand.
Production's mechanism and timing, played faster: one ScaledClock (local/clock.py) at
`rate` = the median job of the schedule benchmark's model mix (about two minutes) / `job_seconds`
drives the simulator's jobs (each `job_seconds` of wall time: the median job, in scaled
seconds), the functions' clock (in their worker processes too), moto's SQS delays and visibility
timeouts, and the EventBridge tick (60 scaled seconds). The poll timers run on the production
schedule (the settings' defaults: first poll at 0.6 x the model's expected time, learned
through ModelStatsTable; waits of 5 to 60 s; the sweep takes only what is 30 s overdue), the
dispatcher is woken on accept and when a slot frees, and the functions Lambda runs side by side
(uploads, the dispatcher up to its MaximumConcurrency of 2, the poll timers, the API) run in
worker processes (`FUNCTION_WORKERS`, `API_WORKERS`, warmed first). What is not scaled is the work
itself (an invocation, a moto call): it takes `rate` times longer in scaled seconds than on the
wall clock, so every processing delay (accepting an upload, a dispatch, a poll) weighs `rate`
times more against a job than it would on Lambda (`details.processing_overstated_x`).

The figures, from ground truth (the simulator's jobs, the table's records):
- `burst_lost`: requests sent that did not end as a completed generation (a refused request
  counts: the caller lost it);
- `burst_duplicate_submits`: provider jobs beyond one per request (each request's prompt is
  unique, the simulator keeps every job's body);
- `burst_capacity_utilization`: the provider's running jobs / cap, integrated over the drain
  (from the burst's first provider job to its last: all that time there was work waiting);
- `burst_fairness`: the small caller's wait (from its request to its last video ready at the
  provider) / the same wait when it sends the same requests alone (measured after the burst, on
  the same stack);
- `limit_settle_s`: seconds from the burst's first request until the service's learned limit
  (read from its store, `learned_limit`) is within 10% of the cap; None when the service has no
  learned limit.
`cap_halved` (the chaos scenario, bench/reliability/burst_cap_halved.py) reuses `Burst` and
halves the simulator's cap mid-burst.

    python -m bench.burst [--cap 8] [--job-seconds 24] [--rate R] [--workers UploadFunction=4,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from bench.common import ROOT
from local.aws.concurrency import parse_workers
from local.stack import LocalStack

MODEL = "video-01"  # takes a prompt alone (the API) and an image (uploads)
SAMPLE_PNG = (ROOT / "local" / "assets" / "upload-sample.png").read_bytes()
BIG_KEY, SMALL_KEY = "burst-big-key", "burst-small-key"
CAP = 8
MULTIPLE = 10
SMALL = 2
# Wall seconds per job (the median production job, scaled): the work itself is not scaled, so a
# shorter job makes each local invocation weigh more against it (4 s: 28x; 12 s: 9.5x; 24 s:
# 4.7x; measured utilization 0.80 at 12 s, 0.86 and 0.87 at 24 s, on a busy two-core machine).
JOB_SECONDS = 24.0
SETTLE_BAND = 0.10  # "within 10% of the cap"
# Where the submit queue keeps its learned limit (videogen/adapters/dynamodb_queue.py)
SEMAPHORE_PARTITION, ACCOUNT_QUEUE = "semaphore", "aiml"
# Production's timing, which the burst scales down: the poller's schedule (template.yaml's
# PollSchedule default, rate(1 minute)) against the median job of the schedule benchmark's mix
# of models (bench/schedule_sim.py, computed at run time): the tick is that share of a job.
PRODUCTION_TICK_SECONDS = 60.0
TERMINAL = {"completed", "failed", "timed_out", "cancelled", "expired"}


@dataclass
class Sent:
    """One request of a caller: what it asked for, how, when it was answered and the answer."""

    caller: str  # "big" | "small"
    via: str  # "api" | "upload"
    prompt: str  # unique to this request: the simulator's jobs are counted by it
    at: float = 0.0  # the simulator's clock when the request was sent (Burst.now)
    answered: float = 0.0  # ... and when it was answered (S3 took the upload)
    status: int = 0  # the API's status code; 200 for an upload S3 took
    generation_id: str | None = None  # the API's answer (uploads: found in the table later)

    @property
    def accepted(self) -> bool:
        return self.status in (200, 202)


@dataclass
class Outcome:
    """What became of a set of requests, from ground truth."""

    sent: list[Sent]
    jobs: dict[str, list[Any]]  # prompt -> the simulator's Job objects for it
    records: dict[str, dict[str, Any]]  # prompt -> the table's record (a few fields)
    started: float  # the first request
    ended: float  # when every record was terminal (or the drain gave up)
    drained: bool

    def completed(self) -> set[str]:
        return {p for p, r in self.records.items() if r["status"] == "completed"}

    def lost(self) -> list[Sent]:
        done = self.completed()
        return [s for s in self.sent if s.prompt not in done]

    def duplicate_submits(self) -> int:
        return sum(len(jobs) - 1 for jobs in self.jobs.values() if len(jobs) > 1)

    def ready_at(self, s: Sent) -> float | None:
        """When the request's video was ready at the provider (its first job's end)."""
        jobs = self.jobs.get(s.prompt)
        if not jobs:
            return None
        first = min(jobs, key=lambda j: j.created)
        return float(first.created + first.duration)

    def wait(self, caller: str) -> float | None:
        """The caller's wait: from its first request to its last video ready at the provider."""
        mine = [s for s in self.sent if s.caller == caller]
        ready = [self.ready_at(s) for s in mine]
        if not mine or any(r is None for r in ready):
            return None
        return max(r for r in ready if r is not None) - min(s.at for s in mine)

    def queue_waits(self, caller: str) -> list[float]:
        """Per request of the caller: from sending it to its job's start at the provider."""
        waits = []
        for s in self.sent:
            jobs = self.jobs.get(s.prompt)
            if s.caller == caller and jobs:
                waits.append(min(j.created for j in jobs) - s.at)
        return sorted(waits)


def occupancy(jobs: Iterable[Any], start: float, end: float) -> float:
    """The mean number of jobs running at the provider over [start, end] (job-seconds / seconds)."""
    if end <= start:
        return 0.0
    busy = 0.0
    for job in jobs:
        lo, hi = max(start, job.created), min(end, job.created + job.duration)
        busy += max(0.0, hi - lo)
    return busy / (end - start)


def running_shares(jobs: Iterable[Any], start: float, end: float) -> dict[int, float]:
    """The share of [start, end] during which k jobs ran at the provider, per k."""
    if end <= start:
        return {}
    edges = sorted(
        [(max(start, j.created), 1) for j in jobs if j.created < end and j.created + j.duration > start]
        + [
            (min(end, j.created + j.duration), -1)
            for j in jobs
            if j.created < end and j.created + j.duration > start
        ]
    )
    shares: dict[int, float] = {}
    running, at = 0, start
    for when, step in edges:
        shares[running] = shares.get(running, 0.0) + (when - at) / (end - start)
        running, at = running + step, when
    shares[running] = shares.get(running, 0.0) + (end - at) / (end - start)
    return {k: round(v, 3) for k, v in sorted(shares.items()) if v > 0}


def settle_seconds(samples: list[tuple[float, float]], cap: float, since: float) -> float | None:
    """Seconds from `since` until the first sample within SETTLE_BAND of `cap`."""
    for at, limit in samples:
        if at >= since and abs(limit - cap) <= SETTLE_BAND * cap:
            return at - since
    return None


def learned_limit(stack: LocalStack) -> float | None:
    """The service's learned provider limit: the semaphore item of the submit queue's table
    (videogen/adapters/dynamodb_queue.py: `queue` = "semaphore", `rank` = the provider account's
    queue, its `limit`); None while the service has written none, or has no queue at all."""
    table = stack.environment.get("QUEUE_TABLE_NAME")
    if not table:
        return None
    item = (
        stack.client("dynamodb")
        .get_item(
            TableName=table,
            Key={"queue": {"S": SEMAPHORE_PARTITION}, "rank": {"S": ACCOUNT_QUEUE}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return float(item["limit"]["N"]) if item and "limit" in item else None


def refill_gaps(jobs: list[Any]) -> list[float]:
    """For each job that ended while later jobs were still to start: seconds from its end to the
    next job's start at the provider (how soon a freed slot was used again)."""
    starts = sorted(j.created for j in jobs)
    gaps = []
    for job in jobs:
        end = job.created + job.duration
        later = [t for t in starts if t >= end]
        if later:
            gaps.append(later[0] - end)
    return sorted(gaps)


class LimitSampler:
    """Samples `read()` every `every` seconds in a thread: [(monotonic time, limit)]."""

    def __init__(
        self, read: Callable[[], float | None], every: float = 0.1, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.read, self.every, self.now = read, every, now
        self.samples: list[tuple[float, float]] = []
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="limit-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.read()
            except Exception as exc:  # noqa: BLE001 (a failed read is counted, not fatal)
                self.errors[type(exc).__name__] += 1
            else:
                if value is not None:
                    self.samples.append((self.now(), float(value)))
            self._stop.wait(self.every)

    @contextmanager
    def running(self) -> Iterator[LimitSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5)


class Burst:
    """Sends requests as the big and the small caller through a running LocalStack and reads
    what became of them. `owners` maps a caller to the API key it uses (the small caller may
    share the big one's key: its uploads then carry another owner)."""

    def __init__(self, stack: LocalStack, keys: dict[str, str], upload_owners: dict[str, str]) -> None:
        self.stack = stack
        self.sim = stack.simulator
        # the simulator's clock: request times are compared with its jobs' (scaled, if the stack is)
        self.now: Callable[[], float] = self.sim.clock
        self.keys = keys
        self.upload_owners = upload_owners
        self.run = uuid.uuid4().hex[:8]
        self.s3 = stack.client("s3")
        self.dynamodb = stack.client("dynamodb")
        self.table = stack.environment["TABLE_NAME"]
        self.sessions: dict[str, requests.Session] = {}
        for caller, key in keys.items():
            session = requests.Session()
            session.headers["x-api-key"] = key
            session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
            self.sessions[caller] = session

    # -- sending ----------------------------------------------------------------------------------
    def requests_for(self, caller: str, n: int, tag: str) -> list[Sent]:
        """n requests of a caller, API and uploads alternating (the first by the API)."""
        return [
            Sent(caller, "api" if i % 2 == 0 else "upload", f"burst {self.run} {tag} {caller} #{i}")
            for i in range(n)
        ]

    def send(self, sent: list[Sent], threads: int = 16) -> None:
        """Send the requests at once (`threads` at a time), recording each answer."""
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(self._send_one, sent))

    def _send_one(self, s: Sent) -> None:
        s.at = self.now()
        if s.via == "api":
            answer = self.sessions[s.caller].post(
                f"{self.stack.api_url}/generations", json={"model": MODEL, "prompt": s.prompt}, timeout=60
            )
            s.answered, s.status = self.now(), answer.status_code
            if answer.status_code == 202:
                s.generation_id = answer.json().get("id")
        else:
            key = f"uploads/{s.prompt.replace(' ', '-').replace('#', 'n')}.png"
            self.s3.put_object(
                Bucket=self.stack.uploads_bucket,
                Key=key,
                Body=SAMPLE_PNG,
                ContentType="image/png",
                Metadata={"prompt": s.prompt, "model": MODEL, "owner": self.upload_owners[s.caller]},
            )
            s.answered, s.status = self.now(), 200

    # -- ground truth -----------------------------------------------------------------------------
    def records(self, prompts: set[str]) -> dict[str, dict[str, Any]]:
        """The table's records of these prompts (a scan): status, id, owner, error code."""
        found: dict[str, dict[str, Any]] = {}
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table)
        for page in pages:
            for item in page.get("Items", []):
                prompt = ((item.get("request") or {}).get("M") or {}).get("prompt", {}).get("S")
                if prompt in prompts:
                    error = ((item.get("error") or {}).get("M") or {}).get("code", {}).get("S")
                    found[prompt] = {
                        "id": item["id"]["S"],
                        "status": item["status"]["S"],
                        "owner": (item.get("owner") or {}).get("S"),
                        "error": error,
                    }
        return found

    def jobs(self, prompts: set[str]) -> dict[str, list[Any]]:
        by_prompt: dict[str, list[Any]] = {}
        for job in self.sim.jobs.values():
            prompt = job.body.get("prompt")
            if prompt in prompts:
                by_prompt.setdefault(prompt, []).append(job)
        return by_prompt

    def drain(self, sent: list[Sent], started: float, timeout: float) -> Outcome:
        """Wait until every accepted request has a terminal record (uploads: a record at all)
        or `timeout` passes; what became of them."""
        prompts = {s.prompt for s in sent}
        accepted = {s.prompt for s in sent if s.accepted}
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(prompts)
            done = all(p in records and records[p]["status"] in TERMINAL for p in accepted)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ended = self.now()
        return Outcome(sent, self.jobs(prompts), records, started, ended, done)


# -- the benchmark ------------------------------------------------------------------------------
def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(values[0], 2),
        "median": round(values[len(values) // 2], 2),
        "max": round(values[-1], 2),
    }


def measure_burst(
    burst: Burst,
    *,
    cap: int,
    multiple: int,
    small: int,
    drain_timeout: float,
) -> tuple[Outcome, LimitSampler]:
    """One burst: the big caller's requests at once, then the small caller's; drained."""
    big = burst.requests_for("big", multiple * cap - small, "burst")
    little = burst.requests_for("small", small, "burst")
    sampler = LimitSampler(lambda: learned_limit(burst.stack), now=burst.now)
    with sampler.running():
        started = burst.now()
        burst.send(big)
        burst.send(little)
        outcome = burst.drain(big + little, started, drain_timeout)
    return outcome, sampler


def limit_trace(samples: list[tuple[float, float]], since: float) -> list[list[float]]:
    """The learned limit's changes: [seconds since `since`, new value]."""
    trace: list[list[float]] = []
    for at, value in samples:
        if not trace or trace[-1][1] != value:
            trace.append([round(at - since, 1), value])
    return trace


def figures(outcome: Outcome, alone: Outcome, sampler: LimitSampler, cap: int) -> dict[str, Any]:
    """The burst's figures and the measurements behind them."""
    all_jobs = [j for jobs in outcome.jobs.values() for j in jobs]
    starts = sorted(j.created for j in all_jobs)
    drain_start, drain_end = (starts[0], starts[-1]) if starts else (outcome.started, outcome.started)
    mean_running = occupancy(all_jobs, drain_start, drain_end)
    wait_burst, wait_alone = outcome.wait("small"), alone.wait("small")
    fairness = wait_burst / wait_alone if wait_burst is not None and wait_alone else None
    settle = settle_seconds(sampler.samples, cap, outcome.started)
    lost = outcome.lost()
    statuses = Counter(r["status"] for r in outcome.records.values())
    answers = Counter(f"{s.via} {s.status}" for s in outcome.sent)
    in_band = [v for t, v in sampler.samples if drain_start <= t <= drain_end]
    return {
        "burst_lost": len(lost),
        "burst_duplicate_submits": outcome.duplicate_submits(),
        "burst_capacity_utilization": mean_running / cap,
        "burst_fairness": fairness,
        "limit_settle_s": settle,
        "details": {
            "cap": cap,
            "requests": len(outcome.sent),
            "requests_by_caller": dict(Counter(s.caller for s in outcome.sent)),
            "answers": dict(sorted(answers.items())),
            "answer_s": {
                via: _summary(sorted(s.answered - s.at for s in outcome.sent if s.via == via))
                for via in ("api", "upload")
            },
            "drained": outcome.drained,
            "drain_seconds": round(outcome.ended - outcome.started, 1),
            "statuses": dict(statuses),
            "lost_reasons": dict(
                Counter(
                    outcome.records[s.prompt]["error"] or outcome.records[s.prompt]["status"]
                    if s.prompt in outcome.records
                    else ("refused " + str(s.status) if not s.accepted else "no record")
                    for s in lost
                )
            ),
            "provider_jobs": len(all_jobs),
            "provider_window_s": round(drain_end - drain_start, 2),
            "mean_running_jobs": round(mean_running, 2),
            "running_jobs_share": running_shares(all_jobs, drain_start, drain_end),
            "refill_s": _summary(refill_gaps(all_jobs)),
            "small_wait_s": None if wait_burst is None else round(wait_burst, 2),
            "small_wait_alone_s": None if wait_alone is None else round(wait_alone, 2),
            "big_wait_s": None if (w := outcome.wait("big")) is None else round(w, 2),
            "queue_wait_s": {c: _summary(outcome.queue_waits(c)) for c in ("big", "small")},
            "learned_limit_trace": limit_trace(sampler.samples, outcome.started),
            "learned_limit_samples": len(sampler.samples),
            "learned_limit_read_errors": dict(sampler.errors),
            "learned_limit_range_during_drain": [min(in_band), max(in_band)] if in_band else None,
            "learned_limit_share_within_10pct": round(
                sum(1 for v in in_band if abs(v - cap) <= SETTLE_BAND * cap) / len(in_band), 3
            )
            if in_band
            else None,
        },
    }


# Lambda runs these side by side; the local stack runs them in worker processes (one per
# concurrent invocation, local/aws/concurrency.py), bounded by the template's concurrency. Fewer
# than Lambda would (PollTimerFunction: MaximumConcurrency 20; uploads: unbounded): the machine's
# cores are the bound here, and the counts are the most the burst ever used at once (its details'
# `peak`) or more.
FUNCTION_WORKERS = {"UploadFunction": 4, "DispatcherFunction": 2, "PollTimerFunction": 4}
API_WORKERS = 4
# Wall seconds between two looks at the queues and the stream (Lambda's SQS pollers long-poll and
# deliver within a fraction of a second; the local stack's default, 0.2 s, is ~6 s scaled here).
EVENT_POLL_SECONDS = 0.05


def production_schedule() -> dict[str, str]:
    """The poll schedule's production settings (videogen.settings' defaults, which the template
    does not override), in place of the local stack's poll-at-once ones."""
    from videogen.settings import Settings

    fields = Settings.model_fields
    return {
        "FIRST_POLL_FACTOR": str(fields["first_poll_factor"].default),
        "POLL_INTERVAL_SECONDS": str(fields["poll_interval_seconds"].default),
        "POLL_TIMER_GRACE_SECONDS": str(fields["poll_timer_grace_seconds"].default),
    }


@contextmanager
def burst_stack(
    *,
    job_seconds: float,
    rate: float,
    function_workers: dict[str, int] | None = None,
    api_workers: int = API_WORKERS,
) -> Iterator[LocalStack]:
    """A throwaway local stack for the burst, playing production's time `rate` times faster
    (`ScaledClock`): two callers; the simulator's jobs `job_seconds` of wall time (job_seconds x
    rate scaled seconds); the EventBridge tick every 60 scaled seconds; the poll timers on the
    production schedule (learning each model's duration through ModelStatsTable); the
    functions Lambda runs side by side in worker processes, warmed before the burst."""
    from local.clock import ScaledClock

    clock = ScaledClock(rate)
    with (
        tempfile.TemporaryDirectory() as state,
        LocalStack(
            port=0,
            api_keys=[BIG_KEY, SMALL_KEY],
            poll_seconds=PRODUCTION_TICK_SECONDS / rate,
            timer=True,
            use_simulator=True,
            sim_default_duration=job_seconds * rate,
            env_overrides={
                **production_schedule(),
                # the handlers' lines (a throttled submit is a WARNING) would drown the table
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
            },
            state_dir=state,
            write_endpoints=False,
            clock=clock,
            api_workers=api_workers,
            function_workers=FUNCTION_WORKERS if function_workers is None else function_workers,
        ) as stack,
    ):
        poll_events_often(stack)
        stack.warm_api()
        stack.warm_functions()
        yield stack


def poll_events_often(stack: LocalStack) -> None:
    """The stack's event sources look for work every EVENT_POLL_SECONDS of wall time: on a
    scaled clock their default pause would weigh `rate` times more against a job."""
    stack.event_poll_seconds = EVENT_POLL_SECONDS
    if stack.event_sources is not None:
        stack.event_sources.poll_seconds = EVENT_POLL_SECONDS


def production_rate(job_seconds: float) -> tuple[float, float]:
    """How many times faster than production the burst plays: jobs of `job_seconds` stand for the
    median job of the schedule benchmark's mix of models; and that median."""
    import statistics

    from bench import schedule_sim

    median = statistics.median(job.duration for job in schedule_sim.make_jobs())
    return median / job_seconds, median


def invocations_summary(stack: LocalStack, before: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    """Per function during the burst: invocations, their seconds and the most at once; and the
    share of the wall time the in-process lane (functions without workers) was busy."""
    by_function = stack.invocations.since(before, stack.invocations.snapshot())
    pools = stack.worker_pools
    for name, pool in pools.items():  # the most that ran at once (the count also has the waits)
        if name in by_function:
            by_function[name]["peak"] = pool.busy_peak
    in_process = sum(v["seconds"] for name, v in by_function.items() if name not in pools)
    return {
        "by_function": by_function,
        "workers": {name: pool.size for name, pool in pools.items()},
        "in_process_busy_share": round(in_process / wall_seconds, 3) if wall_seconds > 0 else None,
    }


def bench(
    *,
    log: Callable[[str], None] = print,
    cap: int = CAP,
    multiple: int = MULTIPLE,
    small: int = SMALL,
    job_seconds: float = JOB_SECONDS,
    rate: float | None = None,
    drain_timeout: float = 300.0,
) -> dict[str, Any]:
    """`make bench`'s burst (see `measure`), with the default workers."""
    return measure(
        log=log,
        cap=cap,
        multiple=multiple,
        small=small,
        job_seconds=job_seconds,
        rate=rate,
        drain_timeout=drain_timeout,
    )


def measure(
    *,
    log: Callable[[str], None] = print,
    cap: int = CAP,
    multiple: int = MULTIPLE,
    small: int = SMALL,
    job_seconds: float = JOB_SECONDS,
    rate: float | None = None,
    drain_timeout: float = 300.0,
    function_workers: dict[str, int] | None = None,
    api_workers: int = API_WORKERS,
) -> dict[str, Any]:
    """The burst, then the small caller alone on the same stack (its baseline); the figures.
    `rate` None: production's, scaled (`production_rate`)."""
    logging.getLogger("local.stack").setLevel(logging.ERROR)
    median_job = None
    if rate is None:
        rate, median_job = production_rate(job_seconds)
    with burst_stack(
        job_seconds=job_seconds, rate=rate, function_workers=function_workers, api_workers=api_workers
    ) as stack:
        stack.simulator.configure(max_concurrent_jobs=cap)
        owners = {"big": stack.key_id(BIG_KEY), "small": stack.key_id(SMALL_KEY)}
        burst = Burst(stack, {"big": BIG_KEY, "small": SMALL_KEY}, owners)
        log(
            f"  burst: {multiple * cap} requests at once, provider cap {cap}, jobs {job_seconds:g} s "
            f"(production x{rate:.1f})"
        )
        stack.invocations.reset_peaks()
        before = stack.invocations.snapshot()
        wall_started = time.monotonic()
        outcome, sampler = measure_burst(
            burst, cap=cap, multiple=multiple, small=small, drain_timeout=drain_timeout
        )
        handlers = invocations_summary(stack, before, time.monotonic() - wall_started)
        log(f"  the small caller alone ({small} requests)")
        alone_sent = burst.requests_for("small", small, "alone")
        started = burst.now()
        burst.send(alone_sent)
        alone = burst.drain(alone_sent, started, drain_timeout)
        result = figures(outcome, alone, sampler, cap)
        result["details"].update(
            {
                "job_seconds": job_seconds,
                "rate": round(rate, 2),
                "job_scaled_s": round(job_seconds * rate, 1),
                "tick_seconds": round(PRODUCTION_TICK_SECONDS / rate, 3),
                "production_median_job_s": None if median_job is None else round(median_job, 1),
                "production_tick_s": PRODUCTION_TICK_SECONDS,
                "schedule": production_schedule(),
                "event_poll_wall_s": EVENT_POLL_SECONDS,
                "processing_overstated_x": round(rate, 2),
                "throttled_by_provider": stack.simulator.throttled,
                "alone_lost": len(alone.lost()),
                "handlers_during_burst": handlers,
            }
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=CAP)
    parser.add_argument("--multiple", type=int, default=MULTIPLE)
    parser.add_argument("--job-seconds", type=float, default=JOB_SECONDS)
    parser.add_argument(
        "--rate", type=float, default=None, help="default: production's median job / job seconds"
    )
    parser.add_argument(
        "--workers",
        default=",".join(f"{k}={v}" for k, v in FUNCTION_WORKERS.items()),
        help="functions run side by side: Function=N,... ('' = all in-process, one at a time)",
    )
    parser.add_argument("--api-workers", type=int, default=API_WORKERS)
    args = parser.parse_args(argv)
    layer = str(ROOT / "layers" / "common")  # the schedule benchmark's mix reads the catalog
    if layer not in sys.path:
        sys.path.insert(0, layer)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    result = measure(
        log=lambda m: print(m, file=sys.stderr, flush=True),
        cap=args.cap,
        multiple=args.multiple,
        job_seconds=args.job_seconds,
        rate=args.rate,
        function_workers=parse_workers(args.workers),
        api_workers=args.api_workers,
    )
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
