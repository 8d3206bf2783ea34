"""The template's functions exist in the local stack's moto, and moto's Lambda calls run the real
handlers in-process (local/aws/lambdas.py), under the stack's lock."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.stack import LocalStack


def test_every_template_function_is_a_moto_function_under_its_template_arn(local_stack: LocalStack) -> None:
    lam = local_stack.client("lambda")
    assert local_stack.template is not None
    assert set(local_stack.function_arns) == set(local_stack.functions)
    for lid, spec in local_stack.functions.items():
        config = lam.get_function_configuration(FunctionName=local_stack.function_arn(lid))
        assert config["FunctionArn"] == local_stack.template.resources[lid].attributes["Arn"]
        assert config["Handler"] == spec.handler
        assert config["Runtime"] == "python3.13" and config["Architectures"] == ["arm64"]


def test_the_lambda_invoke_api_runs_the_real_handler(local_stack: LocalStack) -> None:
    poller = local_stack.scheduled_functions[0]
    event = local_stack.schedule_event(poller)

    answer = local_stack.client("lambda").invoke(
        FunctionName=local_stack.function_arn(poller), Payload=json.dumps(event)
    )

    assert "FunctionError" not in answer
    report = json.loads(answer["Payload"].read())
    assert {"due", "deferred", "outcomes"} <= set(report)  # the poller's sweep report


def test_an_invocation_waits_for_the_stacks_lock_then_is_throttled(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handlers share Powertools state in-process: shim calls take the same lock as API requests
    and sweeps, and never wait for it forever."""
    assert local_stack.lambdas is not None
    monkeypatch.setattr(local_stack.lambdas, "lock_timeout", 0.2)
    poller = local_stack.scheduled_functions[0]
    lam = local_stack.session().client(
        "lambda",
        endpoint_url=local_stack.aws_endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    has_it, release = threading.Event(), threading.Event()

    def hold() -> None:
        with local_stack._invoke_lock:
            has_it.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        has_it.wait(2)
        with pytest.raises(ClientError) as refused:
            lam.invoke(FunctionName=local_stack.function_arn(poller), Payload=b"{}")
        assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    finally:
        release.set()
        holder.join()
