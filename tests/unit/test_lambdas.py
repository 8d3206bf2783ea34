"""local/aws/lambdas.py: moto's Lambda invocations (Invoke API, S3 notifications, Step Functions tasks)
run the template's handlers in-process, report errors as Lambda does, and the patch is pinned."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda.models import LambdaFunction

import local.aws.lambdas as lambdas
from local.aws.cfn import Template
from local.aws.lambdas import SUPPORTED_MOTO_VERSION, LambdaShim, ShimError, create_functions, ensure_role

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Architectures: [arm64]
    Timeout: 7
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        GREETING: hello
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      MemorySize: 256
"""

HANDLER = """

import shimtestlib  # from the layer folder: proves layers are on sys.path

calls = []


class ProviderThrottled(Exception):
    pass


def handler(event, context):
    calls.append(event)
    action = event.get("action") if isinstance(event, dict) else None
    if action == "raise":
        raise ProviderThrottled("slow down")
    if action == "unmarshallable":
        return {"when": object()}
    if action == "none":
        return None
    if action == "sleep":  # a slow invocation: when it ran, and where
        import os, time
        started = time.time()
        time.sleep(event["seconds"])
        return {"pid": os.getpid(), "start": started, "end": time.time()}
    return {
        "event": event,
        "layer": shimtestlib.NAME,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
"""


@pytest.fixture
def template(tmp_path: Path) -> Template:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(HANDLER)
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "shimtestlib.py").write_text('NAME = "from-the-layer"\n')
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return Template(tmp_path / "template.yaml")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def function_arn(aws: None, template: Template) -> str:
    role = ensure_role(boto3.client("iam"))
    arns = create_functions(
        template, template.functions(), lambda_client=boto3.client("lambda"), role_arn=role
    )
    return arns["EchoFunction"]


@pytest.fixture
def shim(template: Template, function_arn: str) -> Iterator[LambdaShim]:
    with LambdaShim(template, lock_timeout=0.3) as installed:
        yield installed


def handler_calls(shim: LambdaShim) -> list[Any]:
    module = sys.modules[shim.handler("EchoFunction").__module__]
    return module.calls  # type: ignore[no-any-return]


def invoke(payload: Any) -> tuple[dict[str, Any], Any]:
    no_retries = Config(retries={"total_max_attempts": 1})
    answer = boto3.client("lambda", config=no_retries).invoke(
        FunctionName="videogen-local-echofunction", Payload=json.dumps(payload), LogType="Tail"
    )
    return answer, json.loads(answer["Payload"].read())


# ---- creating the functions -------------------------------------------------------------------
def test_functions_are_created_under_the_arns_the_template_resolves(
    template: Template, function_arn: str
) -> None:
    assert function_arn == template.resources["EchoFunction"].attributes["Arn"]
    assert function_arn == "arn:aws:lambda:us-east-1:123456789012:function:videogen-local-echofunction"
    config = boto3.client("lambda").get_function_configuration(FunctionName=function_arn)
    assert config["Runtime"] == "python3.13" and config["Architectures"] == ["arm64"]
    assert config["Handler"] == "app.handler" and config["Timeout"] == 7 and config["MemorySize"] == 256
    assert config["Environment"]["Variables"] == {"GREETING": "hello"}
    # a second role lookup reuses the role
    assert ensure_role(boto3.client("iam")) == config["Role"]


# ---- the Invoke API ---------------------------------------------------------------------------
def test_invoke_runs_the_handler_in_process_with_a_lambda_context(shim: LambdaShim) -> None:
    answer, body = invoke({"hello": "world"})

    assert "FunctionError" not in answer
    assert body["event"] == {"hello": "world"}
    assert body["layer"] == "from-the-layer"
    assert body["function_name"] == "videogen-local-echofunction"
    assert body["arn"].endswith(":function:videogen-local-echofunction")
    assert body["memory"] == 256
    assert 0 < body["remaining_ms"] <= 7000
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert f"START RequestId: {body['request_id']}" in tail and "REPORT RequestId" in tail
    assert handler_calls(shim) == [{"hello": "world"}]
    assert shim.invocations == 1


def test_none_is_null(shim: LambdaShim) -> None:
    answer, body = invoke({"action": "none"})
    assert "FunctionError" not in answer and body is None


def test_an_exception_is_a_function_error_named_by_its_class(shim: LambdaShim) -> None:
    answer, body = invoke({"action": "raise"})

    assert answer["FunctionError"]  # moto says "Handled"; the runtime would say "Unhandled"
    assert body["errorType"] == "ProviderThrottled"
    assert body["errorMessage"] == "slow down"
    assert body["requestId"] and isinstance(body["stackTrace"], list) and body["stackTrace"]


def test_a_result_json_cannot_encode_is_a_marshal_error(shim: LambdaShim) -> None:
    answer, body = invoke({"action": "unmarshallable"})
    assert answer["FunctionError"]
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"].startswith("Unable to marshal response")


