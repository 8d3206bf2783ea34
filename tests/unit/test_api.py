"""The HTTPS API through the real REST resolver, fed API Gateway proxy events shaped like
events/*.json; DynamoDB/S3 are moto and the provider is the simulator."""

from __future__ import annotations

import base64
import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.simulator import Simulator
from tests.unit.conftest import Clock, make_service
from videogen.adapters.aiml_provider import AimlClient
from videogen.bootstrap import Components
from videogen.entrypoints.http_api import build_app, openapi_document
from videogen.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}


class Context:
    function_name = "videogen-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:videogen-api"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


def event(
    method: str,
    path: str,
    *,
    body: Any = None,
    key_id: str = "key-a",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bytes | None = None,
) -> dict[str, Any]:
    sample = json.loads((ROOT / "events" / "api_post_generation.json").read_text())
    ev = copy.deepcopy(sample)
    ev["httpMethod"] = method
    ev["path"] = path
    ev["resource"] = "/generations/{id}" if path.count("/") > 1 else path
    ev["pathParameters"] = {"id": path.rsplit("/", 1)[1]} if path.count("/") > 1 else None
    ev["queryStringParameters"] = query
    ev["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    all_headers = {"Content-Type": "application/json", "x-api-key": "secret-key", **(headers or {})}
    ev["headers"] = all_headers
    ev["multiValueHeaders"] = {k: [v] for k, v in all_headers.items()}
    ev["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    ev["isBase64Encoded"] = base64_body is not None
    if base64_body is not None:  # a binary body, as API Gateway passes it
        ev["body"] = base64.b64encode(base64_body).decode()
    ev["requestContext"]["httpMethod"] = method
    ev["requestContext"]["identity"]["apiKeyId"] = key_id
    return ev


def api_components(aws: dict[str, str], service: Any, **settings: Any) -> Components:
    """What the API function's entry builds, over `service` and the tables of `aws`."""
    return Components(
        settings=Settings(
            table_name=aws["GenerationsTable"],
            idempotency_table_name=aws["IdempotencyTable"],
            outputs_bucket=aws["OutputsBucket"],
            aiml_api_key_secret_id="unused",
            **settings,
        ),
        service=service,
        dynamodb=boto3.client("dynamodb"),
    )


@pytest.fixture
def call(aws: dict[str, str], client: AimlClient, clock: Clock) -> Any:
    service = make_service(aws, client, clock)
    components = api_components(aws, service)
    containers = threading.local()  # like Lambda: one resolver per concurrently running container

    def invoke(*args: Any, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
        if not hasattr(containers, "app"):
            containers.app = build_app(lambda: components)
        answer = containers.app.resolve(event(*args, **kwargs), Context())
        headers = {**(answer.get("headers") or {})}
        headers.update({k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()})
        return answer["statusCode"], json.loads(answer["body"]), headers

    invoke.service = service  # type: ignore[attr-defined]
    return invoke


def dispatch(call: Any) -> Any:
    """One run of the dispatcher (DispatcherFunction's work), with all the time it needs."""
    return call.service.dispatcher.run(lambda: 10**9, reserve_ms=0)


def test_post_returns_202_with_the_pending_generation_then_the_dispatcher_submits_it(
    call: Any, sim: Simulator
) -> None:
    status, body, headers = call("POST", "/generations", body=T2V)

    assert status == 202
    assert body["status"] == "pending" and body["model"] == T2V["model"] and body["id"].startswith("gen_")
    assert body["queue_position"] == 0 and body["estimated_start"]
    assert body["provider_generation_id"] is None and sim.submit_attempts == 0  # accepted, not sent
    assert headers["Location"] == f"/generations/{body['id']}"

    dispatch(call)
    _, after, _ = call("GET", f"/generations/{body['id']}")
    assert after["status"] == "queued" and after["provider_generation_id"] in sim.jobs
    assert after["queue_position"] is None and after["estimated_start"] is None


def test_post_beyond_the_owners_queue_cap_is_a_429_queue_full(call: Any, sim: Simulator) -> None:
    cap = call.service.queue.settings.owner_cap
    for i in range(cap):
        assert call("POST", "/generations", body={**T2V, "prompt": f"clip {i}"})[0] == 202
    status, body, _ = call("POST", "/generations", body=T2V)
    assert status == 429 and body["error"]["code"] == "queue_full"
    assert body["error"]["details"] == [{"limit": cap}]
    assert call("POST", "/generations", body=T2V, key_id="key-b")[0] == 202  # another key is not held up


def test_get_returns_the_generation_and_another_key_gets_404(call: Any) -> None:
    _, created, _ = call("POST", "/generations", body=T2V)

    status, body, _ = call("GET", f"/generations/{created['id']}")
    assert status == 200 and body["id"] == created["id"]

    status, body, _ = call("GET", f"/generations/{created['id']}", key_id="key-b")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, _ = call("DELETE", f"/generations/{created['id']}", key_id="key-b")
    assert status == 404
    status, body, _ = call("GET", "/generations", key_id="key-b")
    assert status == 200 and body["items"] == []


def test_list_pages_with_next_token(call: Any) -> None:
    ids = [call("POST", "/generations", body={**T2V, "prompt": f"clip {i}"})[1]["id"] for i in range(3)]

    status, page1, _ = call("GET", "/generations", query={"limit": "2"})
    assert status == 200 and len(page1["items"]) == 2 and page1["next_token"]
    _, page2, _ = call("GET", "/generations", query={"limit": "2", "next_token": page1["next_token"]})
    assert [g["id"] for g in page1["items"] + page2["items"]] == list(reversed(ids))
    assert page2["next_token"] is None

    status, body, _ = call("GET", "/generations", query={"next_token": "garbage!"})
    assert status == 422 and body["error"]["details"][0]["field"] == "next_token"
    status, body, _ = call("GET", "/generations", query={"limit": "1000"})
    assert status == 422 and body["error"]["details"][0]["field"] == "limit"


def test_delete_cancels_then_409(call: Any, sim: Simulator) -> None:
    _, created, _ = call("POST", "/generations", body=T2V)
    dispatch(call)  # at the provider

    status, body, _ = call("DELETE", f"/generations/{created['id']}")
    assert status == 200 and body["status"] == "cancelled"
    status, body, _ = call("DELETE", f"/generations/{created['id']}")
    assert status == 409 and body["error"]["code"] == "conflict"


def test_delete_of_a_pending_generation_takes_it_out_of_the_queue_for_nothing(
    call: Any, sim: Simulator
) -> None:
    _, first, _ = call("POST", "/generations", body=T2V)
    _, second, _ = call("POST", "/generations", body={**T2V, "prompt": "second"})
    assert second["queue_position"] == 1

    status, body, _ = call("DELETE", f"/generations/{first['id']}")
    assert status == 200 and body["status"] == "cancelled" and body["queue_position"] is None
    assert call("GET", f"/generations/{second['id']}")[1]["queue_position"] == 0  # moved up
    dispatch(call)
    assert sim.submit_attempts == 1  # only the second: the cancelled one was never sent
    assert call("GET", f"/generations/{first['id']}")[1]["provider_generation_id"] is None


def test_delete_while_the_submit_is_in_flight_is_a_409_saying_to_retry(call: Any, sim: Simulator) -> None:
    service = call.service
    provider = service.submitter.provider
    answers: list[tuple[int, dict[str, Any]]] = []

    class CancelDuringSubmit:
        """The provider, with a DELETE of the `submitting` record sent (from another thread, as
        from another container) inside the paid call."""

        def __getattr__(self, name: str) -> Any:
            return getattr(provider, name)

        def submit(self, model: Any, fields: Any) -> Any:
            (pending,) = call("GET", "/generations")[1]["items"]
            delete = threading.Thread(
                target=lambda: answers.append(call("DELETE", f"/generations/{pending['id']}")[:2])
            )
            delete.start()
            delete.join()
            return provider.submit(model, fields)

    service.submitter.provider = CancelDuringSubmit()

    status, created, _ = call("POST", "/generations", body=T2V)
    dispatch(call)

    ((delete_status, delete_body),) = answers
    assert delete_status == 409 and delete_body["error"]["code"] == "conflict"
    assert "being submitted" in delete_body["error"]["message"]
    assert "try again in a few seconds" in delete_body["error"]["message"]
    assert status == 202 and created["status"] == "pending"
    _, after, _ = call("GET", f"/generations/{created['id']}")
    assert after["status"] == "queued" and after["provider_generation_id"] in sim.jobs


def test_models_lists_the_catalog_with_fields(call: Any) -> None:
    status, body, _ = call("GET", "/models")

    assert status == 200
    ids = {m["id"] for m in body["models"]}
    assert {"video-01", "runway/gen4_turbo", "openai/sora-2-i2v", "google/veo3"} <= ids
    runway = next(m for m in body["models"] if m["id"] == "runway/gen4_turbo")
    assert any(f["name"] == "image_url" and f["required"] for f in runway["fields"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ([1, 2], 422, "body"),
        ({"prompt": "no model"}, 422, "model"),
        ({"model": "no-such-model", "prompt": "x"}, 422, "model"),
        ({"model": "kling-video/v1.6/standard/text-to-video"}, 422, "prompt"),
        ({**T2V, "colour": "red"}, 422, "colour"),
        ({**T2V, "duration": 7}, 422, "duration"),
        ({**T2V, "aspect_ratio": "4:3"}, 422, "aspect_ratio"),
        ({"model": "video-01", "prompt": "x" * 2001}, 422, "prompt"),
        ({"model": "video-01", "prompt": "x", "image_url": "http://example.com/a.png"}, 422, "image_url"),
        ({"model": "video-01", "prompt": "x", "image_url": "https://127.0.0.1/a.png"}, 422, "image_url"),
        (
            {"model": "video-01", "prompt": "x", "image_url": "https://169.254.169.254/latest"},
            422,
            "image_url",
        ),
        ({"model": "video-01", "prompt": "x", "image_url": "https://10.1.2.3/a.png"}, 422, "image_url"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_calls_no_provider(
    call: Any, sim: Simulator, body: Any, status: int, field: str | None
) -> None:
    got_status, answer, _ = call("POST", "/generations", body=body)

    assert got_status == status
    assert set(answer) == {"error"} and answer["error"]["code"] and answer["error"]["message"]
    if field:
        assert field in {d.get("field") for d in answer["error"]["details"]}
    assert sim.submit_attempts == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"status": 400}, "provider_validation"),
        ({"status": 401}, "provider_auth"),
        ({"status": 403}, "provider_out_of_credits"),
        ({"status": 500}, "submit_outcome_unknown"),
        ({"status": 503}, "submit_outcome_unknown"),
    ],
)
def test_provider_failure_on_submit_reaches_the_record(
    call: Any, sim: Simulator, fault: dict[str, Any], code: str
) -> None:
    sim.inject({"on": "submit", **fault})

    got, answer, _ = call("POST", "/generations", body=T2V)
    assert got == 202 and answer["status"] == "pending"  # the provider is called after the answer
    dispatch(call)

    _, record, _ = call("GET", f"/generations/{answer['id']}")
    assert record["status"] == "failed" and record["error"]["code"] == code
    assert record["submit_outcome_unknown"] is (code == "submit_outcome_unknown")
    assert sim.submit_attempts == 1  # never resent


def test_idempotency_key_returns_the_first_answer_and_submits_once(call: Any, sim: Simulator) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = call("POST", "/generations", body=T2V, headers=headers)
    again = call("POST", "/generations", body=T2V, headers=headers)

    assert first[0] == again[0] == 202
    assert first[1]["id"] == again[1]["id"]
    dispatch(call)
    assert sim.submit_count == 1

    other_key_owner = call("POST", "/generations", body=T2V, headers=headers, key_id="key-b")
    assert other_key_owner[0] == 202 and other_key_owner[1]["id"] != first[1]["id"]  # keys are per caller

    status, answer, _ = call("POST", "/generations", body={**T2V, "prompt": "another"}, headers=headers)
    assert status == 422 and answer["error"]["code"] == "idempotency_key_reused"
    dispatch(call)
    assert sim.submit_count == 2


def test_idempotency_never_resubmits_an_ambiguous_submit(call: Any, sim: Simulator) -> None:
    sim.inject({"on": "submit", "status": 500})
    headers = {"Idempotency-Key": "retry-me"}

    first = call("POST", "/generations", body=T2V, headers=headers)
    dispatch(call)
    retry = call("POST", "/generations", body=T2V, headers=headers)
    dispatch(call)

    assert first[1]["id"] == retry[1]["id"]  # the first answer, replayed: no second generation
    _, record, _ = call("GET", f"/generations/{first[1]['id']}")
    assert record["error"]["code"] == "submit_outcome_unknown"
    assert sim.submit_attempts == 1


def test_concurrent_retries_with_one_key_submit_once(call: Any, sim: Simulator) -> None:
    sim.configure(latency_ms=200)
    headers = {"Idempotency-Key": "burst"}
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: call("POST", "/generations", body=T2V, headers=headers), range(5)))
    dispatch(call)

    assert sim.submit_count == 1
    ids = {a[1]["id"] for a in answers if a[0] == 202}
    assert len(ids) == 1
    for status, body, headers_out in answers:
        assert status in (202, 409)
        if status == 409:
            assert body["error"]["code"] == "request_in_progress" and headers_out["Retry-After"] == "1"


