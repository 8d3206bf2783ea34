"""The local stack runs side by side what Lambda would (local/aws/concurrency.py, pollers.py,
api_workers.py): an SQS source's batches overlap up to its MaximumConcurrency and never beyond,
the template's bounds are read from the template, and a scaled clock reaches worker processes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.aws.api_workers import FunctionWorkers
from local.aws.cfn import Template
from local.aws.concurrency import InvocationStats, parse_workers, template_bound
from local.aws.pollers import EventSourcePoller
from local.clock import ScaledClock

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  WakeQueue:
    Type: AWS::SQS::Queue
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Events:
        Wakes:
          Type: SQS
          Properties:
            Queue: !GetAtt WakeQueue.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 2
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def template(tmp_path: Path, aws: None) -> Template:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    template = Template(tmp_path / "template.yaml")
    template.create_resources(boto3.Session(region_name=REGION), None)  # type: ignore[arg-type]
    return template


class SlowFunction:
    """An invoke that takes `seconds` per batch and records when each ran."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.intervals: list[tuple[float, float]] = []
        self.bodies: list[str] = []

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        started = time.monotonic()
        time.sleep(self.seconds)
        with self.lock:
            self.intervals.append((started, time.monotonic()))
            self.bodies += [r["body"] for r in event["Records"]]
        return {"batchItemFailures": []}


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def send(template: Template, count: int) -> str:
    url = template.resources["WakeQueue"].ref
    sqs = boto3.client("sqs")
    for n in range(count):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    return str(url)


def run_poller(template: Template, function: SlowFunction, concurrency: dict[str, int]) -> EventSourcePoller:
    poller = EventSourcePoller(
        template,
        template.functions(),
        function,
        lambda service: boto3.client(service),
        poll_seconds=0.01,
        concurrency=concurrency,
    )
    poller.pump(timeout=30)
    poller.stop()
    return poller


def test_an_sqs_sources_batches_overlap_up_to_its_maximum_concurrency_never_beyond(
    template: Template,
) -> None:
    """Five workers offered, MaximumConcurrency 2 in the template: two batches at once, never
    three; every message handled once and deleted; pump() returns only when all have run."""
    url = send(template, 8)
    function = SlowFunction(0.3)

    poller = run_poller(template, function, {"SlowFunction": 5})

    assert most_at_once(function.intervals) == 2
    assert sorted(json.loads(b)["n"] for b in function.bodies) == list(range(8))
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    (source,) = poller.sources
    assert source.peak == 2  # type: ignore[union-attr]


def test_without_workers_a_source_runs_one_batch_at_a_time(template: Template) -> None:
    send(template, 4)
    function = SlowFunction(0.1)

    run_poller(template, function, {})

    assert most_at_once(function.intervals) == 1 and len(function.bodies) == 4


def test_the_templates_bounds_are_lambdas() -> None:
    """DispatcherFunction: its queue's MaximumConcurrency (2); PollTimerFunction: 20; the uploads
    (S3 notifications) and the API: no bound in the template."""
    template = Template(ROOT / "template.yaml")
    assert template_bound(template, "DispatcherFunction") == 2
    assert template_bound(template, "PollTimerFunction") == 20
    assert template_bound(template, "UploadFunction") is None
    assert template_bound(template, "ApiFunction") is None


def test_workers_are_named_function_equals_count() -> None:
    assert parse_workers(" UploadFunction=4, DispatcherFunction=2 ,") == {
        "UploadFunction": 4,
        "DispatcherFunction": 2,
    }
    assert parse_workers("") == {} and parse_workers(None) == {}
    with pytest.raises(ValueError, match="Function=N"):
        parse_workers("UploadFunction")


def test_a_scaled_clock_reaches_the_worker_processes(tmp_path: Path) -> None:
    """A function in a worker process reads the stack's scaled clock (videogen.bootstrap.CLOCK),
    not the wall clock: the timeliness and burst benchmarks' waits are all on one clock."""
    (tmp_path / "app.py").write_text(
        "import videogen.bootstrap as bootstrap\n\n"
        "def handler(event, context):\n    return bootstrap.CLOCK()\n"
    )
    clock = ScaledClock(1000.0, origin=time.time() - 10)
    pool = FunctionWorkers(
        module_file=tmp_path / "app.py",
        handler_name="handler",
        context={"function_name": "clock", "memory_limit_in_mb": 128, "timeout_seconds": 5},
        size=1,
        env=dict(os.environ),
        paths=[str(ROOT), str(ROOT / "layers" / "common")],
        cwd=ROOT,
        clock=clock,
    )
    try:
        seen = pool.invoke({})
    finally:
        pool.close()
    assert abs(seen - clock()) < 1000 * 5  # within 5 wall seconds of the scaled clock
    assert seen - time.time() > 9000  # ten wall seconds since its origin: ~10,000 scaled


def test_invocation_stats_count_calls_seconds_and_the_most_at_once() -> None:
    stats = InvocationStats()
    gate = threading.Barrier(3)

    def call() -> None:
        with stats.timing("F"):
            gate.wait(5)
            time.sleep(0.05)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    before = {"calls": {}, "seconds": {}, "peak": {}}
    assert stats.since(before, stats.snapshot())["F"]["calls"] == 3
    assert stats.peak["F"] == 3 and stats.seconds["F"] >= 0.15
