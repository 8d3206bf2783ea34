"""Every route requires the API key, and a key never sees, lists or cancels another key's
generations: each route of the template, through the local API Gateway adapter and the real
handler. The template side (ApiKeyRequired on every generated method) is in
tests/unit/test_template.py::test_the_five_routes_need_an_api_key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.aws.apigw import render_gateway_response
from local.stack import LocalStack
from tests.integration.conftest import ALICE_KEY, BOB_KEY

TEXT_MODEL = "kling-video/v1.6/standard/text-to-video"
ROUTES = [
    ("POST", "/generations"),
    ("GET", "/generations"),
    ("GET", "/generations/{id}"),
    ("DELETE", "/generations/{id}"),
    ("GET", "/models"),
    ("GET", "/usage"),
    ("GET", "/webhook-secret"),
    ("POST", "/webhook-secret/rotate"),
    ("POST", "/batches"),
    ("GET", "/batches"),
    ("GET", "/batches/{id}"),
    ("GET", "/batches/{id}/results"),
    ("DELETE", "/batches/{id}"),
    ("POST", "/batches/{id}/resume"),
]


def test_the_adapter_serves_exactly_the_template_routes_all_keyed(local_stack: LocalStack) -> None:
    routes = [r for spec in local_stack.functions.values() for r in spec.routes]
    assert sorted((r.method, r.path) for r in routes) == sorted(ROUTES)
    assert all(r.api_key_required for r in routes)


@pytest.mark.parametrize("key", [None, "", "not-a-key", ALICE_KEY.upper(), ALICE_KEY + " "])
@pytest.mark.parametrize(("method", "resource"), ROUTES)
def test_no_key_or_a_wrong_key_is_refused_on_every_route_before_the_handler(
    local_stack: LocalStack,
    api_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    resource: str,
    key: str | None,
) -> None:
    invoked: list[str] = []
    for lid, handler in list(local_stack._handlers.items()):
        monkeypatch.setitem(
            local_stack._handlers, lid, lambda e, c, lid=lid, h=handler: invoked.append(lid) or h(e, c)
        )
    client = api_client(None)
    headers = {} if key is None else {"x-api-key": key}
    body = {"model": TEXT_MODEL, "prompt": "a paper boat"} if method == "POST" else None
    answer = client.request(method, resource.replace("{id}", "gen_anything"), json=body, headers=headers)

    status, _, expected = render_gateway_response(
        "INVALID_API_KEY", local_stack.template.api("VideogenApi").gateway_responses, {}
    )
    assert status == 403
    assert (answer.status_code, answer.json()) == (status, json.loads(expected))
    assert answer.json()["error"]["code"] == "invalid_api_key"
    assert invoked == []


@pytest.fixture
def alices(api: Any) -> dict[str, Any]:
    answer = api.post("/generations", json={"model": TEXT_MODEL, "prompt": "alice's boat"})
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def test_another_key_cannot_get_a_generation(api: Any, other_api: Any, alices: dict[str, Any]) -> None:
    answer = other_api.get(f"/generations/{alices['id']}")
    missing = other_api.get("/generations/gen_doesnotexist")
    # the same answer as for an id that does not exist: no hint that it does
    assert answer.status_code == missing.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert answer.text.replace(alices["id"], "gen_doesnotexist") == missing.text  # only the id differs
    assert "alice" not in answer.text
    assert api.get(f"/generations/{alices['id']}").status_code == 200


def test_another_key_never_lists_a_generation(api: Any, other_api: Any, alices: dict[str, Any]) -> None:
    def ids(client: Any, **query: str) -> set[str]:
        seen: set[str] = set()
        token = None
        while True:
            params = {**query, **({"next_token": token} if token else {})}
            page = client.get("/generations", params=params)
            assert page.status_code == 200, page.text
            seen |= {g["id"] for g in page.json()["items"]}
            token = page.json()["next_token"]
            if not token:
                return seen

    assert alices["id"] in ids(api, limit="1")
    assert alices["id"] not in ids(other_api) | ids(other_api, limit="1")


def test_a_page_token_of_another_key_lists_nothing_of_theirs(
    api: Any, other_api: Any, alices: dict[str, Any]
) -> None:
    api.post("/generations", json={"model": TEXT_MODEL, "prompt": "alice's second boat"})
    first = api.get("/generations", params={"limit": "1"}).json()
    assert first["next_token"]
    answer = other_api.get("/generations", params={"next_token": first["next_token"]})
    if answer.status_code == 200:
        assert alices["id"] not in {g["id"] for g in answer.json()["items"]}
        assert not any("alice" in g.get("prompt", "") for g in answer.json()["items"])
    else:
        assert answer.status_code == 422, answer.text


def test_another_key_cannot_cancel_a_generation(api: Any, other_api: Any, alices: dict[str, Any]) -> None:
    answer = other_api.delete(f"/generations/{alices['id']}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    still = api.get(f"/generations/{alices['id']}").json()
    assert still["status"] != "cancelled"
    assert api.delete(f"/generations/{alices['id']}").json()["status"] == "cancelled"


def test_an_idempotency_key_of_another_caller_is_not_shared(
    api: Any, other_api: Any, local_stack: LocalStack
) -> None:
    body = {"model": TEXT_MODEL, "prompt": "same key, two callers"}
    mine = api.post("/generations", json=body, headers={"Idempotency-Key": "shared-order-1"})
    theirs = other_api.post("/generations", json=body, headers={"Idempotency-Key": "shared-order-1"})
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert other_api.get(f"/generations/{mine.json()['id']}").status_code == 404
    assert local_stack.key_id(ALICE_KEY) != local_stack.key_id(BOB_KEY)


def test_each_key_has_its_own_webhook_secret_and_rotates_only_its_own(api: Any, other_api: Any) -> None:
    mine, theirs = api.get("/webhook-secret").json(), other_api.get("/webhook-secret").json()
    assert mine["secret"].startswith("whsec_") and mine["secret"] != theirs["secret"]
    rotated = api.post("/webhook-secret/rotate")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["version"] == mine["version"] + 1 and new["previous_version"] == mine["version"]
    assert new["secret"] not in (mine["secret"], theirs["secret"])
    assert api.get("/webhook-secret").json()["secret"] == new["secret"]
    assert other_api.get("/webhook-secret").json() == theirs  # the other key is untouched