@pytest.mark.parametrize("raw", [b'{"model": "video-01", "prompt": "\xc0\xf6"}', b"\xff\xfe\x00"])
def test_a_body_that_is_not_utf8_is_a_400_not_a_crash(call: Any, sim: Simulator, raw: bytes) -> None:
    # Found by the fuzzer (bench/reliability.py fuzzed_api): Powertools' body decoding raised
    # UnicodeDecodeError out of the handler, and API Gateway answered 502.
    status, answer, _ = call("POST", "/generations", base64_body=raw)

    assert status == 400 and answer["error"]["code"] == "invalid_json"
    assert sim.submit_attempts == 0


def test_unknown_route_is_404_in_the_error_shape(call: Any) -> None:
    status, body, _ = call("GET", "/nothing-here")
    assert status == 404 and body["error"]["code"] == "route_not_found"


def test_committed_openapi_document_matches_the_code() -> None:
    committed = (ROOT / "openapi.json").read_text()
    assert committed == openapi_document(), "openapi.json is stale: run `make openapi`"


def test_an_inline_image_too_large_for_the_record_is_refused(call: Any, sim: Simulator) -> None:
    import base64

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * (300 * 1024)
    image = "data:image/png;base64," + base64.b64encode(png).decode()

    status, answer, _ = call(
        "POST", "/generations", body={"model": "video-01", "prompt": "x", "image_url": image}
    )

    assert status == 422 and "image_url" in {d["field"] for d in answer["error"]["details"]}
    assert sim.submit_attempts == 0


