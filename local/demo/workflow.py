"""The demo's Step Functions part (__main__.py runs it after the REST API part): one execution of
the generation workflow, from events/workflow_input.json to a downloaded MP4.

It starts the template's state machine on the local stack's moto with the sample input (the
demo key's id as owner, so the generation is also readable over the API), prints each state as
moto's execution enters it, and at the end prints the execution's output: the generation as
GET /generations/{id} shows it, with its video link, whose MP4 it downloads and checks.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from local.demo.common import DemoError, download_mp4, shown_path
from local.stack import ROOT, LocalStack

SAMPLE_INPUT = ROOT / "events" / "workflow_input.json"


def run_workflow(stack: LocalStack, *, timeout: float, outputs: Path) -> dict[str, Any]:
    """Run one execution to SUCCEEDED and return its output; DemoError otherwise."""
    if stack.state_machine_arn is None:
        raise DemoError("the template has no state machine")
    sfn = stack.client("stepfunctions")
    payload = {**json.loads(SAMPLE_INPUT.read_text()), "owner": stack.key_id(stack.api_key)}
    name = f"demo-{uuid.uuid4().hex[:12]}"
    start = time.monotonic()
    execution = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(payload)
    )["executionArn"]
    print(f"\nworkflow: started execution {name} of {stack.state_machine_arn}", flush=True)
    print(f"  input  {json.dumps(payload)}", flush=True)

    seen = 0
    deadline = start + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution)
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        for event in events[seen:]:
            line = _describe(event)
            if line:
                print(f"[{time.monotonic() - start:6.1f}s] workflow {line}", flush=True)
        seen = len(events)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() >= deadline:
            raise DemoError(f"workflow {name} still running after {timeout:g} s")
        time.sleep(0.2)

    if described["status"] != "SUCCEEDED":
        raise DemoError(
            f"workflow {name} ended {described['status']}: {described.get('error')}: {described.get('cause')}"
        )
    output: dict[str, Any] = json.loads(described["output"])
    print("workflow: output (the execution's result)", flush=True)
    print(json.dumps(output, indent=2), flush=True)
    video = output.get("video") or {}
    if not video.get("url"):
        raise DemoError(f"workflow {name} succeeded without a video link: {output}")
    path = outputs / f"{output['id']}.mp4"
    size = download_mp4(video["url"], path)
    print(f"workflow: saved {size} bytes to {shown_path(path)}", flush=True)
    return output


def _describe(event: dict[str, Any]) -> str | None:
    kind = event["type"]
    if kind.endswith("StateEntered"):
        details = event["stateEnteredEventDetails"]
        text = f"-> {details['name']}"
        if details["name"] == "Wait":
            text += f" {json.loads(details.get('input') or '{}').get('wait_seconds', '?')} s"
        return text
    if kind == "TaskFailed":
        return f"   task failed: {event['taskFailedEventDetails'].get('error')} (retried or caught)"
    if kind == "TaskSucceeded":
        payload = json.loads(event["taskSucceededEventDetails"]["output"]).get("Payload") or {}
        if "status" in payload:
            return f"   {payload.get('generation_id')}: {payload['status']}"
    if kind in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
        return kind
    return None
