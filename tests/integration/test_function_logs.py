"""The local stack's function logs, end to end: a stack with a log directory (in a process of
its own: one local stack per process, and the suite's is running) takes a submit through the API,
the dispatcher and a poll timer or sweep to completion; each function's file then holds its log
lines, every one about the generation naming it, its EMF metric lines and Lambda's own line,
and the dashboard's picture is drawn from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ops import render
from tests.templates import ROOT

pytestmark = pytest.mark.integration

SCRIPT = """
import json, sys, time
import requests
from local.stack import LocalStack

with LocalStack(port=0, timer=False, use_simulator=True, sim_default_duration=0.2,
                parameter_overrides={"LogLevel": "INFO"},
                env_overrides={"FIRST_POLL_FACTOR": "0", "POLL_INTERVAL_SECONDS": "0"},
                state_dir=sys.argv[1], write_endpoints=False, log_dir=sys.argv[2]) as stack:
    headers = {"x-api-key": stack.api_key}
    body = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "a fox"}
    created = requests.post(f"{stack.api_url}/generations", headers=headers, json=body, timeout=30).json()
    for _ in range(50):
        time.sleep(0.3)
        stack.poll_now()
        got = requests.get(f"{stack.api_url}/generations/{created['id']}", headers=headers, timeout=30).json()
        if got["status"] == "completed":
            break
print("OUTCOME", json.dumps({"id": created["id"], "status": got["status"]}))
"""


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_generations_lines_and_metrics_land_in_its_functions_files(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "state"), str(logs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'layers' / 'common'}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the stack's functions log to stdout too, from its threads: the outcome is the marked line
    [outcome_line] = [line for line in result.stdout.splitlines() if line.startswith("OUTCOME ")]
    outcome = json.loads(outcome_line.removeprefix("OUTCOME "))
    assert outcome["status"] == "completed"
    assert "GenerationsSubmitted" not in result.stdout  # EMF lines go to the files only

    def lines(*functions: str) -> list[dict]:
        return [r for f in functions if (logs / f"{f}.log").exists() for r in records(logs / f"{f}.log")]

    def said(message: str, *functions: str) -> list[dict]:
        return [r for r in lines(*functions) if r.get("message") == message]

    # Each step's line is in the file of the function that took it: the API accepts (pending),
    # the dispatcher submits, a poll timer or the sweep sees the completion.
    accepted = said("generation accepted", "ApiFunction")
    submitted = said("generation submitted", "DispatcherFunction")
    completed = said("generation completed", "PollTimerFunction", "PollerFunction")
    assert accepted and submitted and completed
    assert {r.get("generation_id") for r in accepted + submitted + completed} == {outcome["id"]}
    everything = lines(*(p.stem for p in logs.glob("*.log")))
    assert {r["generation_id"] for r in everything if r.get("generation_id")} == {outcome["id"]}
    poller = lines("PollerFunction")
    names = json.loads((logs / "names.json").read_text())
    assert any(r.get("FunctionName") == names["PollerFunction"] and r["Errors"] == 0 for r in poller)

    drawn = {p.title: p for p in render.render(logs, tmp_path / "dashboard.png", period=3600)}
    totals = {s.label: sum(s.values) for s in drawn["Generations"].series if s.values}
    assert totals == {"submitted": 1, "completed": 1}
    assert drawn["Function duration (p95)"].has_data