def test_an_inline_image_its_model_page_rules_out_is_refused_naming_the_rule(
    call: Any, sim: Simulator
) -> None:
    import base64

    from tests.images import png

    image = "data:image/png;base64," + base64.b64encode(png(200, 200)).decode()
    status, answer, _ = call(
        "POST", "/generations", body={"model": "video-01", "prompt": "x", "image_url": image}
    )

    assert status == 422 and answer["error"]["details"] == [
        {"field": "image_url", "message": "must have a shorter side over 300 pixels (it is 200x200)"}
    ]
    assert sim.submit_attempts == 0
    good = "data:image/png;base64," + base64.b64encode(png(480, 360)).decode()
    status, _, _ = call("POST", "/generations", body={"model": "video-01", "prompt": "x", "image_url": good})
    assert status == 202


@pytest.mark.parametrize("origin", ["*", "https://console.example.com"])
def test_every_answer_carries_the_cors_headers_a_browser_needs(
    aws: dict[str, str], client: AimlClient, clock: Clock, origin: str
) -> None:
    """The console runs in a browser on another origin: successes and errors alike must be
    readable there, or it could only say "Failed to fetch"."""
    settings = Settings(
        table_name=aws["GenerationsTable"],
        idempotency_table_name=aws["IdempotencyTable"],
        outputs_bucket=aws["OutputsBucket"],
        aiml_api_key_secret_id="unused",
        allowed_origin=origin,
    )
    components = Components(
        settings=settings, service=make_service(aws, client, clock), dynamodb=boto3.client("dynamodb")
    )
    app = build_app(lambda: components, allowed_origin=settings.allowed_origin)
    browser = {"Origin": "https://console.example.com"}

    def headers_of(answer: dict[str, Any]) -> dict[str, str]:
        merged = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
        merged.update({k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()})
        return merged

    created = app.resolve(event("POST", "/generations", body=T2V, headers=browser), Context())
    assert created["statusCode"] == 202
    cors = headers_of(created)
    assert cors["access-control-allow-origin"] == origin
    assert "location" in cors["access-control-expose-headers"].lower()
    for answer in (
        app.resolve(event("GET", "/generations/gen_nope", headers=browser), Context()),  # 404
        app.resolve(event("POST", "/generations", body={"model": "x"}, headers=browser), Context()),  # 422
    ):
        assert answer["statusCode"] in (404, 422)
        assert headers_of(answer)["access-control-allow-origin"] == origin


