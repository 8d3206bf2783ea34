"""Completion events and signed webhooks on the local stack: the real handlers end generations,
the table's stream reaches the notifier, EventBridge (moto) routes each event to the stack's tap
queue, and the webhook function POSTs to a receiver on loopback that verifies the signature as the
README shows. Faults are injected at the receiver."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.stack import ROOT, LocalStack
from tests.integration.test_uploads_local import upload
from tests.webhook_receiver import Answer, Receiver

T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}
ApiClient = Any


class Events:
    """Every completion event the tap queue received in this session, by generation id."""

    seen: list[dict[str, Any]] = []

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def of(self, generation_id: str) -> list[dict[str, Any]]:
        self.seen.extend(self.stack.completion_events())
        return [e for e in self.seen if e["detail"]["id"] == generation_id]


@pytest.fixture
def events(local_stack: LocalStack) -> Events:
    return Events(local_stack)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def finish(
    stack: LocalStack, api: ApiClient, generation_id: str, wait_for: Callable[..., Any]
) -> dict[str, Any]:
    def ended() -> Any:
        stack.poll_now()
        body = api.get(f"/generations/{generation_id}").json()
        return body if body["status"] in {"completed", "failed", "timed_out", "cancelled"} else None

    return wait_for(ended, timeout=15)


def verify(api: ApiClient, body: bytes, headers: dict[str, str]) -> Any:
    """The README's receiver, run verbatim with the caller's own secret (GET /webhook-secret)."""
    answer = api.get("/webhook-secret")
    assert answer.status_code == 200, answer.text
    return readme_receiver(answer.json()["secret"])["receive"](body, headers)


def readme_receiver(secret: str) -> dict[str, Any]:
    """The README's receiver snippet, run verbatim with `secret`."""
    readme = (ROOT / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "standardwebhooks" in b]
    namespace: dict[str, Any] = {"SECRET": secret}
    exec(code, namespace)  # the README's own snippet
    return namespace


def test_a_completion_is_one_event_and_one_verified_webhook(
    local_stack: LocalStack, api: ApiClient, events: Events, receiver: Receiver, wait_for: Callable[..., Any]
) -> None:
    created = api.post("/generations", json={**T2V, "callback_url": receiver.url()})
    assert created.status_code == 202, created.text
    assert created.json()["callback_url"] == receiver.url()
    done = finish(local_stack, api, created.json()["id"], wait_for)
    assert done["status"] == "completed"

    (event,) = wait_for(lambda: events.of(done["id"]))
    (delivery,) = wait_for(receiver.received)
    local_stack.pump_events()  # anything still in flight would show up now

    assert len(events.of(done["id"])) == 1 and len(receiver.received()) == 1
    assert event["source"] == "videogen" and event["detail-type"] == "Generation Completed"
    assert event["detail"]["video"] == {
        "bucket": local_stack.environment["OUTPUTS_BUCKET"],
        "key": f"videos/{done['id']}.mp4",
    }
    payload = verify(api, delivery.body, delivery.headers)
    assert payload == {
        "type": "generation.completed",
        "timestamp": payload["timestamp"],
        "data": event["detail"],
    }
    assert delivery.headers["webhook-id"] == f"msg_{done['id']}_completed"


def test_after_a_rotation_a_delivery_verifies_with_the_new_and_the_old_secret(
    local_stack: LocalStack, api: ApiClient, receiver: Receiver, wait_for: Callable[..., Any]
) -> None:
    old = api.get("/webhook-secret").json()["secret"]
    new = api.post("/webhook-secret/rotate").json()["secret"]
    created = api.post("/generations", json={**T2V, "callback_url": receiver.url()})
    finish(local_stack, api, created.json()["id"], wait_for)
    (delivery,) = wait_for(receiver.received)
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):  # the README's receiver with either secret: within the grace
        namespace = readme_receiver(secret)
        assert namespace["receive"](delivery.body, delivery.headers)["data"]["id"] == created.json()["id"]


def test_cancelling_is_one_cancelled_event(
    local_stack: LocalStack, api: ApiClient, events: Events, wait_for: Callable[..., Any]
) -> None:
    generation_id = api.post("/generations", json=T2V).json()["id"]
    assert api.delete(f"/generations/{generation_id}").status_code == 200
    assert api.delete(f"/generations/{generation_id}").status_code == 409  # already over: no event
    local_stack.poll_now()

    (event,) = wait_for(lambda: events.of(generation_id))
    local_stack.pump_events()
    assert len(events.of(generation_id)) == 1
    assert event["detail-type"] == "Generation Cancelled"
    assert event["detail"]["error"]["code"] == "cancelled" and event["detail"]["video"] is None


def test_a_receiver_answering_500_then_200_gets_it_once_under_one_id(
    local_stack: LocalStack, api: ApiClient, receiver: Receiver, wait_for: Callable[..., Any]
) -> None:
    receiver.answer(Answer(500))
    generation_id = api.post("/generations", json={**T2V, "callback_url": receiver.url()}).json()["id"]
    api.delete(f"/generations/{generation_id}")

    first, second = wait_for(lambda: len(receiver.received()) >= 2 and receiver.received())
    assert (first.status, second.status) == (500, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{generation_id}_cancelled"
    assert verify(api, second.body, second.headers)["data"]["status"] == "cancelled"
    local_stack.pump_events()
    assert len(receiver.received()) == 2


def test_a_receiver_answering_400_is_not_retried_and_the_dead_letter_says_why(
    local_stack: LocalStack, api: ApiClient, receiver: Receiver, wait_for: Callable[..., Any]
) -> None:
    receiver.answer(Answer(400))
    url = receiver.url(f"/refuses/{uuid.uuid4().hex[:8]}")
    generation_id = api.post("/generations", json={**T2V, "callback_url": url}).json()["id"]
    api.delete(f"/generations/{generation_id}")
    sqs = local_stack.client("sqs")
    dlq = local_stack.endpoints["webhook_dead_letter_queue_url"]

    def dead_letter() -> Any:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        mine = [json.loads(m["Body"]) for m in messages if json.loads(m["Body"])["url"] == url]
        for m in messages:
            sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        return mine

    (dead,) = wait_for(dead_letter)
    local_stack.pump_events()
    assert len(receiver.received()) == 1
    assert dead["reason"] == "http_400" and dead["generation_id"] == generation_id and dead["attempts"] == 1


def test_a_private_callback_url_is_refused_in_the_error_shape(api: ApiClient) -> None:
    for url in ("https://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook", "ftp://example.com/x"):
        answer = api.post("/generations", json={**T2V, "callback_url": url})
        assert answer.status_code == 422, (url, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "unsafe_url"
        assert [d["field"] for d in error["details"]] == ["callback_url"]


def test_an_upload_with_callback_metadata_is_delivered(
    local_stack: LocalStack, api: ApiClient, receiver: Receiver, wait_for: Callable[..., Any]
) -> None:
    owner = local_stack.key_id(api.http.headers["x-api-key"])
    upload(
        local_stack,
        f"uploads/hook-{uuid.uuid4().hex[:8]}.png",
        owner=owner,
        **{"callback-url": receiver.url()},
    )

    def delivered() -> Any:
        local_stack.poll_now()
        return receiver.received()

    (delivery,) = wait_for(delivered, timeout=15)
    data = verify(api, delivery.body, delivery.headers)["data"]
    assert data["source"] == "s3" and data["status"] == "completed" and data["owner"] == owner
    assert Counter(d.headers["webhook-id"] for d in receiver.received()) == {f"msg_{data['id']}_completed": 1}