def test_a_busy_function_answers_too_many_requests(shim: LambdaShim) -> None:
    holder_has_it, release = threading.Event(), threading.Event()

    def hold() -> None:
        with shim.lock:
            holder_has_it.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        holder_has_it.wait(2)
        started = time.monotonic()
        with pytest.raises(ClientError) as refused:
            invoke({"hello": "busy"})
        assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert 0.25 <= time.monotonic() - started < 3  # waited lock_timeout (0.3 s), not forever
    finally:
        release.set()
        thread.join()
    assert handler_calls(shim) == []
    invoke({"hello": "free again"})
    assert handler_calls(shim) == [{"hello": "free again"}]


def test_functions_outside_the_template_keep_motos_behaviour(shim: LambdaShim) -> None:
    seen: list[str] = []

    def original(fn: Any, event: Any = None) -> tuple[str, bool, str]:
        seen.append(fn.function_name)  # moto's own method would try Docker here
        return json.dumps({"moto": True}), False, ""

    lam = boto3.client("lambda")
    role = ensure_role(boto3.client("iam"))
    lam.create_function(
        FunctionName="someone-else", Runtime="python3.13", Role=role, Handler="x.y", Code={"ZipFile": b"PK"}
    )
    with pytest.MonkeyPatch.context() as patch:  # undone before the shim uninstalls
        patch.setattr(shim, "_original", original)
        body = json.loads(lam.invoke(FunctionName="someone-else", Payload=b"{}")["Payload"].read())

    assert body == {"moto": True} and seen == ["someone-else"]
    assert shim.invocations == 0


# ---- asynchronous invocations -----------------------------------------------------------------
def test_an_event_invocation_is_queued_and_never_waits_for_the_lock(shim: LambdaShim) -> None:
    """InvocationType=Event answers 202 at once, even while another invocation holds the lock
    (a handler invoking a function asynchronously would otherwise deadlock), and runs later."""
    lam = boto3.client("lambda")
    with shim.lock:  # as a handler would hold it
        answer = lam.invoke(
            FunctionName="videogen-local-echofunction", InvocationType="Event", Payload=b'{"n": 1}'
        )
        assert answer["StatusCode"] == 202
        assert handler_calls(shim) == []

    assert shim.drain(5)
    assert handler_calls(shim) == [{"n": 1}]


def test_a_failed_event_invocation_is_retried_then_recorded(shim: LambdaShim) -> None:
    shim.async_retry_delay = 0.01
    boto3.client("lambda").invoke(
        FunctionName="videogen-local-echofunction", InvocationType="Event", Payload=b'{"action": "raise"}'
    )

    assert shim.drain(5)
    assert len(handler_calls(shim)) == 3  # EventInvokeConfig.MaximumRetryAttempts defaults to 2
    (failure,) = shim.async_failures
    assert failure["error"]["errorType"] == "ProviderThrottled" and failure["attempts"] == 3


def echo_workers(spec: Any, tmp_path: Path, *, size: int, **options: Any) -> Any:
    """The echo function in `size` worker processes (local.aws.api_workers.FunctionWorkers)."""
    from local.aws.api_workers import FunctionWorkers

    return FunctionWorkers(
        module_file=spec.module_file,
        handler_name=spec.handler_name,
        context={
            "function_name": "videogen-local-echofunction",
            "memory_limit_in_mb": 256,
            "timeout_seconds": 7,
        },
        size=size,
        env=dict(__import__("os").environ),
        paths=[str(tmp_path / "layer"), str(ROOT)],
        cwd=ROOT,
        **options,
    )


def test_a_function_with_workers_runs_event_invocations_side_by_side_within_its_bound(
    template: Template, function_arn: str, tmp_path: Path
) -> None:
    """A function given two worker processes: six asynchronous invocations, queued at once and run
    by three threads, overlap in time two at a time and never three (the pool is the bound, as a
    reserved concurrency would be), each in a worker process, not in this one."""
    from local.aws.concurrency import InvocationStats

    spec = template.functions()["EchoFunction"]
    pool = echo_workers(spec, tmp_path, size=2, wait_seconds=30)
    stats = InvocationStats()
    try:
        with LambdaShim(template, lock_timeout=0.3, pools={"EchoFunction": pool}, stats=stats) as shim:
            shim.async_workers = 3
            lam = boto3.client("lambda")
            for n in range(6):
                payload = json.dumps({"action": "sleep", "seconds": 0.6, "n": n}).encode()
                answer = lam.invoke(
                    FunctionName="videogen-local-echofunction", InvocationType="Event", Payload=payload
                )
                assert answer["StatusCode"] == 202
            assert shim.drain(60)
            assert handler_calls(shim) == []  # none ran in this process
            assert shim.async_failures == []
    finally:
        pool.close()
    assert stats.calls["EchoFunction"] == 6
    assert pool.busy_peak == 2 and stats.peak["EchoFunction"] == 3  # the third thread waited for a worker
    assert pool.started == 2


def test_a_synchronous_error_in_a_worker_is_reported_as_lambda_does(
    template: Template, function_arn: str, tmp_path: Path
) -> None:
    spec = template.functions()["EchoFunction"]
    pool = echo_workers(spec, tmp_path, size=1)
    try:
        with LambdaShim(template, pools={"EchoFunction": pool}):
            answer, body = invoke({"action": "raise"})
            _, echoed = invoke({"n": 7})
    finally:
        pool.close()
    assert answer["FunctionError"]  # moto says "Handled", as for an in-process error
    assert body["errorType"] == "ProviderThrottled" and body["errorMessage"] == "slow down"
    assert echoed["event"] == {"n": 7} and echoed["layer"] == "from-the-layer"


