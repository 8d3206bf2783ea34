"""A big batch on the local stack against a simulator that caps the provider's concurrent jobs:
one manifest of `lines` requests (default 10,000) through POST /batches, the batch state
machine's Distributed Map on moto, the submit queue and the real handlers, the stack's own timer
playing the schedule. Not part of `make bench`'s pass/fail (docs/batches.md has its figures).

Figures, from ground truth (the simulator's jobs and the table's records):
- `batch_lost`: manifest lines that did not end as a completed generation;
- `batch_duplicate_submits`: provider jobs beyond one per line (each line's prompt is unique);
- `batch_provider_utilization`: the provider's running jobs / cap, integrated from the batch's
  first provider job to its last submit (all that time lines were waiting);
- `batch_cost_per_1000_items_usd`: the batch's own overhead per 1,000 lines, priced with
  bench/cost.py's PRICES: the BatchFunction's invocations and duration and the AWS calls it made
  (measured here, botocore calls counted as bench/cost.py does), Step Functions transitions (the
  parent's, from its history, plus each child's 3 - start, task, end - per ItemBatcher batch as
  AWS runs them). Locally each Map child takes one line (moto has no ItemBatcher,
  local/aws/statemachines.py): the BatchFunction's per-line work is measured, and priced as AWS
  runs it, `BatchItemsPerChild` lines per invocation. The work is metered on a calibration batch
  of CALIBRATION_LINES lines run first, the BatchFunction in this process (one invocation at a
  time, so the AWS calls between an invocation's start and end are its own); the measured batch
  then runs with the BatchFunction in worker processes (WORKERS), children side by side as the
  Distributed Map runs them, where calls cannot be attributed. Its work is the calibration's
  per line and step times its lines; for the Track step, the calibration's per round times the
  measured batch's rounds (from the parent execution's history), its reads and duration also
  times the lines (a round reads every line's record; its S3 and other writes do not grow).

Timing: production's, played faster, as bench/burst.py plays it: one ScaledClock at `rate` = the
median job of the schedule benchmark's mix / `job_seconds` drives the simulator's jobs, the
functions, moto's SQS delays and the EventBridge tick (60 scaled seconds); the poll timers run
on the production schedule (the settings' defaults), the dispatcher and the poll timers in
worker processes as Lambda runs them side by side. What is not scaled is the work: each invocation
weighs `rate` times more against a job than on Lambda (`details.processing_overstated_x`).

    python -m bench.batch [--lines 10000] [--cap 20] [--job-seconds 24] [--rate R]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
import warnings
from collections import Counter
from typing import Any

import requests

from bench.burst import (
    PRODUCTION_TICK_SECONDS,
    occupancy,
    poll_events_often,
    production_rate,
    production_schedule,
)
from bench.common import ROOT
from bench.cost import PRICES, Meter, Tally

MODEL = "kling-video/v1.6/standard/text-to-video"
ITEMS_PER_CHILD = 50  # the template's BatchItemsPerChild default: how AWS batches the Map's items
LINE_READS = ("dynamodb.BatchGetItem", "dynamodb.GetItem", "dynamodb.Query")  # a Track round's, per line
PRODUCTION_TRACK_SECONDS = 30  # the template's BatchTrackSeconds default
CALIBRATION_LINES = 50  # the batch run first with the BatchFunction metered in-process
# Lambda runs these side by side (the template's MaximumConcurrency: the dispatcher's 2; the
# Map's children: 4 here, 50 in AWS, as many as this 2-core machine carries)
WORKERS = {"DispatcherFunction": 2, "PollTimerFunction": 4, "BatchFunction": 4}
CHILD_TRANSITIONS = 3  # a child execution: start, its one task state, end (AWS counts the task entry)


def _run_batch(
    stack: Any, *, lines: int, tag: str, timeout: float, log: Any
) -> tuple[str, dict[str, Any], float, list[dict[str, Any]]]:
    """One manifest of `lines` unique prompts through POST /batches, followed until it ends:
    (batch id, its last GET, wall seconds, its results manifest rows)."""
    key = f"batches/{stack.key_id(stack.api_key)}/{tag}.jsonl"
    body = "".join(
        json.dumps({"model": MODEL, "prompt": f"{tag} line {n}"}) + "\n" for n in range(1, lines + 1)
    )
    stack.client("s3").put_object(Bucket=stack.uploads_bucket, Key=key, Body=body.encode())
    headers = {"x-api-key": stack.api_key}
    api = stack.api_url.rstrip("/")
    started = time.monotonic()
    created = requests.post(f"{api}/batches", json={"manifest_key": key}, headers=headers, timeout=60)
    created.raise_for_status()
    batch_id = created.json()["id"]
    batch: dict[str, Any] = {}
    last = ""
    while time.monotonic() - started < timeout:
        answer = requests.get(f"{api}/batches/{batch_id}", headers=headers, timeout=60)
        if answer.status_code != 200:  # a throttled or failed read: ask again at the next round
            log(f"  GET /batches/{batch_id}: {answer.status_code} {answer.text[:200]}")
            time.sleep(2)
            continue
        batch = answer.json()
        shown = f"{batch['status']} {json.dumps(batch['counts'], sort_keys=True)}"
        if shown != last:
            log(f"  {time.monotonic() - started:7.1f}s {shown}")
            last = shown
        if batch["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(2)
    wall = time.monotonic() - started
    results: list[dict[str, Any]] = []
    token = None
    while batch.get("status") in ("completed", "failed", "cancelled"):
        params: dict[str, Any] = {"limit": 1000, **({"next_token": token} if token else {})}
        page = requests.get(
            f"{api}/batches/{batch_id}/results", params=params, headers=headers, timeout=60
        ).json()
        results += page["items"]
        token = page.get("next_token")
        if not token:
            break
    return batch_id, batch, wall, results


def run(
    *,
    lines: int,
    cap: int,
    job_seconds: float,
    rate: float,
    timeout: float,
    log: Any,
    calibration_lines: int = CALIBRATION_LINES,
) -> dict[str, Any]:
    from local.clock import ScaledClock
    from local.stack import LocalStack

    meter = Meter()
    with (
        tempfile.TemporaryDirectory() as state,
        meter.installed(),
        LocalStack(
            port=0,
            poll_seconds=PRODUCTION_TICK_SECONDS / rate,
            timer=True,
            use_simulator=True,
            sim_default_duration=job_seconds * rate,
            parameter_overrides={"LogLevel": "ERROR", "BatchMaxConcurrency": "50", "QueueOwnerCap": "100000"},
            env_overrides={
                **production_schedule(),
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # production's 30 s between Track rounds, on the scaled clock (the Wait state
                # sleeps real seconds locally)
                "BATCH_TRACK_SECONDS": str(max(1, round(PRODUCTION_TRACK_SECONDS / rate))),
            },
            state_dir=state,
            write_endpoints=False,
            clock=ScaledClock(rate),
            function_workers=WORKERS,
        ) as stack,
    ):
        poll_events_often(stack)
        stack.warm_functions()
        assert stack.simulator is not None and stack.lambdas is not None
        stack.simulator.configure(max_concurrent_jobs=cap)
        run_tag = f"bench-{int(time.time())}"
        # 1. Calibration: the BatchFunction metered in this process (one invocation at a time),
        #    where its AWS calls and duration can be counted: the per-line work priced below.
        tables = (stack._handlers, stack.lambdas._handlers)
        in_workers = [(table, table["BatchFunction"]) for table in tables if "BatchFunction" in table]
        for table in tables:
            for name in ("BatchFunction", "ApiFunction"):
                if name in table:
                    table[name] = meter.wrap(name, table[name])
        calibration_id, calibration, _, _ = _run_batch(
            stack, lines=calibration_lines, tag=f"{run_tag}-calibration", timeout=timeout, log=log
        )
        if calibration.get("status") != "completed":
            raise RuntimeError(f"calibration batch {calibration_id} ended {calibration.get('status')}")
        calibration_steps = {
            label.split(".", 1)[1]: tally
            for label, tally in meter.by_label.items()
            if label.startswith("BatchFunction.")
        }
        # 2. The measured batch: the BatchFunction back in its worker processes, children side
        #    by side as the Distributed Map runs them in AWS.
        for table, handler in in_workers:
            table["BatchFunction"] = handler
        log(f"  {lines} lines, provider cap {cap}, jobs {job_seconds:g} s")
        tag = f"{run_tag}-measured"
        batch_id, batch, wall, results = _run_batch(stack, lines=lines, tag=tag, timeout=timeout, log=log)
        jobs = [
            job for job in stack.simulator.jobs.values() if str(job.body.get("prompt", "")).startswith(tag)
        ]
        prompts = [job.body["prompt"] for job in jobs]
        throttled = dict(stack.simulator.throttled)  # the provider's 429s, by cause
        completed = sum(1 for row in results if row["status"] == "completed")
        first = min(job.created for job in jobs) if jobs else 0.0
        last_submit = max(job.created for job in jobs) if jobs else 0.0
        sfn = stack.client("stepfunctions")
        machine = stack.state_machines["BatchStateMachine"]
        execution = f"{machine.replace(':stateMachine:', ':execution:')}:{batch_id}-run1"
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        parent_transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
        parent_tasks = sum(1 for e in events if e["type"] == "TaskStateEntered")
        track_rounds = sum(
            1
            for e in events
            if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "Track"
        )
    # The BatchFunction's work and AWS calls, from the calibration: each step's per line, times
    # the batch's lines; the Track step's per line and round, times the batch's lines and rounds.
    work = Tally()
    per_line = lines / calibration_lines
    for step, tally in calibration_steps.items():
        if step != "track":
            work.add(tally.scaled(per_line))
            continue
        # A Track round reads every line's record (its reads and duration grow with the lines)
        # and writes the results manifest and the batch (a few requests whatever the lines).
        rounds = tally.scaled(track_rounds / max(tally.lambda_calls[f"BatchFunction.{step}"], 1))
        rounds.calls = Counter(
            {op: n * per_line if op in LINE_READS else n for op, n in rounds.calls.items()}
        )
        rounds.rru *= per_line
        rounds.lambda_ms = Counter({k: v * per_line for k, v in rounds.lambda_ms.items()})
        work.add(rounds)
    calls = work.calls
    # enqueue children as AWS batches them + the parent's tasks
    invocations_aws = math.ceil(lines / ITEMS_PER_CHILD) + parent_tasks
    transitions_aws = parent_transitions + CHILD_TRANSITIONS * math.ceil(lines / ITEMS_PER_CHILD)
    per_line_ms = sum(work.lambda_ms.values()) / lines
    dynamo_wru, dynamo_rru = work.wru, work.rru
    s3_put = sum(n for op, n in calls.items() if op in ("s3.PutObject",))
    s3_get = sum(n for op, n in calls.items() if op.startswith("s3.")) - s3_put
    sqs = sum(n for op, n in calls.items() if op.startswith("sqs."))
    gb = 1024 / 1024  # BatchFunction's MemorySize
    cost = (
        invocations_aws * PRICES["lambda_request"]
        + per_line_ms * lines / 1000 * gb * PRICES["lambda_gb_second"]
        + transitions_aws * PRICES["sfn_transition"]
        + dynamo_wru * PRICES["dynamodb_wru"]
        + dynamo_rru * PRICES["dynamodb_rru"]
        + s3_put * PRICES["s3_put"]
        + s3_get * PRICES["s3_get"]
        + sqs * PRICES["sqs_request"]
    )
    return {
        "batch_lost": lines - completed,
        "batch_duplicate_submits": len(prompts) - len(set(prompts)),
        "batch_provider_utilization": round(occupancy(jobs, first, last_submit) / cap, 3) if jobs else 0.0,
        "batch_cost_per_1000_items_usd": round(cost / lines * 1000, 4),
        "details": {
            "lines": lines,
            "status": batch.get("status"),
            "cap": cap,
            "job_seconds": job_seconds,
            "rate": round(rate, 2),
            "job_scaled_s": round(job_seconds * rate, 1),
            "tick_seconds": round(PRODUCTION_TICK_SECONDS / rate, 3),
            "processing_overstated_x": round(rate, 2),
            "wall_seconds": round(wall, 1),
            "calibration_lines": calibration_lines,
            "track_rounds": track_rounds,
            "provider_jobs": len(prompts),
            "throttled_by_provider": throttled,
            "parent_transitions": parent_transitions,
            "per_1000": {
                "batch_function_ms_local": round(per_line_ms * 1000),
                "lambda_invocations_aws": round(invocations_aws / lines * 1000, 1),
                "sfn_transitions_aws": round(transitions_aws / lines * 1000, 1),
                "dynamodb_wru": round(dynamo_wru / lines * 1000, 1),
                "dynamodb_rru": round(dynamo_rru / lines * 1000, 1),
                "dynamodb_calls": {
                    op: round(n / lines * 1000, 1) for op, n in calls.items() if op.startswith("dynamodb.")
                },
                "s3_requests": round((s3_put + s3_get) / lines * 1000, 1),
                "sqs_requests": round(sqs / lines * 1000, 1),
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--job-seconds", type=float, default=24.0, help="wall seconds per job")
    parser.add_argument(
        "--rate", type=float, default=None, help="default: production's median job / job seconds"
    )
    parser.add_argument("--timeout", type=float, default=7200.0)
    args = parser.parse_args(argv)
    layer = str(ROOT / "layers" / "common")
    if layer not in sys.path:
        sys.path.insert(0, layer)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("local.stack").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    sys.setrecursionlimit(20_000)  # moto's Map worker recurses once per item it takes
    rate = args.rate if args.rate is not None else production_rate(args.job_seconds)[0]
    result = run(
        lines=args.lines,
        cap=args.cap,
        job_seconds=args.job_seconds,
        rate=rate,
        timeout=args.timeout,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, indent=2))
    ok = result["batch_lost"] == 0 and result["batch_duplicate_submits"] == 0
    return 0 if ok and result["batch_provider_utilization"] >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
