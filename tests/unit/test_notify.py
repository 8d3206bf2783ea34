"""Completion events, exactly once per terminal transition: the service writes to DynamoDB (moto,
stream on, from template.yaml), the local stack's stream poller hands the records to the notifier
under Powertools batch, and a queue subscribed to the bus counts what EventBridge received.
Redelivered batches, failed PutEvents / SendMessage calls and racing sweeps are injected."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from botocore.exceptions import ClientError

from local.aws.pollers import _StreamSource
from local.simulator import Simulator
from tests.unit.conftest import ROOT, Clock, make_service, wait_until
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_store import generation_from_item
from videogen.domain.models import GenerationError, Source, Status
from videogen.entrypoints.idempotency import idempotent_once
from videogen.logic.notify import Notifier, terminal_transition
from videogen.logic.service import GenerationService

T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}


class Metrics:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


class Outbox:
    """The notifier wired to moto's bus and webhook queue, fed from the table's stream."""

    def __init__(self, aws: dict[str, str]) -> None:
        self.aws = aws
        self.sqs = boto3.client("sqs")
        self.events_client: Any = boto3.client("events")
        self.sqs_client: Any = self.sqs
        self.tap = self.sqs.create_queue(QueueName="events-tap")["QueueUrl"]
        tap_arn = self.sqs.get_queue_attributes(QueueUrl=self.tap, AttributeNames=["QueueArn"])["Attributes"]
        events = boto3.client("events")
        events.put_rule(
            Name="tap", EventBusName=aws["EventBus"], EventPattern=json.dumps({"source": ["videogen"]})
        )
        events.put_targets(
            Rule="tap", EventBusName=aws["EventBus"], Targets=[{"Id": "tap", "Arn": tap_arn["QueueArn"]}]
        )
        self.webhook_queue = self.sqs.get_queue_url(QueueName=aws["WebhookQueue"])["QueueUrl"]
        self.stream_arn = boto3.client("dynamodb").describe_table(TableName=aws["GenerationsTable"])["Table"][
            "LatestStreamArn"
        ]
        self.metrics = Metrics()
        once, _ = idempotent_once(
            table_name=aws["IdempotencyTable"], dynamodb_client=boto3.client("dynamodb")
        )
        self.notifier = Notifier(
            events=_Proxy(lambda: self.events_client),
            sqs=_Proxy(lambda: self.sqs_client),
            event_bus_name=aws["EventBus"],
            webhook_queue_url=self.webhook_queue,
            outputs_bucket=aws["OutputsBucket"],
            once=once,
            decode=generation_from_item,
            metrics=self.metrics,
        )
        self.stream = self.reader()
        self.batches = 0

    def reader(self) -> _StreamSource:
        """A poller from the start of the stream (a second one replays every record: redelivery)."""
        props = {"Stream": self.stream_arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 25}
        return _StreamSource("NotifierFunction", props, boto3.client("dynamodbstreams"), "us-east-1")

    def deliver(self, source: _StreamSource | None = None) -> None:
        processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

        def record_handler(record: Any) -> None:
            self.notifier.handle(record.raw_event)

        def invoke(_: str, event: dict[str, Any]) -> Any:
            self.batches += 1
            return process_partial_response(event=event, record_handler=record_handler, processor=processor)

        for _ in range(50):
            if not (source or self.stream).poll(invoke, []):
                return
        raise AssertionError("the stream never drained")

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(QueueUrl=self.tap, MaxNumberOfMessages=10).get("Messages"):
            found += [json.loads(m["Body"]) for m in messages]
            for m in messages:
                self.sqs.delete_message(QueueUrl=self.tap, ReceiptHandle=m["ReceiptHandle"])
        return found

    def webhooks(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.webhook_queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


class _Proxy:
    """Stands for a client the test can swap for a faulty one."""

    def __init__(self, get: Callable[[], Any]) -> None:
        self._get = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


@pytest.fixture
def outbox(aws: dict[str, str]) -> Outbox:
    return Outbox(aws)


def sweep_until_terminal(service: GenerationService, generation_id: str) -> Any:
    def done() -> Any:
        service.sweep(lambda: 60_000)
        current = service.store.get(generation_id)
        return current if current and current.is_terminal else None

    return wait_until(done, timeout=5.0)


def test_one_event_per_terminal_status_even_when_the_stream_is_redelivered(
    outbox: Outbox, service: GenerationService, sim: Simulator, clock: Clock
) -> None:
    completed = service.submit("owner-a", {**T2V, "callback_url": "https://hooks.example.com/videogen"})
    failed = service.submit("owner-a", {**T2V, "prompt": "[sim:error] a fox"})
    cancelled = service.submit("owner-b", T2V)
    service.cancel("owner-b", cancelled.id)
    sweep_until_terminal(service, completed.id)
    sweep_until_terminal(service, failed.id)
    timed_out = service.submit("owner-a", T2V)
    clock.advance(service.max_age_seconds + 1)
    sweep_until_terminal(service, timed_out.id)
    rejected = service.record_rejected(
        "owner-c",
        generation_id="gen_rejected",
        model="video-01",
        request={"prompt": "x"},
        error=GenerationError(code="upload_not_an_image", message="not an image"),
        source=Source.S3,
        callback_url="https://hooks.example.com/uploads",  # the uploader hears of the rejection
    )

    outbox.deliver()
    outbox.deliver(outbox.reader())  # every record again, as a retried batch would bring them
    events = outbox.events()

    by_id = {e["detail"]["id"]: e for e in events}
    assert len(events) == len(by_id) == 5  # exactly one each
    expected = {
        completed.id: ("Generation Completed", "completed"),
        failed.id: ("Generation Failed", "failed"),
        cancelled.id: ("Generation Cancelled", "cancelled"),
        timed_out.id: ("Generation Timed Out", "timed_out"),
        rejected.id: ("Generation Failed", "failed"),
    }
    assert {i: (e["detail-type"], e["detail"]["status"]) for i, e in by_id.items()} == expected
    assert all(e["source"] == "videogen" for e in events)
    done = by_id[completed.id]["detail"]
    assert done["owner"] == "owner-a" and done["model"] == T2V["model"] and done["error"] is None
    assert done["video"] == {"bucket": outbox.aws["OutputsBucket"], "key": f"videos/{completed.id}.mp4"}
    assert boto3.client("s3").head_object(**{k.title(): v for k, v in done["video"].items()})
    assert by_id[failed.id]["detail"]["error"]["code"] == "provider_failed"
    assert by_id[failed.id]["detail"]["video"] is None
    assert by_id[cancelled.id]["detail"]["owner"] == "owner-b"
    assert by_id[timed_out.id]["detail"]["error"]["code"] == "timed_out"
    # each generation with a callback_url has one webhook queued, under a stable id
    webhooks = {w["generation_id"]: w for w in outbox.webhooks()}
    assert sorted(webhooks) == sorted([completed.id, rejected.id])
    assert json.loads(webhooks[rejected.id]["payload"])["type"] == "generation.failed"
    webhook = webhooks[completed.id]
    assert webhook["webhook_id"] == f"msg_{completed.id}_completed"
    assert webhook["url"] == "https://hooks.example.com/videogen"
    payload = json.loads(webhook["payload"])
    assert payload["type"] == "generation.completed" and payload["data"] == done
    assert outbox.metrics.counts == {"EventsPublished": 5, "WebhooksQueued": 2}


def test_three_racing_sweeps_end_each_generation_once_and_publish_once(
    outbox: Outbox, aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    sweepers = [make_service(aws, client, clock) for _ in range(3)]
    ids = [sweepers[0].submit("owner-a", T2V).id for _ in range(4)]
    wait_until(lambda: all(job["status"] == "completed" for job in sim.state()["jobs"]), timeout=5)
    start = threading.Barrier(len(sweepers))

    reports: list[Any] = []

    def sweep(service: GenerationService) -> None:
        start.wait()
        reports.append(service.sweep(lambda: 60_000))

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.outcomes.get("completed", 0) for r in reports) == len(ids)  # one winner each
    assert all(sweepers[0].store.get(i).status is Status.COMPLETED for i in ids)  # type: ignore[union-attr]

    records = _all_records(outbox)
    transitions = [
        g.id for g in (terminal_transition(r, generation_from_item) for r in records) if g is not None
    ]
    assert sorted(transitions) == sorted(ids)  # the conditional writes let one writer end each
    outbox.deliver()
    events = outbox.events()
    assert sorted(e["detail"]["id"] for e in events) == sorted(ids)
    assert {e["detail-type"] for e in events} == {"Generation Completed"}


def _all_records(outbox: Outbox) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    outbox.reader().poll(lambda _, event: seen.extend(event["Records"]), [])
    return seen


def test_a_refused_event_is_retried_and_published_once(outbox: Outbox, service: GenerationService) -> None:
    generation = service.submit("owner-a", T2V)
    service.cancel("owner-a", generation.id)
    real = outbox.events_client

    class Refusing:
        calls = 0

        def put_events(self, **kwargs: Any) -> Any:
            Refusing.calls += 1
            if Refusing.calls == 1:
                return {
                    "FailedEntryCount": 1,
                    "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "x"}],
                }
            return real.put_events(**kwargs)

    outbox.events_client = Refusing()
    outbox.deliver()

    assert Refusing.calls == 2  # reported as a batch item failure, then retried
    assert [e["detail"]["id"] for e in outbox.events()] == [generation.id]
    assert outbox.metrics.counts == {"EventPublishErrors": 1, "EventsPublished": 1}


def test_a_failed_webhook_hand_off_is_retried_without_publishing_the_event_again(
    outbox: Outbox, service: GenerationService
) -> None:
    generation = service.submit("owner-a", {**T2V, "callback_url": "https://hooks.example.com/x"})
    service.cancel("owner-a", generation.id)
    real = outbox.sqs_client

    class Failing:
        calls = 0

        def send_message(self, **kwargs: Any) -> Any:
            Failing.calls += 1
            if Failing.calls == 1:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "SendMessage")
            return real.send_message(**kwargs)

    outbox.sqs_client = Failing()
    outbox.deliver()

    assert Failing.calls == 2
    assert [e["detail"]["id"] for e in outbox.events()] == [generation.id]
    assert [w["webhook_id"] for w in outbox.webhooks()] == [f"msg_{generation.id}_cancelled"]
    assert outbox.metrics.counts == {"EventsPublished": 1, "WebhooksQueued": 1}


def test_only_writes_that_end_a_generation_are_transitions() -> None:
    def record(name: str, old: str | None, new: str | None) -> dict[str, Any]:
        image = lambda s: {  # noqa: E731
            "id": {"S": "gen_1"},
            "owner": {"S": "o"},
            "status": {"S": s},
            "model": {"S": "video-01"},
            "request": {"M": {}},
            "created_at": {"S": "2026-01-01T00:00:00.000Z"},
            "updated_at": {"S": "2026-01-01T00:00:00.000Z"},
            "created_epoch": {"N": "0"},
        }
        images = {k: image(v) for k, v in (("OldImage", old), ("NewImage", new)) if v}
        return {"eventName": name, "dynamodb": images}

    assert (
        terminal_transition(record("MODIFY", "generating", "completed"), generation_from_item).status
        is Status.COMPLETED
    )  # type: ignore[union-attr]
    assert terminal_transition(record("INSERT", None, "failed"), generation_from_item) is not None
    assert terminal_transition(record("MODIFY", "queued", "generating"), generation_from_item) is None
    assert (
        terminal_transition(record("MODIFY", "completed", "completed"), generation_from_item) is None
    )  # a later write
    assert terminal_transition(record("REMOVE", "completed", None), generation_from_item) is None


def test_the_sample_stream_event_is_one_completion_with_its_webhook() -> None:
    """events/notifier_stream_completed.json (also for `sam local invoke NotifierFunction`),
    through the notifier with in-memory fakes: what it puts and queues, and a repeat doing nothing."""
    sample = json.loads((ROOT / "events" / "notifier_stream_completed.json").read_text())
    put: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    done: dict[tuple[str, str, str], dict[str, Any]] = {}

    class FakeEvents:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            put.extend(Entries)
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}

    class FakeSqs:
        def send_message(self, **kwargs: Any) -> dict[str, Any]:
            sent.append(kwargs)
            return {"MessageId": "m-1"}

    def once(step: str, generation: Any, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = (step, generation.id, generation.status.value)
        if key not in done:
            done[key] = action()
        return done[key]

    notifier = Notifier(
        events=FakeEvents(),
        sqs=FakeSqs(),
        event_bus_name="videogen-events",
        webhook_queue_url="https://sqs/webhooks",
        outputs_bucket="outputs",
        once=once,
        decode=generation_from_item,
        metrics=Metrics(),
    )
    (record,) = sample["Records"]
    assert notifier.handle(record) and notifier.handle(record)

    (entry,) = put
    assert entry["Source"] == "videogen" and entry["DetailType"] == "Generation Completed"
    assert entry["EventBusName"] == "videogen-events"
    detail = json.loads(entry["Detail"])
    assert detail["video"] == {"bucket": "outputs", "key": "videos/gen_5f0c2b8e0a3d4c6f9b1e7a2d4c6f8e0a.mp4"}
    (message,) = sent
    body = json.loads(message["MessageBody"])
    assert body["webhook_id"] == "msg_gen_5f0c2b8e0a3d4c6f9b1e7a2d4c6f8e0a_completed"
    assert json.loads(body["payload"])["data"] == detail
    webhook_sample = json.loads((ROOT / "events" / "webhook_delivery.json").read_text())
    assert set(json.loads(webhook_sample["Records"][0]["body"])) == set(body)  # the delivery's sample matches
