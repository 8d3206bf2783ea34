"""Spend counting on the local stack: a generation's estimate is reserved at the API, and the
generations table's stream (the SpendFunction, as the template wires it) replaces it with the
simulator's reported `meta.usage.credits_used`, whether the submit answer carries it (kling) or
only the finished poll does (video-01). Seen through GET /usage and `videogen usage`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from local.simulator import Simulator
from local.stack import LocalStack
from tests.integration.conftest import BOB_KEY, ApiClient
from videogen.domain.pricing import estimate_credits
from videogen_cli.main import main


def row(usage: dict[str, Any], model: str) -> tuple[int, int]:
    """(credits, requests) of `model` today."""
    for r in usage["days"]:
        if r["model"] == model and r["day"] == usage["daily"]["period"]:
            return r["credits"], r["requests"]
    return 0, 0


@pytest.mark.parametrize(
    "body",
    [
        {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A fox in snow"},  # usage on submit
        {"model": "video-01", "prompt": "A heron lands"},  # usage on the finished poll only
    ],
)
def test_the_reported_usage_replaces_the_estimate(
    local_stack: LocalStack,
    other_api: ApiClient,
    simulator: Simulator,
    poller: None,
    wait_for: Callable[..., Any],
    body: dict[str, Any],
) -> None:
    model = body["model"]
    before = other_api.get("/usage").json()
    created = other_api.post("/generations", json=body)
    assert created.status_code == 202, created.text
    generation_id = created.json()["id"]
    reserved = other_api.get("/usage").json()
    credits, requests = row(reserved, model)
    assert requests == row(before, model)[1] + 1

    wait_for(
        lambda: other_api.get(f"/generations/{generation_id}").json()["status"] == "completed", timeout=30
    )
    reported = other_api.get(f"/generations/{generation_id}").json()["usage"]["credits_used"]
    # right after the POST: the estimate, or already the reported figure if the stream was quick
    assert credits - row(before, model)[0] in (estimate_credits(model, body), reported)
    local_stack.pump_events()

    after = other_api.get("/usage").json()
    assert row(after, model) == (row(before, model)[0] + reported, row(before, model)[1] + 1)
    assert after["daily"]["spent"] - before["daily"]["spent"] == reported
    assert after["daily"]["limit"] is None  # the template's default: counted, not limited

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["usage", "--days", "2", "--api-url", local_stack.api_url, "--api-key", BOB_KEY],
        stdout=out,
        stderr=err,
        env={},
    )
    assert code == 0, err.getvalue()
    assert model in out.getvalue() and "(no limit)" in out.getvalue()
    out = io.StringIO()
    assert (
        main(
            ["usage", "--json", "--api-url", local_stack.api_url, "--api-key", BOB_KEY],
            stdout=out,
            stderr=err,
            env={},
        )
        == 0
    )
    assert row(json.loads(out.getvalue()), model) == row(after, model)
