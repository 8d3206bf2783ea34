"""Fixtures for service-level tests: DynamoDB and S3 are moto (in-process, created from
template.yaml), the provider is the project's simulator on loopback reached by the real client."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.aws.cfn import Template
from local.aws.moto_dynamodb import make_dynamodb_writes_atomic
from local.clock import Clock
from local.simulator import Simulator
from tests.templates import deployed_template, source_template
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_queue import DynamoQueue, DynamoSemaphore
from videogen.adapters.dynamodb_store import GenerationStore
from videogen.adapters.s3_archive import OutputArchive
from videogen.adapters.url_safety import check_callback_url, check_image_reference
from videogen.domain.capacity import CapacityRules
from videogen.domain.limits import MAX_INLINE_IMAGE_BYTES
from videogen.logic.queue import QueueSettings, SlotKeeper, SubmitQueue
from videogen.logic.schedule import PollSchedule
from videogen.logic.service import GenerationService

ROOT = Path(__file__).resolve().parents[2]
SIM_KEY = "sk-test-0123456789abcdef"
POLL_RETRIES = 2


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    """template.yaml as written (tests/templates.py), a copy per test module."""
    return copy.deepcopy(source_template())


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    """template.yaml after the SAM transform (tests/templates.py), a copy per test module."""
    return copy.deepcopy(deployed_template())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    make_dynamodb_writes_atomic()  # conditional writes as atomic as DynamoDB's, under threads too
    with mock_aws():
        template = Template(ROOT / "template.yaml")
        created = template.create_resources(
            boto3.Session(), None, secret_values={"AimlApiKeySecret": SIM_KEY}
        )
        yield {lid: res.physical_name for lid, res in created.items()}


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    with Simulator(api_key=SIM_KEY, default_duration=0.3) as sim:
        yield sim


@pytest.fixture
def sim(simulator: Simulator) -> Simulator:
    simulator.reset()
    simulator.configure(default_duration=0.3)
    return simulator


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(sim: Simulator) -> AimlClient:
    return AimlClient(
        sim.url,
        lambda: SIM_KEY,
        connect_timeout=1,
        submit_read_timeout=1,
        poll_read_timeout=1,
        poll_retries=POLL_RETRIES,
        backoff_factor=0.01,
    )


@pytest.fixture
def service(aws: dict[str, str], client: AimlClient, clock: Clock) -> GenerationService:
    return make_service(aws, client, clock)


class RecordingWaker:
    """A Waker that remembers its wake-ups (tests run the dispatcher themselves)."""

    def __init__(self) -> None:
        self.wakeups: list[int] = []

    def wake(self, delay_seconds: int = 0) -> None:
        self.wakeups.append(delay_seconds)


def make_queue(
    aws: dict[str, str],
    clock: Any,
    *,
    rules: CapacityRules | None = None,
    settings: QueueSettings | None = None,
    waker: Any = None,
) -> SubmitQueue:
    """The submit queue on moto's QueueTable (created from template.yaml)."""
    rules = rules or CapacityRules(floor=1, ceiling=20, initial=4, increase_after=2)
    settings = settings or QueueSettings(
        owner_cap=50, deadline_seconds=3600, claim_seconds=60, job_lease_seconds=600
    )
    dynamodb = boto3.client("dynamodb")
    return SubmitQueue(
        DynamoQueue(dynamodb, aws["QueueTable"]),
        SlotKeeper(DynamoSemaphore(dynamodb, aws["QueueTable"], rules), rules, settings, clock),
        waker if waker is not None else RecordingWaker(),
        settings=settings,
    )


def make_service(aws: dict[str, str], provider: Any, clock: Clock, **overrides: Any) -> GenerationService:
    options: dict[str, Any] = {
        "store": GenerationStore(boto3.client("dynamodb"), aws["GenerationsTable"], due_shards=4),
        "provider": provider,
        "archive": OutputArchive(boto3.client("s3"), aws["OutputsBucket"]),
        "schedule": PollSchedule(first_poll_factor=0, interval_seconds=0),
        "max_age_seconds": 600,
        "submit_grace_seconds": 60,
        "concurrency": 8,
        "clock": clock,
        # DNS is not reachable in tests: IP literals and names are still checked, unresolvable ones pass.
        "check_image_url": functools.partial(
            check_image_reference, strict_dns=False, max_data_bytes=MAX_INLINE_IMAGE_BYTES
        ),
        "check_callback_url": functools.partial(check_callback_url, strict_dns=False),
    }
    options.update(overrides)
    if "queue" not in options:
        options["queue"] = make_queue(aws, clock)
    return GenerationService(**options)


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