def test_allowed_origin_is_an_origin_or_a_star() -> None:
    base = {
        "table_name": "t",
        "idempotency_table_name": "i",
        "outputs_bucket": "b",
        "aiml_api_key_secret_id": "s",
    }
    assert Settings.from_env({k.upper(): v for k, v in base.items()}).allowed_origin == "*"
    for bad in ("https://example.com/path", "example.com", "*.example.com"):
        with pytest.raises(Exception, match="ALLOWED_ORIGIN"):
            Settings.from_env({**{k.upper(): v for k, v in base.items()}, "ALLOWED_ORIGIN": bad})


# ---- what cannot be stored or forwarded is refused, and answers stay small ---------------------
FIRST_LAST = "google/veo-3.1-first-last-image-to-video"


def inline_png(size: int) -> str:
    """A data URL of a PNG (by its signature) of `size` bytes."""
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(size - 8)).decode()


def test_inline_images_too_large_together_are_refused_naming_each(call: Any, sim: Simulator) -> None:
    """Each image is under the per-image cap; together they would not fit a DynamoDB item."""
    image = inline_png(200 * 1024)
    body = {"model": FIRST_LAST, "prompt": "x", "image_url": image, "last_image_url": image}

    status, answer, _ = call("POST", "/generations", body=body)

    assert status == 422 and answer["error"]["code"] == "validation_error"
    assert {d["field"] for d in answer["error"]["details"]} == {"image_url", "last_image_url"}
    assert sim.submit_attempts == 0
    assert call("GET", "/generations")[1]["items"] == []  # nothing recorded


