"""Every catalog model, end to end through the real API and the simulator (which judges each
body by the provider's own schema): its smallest valid request is accepted, submitted, polled to
the end and its video archived in our bucket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local.stack import LocalStack
from tests.catalog_bodies import minimal_body
from tests.integration.conftest import ApiClient
from videogen.domain.catalog import CATALOG

MODELS = list(CATALOG.values())


@pytest.mark.usefixtures("poller")
def test_every_model_from_its_smallest_request_to_an_archived_video(
    api: ApiClient, local_stack: LocalStack, wait_for: Callable[..., Any]
) -> None:
    submitted: dict[str, str] = {}
    refused: dict[str, Any] = {}
    for model in MODELS:
        answer = api.post("/generations", json=minimal_body(model))
        if answer.status_code == 202:
            submitted[model.id] = answer.json()["id"]
        else:
            refused[model.id] = (answer.status_code, answer.json())
    assert refused == {}

    def ended() -> dict[str, Any] | None:
        states = {model_id: api.get(f"/generations/{gid}").json() for model_id, gid in submitted.items()}
        return (
            states
            if all(s["status"] in ("completed", "failed", "timed_out") for s in states.values())
            else None
        )

    states = wait_for(ended, timeout=120, interval=0.5)
    not_completed = {
        m: (s["status"], s.get("error")) for m, s in states.items() if s["status"] != "completed"
    }
    assert not_completed == {}
    assert all(s["video"]["url"] for s in states.values())
    keys = {
        obj["Key"]
        for page in local_stack.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=local_stack.endpoints["outputs_bucket"], Prefix="videos/")
        for obj in page.get("Contents", [])
    }
    assert {f"videos/{gid}.mp4" for gid in submitted.values()} <= keys
