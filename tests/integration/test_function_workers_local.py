"""The local stack's functions in worker processes (LocalStack(function_workers=...)): uploads are
handled side by side, the dispatcher is bounded by its queue's MaximumConcurrency from the
template (2, though 5 were asked for), and every generation still completes through the real
handlers, on a scaled clock that reaches the workers. A stack of its own, so in a process of its
own (one local stack per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local.clock import ScaledClock
from local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PNG = ROOT / "local" / "assets" / "upload-sample.png"
UPLOADS = 6


def probe() -> dict[str, Any]:
    """Run in the child process: six uploads at once with workers; what the pools saw."""
    stack = LocalStack(
        port=0,
        poll_seconds=0.5,
        use_simulator=True,
        sim_default_duration=20.0,  # scaled seconds: 2 wall seconds
        write_endpoints=False,
        clock=ScaledClock(10.0),
        function_workers={"UploadFunction": 2, "DispatcherFunction": 5, "PollTimerFunction": 2},
        env_overrides={"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"},
    )
    with stack:
        s3 = stack.client("s3")
        body = SAMPLE_PNG.read_bytes()
        run = str(time.time_ns())
        for n in range(UPLOADS):
            s3.put_object(
                Bucket=stack.uploads_bucket,
                Key=f"uploads/workers-{run}-{n}.png",
                Body=body,
                ContentType="image/png",
                Metadata={"prompt": f"workers {run} {n}", "model": "video-01"},
            )
        dynamodb, table = stack.client("dynamodb"), stack.environment["TABLE_NAME"]
        deadline = time.monotonic() + 120
        statuses: list[str] = []
        while time.monotonic() < deadline:
            items = dynamodb.scan(TableName=table)["Items"]
            statuses = [i["status"]["S"] for i in items if f"workers {run}" in json.dumps(i)]
            if len(statuses) == UPLOADS and set(statuses) <= {"completed", "failed"}:
                break
            time.sleep(0.5)
        pools = stack.worker_pools
        counts = stack.invocations.snapshot()
        return {
            "statuses": statuses,
            "sizes": {name: pool.size for name, pool in pools.items()},
            "busy_peaks": {name: pool.busy_peak for name, pool in pools.items()},
            "started": {name: pool.started for name, pool in pools.items()},
            "calls": counts["calls"],
            "submits": stack.simulator.state()["submit_count"],
        }


def test_uploads_run_side_by_side_and_the_dispatcher_within_its_maximum_concurrency() -> None:
    code = (
        "import json; from tests.integration.test_function_workers_local import probe; "
        "print(json.dumps(probe()))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "common")])}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["statuses"] == ["completed"] * UPLOADS, seen
    assert seen["submits"] == UPLOADS  # each paid for once
    assert seen["sizes"] == {"UploadFunction": 2, "DispatcherFunction": 2, "PollTimerFunction": 2}
    assert seen["busy_peaks"]["UploadFunction"] == 2, seen  # two uploads at once, never more
    assert 1 <= seen["busy_peaks"]["DispatcherFunction"] <= 2
    assert seen["calls"]["UploadFunction"] == UPLOADS, seen
