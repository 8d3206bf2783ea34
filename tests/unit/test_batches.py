"""Batches (videogen.logic.batches) on moto's DynamoDB and S3 with the real adapters, the lines
accepted through the real submit queue, the provider the simulator: manifests and bad lines,
the batch's share of the owner's queue, and the idempotency of a retried child and of a re-run
(nothing recorded or submitted twice)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.clock import Clock
from local.simulator import Simulator
from tests.unit.conftest import make_queue, make_service
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_batches import BatchRecords, GenerationBatchReader
from videogen.adapters.s3_batches import BatchObjects
from videogen.domain import batches as batch_domain
from videogen.domain.batches import (
    BatchNotFound,
    BatchQueueFull,
    BatchStatus,
    InvalidBatch,
    line_generation_id,
    parse_manifest,
)
from videogen.domain.errors import ConflictError, QueueFull
from videogen.domain.models import Source, Status
from videogen.logic.batches import BatchService
from videogen.logic.queue import QueueSettings
from videogen.logic.service import GenerationService

MODEL = "kling-video/v1.6/standard/text-to-video"
OWNER = "key-alice"
FOREVER = lambda: 10**9  # noqa: E731 (the dispatcher's remaining time: unbounded)


def body(prompt: str, **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, **fields}


class RecordingStarter:
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        self.started.append((name, dict(payload)))
        return f"arn:aws:states:us-east-1:123456789012:execution:batch:{name}"


@pytest.fixture
def starter() -> RecordingStarter:
    return RecordingStarter()


def make_batches(
    aws: dict[str, str], service: GenerationService, starter: Any, **overrides: Any
) -> BatchService:
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    options: dict[str, Any] = {
        "store": BatchRecords(dynamodb, aws["BatchesTable"]),
        "generations": GenerationBatchReader(dynamodb, aws["GenerationsTable"]),
        "objects": BatchObjects(s3),
        "starter": starter,
        "service": service,
        "uploads_bucket": aws["UploadsBucket"],
        "outputs_bucket": aws["OutputsBucket"],
        "queue_share": 0.8,
        "track_seconds": 1,
        "clock": service.clock,
    }
    options.update(overrides)
    return BatchService(**options)


@pytest.fixture
def batches(aws: dict[str, str], service: GenerationService, starter: RecordingStarter) -> BatchService:
    return make_batches(aws, service, starter)


def items_of(batches: BatchService, batch_id: str) -> list[dict[str, Any]]:
    data = batches.objects.read(batches.outputs_bucket, f"batches/{batch_id}/items.json")
    assert data is not None
    return list(json.loads(data))


def run_to_items(batches: BatchService, items: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    batch, _ = batches.create(OWNER, items=items)
    batches.prepare(batch.id)
    return batch.id, items_of(batches, batch.id)


def recorded(service: GenerationService, batch_id: str, lines: range) -> list[Any]:
    return [service.store.get(line_generation_id(batch_id, n)) for n in lines]


def drain(service: GenerationService, batch_id: str, lines: range, timeout: float = 20.0) -> None:
    """Run the dispatcher and poll until every line's generation has ended (the provider takes
    them at its learned limit, 4 at first)."""
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            service.dispatcher.run(FOREVER, reserve_ms=0)
            generations = recorded(service, batch_id, lines)
            if all(g is not None and g.is_terminal for g in generations):
                return
            for generation in generations:
                if (
                    generation is not None
                    and not generation.is_terminal
                    and generation.status is not Status.PENDING
                ):
                    service.refresh(generation)
            deadline.wait(0.05)
        raise AssertionError(f"lines of {batch_id} still running after {timeout} s")
    finally:
        timer.cancel()


# -- manifests ----------------------------------------------------------------------------------
def test_a_jsonl_manifest_numbers_its_lines_and_reports_the_unreadable_ones() -> None:
    text = '{"model": "m", "prompt": "a"}\n\nnot json\n[1, 2]\n{"model": "m"}\n'
    lines = list(parse_manifest(text, "jsonl"))
    assert [(line.line, line.body is not None) for line in lines] == [
        (1, True),
        (3, False),
        (4, False),
        (5, True),
    ]
    assert lines[1].error is not None and lines[1].error.code == "invalid_json"
    assert lines[2].error is not None and "JSON object" in lines[2].error.message


def test_a_csv_manifest_has_a_header_and_typed_cells() -> None:
    text = 'model,prompt,duration\nm,A fox,5\nm,"A whale, blue",\nm,too,many,cells\n'
    lines = list(parse_manifest(text, "csv"))
    assert [line.line for line in lines] == [2, 3, 4]
    assert lines[0].body == {"model": "m", "prompt": "A fox", "duration": 5}
    assert lines[1].body == {"model": "m", "prompt": "A whale, blue"}  # an empty cell is absent
    assert lines[2].error is not None and lines[2].error.code == "invalid_csv"
    with pytest.raises(InvalidBatch, match="model"):
        list(parse_manifest("prompt\nA fox\n", "csv"))


def test_a_manifest_over_the_line_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_domain, "MAX_MANIFEST_LINES", 3)
    with pytest.raises(InvalidBatch, match="at most 3"):
        list(parse_manifest("{}\n" * 4, "jsonl"))
    assert len(list(parse_manifest("{}\n" * 3, "jsonl"))) == 3


# -- create ---------------------------------------------------------------------------------------
def test_inline_items_report_bad_lines_at_once_and_start_one_run(
    batches: BatchService, starter: RecordingStarter
) -> None:
    batch, rejected = batches.create(OWNER, items=[body("a"), {"model": "nope"}, body("c", duration=7)])
    assert batch.status is BatchStatus.VALIDATING and batch.runs == 1
    assert [(r.line, r.code) for r in rejected] == [(2, "unknown_model"), (3, "validation_error")]
    assert starter.started == [
        (f"{batch.id}-run1", {"max_concurrency": 10, "items_per_child": 50, "batch_id": batch.id})
    ]
    prepared = batches.prepare(batch.id)
    assert prepared["valid"] == 1
    stored = batches.get(OWNER, batch.id)
    assert (stored.status, stored.lines, stored.valid, stored.invalid) == (BatchStatus.RUNNING, 3, 1, 2)
    assert [line.line for line in stored.invalid_lines] == [2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either items"),
        ({"items": [body("a")], "manifest_key": f"batches/{OWNER}/m.jsonl"}, "either items"),
        ({"items": []}, "empty"),
        ({"items": [body("a")] * 1001}, "at most 1000"),
        ({"manifest_key": "batches/key-bob/m.jsonl"}, "must be under batches/key-alice/"),
        ({"manifest_key": f"batches/{OWNER}/../key-bob/m.jsonl"}, "must be under"),
        ({"manifest_key": f"batches/{OWNER}/missing.jsonl"}, "no manifest"),
        ({"items": [body("a")], "callback_url": "http://127.0.0.1/hook"}, "callback_url"),
    ],
)
def test_a_batch_that_cannot_start_is_refused_and_nothing_runs(
    batches: BatchService, starter: RecordingStarter, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message) as caught:
        batches.create(OWNER, **kwargs)
    assert getattr(caught.value, "http_status", None) == 422
    assert starter.started == []
    assert batches.list_for_owner(OWNER, limit=10, next_token=None)[0] == []


def test_an_s3_csv_manifest_is_read_by_prepare(aws: dict[str, str], batches: BatchService) -> None:
    key = f"batches/{OWNER}/ads.csv"
    boto3.client("s3").put_object(
        Bucket=aws["UploadsBucket"],
        Key=key,
        Body=f"model,prompt\n{MODEL},A fox\nnope,x\n{MODEL},A cat\n".encode(),
    )
    batch, rejected = batches.create(OWNER, manifest_key=key)
    assert rejected == [] and batch.format == "csv" and batch.source == "s3"
    assert batches.prepare(batch.id)["valid"] == 2
    assert [item["line"] for item in items_of(batches, batch.id)] == [2, 4]
    assert [line.line for line in batches.get(OWNER, batch.id).invalid_lines] == [3]


def test_batches_are_per_owner(batches: BatchService) -> None:
    batch, _ = batches.create(OWNER, items=[body("a")])
    for call in (batches.get, batches.cancel, batches.resume, batches.results):
        with pytest.raises(BatchNotFound):
            call("key-bob", batch.id)
    assert batches.list_for_owner("key-bob", limit=10, next_token=None)[0] == []
    assert [b.id for b in batches.list_for_owner(OWNER, limit=10, next_token=None)[0]] == [batch.id]


# -- enqueue: idempotent, resumable, within its share ---------------------------------------------
def test_enqueue_records_each_line_pending_under_its_derived_id(batches: BatchService, service: Any) -> None:
    batch_id, items = run_to_items(batches, [body(f"p{n}") for n in range(5)])
    assert batches.enqueue(batch_id, items) == {"accepted": 5, "existing": 0, "rejected": 0, "skipped": 0}
    generations = recorded(service, batch_id, range(1, 6))
    assert [g.status for g in generations] == [Status.PENDING] * 5
    assert [g.request["prompt"] for g in generations] == [f"p{n}" for n in range(5)]
    assert {g.source for g in generations} == {Source.BATCH} and {g.owner for g in generations} == {OWNER}


def test_a_rerun_records_and_submits_nothing_twice(
    batches: BatchService, service: GenerationService, sim: Simulator
) -> None:
    batch_id, items = run_to_items(batches, [body(f"p{n}") for n in range(6)])
    batches.enqueue(batch_id, items)
    drain(service, batch_id, range(1, 7))
    assert sim.submit_count == 6
    # the whole Map again (a resumed or re-run batch): every line is found, nothing is queued
    assert batches.enqueue(batch_id, items) == {"accepted": 0, "existing": 6, "rejected": 0, "skipped": 0}
    drain(service, batch_id, range(1, 7))
    assert sim.submit_count == 6
    assert service.queue is not None and service.queue.index.owner_count(OWNER) == 0


def test_a_child_that_fails_midway_is_retried_without_duplicates(
    batches: BatchService, service: GenerationService, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, items = run_to_items(batches, [body(f"p{n}") for n in range(5)])
    accept = service.accept
    calls = {"n": 0}

    def crash_on_the_third(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("the function died here")  # after lines 1-2, before line 3
        return accept(*args, **kwargs)

    monkeypatch.setattr(service, "accept", crash_on_the_third)
    with pytest.raises(ConnectionError):
        batches.enqueue(batch_id, items)
    assert [g is not None for g in recorded(service, batch_id, range(1, 6))] == [
        True,
        True,
        False,
        False,
        False,
    ]
    # Step Functions retries the child with the same items
    assert batches.enqueue(batch_id, items) == {"accepted": 3, "existing": 2, "rejected": 0, "skipped": 0}
    drain(service, batch_id, range(1, 6))
    assert sim.submit_count == 5
    assert sorted(job.body["prompt"] for job in sim.jobs.values()) == [f"p{n}" for n in range(5)]


def test_two_attempts_at_the_same_child_at_once_record_each_line_once(
    batches: BatchService, service: GenerationService, sim: Simulator
) -> None:
    batch_id, items = run_to_items(batches, [body(f"p{n}") for n in range(12)])
    answers: list[dict[str, int]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(batches.enqueue(batch_id, items))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(a["accepted"] for a in answers) == 12
    assert sum(a["existing"] for a in answers) == 12
    assert service.queue is not None and service.queue.index.owner_count(OWNER) == 12
    drain(service, batch_id, range(1, 13))
    assert sim.submit_count == 12


def test_a_batch_fills_only_its_share_of_the_queue_and_single_requests_still_fit(
    aws: dict[str, str], client: AimlClient, clock: Clock, starter: RecordingStarter
) -> None:
    settings = QueueSettings(owner_cap=10, deadline_seconds=3600, claim_seconds=60, job_lease_seconds=600)
    service = make_service(aws, client, clock, queue=make_queue(aws, clock, settings=settings))
    batches = make_batches(aws, service, starter, queue_share=0.5)
    batch_id, items = run_to_items(batches, [body(f"p{n}") for n in range(8)])
    with pytest.raises(BatchQueueFull):
        batches.enqueue(batch_id, items)
    assert [g is not None for g in recorded(service, batch_id, range(1, 9))] == [True] * 5 + [False] * 3
    for n in range(5):  # the owner's own requests: the other half of the cap
        service.accept(OWNER, body(f"single {n}"))
    with pytest.raises(QueueFull):
        service.accept(OWNER, body("one too many"))
    # the provider takes the queued work; the retried child then goes on where it stopped
    drain(service, batch_id, range(1, 6))
    assert batches.enqueue(batch_id, items)["accepted"] == 3
    assert all(g is not None for g in recorded(service, batch_id, range(1, 9)))


def test_a_line_refused_at_accept_is_recorded_failed_and_the_batch_goes_on(
    batches: BatchService, service: GenerationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, items = run_to_items(batches, [body("a"), body("b")])
    from videogen.domain.budgets import BudgetExceeded

    accept = service.accept

    def over_budget_for_b(owner: str, request: Mapping[str, Any], **kwargs: Any) -> Any:
        if request["prompt"] == "b":
            raise BudgetExceeded("daily", limit=100, spent=90, estimate=20, resets_at="2026-12-03T00:00:00Z")
        return accept(owner, request, **kwargs)

    monkeypatch.setattr(service, "accept", over_budget_for_b)
    assert batches.enqueue(batch_id, items) == {"accepted": 1, "existing": 0, "rejected": 1, "skipped": 0}
    refused = service.store.get(line_generation_id(batch_id, 2))
    assert refused is not None and refused.status is Status.FAILED
    assert refused.error is not None and refused.error.code == "budget_exceeded"


# -- track, finish, cancel, results ---------------------------------------------------------------
def test_track_counts_writes_results_and_finishes_once_every_line_ended(
    batches: BatchService, service: GenerationService, sim: Simulator
) -> None:
    batch, _ = batches.create(OWNER, items=[body("a"), {"model": "nope"}, body("c")])
    batches.prepare(batch.id)
    assert batches.track(batch.id)["done"] is False  # nothing accepted yet: both lines wait
    assert batches.get(OWNER, batch.id).counts == {"waiting": 2}
    batches.enqueue(batch.id, items_of(batches, batch.id))
    assert batches.track(batch.id)["done"] is False
    assert batches.get(OWNER, batch.id).counts == {"pending": 2}
    drain(service, batch.id, range(1, 4, 2))
    tracked = batches.track(batch.id)
    assert tracked["done"] is True
    ended = batches.finish(batch.id)
    assert ended.status is BatchStatus.COMPLETED and ended.completed_at is not None
    assert batches.finish(batch.id).version == ended.version  # a retried finish writes nothing
    page = batches.results(OWNER, batch.id)
    assert [(row["line"], row["status"]) for row in page["items"]][1] == (2, "invalid")
    assert [row["line"] for row in page["items"]] == [1, 2, 3]
    done = [row for row in page["items"] if row["status"] == "completed"]
    assert done and all(row["video_key"] and row["video_url"].startswith("http") for row in done)
    assert sum(batches.get(OWNER, batch.id).counts.values()) == 2


def test_cancel_skips_lines_not_started_and_cancels_pending_ones(
    batches: BatchService, service: GenerationService
) -> None:
    batch_id, items = run_to_items(batches, [body(f"p{n}") for n in range(4)])
    batches.enqueue(batch_id, items[:2])  # the first child ran; the second has not yet
    cancelling = batches.cancel(OWNER, batch_id)
    assert cancelling.status is BatchStatus.CANCELLING
    assert batches.enqueue(batch_id, items[2:]) == {"accepted": 0, "existing": 0, "rejected": 0, "skipped": 2}
    assert batches.track(batch_id)["done"] is True  # its pending generations were cancelled
    assert [g.status for g in recorded(service, batch_id, range(1, 3))] == [Status.CANCELLED] * 2
    assert batches.finish(batch_id).status is BatchStatus.CANCELLED
    rows = batches.results(OWNER, batch_id)["items"]
    assert [(r["line"], r["status"], r["generation_id"] is None) for r in rows] == [
        (1, "cancelled", False),
        (2, "cancelled", False),
        (3, "cancelled", True),
        (4, "cancelled", True),
    ]
    with pytest.raises(ConflictError):
        batches.cancel(OWNER, batch_id)


def test_resume_starts_a_new_run_of_a_stopped_batch(batches: BatchService, starter: RecordingStarter) -> None:
    batch, _ = batches.create(OWNER, items=[body("a")])
    batches.prepare(batch.id)
    resumed = batches.resume(OWNER, batch.id)
    assert resumed.runs == 2 and [name for name, _ in starter.started] == [
        f"{batch.id}-run1",
        f"{batch.id}-run2",
    ]
    batches.fail(batch.id, "States.Runtime")
    assert batches.get(OWNER, batch.id).status is BatchStatus.FAILED
    again = batches.resume(OWNER, batch.id)  # a failed batch may be resumed: it runs again
    assert (again.runs, again.status, again.error) == (3, BatchStatus.RUNNING, None)
    batches.cancel(OWNER, batch.id)
    batches.finish(batch.id)
    with pytest.raises(ConflictError, match="already cancelled"):
        batches.resume(OWNER, batch.id)


def test_results_before_any_count_is_a_conflict(batches: BatchService) -> None:
    batch, _ = batches.create(OWNER, items=[body("a")])
    with pytest.raises(ConflictError, match="no results yet"):
        batches.results(OWNER, batch.id)


# -- Batch Completed ------------------------------------------------------------------------------
class FakeEvents:
    def __init__(self, fail: int = 0) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = fail

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail:
            self.fail -= 1
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"ev-{len(self.entries)}"}]}


class FakeSqs:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        self.messages.append(json.loads(MessageBody))
        return {"MessageId": str(len(self.messages))}


def notifier(events: FakeEvents, sqs: FakeSqs) -> Any:
    from videogen.logic.batch_notify import BatchNotifier
    from videogen.observability import metrics

    return BatchNotifier(
        events=events,
        sqs=sqs,
        event_bus_name="bus",
        webhook_queue_url="https://sqs.local/webhooks",
        outputs_bucket="outputs",
        metrics=metrics,
    )


def test_a_batch_ends_with_one_event_and_one_webhook_even_when_the_first_publish_fails(
    aws: dict[str, str], service: GenerationService, starter: RecordingStarter
) -> None:
    events, sqs = FakeEvents(fail=1), FakeSqs()
    batches = make_batches(aws, service, starter, notify=notifier(events, sqs))
    batch, _ = batches.create(OWNER, items=[{"model": "nope"}], callback_url="https://example.com/hook")
    batches.prepare(batch.id)
    with pytest.raises(Exception, match="InternalFailure"):
        batches.finish(batch.id)  # EventBridge refused: the step fails and is retried...
    assert batches.get(OWNER, batch.id).status is BatchStatus.RUNNING  # ...the batch has not ended
    ended = batches.finish(batch.id)
    assert ended.status is BatchStatus.COMPLETED
    batches.finish(batch.id)  # a retried step after the end sends nothing more
    (event,) = events.entries
    assert (event["Source"], event["DetailType"], event["EventBusName"]) == (
        "videogen",
        "Batch Completed",
        "bus",
    )
    detail = json.loads(event["Detail"])
    assert (detail["id"], detail["status"], detail["invalid"]) == (batch.id, "completed", 1)
    assert detail["results"] == {"bucket": "outputs", "key": f"batches/{batch.id}/results.jsonl"}
    (message,) = sqs.messages
    assert message["url"] == "https://example.com/hook" and message["owner"] == OWNER
    assert message["webhook_id"] == f"msg_{batch.id}_completed"
    payload = json.loads(message["payload"])
    assert payload["type"] == "batch.completed" and payload["data"] == detail


def test_a_failed_batch_is_told_failed_and_a_batch_without_callback_gets_no_webhook(
    aws: dict[str, str], service: GenerationService, starter: RecordingStarter
) -> None:
    events, sqs = FakeEvents(), FakeSqs()
    batches = make_batches(aws, service, starter, notify=notifier(events, sqs))
    batch, _ = batches.create(OWNER, items=[body("a")])
    batches.fail(batch.id, "States.Runtime")
    assert [json.loads(e["Detail"])["status"] for e in events.entries] == ["failed"]
    assert json.loads(events.entries[0]["Detail"])["error"] == "States.Runtime"
    assert sqs.messages == []


def test_a_failed_step_is_told_to_the_owner_only_when_its_message_is_theirs() -> None:
    from videogen.entrypoints.batch_tasks import owner_message

    cause = json.dumps({"errorType": "InvalidBatch", "errorMessage": "the manifest is not UTF-8 text"})
    assert owner_message("InvalidBatch", cause) == "invalid_batch: the manifest is not UTF-8 text"
    internal = json.dumps({"errorType": "ClientError", "errorMessage": "arn:aws:...: AccessDenied"})
    assert owner_message("ClientError", internal) == "ClientError"
    assert owner_message("States.Timeout", None) == "States.Timeout"


def test_the_local_stack_rewrites_only_the_item_batcher_for_moto() -> None:
    from local.aws.statemachines import for_moto

    definition = json.loads((Path(__file__).resolve().parents[2] / "statemachine/batch.asl.json").read_text())
    enqueue = definition["States"]["Enqueue"]
    assert enqueue["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert {"ItemReader", "ItemBatcher", "ResultWriter", "MaxConcurrencyPath"} <= set(enqueue)
    local = for_moto(definition)
    adapted = local["States"]["Enqueue"]
    assert "ItemBatcher" not in adapted
    assert adapted["ItemSelector"] == {
        "Items.$": "States.Array($$.Map.Item.Value)",  # a one-item batch, the shape AWS hands a child
        "BatchInput": enqueue["ItemBatcher"]["BatchInput"],
    }
    assert {k: v for k, v in adapted.items() if k != "ItemSelector"} == {
        k: v for k, v in enqueue.items() if k != "ItemBatcher"
    }
    assert {k: v for k, v in local["States"].items() if k != "Enqueue"} == {
        k: v for k, v in definition["States"].items() if k != "Enqueue"
    }


def test_a_small_running_batch_is_counted_live_in_the_list_too(batches: BatchService) -> None:
    batch_id, items = run_to_items(batches, [body("a"), body("b")])
    batches.enqueue(batch_id, items[:1])  # the Map is still accepting: the tracker has not counted
    (listed,) = [b for b in batches.list_for_owner(OWNER, limit=10, next_token=None)[0] if b.id == batch_id]
    assert listed.counts == {"pending": 1, "waiting": 1} and listed.counted_at is not None
    assert batches.get(OWNER, batch_id).counts == {"pending": 1, "waiting": 1}
