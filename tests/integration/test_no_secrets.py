"""The AIML API key never shows up in a log line, an API answer or a stored record, whatever
the provider answers: a whole flow with failures, with every output of the process captured."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.stack import SIMULATOR_KEY, LocalStack
from tests.integration.conftest import ALICE_KEY


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log line of the handlers, formatted exactly as Powertools writes it in Lambda."""
    powertools = logging.getLogger("videogen")
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(powertools.handlers[0].formatter)
    powertools.addHandler(handler)
    yield sink
    powertools.removeHandler(handler)


T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}


def test_the_provider_key_is_never_logged_nor_answered_nor_stored(
    local_stack: LocalStack,
    api: Any,
    api_client: Any,
    simulator: Any,
    wait_for: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
    json_logs: io.StringIO,
) -> None:
    answers: list[str] = []

    def status(generation_id: str) -> dict[str, Any]:
        answer = api.get(f"/generations/{generation_id}")
        answers.append(answer.text)
        return answer.json()

    # The API accepts (pending) and answers; the dispatcher submits afterwards. So the first is
    # at the provider before the faults are injected, and the faults meet the next two's submits.
    created = api.post("/generations", json=T2V)
    answers.append(created.text)
    wait_for(lambda: status(created.json()["id"])["status"] not in ("pending", "submitting"))
    simulator.inject({"on": "submit", "status": 401}, {"on": "submit", "status": 500})
    refused = [api.post("/generations", json=T2V) for _ in range(2)]
    answers += [answer.text for answer in refused]
    ended = [
        wait_for(lambda a=a: (got := status(a.json()["id"]))["status"] == "failed" and got) for a in refused
    ]
    simulator.inject({"on": "poll", "status": 401})

    def completed() -> bool:
        local_stack.poll_now()
        return status(created.json()["id"])["status"] == "completed"

    wait_for(completed)
    answers.append(api.get("/generations").text)
    # every other route and error answer: the catalog, a cancel, a refused URL, a refused key
    answers.append(api.get("/models").text)
    answers.append(api.delete(f"/generations/{api.post('/generations', json=T2V).json()['id']}").text)
    answers.append(api.post("/generations", json={**T2V, "image_url": "https://169.254.169.254/"}).text)
    answers.append(api_client("wrong-" + ALICE_KEY).get("/generations").text)
    stored = local_stack.client("dynamodb").scan(TableName=local_stack.environment["TABLE_NAME"])["Items"]
    out, err = capfd.readouterr()
    logs = json_logs.getvalue()

    # the failures did happen
    assert {g["error"]["code"] for g in ended} == {"provider_auth", "submit_outcome_unknown"}
    assert '"message":"generation submitted"' in logs and '"generation_id":"gen_' in logs  # and were logged
    for text in [logs, out, err, *answers, json.dumps(stored)]:
        assert SIMULATOR_KEY not in text
        assert ALICE_KEY not in text  # nor the caller's own x-api-key
        assert "Bearer" not in text
