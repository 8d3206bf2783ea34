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
    simulator: Any,
    wait_for: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
    json_logs: io.StringIO,
) -> None:
    answers: list[str] = []
    created = api.post("/generations", json=T2V)
    answers.append(created.text)
    simulator.inject({"on": "submit", "status": 401}, {"on": "submit", "status": 500})
    answers += [api.post("/generations", json=T2V).text for _ in range(2)]
    simulator.inject({"on": "poll", "status": 401})

    def completed() -> bool:
        local_stack.poll_now()
        answer = api.get(f"/generations/{created.json()['id']}")
        answers.append(answer.text)
        return answer.json()["status"] == "completed"

    wait_for(completed)
    answers.append(api.get("/generations").text)
    stored = local_stack.client("dynamodb").scan(TableName=local_stack.environment["TABLE_NAME"])["Items"]
    out, err = capfd.readouterr()
    logs = json_logs.getvalue()

    assert json.loads(answers[1])["error"]["code"] == "provider_auth"  # the failures did happen
    assert '"message":"generation submitted"' in logs and '"generation_id":"gen_' in logs  # and were logged
    for text in [logs, out, err, *answers, json.dumps(stored)]:
        assert SIMULATOR_KEY not in text
        assert "Bearer" not in text
