"""The sweep's fan-out over the due-index shards: when it happens, that every due generation is
swept exactly once whether it happens or not, that it reads nothing twice, that a failed hand-off
is swept locally; and the real poller handler invoking itself once per shard."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from local.aws.apigw import LambdaContext
from local.simulator import Simulator
from tests.unit.conftest import Clock, make_service
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_store import GenerationStore
from videogen.domain.models import Generation
from videogen.logic import fanout
from videogen.logic.schedule import PollSchedule

ROOT = Path(__file__).resolve().parents[2]
KLING = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}


class FakeIndex:
    """An in-memory due-index that counts what each query reads."""

    def __init__(self, per_shard: dict[str, int]) -> None:
        self.due_shards = len(per_shard)
        self.items = {s: [f"gen-{s}-{i}" for i in range(n)] for s, n in per_shard.items()}
        self.read: dict[str, int] = dict.fromkeys(per_shard, 0)
        self.queried: list[str] = []

    def due(self, shard: str, now: float) -> Iterator[Any]:
        self.queried.append(shard)
        for item in self.items[shard]:
            self.read[shard] += 1
            yield item


def test_the_event_names_the_shard_or_none() -> None:
    assert fanout.shard_of_event({"detail-type": "Scheduled Event"}, 4) is None
    assert fanout.shard_of_event({"shard": 3}, 4) == "3"
    assert fanout.shard_of_event({"shard": "2"}, 4) == "2"
    for bad in ({"shard": 4}, {"shard": -1}, {"shard": "x"}, {"shard": True}):
        with pytest.raises(ValueError, match="shard"):
            fanout.shard_of_event(bad, 4)


def test_a_backlog_one_invocation_can_take_is_swept_here_without_fanning_out() -> None:
    index = FakeIndex({"0": 10, "1": 9, "2": 11, "3": 10})
    calls: list[Any] = []
    plan = fanout.plan_sweep(index, 0, capacity=100, delegate=lambda shards: calls.append(shards) or [])

    swept = list(plan.generations)
    assert calls == [] and plan.delegated == []
    assert sorted(swept) == sorted(i for items in index.items.values() for i in items)  # all, once
    assert index.read == {"0": 10, "1": 9, "2": 11, "3": 10}  # each due item read once


def test_a_backlog_over_capacity_hands_every_other_shard_to_its_own_invocation() -> None:
    index = FakeIndex({"0": 40, "1": 38, "2": 41, "3": 40})
    calls: list[list[str]] = []
    plan = fanout.plan_sweep(index, 0, capacity=100, delegate=lambda shards: calls.append(list(shards)) or [])

    assert calls == [["1", "2", "3"]] and plan.delegated == ["1", "2", "3"]
    assert list(plan.generations) == index.items["0"]  # this invocation sweeps shard 0, once
    assert index.read == {"0": 40, "1": 0, "2": 0, "3": 0}  # no other shard read here
    for shard in plan.delegated:  # what each delegated invocation then does
        assert list(fanout.plan_sweep(index, 0, capacity=100, shard=shard).generations) == index.items[shard]
    assert index.read == {"0": 40, "1": 38, "2": 41, "3": 40}


def test_the_decision_reads_only_the_first_shards_share() -> None:
    index = FakeIndex({"0": 1000, "1": 1000})
    plan = fanout.plan_sweep(index, 0, capacity=100, delegate=lambda shards: [])
    assert index.read["0"] == 51  # capacity / shards + 1, before sweeping starts
    assert plan.delegated == ["1"]


def test_shards_that_could_not_be_handed_off_are_swept_here() -> None:
    index = FakeIndex({"0": 40, "1": 40, "2": 40, "3": 40})
    plan = fanout.plan_sweep(index, 0, capacity=100, delegate=lambda shards: ["2"])
    assert plan.delegated == ["1", "3"]
    assert sorted(plan.generations) == sorted(index.items["0"] + index.items["2"])


def test_one_shard_or_no_way_to_delegate_never_fans_out() -> None:
    single = FakeIndex({"0": 500})
    plan = fanout.plan_sweep(single, 0, capacity=10, delegate=lambda shards: pytest.fail("no fan-out"))
    assert len(list(plan.generations)) == 500
    several = FakeIndex({"0": 500, "1": 500})
    assert len(list(fanout.plan_sweep(several, 0, capacity=10).generations)) == 1000


def test_a_shard_invocation_never_fans_out_again() -> None:
    index = FakeIndex({"0": 500, "1": 500})
    plan = fanout.plan_sweep(index, 0, capacity=10, shard="1", delegate=lambda s: pytest.fail("no"))
    assert plan.shard == "1" and len(list(plan.generations)) == 500 and index.queried == ["1"]


def test_capacity_follows_the_configured_concurrency() -> None:
    assert fanout.capacity(32) == fanout.ROUNDS_PER_TICK * 32


# -- the real poller handler ---------------------------------------------------------------------
class FakeLambda:
    def __init__(self, fail_shards: tuple[str, ...] = ()) -> None:
        self.invocations: list[dict[str, Any]] = []
        self.fail_shards = fail_shards

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        payload = json.loads(kwargs["Payload"])
        if payload["shard"] in self.fail_shards:
            raise RuntimeError("throttled")
        self.invocations.append(kwargs)
        return {"StatusCode": 202}


def load_poller(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("_poller_under_test", ROOT / "functions/poller/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def poller_env(aws: dict[str, str], sim: Simulator) -> dict[str, str]:
    return {
        "TABLE_NAME": aws["GenerationsTable"],
        "IDEMPOTENCY_TABLE_NAME": aws["IdempotencyTable"],
        "OUTPUTS_BUCKET": aws["OutputsBucket"],
        "AIML_API_KEY_SECRET_ID": aws["AimlApiKeySecret"],
        "AIML_BASE_URL": sim.url,
        "DUE_SHARDS": "4",
        "POLL_CONCURRENCY": "1",  # capacity 40: 80 due generations fan out
        "URL_DNS_STRICT": "false",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "videogen",
        "POWERTOOLS_METRICS_NAMESPACE": "Videogen",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


def seed(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator, count: int
) -> list[Generation]:
    sim.configure(default_duration=3600)  # still generating when polled
    service = make_service(aws, client, clock, schedule=PollSchedule(first_poll_factor=0))
    return [service.submit("owner-a", KLING) for _ in range(count)]


def test_the_poller_invokes_itself_once_per_other_shard_and_each_generation_is_polled_once(
    aws: dict[str, str],
    client: AimlClient,
    clock: Clock,
    sim: Simulator,
    poller_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generations = seed(aws, client, clock, sim, 80)
    poller = load_poller(poller_env, monkeypatch)
    poller.entry().invoker.client = fake = FakeLambda()
    context = LambdaContext("videogen-poller", timeout_seconds=120)
    schedule = json.loads((ROOT / "events/poller_schedule.json").read_text())

    first = poller.lambda_handler(schedule, context)

    assert first["delegated"] == ["1", "2", "3"] and first["shard"] is None
    assert [json.loads(i["Payload"]) for i in fake.invocations] == [{"shard": s} for s in ("1", "2", "3")]
    assert {i["FunctionName"] for i in fake.invocations} == {context.invoked_function_arn}
    assert {i["InvocationType"] for i in fake.invocations} == {"Event"}  # asynchronous
    reports = [first] + [poller.lambda_handler(json.loads(i["Payload"]), context) for i in fake.invocations]
    assert all(r["delegated"] == [] for r in reports[1:])  # a shard invocation never fans out
    assert sum(r["due"] for r in reports) == 80
    store = GenerationStore(boto3.client("dynamodb"), aws["GenerationsTable"], due_shards=4)
    assert all(store.get(g.id).poll_count == 1 for g in generations)  # type: ignore[union-attr]
    assert sim.poll_count == 80


def test_a_failed_self_invoke_leaves_the_shard_to_this_invocation(
    aws: dict[str, str],
    client: AimlClient,
    clock: Clock,
    sim: Simulator,
    poller_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generations = seed(aws, client, clock, sim, 80)
    poller = load_poller(poller_env, monkeypatch)
    poller.entry().invoker.client = FakeLambda(fail_shards=("2",))

    report = poller.lambda_handler({}, LambdaContext("videogen-poller", timeout_seconds=120))

    assert report["delegated"] == ["1", "3"]
    store = GenerationStore(boto3.client("dynamodb"), aws["GenerationsTable"], due_shards=4)
    polled = {g.id for g in generations if store.get(g.id).poll_count == 1}  # type: ignore[union-attr]
    assert len(polled) == report["due"]  # shards 0 and 2, here
    assert sim.poll_count == report["due"]


def test_a_small_backlog_is_one_invocation(
    aws: dict[str, str],
    client: AimlClient,
    clock: Clock,
    sim: Simulator,
    poller_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(aws, client, clock, sim, 12)
    poller = load_poller({**poller_env, "POLL_CONCURRENCY": "8"}, monkeypatch)  # capacity 320
    poller.entry().invoker.client = fake = FakeLambda()
    report = poller.lambda_handler({}, LambdaContext("videogen-poller", timeout_seconds=120))
    assert report["due"] == 12 and report["delegated"] == [] and fake.invocations == []


def test_the_template_lets_the_poller_invoke_itself_by_name() -> None:
    from cfnlint.decode import decode_str

    template, _ = decode_str((ROOT / "template.yaml").read_text())
    props = template["Resources"]["PollerFunction"]["Properties"]
    name = props["FunctionName"]
    assert name == {"Fn::Sub": "${AWS::StackName}-poller"}  # a name, not a Ref: no circular dependency
    invoke = [
        statement["Resource"]
        for policy in props["Policies"]
        for statement in policy.get("Statement", [])
        if statement.get("Action") == "lambda:InvokeFunction"
    ]
    arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + name["Fn::Sub"]
    assert invoke == [{"Fn::Sub": arn}]  # itself, by that name, and nothing else