def test_a_request_too_large_to_record_is_refused(call: Any, sim: Simulator) -> None:
    """A field with no length limit of its own (this prompt) still has to fit the record."""
    body = {**T2V, "prompt": "fox " * 100_000}

    status, answer, _ = call("POST", "/generations", body=body)

    assert status == 422 and answer["error"]["details"][0]["field"] == "body"
    assert sim.submit_attempts == 0 and call("GET", "/generations")[1]["items"] == []


def test_answers_shorten_inline_images_and_the_record_keeps_them(call: Any) -> None:
    first, last = inline_png(3000), inline_png(120 * 1024)
    body = {"model": FIRST_LAST, "prompt": "x", "image_url": first, "last_image_url": last}
    status, created, _ = call("POST", "/generations", body=body)
    assert status == 202

    _, page, _ = call("GET", "/generations")
    _, single, _ = call("GET", f"/generations/{created['id']}")

    for shown in (created, page["items"][0], single):
        assert shown["request"]["image_url"] == f"data:image/png;base64,... ({len(first)} characters)"
        assert shown["request"]["last_image_url"] == f"data:image/png;base64,... ({len(last)} characters)"
        assert shown["request"]["prompt"] == "x"
    stored = call.service.store.get(created["id"])
    assert (stored.request["image_url"], stored.request["last_image_url"]) == (first, last)


