"""Poll timers on the local stack: the template's PollTimerQueue and PollTimerFunction, fed by
the API's submit and by their own refreshes, complete a generation with no sweep at all, and the
shared schedule's table learns from it. The schedule waits as in production (first poll at 0.6 x
the model's time, then up to 60 s), on a scaled clock, so the timers' delays are real SQS delays
held back by moto. A stack of its own, so in a process of its own (one local stack per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from local.clock import ScaledClock
from local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
MODEL = "kling-video/v1.6/standard/text-to-video"
RATE = 10.0
JOB_SECONDS = 150.0


def probe() -> dict[str, Any]:
    """Run in the child process: one generation through the API, timers only; what happened."""
    import requests

    stack = LocalStack(
        port=0,
        timer=False,  # no EventBridge tick: only the timers poll
        use_simulator=True,
        write_endpoints=False,
        clock=ScaledClock(RATE),
        env_overrides={
            "FIRST_POLL_FACTOR": "0.6",
            "POLL_INTERVAL_SECONDS": "60",
            "POLL_TIMER_GRACE_SECONDS": "30",
            "POWERTOOLS_METRICS_DISABLED": "true",
        },
    )
    import moto.sqs.models as sqs_models

    wall_clocks = (sqs_models.unix_time, sqs_models.unix_time_millis)
    stack.event_poll_seconds = 0.05
    with stack:
        body = {"model": MODEL, "prompt": f"A paper boat on a pond [sim:duration={JOB_SECONDS}]"}
        answer = requests.post(
            f"{stack.api_url}/generations", json=body, headers={"x-api-key": stack.api_key}, timeout=30
        )
        assert answer.status_code == 202, answer.text
        generation_id = answer.json()["id"]
        dynamodb = stack.client("dynamodb")

        def item() -> dict[str, Any]:
            return dynamodb.get_item(
                TableName=stack.environment["TABLE_NAME"], Key={"id": {"S": generation_id}}
            )["Item"]

        deadline = time.monotonic() + 90
        while (
            item()["status"]["S"] not in ("completed", "failed", "timed_out") and time.monotonic() < deadline
        ):
            time.sleep(0.3)
        done = item()
        job = stack.simulator.jobs[done["provider_id"]["S"]]
        stats = dynamodb.get_item(
            TableName=stack.environment["MODEL_STATS_TABLE_NAME"], Key={"model": {"S": MODEL}}
        ).get("Item")
        seen = {
            "status": done["status"]["S"],
            "video_key": "video_key" in done,
            "completed_at": done.get("completed_at", {}).get("S"),
            "finished_at": job.created + job.duration,
            "polls": job.polls,
            "stats_count": stats["count"]["N"] if stats else None,
        }
    # stopped, the stack leaves no scaled clock behind: moto's SQS and the service's are the wall's
    import videogen.bootstrap

    seen["clocks_restored"] = (sqs_models.unix_time, sqs_models.unix_time_millis) == wall_clocks and (
        videogen.bootstrap.CLOCK is time.time
    )
    return seen


def test_a_generation_completes_by_its_timers_alone_and_the_schedule_learns() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "common")])}
    code = (
        "import json; from tests.integration.test_poll_timers_local import probe; print(json.dumps(probe()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["status"] == "completed" and seen["video_key"]
    # a handful of timed polls (the first at 0.6 x 186 s, then the schedule's), not one a second
    assert 1 <= seen["polls"] <= 8
    completed_at = datetime.fromisoformat(seen["completed_at"].replace("Z", "+00:00")).timestamp()
    assert 0 <= completed_at - seen["finished_at"] < 60  # seen after the provider finished, not long after
    assert seen["stats_count"] == "1"  # the completion reached the shared schedule
    assert seen["clocks_restored"]
