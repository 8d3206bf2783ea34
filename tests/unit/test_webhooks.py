"""Signed webhook delivery (videogen/webhooks.py) against a receiver on loopback, with SQS on moto
played by the local stack's event source poller: every failure path injects its fault at the
receiver (500, 400, a slow answer, 429 with Retry-After) or at the URL."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from moto import mock_aws
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from local.aws.cfn import Template
from local.aws.pollers import _QueueSource
from tests.unit.conftest import ROOT, Clock, make_service
from tests.webhook_receiver import Answer, Receiver
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.pinned_http import pinned_session, trusted_hosts
from videogen.adapters.url_safety import allowed_host_set, check_callback_url
from videogen.adapters.webhook_sender import WebhookSender, sign
from videogen.domain.errors import UnsafeUrlError
from videogen.domain.ports import DeliveryOutcome
from videogen.domain.webhook_secrets import split_secrets
from videogen.lazy import secret_reader
from videogen.logic.webhook_delivery import WebhookDelivery
from videogen.settings import Settings

SECRET = base64.b64encode(b"a-test-secret-of-32-bytes-long!!").decode()
OLD_SECRET = base64.b64encode(b"the-previous-secret-32-bytes-ok!").decode()
LOOPBACK = functools.partial(
    check_callback_url, strict_dns=False, allowed_hosts=allowed_host_set("127.0.0.1")
)


def loopback_session() -> Any:
    """The delivery session of the local stack: 127.0.0.1 allow-listed (no address check)."""
    return pinned_session(trusted=trusted_hosts(allowed_host_set("127.0.0.1")))


class Metrics:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


@pytest.fixture(scope="module")
def module_aws() -> Iterator[dict[str, str]]:
    """The template's resources on moto once for this module (each test empties the queues)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            template = Template(ROOT / "template.yaml")
            created = template.create_resources(
                boto3.Session(), None, secret_values={"AimlApiKeySecret": "k"}
            )
            names = {lid: res.physical_name for lid, res in created.items()}
            generated = boto3.client("secretsmanager").get_secret_value(SecretId=names["WebhookSecret"])
            yield {**names, "generated_secret": generated["SecretString"]}