def test_a_dry_run_runs_nothing(shim: LambdaShim) -> None:
    answer = boto3.client("lambda").invoke(
        FunctionName="videogen-local-echofunction", InvocationType="DryRun", Payload=b"{}"
    )
    assert answer["StatusCode"] == 204 and handler_calls(shim) == []


# ---- S3 notifications -------------------------------------------------------------------------
def test_an_s3_notification_reaches_the_handler(shim: LambdaShim, function_arn: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="uploads")
    s3.put_bucket_notification_configuration(
        Bucket="uploads",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": function_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}},
                }
            ]
        },
    )

    s3.put_object(Bucket="uploads", Key="in/a cat+dog.png", Body=b"png")
    s3.put_object(Bucket="uploads", Key="elsewhere/b.png", Body=b"png")
    assert shim.drain(5)  # S3 invokes asynchronously: the upload does not wait for the handler

    (event,) = handler_calls(shim)
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == "uploads"
    assert unquote_plus(record["s3"]["object"]["key"]) == "in/a cat+dog.png"  # keys arrive encoded


# ---- Step Functions ---------------------------------------------------------------------------
def run_execution(definition: dict[str, Any], payload: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    role = ensure_role(boto3.client("iam"))
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)
    arn = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="run-1", input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    described["events"] = sfn.get_execution_history(executionArn=arn)["events"]
    return described


def task_definition(function_arn: str, retry_on: list[str]) -> dict[str, Any]:
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Retry": [
                    {"ErrorEquals": retry_on, "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Fail", "ErrorPath": "$.caught.Error", "CausePath": "$.caught.Cause"},
        },
    }


def task_errors(events: list[dict[str, Any]]) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]


def test_a_state_machine_task_runs_the_handler(shim: LambdaShim, function_arn: str) -> None:
    done = run_execution(task_definition(function_arn, ["Lambda.ServiceException"]), {"n": 1})

    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["event"] == {"n": 1}


def test_step_functions_catch_the_handlers_error_type(shim: LambdaShim, function_arn: str) -> None:
    done = run_execution(task_definition(function_arn, ["ProviderThrottled"]), {"action": "raise"})

    assert done["status"] == "FAILED"
    assert done["error"] == "ProviderThrottled"  # matched by errorType: retried twice, then caught
    assert json.loads(done["cause"])["errorMessage"] == "slow down"
    assert task_errors(done["events"]) == ["ProviderThrottled"] * 3
    assert len(handler_calls(shim)) == 3


def test_a_task_waiting_for_a_held_lock_is_throttled_and_retried(shim: LambdaShim, function_arn: str) -> None:
    """A test (or any thread) holding the stack's lock while an execution runs: the task is
    refused as a throttled Lambda, Retry backs off, and it runs once the lock is free."""
    holder_has_it = threading.Event()
    sfn = boto3.client("stepfunctions")

    def refused_once() -> bool:
        runs = [
            e["executionArn"]
            for m in sfn.list_state_machines()["stateMachines"]
            for e in sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"]
        ]
        return any(task_errors(sfn.get_execution_history(executionArn=arn)["events"]) for arn in runs)

    def hold() -> None:  # until the task has been refused once
        with shim.lock:
            holder_has_it.set()
            deadline = time.monotonic() + 10
            while not refused_once() and time.monotonic() < deadline:
                time.sleep(0.05)

    holder = threading.Thread(target=hold)
    holder.start()
    holder_has_it.wait(2)
    try:
        done = run_execution(task_definition(function_arn, ["Lambda.TooManyRequestsException"]), {"n": 2})
    finally:
        holder.join()

    assert done["status"] == "SUCCEEDED", done
    assert task_errors(done["events"]) == ["Lambda.TooManyRequestsException"]
    assert handler_calls(shim) == [{"n": 2}]


# ---- installing -------------------------------------------------------------------------------
def test_uninstall_puts_motos_method_back(template: Template) -> None:
    original = LambdaFunction._invoke_lambda
    with LambdaShim(template) as shim:
        assert LambdaFunction._invoke_lambda is not original
        with pytest.raises(ShimError, match="another LambdaShim"):
            LambdaShim(template).install()
    assert LambdaFunction._invoke_lambda is original
    assert not shim.installed
    shim.uninstall()  # twice is fine


def test_the_shim_refuses_another_moto_version(template: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambdas, "moto_version", lambda: "5.3.0")
    with pytest.raises(ShimError, match=r"written for moto==5\.2\.5, found 5\.3\.0"):
        LambdaShim(template).install()


def test_the_pin_and_the_shim_agree() -> None:
    pins = re.findall(r"^moto(?:\[[^\]]*\])?==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pins == [SUPPORTED_MOTO_VERSION]
    assert lambdas.moto_version() == SUPPORTED_MOTO_VERSION