def page_token(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "key",
    [
        {"id": {"N": "1"}, "owner": {"S": "key-a"}, "created_at": {"S": "2026-01-01T00:00:00.000Z"}},
        {"id": {"S": "gen_1"}, "owner": {"S": "key-a"}, "created_at": {"S": ""}},
        {"id": {"S": "gen_1", "N": "1"}, "owner": {"S": "key-a"}, "created_at": {"S": "t"}},
        {"id": {"S": 1}, "owner": {"S": "key-a"}, "created_at": {"S": "t"}},
        {"id": ["S", "gen_1"], "owner": {"S": "key-a"}, "created_at": {"S": "t"}},
        {"id": {"S": "gen_\ud800"}, "owner": {"S": "key-a"}, "created_at": {"S": "t"}},
        {"id": {"S": "gen_1"}, "owner": {"S": "key-a"}, "created_at": {"S": "t" * 600}},
        {"id": {"S": "gen_1"}, "owner": {"S": "key-b"}, "created_at": {"S": "t"}},
        [1, 2],
    ],
)
def test_a_crafted_page_token_is_a_422(call: Any, key: Any) -> None:
    call("POST", "/generations", body=T2V)

    status, answer, _ = call("GET", "/generations", query={"next_token": page_token(key)})

    assert status == 422, answer
    assert answer["error"]["details"] == [{"field": "next_token", "message": "not a token from this API"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**T2V, "prompt": "A red fox \ud800 runs"}, "prompt"),
        (
            {
                "model": "alibaba/happyhorse-1-0",
                "prompt": "x",
                "reference_image_urls": ["https://example.com/a.png", "https://example.com/\udc00.png"],
            },
            "reference_image_urls[1]",
        ),
        ({**T2V, "callback_url": "https://example.com/\ud800"}, "callback_url"),
        # a key the request model cannot read as text: refused before the catalog, as the body
        ({**T2V, "\ud800": 1}, "body"),
    ],
)
def test_text_with_a_lone_surrogate_is_a_422_naming_the_field(
    call: Any, sim: Simulator, body: dict[str, Any], field: str
) -> None:
    status, answer, _ = call("POST", "/generations", body=body)

    assert status == 422 and answer["error"]["code"] == "validation_error"
    assert [d["field"] for d in answer["error"]["details"]] == [field]
    assert sim.submit_attempts == 0 and call("GET", "/generations")[1]["items"] == []


def test_a_connection_error_is_answered_without_the_providers_address(
    aws: dict[str, str], clock: Clock
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    provider = AimlClient(
        f"http://127.0.0.1:{port}",
        lambda: "sk-unused",
        connect_timeout=1,
        submit_read_timeout=1,
        backoff_factor=0.01,
    )
    service = make_service(aws, provider, clock)
    components = api_components(aws, service)
    app = build_app(lambda: components)

    answer = app.resolve(event("POST", "/generations", body=T2V), Context())
    generation_id = json.loads(answer["body"])["id"]
    assert service.dispatcher is not None
    service.dispatcher.run(lambda: 10**9, reserve_ms=0)
    stored = app.resolve(event("GET", f"/generations/{generation_id}"), Context())
    assert json.loads(stored["body"])["error"]["code"] == "provider_connection"
    for text in (answer["body"], stored["body"]):
        assert "127.0.0.1" not in text and f":{port}" not in text and "Connection" not in text, text
    assert json.loads(stored["body"])["error"]["message"] == "the provider could not be reached"