@pytest.fixture
def aws(module_aws: dict[str, str]) -> dict[str, str]:
    """Fresh, empty queues for each test, with the template's queue attributes."""
    sqs = boto3.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    fresh = dict(module_aws)
    for lid in ("WebhookDeadLetterQueue", "WebhookQueue"):
        template_url = sqs.get_queue_url(QueueName=module_aws[lid])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=template_url, AttributeNames=["All"])["Attributes"]
        keep = {k: v for k, v in attributes.items() if k in ("VisibilityTimeout", "MessageRetentionPeriod")}
        if lid == "WebhookQueue":
            dlq = sqs.get_queue_url(QueueName=fresh["WebhookDeadLetterQueue"])["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            policy = json.loads(attributes["RedrivePolicy"])
            keep["RedrivePolicy"] = json.dumps({**policy, "deadLetterTargetArn": dlq_arn})
        fresh[lid] = f"{module_aws[lid]}-{suffix}"
        sqs.create_queue(QueueName=fresh[lid], Attributes=keep)
    return fresh


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


class Queues:
    """The webhook queue and its DLQ (from template.yaml, on moto), and a poller that plays the
    SQS event source of WebhookFunction, the function being `delivery` under Powertools batch."""

    def __init__(self, aws: dict[str, str], delivery_options: dict[str, Any]) -> None:
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.get_queue_url(QueueName=aws["WebhookQueue"])["QueueUrl"]
        self.dlq = self.sqs.get_queue_url(QueueName=aws["WebhookDeadLetterQueue"])["QueueUrl"]
        self.metrics = Metrics()
        self.delivery = WebhookDelivery(
            sqs=self.sqs,
            queue_url=self.url,
            dead_letter_queue_url=self.dlq,
            metrics=self.metrics,
            **delivery_options,
        )
        self.source = _QueueSource(
            "WebhookFunction", {"Queue": "arn", "BatchSize": 5}, self.url, self.sqs, "us-east-1"
        )

    def enqueue(self, url: str, *, webhook_id: str = "msg_gen_1_completed", payload: Any = None) -> str:
        body = json.dumps(payload or {"type": "generation.completed", "data": {"id": "gen_1"}})
        message = {
            "webhook_id": webhook_id,
            "url": url,
            "generation_id": "gen_1",
            "status": "completed",
            "owner": "owner-a",
            "payload": body,
        }
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(message))
        return body

    def run(self, rounds: int = 10) -> None:
        processor = BatchProcessor(event_type=EventType.SQS)

        def record_handler(record: Any) -> None:  # Powertools passes it as `record=`
            self.delivery.handle(record.raw_event)

        def invoke(_: str, event: dict[str, Any]) -> Any:
            return process_partial_response(event=event, record_handler=record_handler, processor=processor)

        for _ in range(rounds):
            if not self.source.poll(invoke, []):
                return

    def dead_letters(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return [
            {**json.loads(m["Body"]), "_attr": m["MessageAttributes"]["reason"]["StringValue"]}
            for m in answer.get("Messages", [])
        ]

    def left(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def queues(aws: dict[str, str], *, secrets: list[str] | None = None, **options: Any) -> Queues:
    sender = WebhookSender(
        secrets=options.pop("owner_secrets", lambda owner: secrets or [SECRET]),
        check_callback_url=options.pop("check_url", LOOPBACK),
        timeout_seconds=options.pop("timeout_seconds", 2.0),
        session=options.pop("session", None) or loopback_session(),
    )
    defaults = {"max_attempts": 5, "backoff_seconds": 0, "backoff_max_seconds": 0}
    return Queues(aws, {"sender": sender, **defaults, **options})


def test_a_delivery_is_signed_the_standard_webhooks_way(aws: dict[str, str], receiver: Receiver) -> None:
    q = queues(aws)
    body = q.enqueue(receiver.url())
    q.run()

    (delivery,) = receiver.received()
    assert delivery.body.decode() == body
    headers = delivery.headers
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == "msg_gen_1_completed"
    # the Standard Webhooks reference verifier accepts it...
    assert Webhook(SECRET).verify(delivery.body, headers) == json.loads(body)
    # ...and so does the HMAC computed by hand: base64(HMAC-SHA256(key, "id.timestamp.body"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(base64.b64decode(SECRET), signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(delivery.body, headers)
    assert q.left() == 0 and q.metrics.counts == {"WebhooksDelivered": 1}


def test_during_a_rotation_both_secrets_sign_and_either_verifies(
    aws: dict[str, str], receiver: Receiver
) -> None:
    sm = boto3.client("secretsmanager")
    secret_id = aws["WebhookSecret"]
    read = secret_reader(secret_id, 0)  # no cache: each delivery reads the secret
    q = queues(aws)
    q.delivery.sender.secrets = lambda owner: split_secrets(read())

    sm.put_secret_value(SecretId=secret_id, SecretString=f"{SECRET} {OLD_SECRET}")  # step 1: new + old
    q.enqueue(receiver.url("/a"))
    q.run()
    sm.put_secret_value(SecretId=secret_id, SecretString=SECRET)  # step 2: the new one alone
    q.enqueue(receiver.url("/b"))
    q.run()

    (during,) = receiver.received("/a")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(during.body, during.headers)
    assert Webhook(OLD_SECRET).verify(during.body, during.headers)  # a receiver not yet switched
    (after,) = receiver.received("/b")
    assert Webhook(SECRET).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(after.body, after.headers)


def test_generated_secret_of_the_template_is_a_valid_signing_key(aws: dict[str, str]) -> None:
    (secret,) = split_secrets(aws["generated_secret"])
    assert len(base64.b64decode(secret + "==")) >= 32
    assert sign([secret], "msg_x", 1_700_000_000, "{}").startswith("v1,")


def test_a_500_is_retried_and_delivered_once_with_the_same_id(
    aws: dict[str, str], receiver: Receiver
) -> None:
    receiver.answer(Answer(500))
    q = queues(aws)
    q.enqueue(receiver.url())
    q.run()

    first, second = receiver.received()
    assert (first.status, second.status) == (500, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_gen_1_completed"
    assert Webhook(SECRET).verify(second.body, second.headers)
    assert q.left() == 0 and q.dead_letters() == []
    assert q.metrics.counts == {"WebhooksRetried": 1, "WebhooksDelivered": 1}


def test_a_400_is_not_retried_and_lands_in_the_dead_letter_queue_with_the_reason(
    aws: dict[str, str], receiver: Receiver
) -> None:
    receiver.answer(Answer(400))
    q = queues(aws)
    q.enqueue(receiver.url())
    q.run()

    assert len(receiver.received()) == 1
    (dead,) = q.dead_letters()
    assert dead["reason"] == dead["_attr"] == "http_400"
    assert dead["http_status"] == 400 and dead["attempts"] == 1
    assert dead["webhook_id"] == "msg_gen_1_completed" and dead["url"] == receiver.url()
    assert q.left() == 0 and q.metrics.counts == {"WebhooksFailed": 1}


def test_a_timeout_is_retried(aws: dict[str, str], receiver: Receiver) -> None:
    receiver.answer(Answer(200, delay=1.0))  # answers after the sender gave up
    q = queues(aws, timeout_seconds=0.3)
    q.enqueue(receiver.url())
    q.run()

    assert len(receiver.received()) == 2
    assert q.left() == 0 and q.dead_letters() == []
    assert q.metrics.counts == {"WebhooksRetried": 1, "WebhooksDelivered": 1}


def test_a_receiver_that_never_recovers_is_given_up_after_the_last_attempt(
    aws: dict[str, str], receiver: Receiver
) -> None:
    receiver.answer(*[Answer(503)] * 3)
    q = queues(aws, max_attempts=3)
    q.enqueue(receiver.url())
    q.run()

    assert len(receiver.received()) == 3
    (dead,) = q.dead_letters()
    assert dead["reason"] == "gave up: http_503" and dead["attempts"] == 3
    assert q.metrics.counts == {"WebhooksRetried": 2, "WebhooksFailed": 1}


def test_backoff_grows_over_hours_and_honours_retry_after(aws: dict[str, str], receiver: Receiver) -> None:
    q = queues(aws, backoff_seconds=30, backoff_max_seconds=7200, max_attempts=10)
    delays = [q.delivery.backoff(n) for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3840, 7200]
    assert sum(delays) > 4 * 3600  # a dead receiver is tried for hours
    assert q.delivery.backoff(1, retry_after=300) == 300

    receiver.answer(Answer(429, headers={"Retry-After": "120"}))
    q.enqueue(receiver.url())
    q.run()
    # the message is back in the queue, invisible for the backoff: nothing more was attempted
    assert len(receiver.received()) == 1 and q.left() == 1 and q.dead_letters() == []


def test_a_redirect_is_not_followed(aws: dict[str, str], receiver: Receiver) -> None:
    receiver.answer(Answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    q = queues(aws)
    q.enqueue(receiver.url())
    q.run()

    assert len(receiver.received()) == 1
    assert [d["reason"] for d in q.dead_letters()] == ["http_302"]


def test_a_malformed_message_is_dead_lettered_not_retried(aws: dict[str, str]) -> None:
    q = queues(aws)
    q.sqs.send_message(QueueUrl=q.url, MessageBody="not json")
    q.run()

    (dead,) = q.dead_letters()
    assert dead["reason"] == "malformed_message" and dead["body"] == "not json"
    assert q.left() == 0


def test_the_url_is_checked_again_at_delivery(aws: dict[str, str], receiver: Receiver) -> None:
    deployed = Settings(
        table_name="t", idempotency_table_name="i", outputs_bucket="o", aiml_api_key_secret_id="s"
    )
    strict = functools.partial(
        check_callback_url,
        strict_dns=False,
        allowed_hosts=allowed_host_set(deployed.callback_allowed_hosts),
    )
    q = queues(aws, check_url=strict)
    q.enqueue(receiver.url())
    q.run()

    assert receiver.received() == []  # nothing was sent
    (dead,) = q.dead_letters()
    assert dead["reason"].startswith("unsafe_url:")


REFUSED_CALLBACKS = [
    "http://127.0.0.1:8080/hook",  # loopback and not https
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.1.2.3/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "http://example.com/hook",  # public but not https
    "https://user:pw@example.com/hook",
]


def test_private_loopback_or_plain_http_callbacks_are_refused_on_the_deployed_settings(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    deployed = Settings(
        table_name="t", idempotency_table_name="i", outputs_bucket="o", aiml_api_key_secret_id="s"
    )
    assert deployed.callback_allowed_hosts == ""
    service = make_service(
        aws,
        client,
        clock,
        check_callback_url=functools.partial(
            check_callback_url,
            strict_dns=False,
            allowed_hosts=allowed_host_set(deployed.callback_allowed_hosts),
        ),
    )
    for url in REFUSED_CALLBACKS:
        body = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "fox", "callback_url": url}
        with pytest.raises(UnsafeUrlError) as refused:
            service.submit("owner-a", body)
        assert [d["field"] for d in refused.value.details] == ["callback_url"], url
        assert refused.value.to_body()["error"]["code"] == "unsafe_url"
    items, _ = service.store.list_by_owner("owner-a", status=None, limit=5, next_token=None)
    assert items == []  # nothing recorded, nothing paid


def test_the_sender_classifies_answers() -> None:
    sender = WebhookSender(
        secrets=lambda owner: [SECRET], check_callback_url=LOOPBACK, session=loopback_session()
    )
    with Receiver() as r:
        r.answer(Answer(204), Answer(408), Answer(404), Answer(502))
        outcomes = [sender.send("msg_1", r.url(), "{}", owner="o").outcome for _ in range(4)]
    assert outcomes == [
        DeliveryOutcome.DELIVERED,
        DeliveryOutcome.RETRY,
        DeliveryOutcome.FAILED,
        DeliveryOutcome.RETRY,
    ]
    closed = sender.send("msg_1", "http://127.0.0.1:9/", "{}", owner="o")  # nothing listens
    assert closed.outcome is DeliveryOutcome.RETRY and closed.reason.startswith("connection_error")
