"""The generation workflow on the local stack: the real definition (statemachine/generation.asl.json,
substitutions applied from template.yaml) executed by moto, its tasks running the real
WorkflowFunction handler through the Lambda shim, the provider played by the simulator."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from local.aws.statemachines import wait_for_execution
from local.simulator import Simulator
from local.stack import LocalStack
from tests.integration.conftest import ALICE_KEY

ROOT = Path(__file__).resolve().parents[2]
ApiClient = Any  # conftest's ApiClient, reached through fixtures
MODEL = "kling-video/v1.6/standard/text-to-video"
POLL_ATTEMPTS = 4  # the provider client's poll: 1 try + 3 retries (videogen.provider.AimlClient)


def workflow_input(stack: LocalStack, **body: Any) -> dict[str, Any]:
    sample = json.loads((ROOT / "events/workflow_input.json").read_text())
    return {**sample, "owner": stack.key_id(ALICE_KEY), **body}


def start(stack: LocalStack, payload: dict[str, Any]) -> str:
    assert stack.state_machine_arn is not None
    answer = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn, name=f"it-{uuid.uuid4().hex[:12]}", input=json.dumps(payload)
    )
    return str(answer["executionArn"])


def finish(stack: LocalStack, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    done = wait_for_execution(sfn, execution_arn, timeout=timeout)
    done["events"] = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return done


def task_errors(done: dict[str, Any]) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in done["events"] if e["type"] == "TaskFailed"]


def submitted_generation_id(done: dict[str, Any]) -> str:
    for event in done["events"]:
        if event["type"] == "TaskSucceeded":
            return str(json.loads(event["taskSucceededEventDetails"]["output"])["Payload"]["generation_id"])
    raise AssertionError("no step succeeded")


def record(stack: LocalStack, generation_id: str) -> dict[str, Any] | None:
    item = stack.client("dynamodb").get_item(
        TableName=stack.endpoints["table_name"], Key={"id": {"S": generation_id}}, ConsistentRead=True
    )
    return item.get("Item")


def test_the_state_machine_is_created_from_the_template(local_stack: LocalStack) -> None:
    sfn = local_stack.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=local_stack.state_machine_arn)
    assert described["type"] == "STANDARD" and described["name"] == "videogen-local-generation"
    definition = json.loads(described["definition"])
    assert definition["States"]["Fetch"]["Parameters"]["FunctionName"] == local_stack.function_arn(
        "WorkflowFunction"
    )
    assert "${" not in described["definition"]
    endpoints = json.loads(local_stack.endpoints_path.read_text())
    assert endpoints["state_machine_arn"] == local_stack.state_machine_arn


def test_a_generation_runs_to_completed_and_is_readable_over_the_api(
    local_stack: LocalStack, api: ApiClient
) -> None:
    done = finish(local_stack, start(local_stack, workflow_input(local_stack)))

    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    output = json.loads(done["output"])
    assert output["status"] == "completed" and output["source"] == "workflow" and output["model"] == MODEL
    video = requests.get(output["video"]["url"], timeout=10)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    # recorded like any other generation, but driven by the workflow: never in the poller's index
    answer = api.get(f"/generations/{output['id']}")
    assert answer.status_code == 200 and answer.json()["status"] == "completed"
    item = record(local_stack, output["id"])
    assert item is not None and item["driver"] == {"S": "workflow"} and "due_shard" not in item
    assert task_errors(done) == []


def test_a_provider_error_status_fails_the_execution_and_the_record(
    local_stack: LocalStack, api: ApiClient
) -> None:
    done = finish(local_stack, start(local_stack, workflow_input(local_stack, prompt="a fox [sim:error]")))

    assert done["status"] == "FAILED"
    assert done["error"] == "GenerationFailed"
    cause = json.loads(done["cause"])
    assert cause["status"] == "failed" and cause["error"]["code"] == "provider_failed"
    shown = api.get(f"/generations/{cause['generation_id']}").json()
    assert shown["status"] == "failed" and shown["error"]["code"] == "provider_failed"


def test_a_throttled_poll_is_retried_then_the_generation_completes(
    local_stack: LocalStack, simulator: Simulator
) -> None:
    simulator.inject(*[{"on": "poll", "status": 429, "retry_after": 0}] * POLL_ATTEMPTS)

    done = finish(local_stack, start(local_stack, workflow_input(local_stack)), timeout=60)

    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    assert task_errors(done) == ["ProviderThrottled"]  # one Fetch throttled, retried by the definition
    assert not simulator.pending_faults
    assert json.loads(done["output"])["status"] == "completed"


def test_the_age_limit_ends_the_execution_as_timed_out(
    local_stack: LocalStack, simulator: Simulator, api: ApiClient, wait_for: Callable[..., Any]
) -> None:
    simulator.configure(durations={MODEL: 3600})  # the job never finishes
    execution = start(local_stack, workflow_input(local_stack))
    sfn = local_stack.client("stepfunctions")

    def polled_generation() -> str | None:
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        fetches = [
            e
            for e in events
            if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "Fetch"
        ]
        return submitted_generation_id({"events": events}) if len(fetches) >= 2 else None

    generation_id = wait_for(polled_generation, timeout=45)  # a first wait of 15 s while pending
    # Time passes: the generation is now older than MAX_GENERATION_AGE_SECONDS. Bumping the
    # version makes a fetch in flight lose its conditional write, as any concurrent writer would.
    max_age = int(local_stack.environment["MAX_GENERATION_AGE_SECONDS"])
    local_stack.client("dynamodb").update_item(
        TableName=local_stack.endpoints["table_name"],
        Key={"id": {"S": generation_id}},
        # the age counts from the submit (a generation may wait in the submit queue first)
        UpdateExpression="SET created_epoch = :old, submitted_epoch = :old ADD #v :one",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":old": {"N": str(time.time() - max_age - 5)}, ":one": {"N": "1"}},
    )

    done = finish(local_stack, execution)

    assert done["status"] == "FAILED" and done["error"] == "GenerationTimedOut"
    assert json.loads(done["cause"])["error"]["code"] == "timed_out"
    assert api.get(f"/generations/{generation_id}").json()["status"] == "timed_out"


def test_an_unexpected_step_error_is_recorded_on_the_generation(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, api: ApiClient
) -> None:
    """Anything but Lambda service errors and throttling: Catch -> RecordFailure -> Fail."""
    handler = local_stack._handlers["WorkflowFunction"]
    service = sys.modules[handler.__module__].entry().service

    def broken(generation_id: str) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "fetch", broken)

    done = finish(local_stack, start(local_stack, workflow_input(local_stack)))

    assert done["status"] == "FAILED" and done["error"] == "RuntimeError"
    assert json.loads(done["cause"])["errorMessage"] == "disk on fire"
    assert task_errors(done) == ["RuntimeError"]  # not retried
    shown = api.get(f"/generations/{submitted_generation_id(done)}").json()
    assert shown["status"] == "failed"
    # the owner sees which step error it was; the exception's own words stay in the logs
    assert shown["error"] == {
        "code": "workflow_error",
        "message": "a workflow step failed (RuntimeError)",
        "provider_class": None,
    }


def test_a_refused_request_fails_with_its_validation_error_and_records_nothing(
    local_stack: LocalStack,
) -> None:
    done = finish(local_stack, start(local_stack, workflow_input(local_stack, model="no-such-model")))

    assert done["status"] == "FAILED" and done["error"] == "UnknownModelError"
    assert "no-such-model" in json.loads(done["cause"])["errorMessage"]
    recorded = [
        json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
        for e in done["events"]
        if e["type"] == "TaskSucceeded"
    ]
    assert recorded == [{"generation_id": recorded[0]["generation_id"], "recorded": False, "status": None}]
