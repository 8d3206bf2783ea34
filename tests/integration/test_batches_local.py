"""Batches on the local stack: POST /batches through the local API Gateway, the real batch state
machine (statemachine/batch.asl.json) executed by moto with its Distributed Map (ItemReader from
S3, child item processors, ResultWriter; the ItemBatcher emulated, local/aws/statemachines.py),
the real BatchFunction, the submit queue's dispatcher and the simulator as the provider."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from local.aws.statemachines import wait_for_execution
from local.stack import LocalStack
from tests.integration.conftest import ALICE_KEY

ApiClient = Any
MODEL = "kling-video/v1.6/standard/text-to-video"


def lines(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"model": MODEL, "prompt": f"{tag} {i}"} for i in range(n)]


def until_ended(api: ApiClient, batch_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch = api.get(f"/batches/{batch_id}").json()
        if batch["status"] in ("completed", "failed", "cancelled"):
            return dict(batch)
        if time.monotonic() > deadline:
            raise AssertionError(f"batch still {batch['status']} after {timeout} s: {batch}")
        time.sleep(0.2)


def executions(stack: LocalStack) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    return list(sfn.list_executions(stateMachineArn=stack.state_machines["BatchStateMachine"])["executions"])


def history_types(stack: LocalStack, execution_arn: str) -> list[str]:
    sfn = stack.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [event["type"] for event in events]


def submitted_prompts(simulator: Any, tag: str) -> list[str]:
    return sorted(
        job.body["prompt"] for job in simulator.jobs.values() if job.body["prompt"].startswith(tag + " ")
    )


def test_an_inline_batch_runs_its_distributed_map_to_a_results_manifest(
    local_stack: LocalStack, api: ApiClient, simulator: Any, poller: None
) -> None:
    items = [*lines(2, "inline"), {"model": "no-such-model", "prompt": "x"}, *lines(2, "inline-b")]
    answer = api.post("/batches", json={"items": items})
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert answer.headers["Location"] == f"/batches/{created['id']}"
    assert [(r["line"], r["code"]) for r in created["rejected_lines"]] == [(3, "unknown_model")]
    batch = until_ended(api, created["id"])
    assert batch["status"] == "completed" and batch["progress"] == 1.0
    assert (batch["lines"], batch["valid"], batch["invalid"]) == (5, 4, 1)
    assert batch["counts"] == {"completed": 4} and batch["credits_used"] > 0
    # the Distributed Map ran: its map run started and succeeded in the execution's history
    (run,) = [e for e in executions(local_stack) if e["name"] == f"{created['id']}-run1"]
    types = history_types(local_stack, run["executionArn"])
    assert "MapRunStarted" in types and "MapRunSucceeded" in types
    # every valid line was submitted once
    assert submitted_prompts(simulator, "inline") == ["inline 0", "inline 1"]
    assert submitted_prompts(simulator, "inline-b") == ["inline-b 0", "inline-b 1"]
    results = api.get(f"/batches/{created['id']}/results").json()
    assert [(r["line"], r["status"]) for r in results["items"]] == [
        (1, "completed"),
        (2, "completed"),
        (3, "invalid"),
        (4, "completed"),
        (5, "completed"),
    ]
    video = requests.get(results["items"][0]["video_url"], timeout=10)
    assert video.status_code == 200 and video.content
    manifest = requests.get(results["manifest"]["url"], timeout=10)
    assert [json.loads(row)["line"] for row in manifest.text.splitlines()] == [1, 2, 3, 4, 5]


def test_an_s3_csv_manifest_reports_bad_lines_by_number(
    local_stack: LocalStack, api: ApiClient, simulator: Any, poller: None
) -> None:
    key = f"batches/{local_stack.key_id(ALICE_KEY)}/catalog.csv"
    csv = f"model,prompt,duration\n{MODEL},csv fox,5\n{MODEL},csv bad,7\n\n{MODEL},csv cat,10\n"
    local_stack.client("s3").put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=csv.encode())
    created = api.post("/batches", json={"manifest_key": key}).json()
    batch = until_ended(api, created["id"])
    assert batch["status"] == "completed" and (batch["valid"], batch["invalid"]) == (2, 1)
    assert [(line["line"], line["code"]) for line in batch["invalid_lines"]] == [(3, "validation_error")]
    assert submitted_prompts(simulator, "csv") == ["csv cat", "csv fox"]


def test_bad_batches_are_refused_in_the_api_error_shape(
    local_stack: LocalStack, api: ApiClient, other_api: ApiClient
) -> None:
    outside = api.post("/batches", json={"manifest_key": "batches/someone-else/m.jsonl"})
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "invalid_batch"
    missing = api.post(
        "/batches", json={"manifest_key": f"batches/{local_stack.key_id(ALICE_KEY)}/none.jsonl"}
    )
    assert missing.status_code == 422 and "no manifest" in missing.json()["error"]["message"]
    both = api.post("/batches", json={})
    assert both.status_code == 422 and both.json()["error"]["code"] == "invalid_batch"
    too_many = api.post("/batches", json={"items": lines(1001, "big")})
    assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "validation_error"
    unknown = api.post("/batches", json={"items": lines(1, "x"), "extra": 1})
    assert unknown.status_code == 422
    created = api.post("/batches", json={"items": lines(1, "owner")}).json()
    assert other_api.get(f"/batches/{created['id']}").status_code == 404
    assert other_api.delete(f"/batches/{created['id']}").status_code == 404
    assert created["id"] not in [b["id"] for b in other_api.get("/batches").json()["items"]]
    assert created["id"] in [b["id"] for b in api.get("/batches").json()["items"]]


def test_cancel_ends_the_batch_and_leaves_nothing_pending(
    local_stack: LocalStack, api: ApiClient, poller: None
) -> None:
    created = api.post("/batches", json={"items": lines(6, "cancel")}).json()
    cancelled = api.delete(f"/batches/{created['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] in ("cancelling", "cancelled")
    batch = until_ended(api, created["id"])
    assert batch["status"] == "cancelled"
    assert "pending" not in batch["counts"] and "waiting" not in batch["counts"]
    assert api.delete(f"/batches/{created['id']}").status_code == 409


def test_a_stopped_run_resumed_submits_every_line_once(
    local_stack: LocalStack, api: ApiClient, simulator: Any, poller: None, wait_for: Callable[..., Any]
) -> None:
    created = api.post("/batches", json={"items": lines(8, "resume")}).json()
    sfn = local_stack.client("stepfunctions")
    (run,) = [e for e in executions(local_stack) if e["name"] == f"{created['id']}-run1"]
    sfn.stop_execution(executionArn=run["executionArn"], error="Test.Stopped")
    assert wait_for_execution(sfn, run["executionArn"], timeout=30)["status"] == "ABORTED"
    resumed = api.post(f"/batches/{created['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    batch = until_ended(api, created["id"])
    assert batch["status"] == "completed" and batch["counts"] == {"completed": 8}
    assert submitted_prompts(simulator, "resume") == sorted(f"resume {i}" for i in range(8))
    assert api.post(f"/batches/{created['id']}/resume").status_code == 409


def test_a_batch_end_is_one_event_and_one_verified_webhook(
    local_stack: LocalStack, api: ApiClient, poller: None, wait_for: Callable[..., Any]
) -> None:
    from tests.integration.test_events_local import Events, verify
    from tests.webhook_receiver import Receiver

    with Receiver() as receiver:
        created = api.post(
            "/batches", json={"items": lines(2, "hooked"), "callback_url": receiver.url()}
        ).json()
        batch = until_ended(api, created["id"])
        (delivery,) = wait_for(receiver.received, timeout=30)
        payload = verify(api, delivery.body, delivery.headers)  # the README's receiver, the owner's secret
        assert payload["type"] == "batch.completed"
        assert payload["data"]["id"] == batch["id"] and payload["data"]["counts"] == {"completed": 2}
        events = Events(local_stack)
        (event,) = wait_for(
            lambda: [e for e in events.of(batch["id"]) if e["detail-type"] == "Batch Completed"]
        )
        assert event["detail"]["status"] == "completed"
        assert len(receiver.received()) == 1


def test_an_unreadable_manifest_fails_the_batch_with_the_reason(
    local_stack: LocalStack, api: ApiClient
) -> None:
    key = f"batches/{local_stack.key_id(ALICE_KEY)}/no-model.csv"
    local_stack.client("s3").put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=b"prompt\nA fox\n")
    created = api.post("/batches", json={"manifest_key": key})
    assert created.status_code == 202  # the manifest is read by the run, not by the request
    batch = until_ended(api, created.json()["id"])
    assert batch["status"] == "failed"
    assert batch["error"] == "invalid_batch: a CSV manifest's first line is its header, with a `model` column"
    (run,) = [e for e in executions(local_stack) if e["name"] == f"{batch['id']}-run1"]
    assert run["status"] == "FAILED"
