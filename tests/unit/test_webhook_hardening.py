"""Issue 13, items 1, 2 and 15: per-owner webhook secrets, bounded receivers, and connections to
the address that was checked. Every fault is injected: a forged delivery, hostile receivers on
loopback (one streams without end, one drips a byte at a time), an invocation running out of
time, and a resolver whose answer changes between the check and the connection."""

# ruff: noqa: F811  (the `aws` fixture is imported from test_webhooks and named by the tests)
from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from local.aws.pollers import _QueueSource
from tests.templates import of_type
from tests.unit.test_webhooks import (  # noqa: F401  (module_aws and aws are fixtures)
    LOOPBACK,
    Metrics,
    aws,
    loopback_session,
    module_aws,
)
from tests.webhook_receiver import Answer, Receiver
from videogen.adapters.pinned_http import (
    UnsafeAddressError,
    pinned_session,
    trusted_hosts,
    trusted_origin,
)
from videogen.adapters.s3_archive import OutputArchive
from videogen.adapters.url_safety import allowed_host_set, check_callback_url, download_url_checker
from videogen.adapters.webhook_secret_store import DynamoSecretVersions
from videogen.adapters.webhook_sender import MAX_BODY_BYTES, WebhookSender
from videogen.domain.ports import ArchiveError, DeliveryOutcome
from videogen.domain.webhook_secrets import split_secrets
from videogen.entrypoints.batches import WebhookDeliveries
from videogen.logic.webhook_delivery import (
    BATCH_MARGIN_SECONDS,
    RECORD_MARGIN_SECONDS,
    WebhookDelivery,
)
from videogen.logic.webhook_secrets import OwnerSecrets, derive_secret

PUBLIC = "93.184.215.14"  # a global unicast address (never connected to: the tests inject DNS)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def owner_secrets(aws: dict[str, str], clock: Clock, grace: int = 3600) -> OwnerSecrets:
    """The production OwnerSecrets over the template's master secret and versions table (moto)."""
    sm = boto3.client("secretsmanager")
    return OwnerSecrets(
        masters=lambda: split_secrets(sm.get_secret_value(SecretId=aws["WebhookSecret"])["SecretString"]),
        versions=DynamoSecretVersions(boto3.client("dynamodb"), aws["WebhookSecretVersionsTable"]),
        grace_seconds=grace,
        clock=clock,
    )


class Batches:
    """The webhook queue (moto) played as WebhookFunction's event source, each batch handled by
    the function's entry point (WebhookDeliveries) with a Lambda context whose time left is
    `time_left()` seconds."""

    def __init__(self, aws: dict[str, str], sender: WebhookSender, time_left: Callable[[], float]) -> None:
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.get_queue_url(QueueName=aws["WebhookQueue"])["QueueUrl"]
        self.dlq = self.sqs.get_queue_url(QueueName=aws["WebhookDeadLetterQueue"])["QueueUrl"]
        self.metrics = Metrics()
        self.delivery = WebhookDelivery(
            sender=sender,
            sqs=self.sqs,
            queue_url=self.url,
            dead_letter_queue_url=self.dlq,
            max_attempts=2,
            backoff_seconds=0,
            backoff_max_seconds=0,
            metrics=self.metrics,
            record_budget_seconds=sender.timeout_seconds + RECORD_MARGIN_SECONDS,
        )
        self.entry = WebhookDeliveries(self.delivery)
        self.time_left = time_left
        self.source = _QueueSource(
            "WebhookFunction", {"Queue": "arn", "BatchSize": 5}, self.url, self.sqs, "r"
        )

    def enqueue(self, url: str, owner: str, webhook_id: str) -> None:
        payload = json.dumps({"type": "generation.completed", "data": {"id": webhook_id, "owner": owner}})
        message = {"webhook_id": webhook_id, "url": url, "generation_id": webhook_id, "status": "completed"}
        self.sqs.send_message(
            QueueUrl=self.url, MessageBody=json.dumps({**message, "owner": owner, "payload": payload})
        )

    def run(self, rounds: int = 10) -> None:
        batches = self

        class Context:
            def get_remaining_time_in_millis(self) -> int:
                return int(batches.time_left() * 1000)

        def invoke(_: str, event: dict[str, Any]) -> Any:
            return self.entry.handle(event, Context())

        for _ in range(rounds):
            if not self.source.poll(invoke, []):
                return

    def dead_letters(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


# -- 1. per-owner secrets --------------------------------------------------------------------
def test_each_owner_verifies_only_its_own_deliveries_and_a_forged_one_fails(
    aws: dict[str, str],
) -> None:
    secrets = owner_secrets(aws, Clock())
    sender = WebhookSender(
        secrets=secrets.signing_secrets, check_callback_url=LOOPBACK, session=loopback_session()
    )
    batches = Batches(aws, sender, time_left=lambda: 60)
    a_secret, b_secret = secrets.describe("key-a")["secret"], secrets.describe("key-b")["secret"]
    assert a_secret.startswith("whsec_") and a_secret != b_secret
    with Receiver() as a, Receiver() as b:
        batches.enqueue(a.url(), "key-a", "msg_a")
        batches.enqueue(b.url(), "key-b", "msg_b")
        batches.run()
        (to_a,), (to_b,) = a.received(), b.received()
        assert Webhook(a_secret).verify(to_a.body, to_a.headers)["data"]["owner"] == "key-a"
        assert Webhook(b_secret).verify(to_b.body, to_b.headers)["data"]["owner"] == "key-b"
        with pytest.raises(WebhookVerificationError):
            Webhook(b_secret).verify(to_a.body, to_a.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(a_secret).verify(to_b.body, to_b.headers)

        # Tenant A forges a "completed" delivery to B's receiver with the only secret it holds.
        forged_body = json.dumps({"type": "generation.completed", "data": {"id": "gen_x", "owner": "key-b"}})
        now = datetime.now(UTC)
        forged = {
            "webhook-id": "msg_forged",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(a_secret).sign("msg_forged", now, forged_body),
        }
        requests.post(b.url(), data=forged_body, headers=forged, timeout=5)
        (_, arrived) = b.received()
    with pytest.raises(WebhookVerificationError):  # B's receiver, verifying with B's secret, refuses it
        Webhook(b_secret).verify(arrived.body, arrived.headers)


def test_the_secret_is_derived_from_the_master_and_the_owner_and_nothing_is_stored(
    aws: dict[str, str],
) -> None:
    secrets = owner_secrets(aws, Clock())
    owner = f"key-{uuid.uuid4().hex[:8]}"
    (master,) = split_secrets(aws["generated_secret"])
    assert secrets.describe(owner)["secret"] == derive_secret(master, owner, 1)
    table = boto3.client("dynamodb")
    key = {"owner": {"S": owner}}
    assert "Item" not in table.get_item(TableName=aws["WebhookSecretVersionsTable"], Key=key)
    secrets.rotate(owner)  # an owner that never rotated has no record; a rotation writes one
    item = table.get_item(TableName=aws["WebhookSecretVersionsTable"], Key=key)["Item"]
    assert set(item) == {"owner", "version", "previous_version", "rotated_at"}
    assert "whsec" not in json.dumps(item)


def test_a_rotation_signs_with_both_during_the_grace_then_the_old_secret_verifies_nothing(
    aws: dict[str, str],
) -> None:
    clock = Clock()
    secrets = owner_secrets(aws, clock, grace=3600)
    sender = WebhookSender(
        secrets=secrets.signing_secrets, check_callback_url=LOOPBACK, session=loopback_session(), clock=clock
    )
    batches = Batches(aws, sender, time_left=lambda: 60)
    owner, other = f"key-{uuid.uuid4().hex[:8]}", f"key-{uuid.uuid4().hex[:8]}"
    old = secrets.describe(owner)["secret"]
    rotated = secrets.rotate(owner)
    new = rotated["secret"]
    assert new != old and rotated["version"] == 2 and rotated["previous_version"] == 1
    assert rotated["previous_valid_until"] == int(clock.now) + 3600
    assert secrets.describe(other)["version"] == 1  # another owner is untouched

    def deliver(path: str) -> Any:
        with Receiver() as r:
            batches.enqueue(r.url(path), owner, f"msg_{path.strip('/')}")
            batches.run()
            (delivery,) = r.received()
        return delivery

    # the clock is the test's (ahead of the wall clock): verify at each delivery's own timestamp
    during = deliver("/during")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert _verifies(new, during) and _verifies(old, during)  # a receiver not yet switched verifies

    clock.now += 3601  # the grace is over
    after = deliver("/after")
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert secrets.describe(owner)["previous_version"] is None
    assert _verifies(new, after) and not _verifies(old, after)


def _verifies(secret: str, delivery: Any) -> bool:
    """Standard Webhooks verification at the delivery's own timestamp (the library's verify also
    requires that timestamp to be within 5 minutes of the wall clock)."""
    headers = delivery.headers
    when = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], when, delivery.body.decode()).split(",", 1)[1]
    return any(sig.split(",", 1)[1] == expected for sig in headers["webhook-signature"].split(" "))


def test_concurrent_rotations_each_bump_the_version_once(aws: dict[str, str]) -> None:
    secrets = owner_secrets(aws, Clock())
    results: list[int] = []
    owner = f"key-{uuid.uuid4().hex[:8]}"
    threads = [
        threading.Thread(target=lambda: results.append(secrets.rotate(owner)["version"])) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [2, 3, 4, 5]
    assert secrets.describe(owner)["version"] == 5


# -- 2. bounded receivers ---------------------------------------------------------------------
class Hostile:
    """A receiver on loopback that answers a POST the way `behaviour` says; it counts the bytes
    it managed to send and notes when the sender cut it off."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sent = 0
        self.cut_off = threading.Event()
        self.requests = 0
        hostile = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hostile.requests += 1
                try:
                    if hostile.behaviour == "stream":  # "10 GiB" of body, as fast as it goes
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n")
                        chunk = b"x" * 65536
                        while hostile.sent < 10 * 1024**3:
                            self.wfile.write(chunk)
                            hostile.sent += len(chunk)
                    else:  # "drip": the status line and headers, one byte every 0.2 s (a minute)
                        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"y" * 300 + b"\r\n\r\n":
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            hostile.sent += 1
                            time.sleep(0.2)
                except OSError:
                    hostile.cut_off.set()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def sender(timeout: float = 1.5) -> WebhookSender:
    return WebhookSender(
        secrets=lambda owner: [derive_secret("m", owner, 1)],
        check_callback_url=LOOPBACK,
        session=loopback_session(),
        timeout_seconds=timeout,
    )


def test_a_receiver_streaming_gigabytes_is_read_up_to_the_cap_only() -> None:
    with Hostile("stream") as hostile:
        attempt = sender().send("msg_1", hostile.url(), "{}", owner="o")
        assert hostile.cut_off.wait(10)  # the connection was closed under it
    assert attempt.outcome is DeliveryOutcome.DELIVERED and attempt.http_status == 200
    # what it pushed before the close: the cap plus what the sockets' buffers held, far from 10 GiB
    assert hostile.sent < 64 * 1024**2
    assert MAX_BODY_BYTES == 64 * 1024


def test_a_dripping_receiver_is_cut_off_at_the_deadline_as_a_failed_attempt() -> None:
    with Hostile("drip") as hostile:
        attempt = sender(timeout=1.5).send("msg_1", hostile.url(), "{}", owner="o")
        assert hostile.cut_off.wait(10)
    # each byte arrives well within a per-read timeout; only a deadline per attempt stops it
    assert attempt.outcome is DeliveryOutcome.RETRY and attempt.reason == "timeout"
    assert hostile.sent < 30  # about 1.5 s worth of its ~320 bytes


def test_a_dripping_receiver_does_not_make_its_batch_mates_be_sent_twice(aws: dict[str, str]) -> None:
    with Hostile("drip") as hostile, Receiver() as good:
        batches = Batches(aws, sender(timeout=1.5), time_left=lambda: 90)
        batches.enqueue(good.url("/1"), "o", "msg_1")
        batches.enqueue(hostile.url(), "o", "msg_drip")
        batches.enqueue(good.url("/2"), "o", "msg_2")
        batches.run()
        assert [d.path for d in good.received()] in (["/1", "/2"], ["/2", "/1"])
        assert hostile.requests == 2  # two attempts (max_attempts=2), each cut off
    (dead,) = batches.dead_letters()
    assert dead["webhook_id"] == "msg_drip" and dead["reason"] == "gave up: timeout"
    assert batches.metrics.counts == {"WebhooksDelivered": 2, "WebhooksRetried": 1, "WebhooksFailed": 1}


def test_a_record_that_no_longer_fits_is_deferred_without_an_attempt_counted(aws: dict[str, str]) -> None:
    budget = 1.5 + RECORD_MARGIN_SECONDS
    # the invocation has time for two records; the third finds too little left
    left = iter([budget + 10, budget + 1, budget - 0.1])
    with Receiver() as r:
        r.answer(Answer(204), Answer(204), Answer(400))
        batches = Batches(aws, sender(timeout=1.5), time_left=lambda: next(left, 60))
        for n in (1, 2, 3):
            batches.enqueue(r.url(f"/{n}"), "o", f"msg_{n}")
        batches.run()
        assert sorted(d.path for d in r.received()) == ["/1", "/2", "/3"]  # each once
    assert batches.metrics.counts == {"WebhooksDelivered": 2, "WebhooksDeferred": 1, "WebhooksFailed": 1}
    (dead,) = batches.dead_letters()
    # received twice (deferred, then attempted and refused with a 400), attempted once
    assert dead["webhook_id"] == "msg_3" and dead["attempts"] == 1 and dead["attempts_made"] == 0


def test_the_batch_arithmetic_of_the_template_fits(source: dict[str, Any], deployed: dict[str, Any]) -> None:
    """BatchSize x (an attempt's longest deadline + what surrounds it) + the batch's own margin
    fits WebhookFunction's timeout, and the queue hides a message at least that long (AWS
    refuses an SQS event source whose queue's visibility timeout is below the function's)."""
    function = source["Resources"]["WebhookFunction"]["Properties"]
    (event,) = function["Events"].values()
    deadline = source["Parameters"]["WebhookTimeoutSeconds"]["MaxValue"]
    batch = event["Properties"]["BatchSize"]
    assert batch * (deadline + RECORD_MARGIN_SECONDS) + BATCH_MARGIN_SECONDS <= function["Timeout"]
    queue = of_type(deployed, "AWS::SQS::Queue")["WebhookQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= function["Timeout"]
    # the settings accept no longer deadline than the parameter allows the stack
    assert source["Parameters"]["WebhookTimeoutSeconds"]["Default"] <= deadline


# -- 15. connect to the address that was checked ---------------------------------------------
class Resolver:
    """getaddrinfo-shaped, answering each call with the next address of `answers` (the last one
    repeats): DNS that changes between two lookups."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        address = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def test_a_host_rebound_to_loopback_after_the_check_is_not_connected_to() -> None:
    rebinding = Resolver(PUBLIC, "127.0.0.1")  # public when checked, loopback when connecting
    with Receiver() as r:
        port = r.server.server_port
        url = f"https://hooks.rebind.test:{port}/hook"
        check_callback_url(url, strict_dns=True, resolver=rebinding)  # the check passes
        rebinding.calls.clear()

        def check(u: str) -> None:
            check_callback_url(u, strict_dns=True, resolver=rebinding)

        attempt = WebhookSender(
            secrets=lambda owner: ["whsec_" + "A" * 44],
            check_callback_url=check,
            session=pinned_session(resolver=rebinding),
        ).send("msg_1", url, "{}", owner="o")
        assert r.received() == []  # nothing reached the loopback receiver
    assert attempt.outcome is DeliveryOutcome.FAILED
    assert attempt.reason == "unsafe_url: host resolves to a non-public address"
    assert rebinding.calls == ["hooks.rebind.test", "hooks.rebind.test"]  # the check, then the pin


def test_the_same_host_without_pinning_would_have_reached_the_receiver() -> None:
    """The negative control of the test above: a session that trusts the host (no address
    check) connects to what the second lookup said, the loopback receiver."""
    rebinding = Resolver(PUBLIC, "127.0.0.1")
    with Receiver() as r:
        port = r.server.server_port
        rebinding("hooks.rebind.test", port)  # the check's lookup
        session = pinned_session(resolver=rebinding, trusted=trusted_hosts({"hooks.rebind.test"}))
        answer = session.post(f"http://hooks.rebind.test:{port}/hook", data=b"{}", timeout=5)
        assert answer.status_code == 200 and len(r.received()) == 1


def test_a_pinned_fetch_names_the_host_and_resolves_it_once() -> None:
    resolver = Resolver("127.0.0.1")
    with Receiver() as r:
        port = r.server.server_port
        session = pinned_session(
            resolver=resolver, trusted=trusted_hosts(allowed_host_set("hooks.example.test"))
        )
        attempt = WebhookSender(
            secrets=lambda owner: ["whsec_" + "A" * 44],
            check_callback_url=lambda u: check_callback_url(
                u, strict_dns=True, allowed_hosts=allowed_host_set("hooks.example.test"), resolver=resolver
            ),
            session=session,
        ).send("msg_1", f"http://hooks.example.test:{port}/hook", "{}", owner="o")
        (delivery,) = r.received()
    assert attempt.outcome is DeliveryOutcome.DELIVERED
    assert delivery.headers["host"] == f"hooks.example.test:{port}"
    assert resolver.calls == ["hooks.example.test"]  # allow-listed: no check lookup, one pin lookup


def test_one_private_answer_among_public_ones_refuses_the_host() -> None:
    def mixed(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    with pytest.raises(UnsafeAddressError):
        pinned_session(resolver=mixed).get("https://mixed.test/", timeout=2)


def test_a_video_link_rebound_after_the_check_is_not_downloaded() -> None:
    rebinding = Resolver(PUBLIC, "127.0.0.1")
    with Receiver() as cdn:
        port = cdn.server.server_port
        archive = OutputArchive(
            object(),  # S3 is never reached
            "outputs",
            check_download_url=download_url_checker(
                "https://api.aimlapi.com", strict_dns=True, resolver=rebinding
            ),
            http_factory=lambda: pinned_session(
                resolver=rebinding, trusted=trusted_origin("https://api.aimlapi.com")
            ),
        )
        with pytest.raises(ArchiveError) as refused:
            archive.archive("gen_1", f"https://cdn.rebind.test:{port}/video.mp4")
        assert cdn.received() == [] and cdn.deliveries == []
    assert "non-public" in str(refused.value)


# -- TLS: SNI and the certificate check name the host, not the address -------------------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return {"cert": folder / "cert.pem", "key": folder / "key.pem"}


@pytest.fixture
def tls_receiver(tls: dict[str, Path]) -> Iterator[tuple[Receiver, list[str | None]]]:
    """A loopback receiver over https with a certificate for hooks.example.test only; it notes
    the SNI name each handshake asked for."""
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls["cert"], tls["key"])
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)  # type: ignore[assignment,misc]
    with Receiver() as r:
        r.server.socket = context.wrap_socket(r.server.socket, server_side=True)
        yield r, server_names


def test_https_to_a_pinned_address_verifies_the_certificate_against_the_host_name(
    tls: dict[str, Path], tls_receiver: tuple[Receiver, list[str | None]]
) -> None:
    r, server_names = tls_receiver
    port = r.server.server_port
    resolver = Resolver("127.0.0.1")
    session = pinned_session(resolver=resolver, trusted=trusted_hosts({"hooks.example.test", "other.test"}))
    answer = session.post(
        f"https://hooks.example.test:{port}/hook", data=b"{}", verify=str(tls["cert"]), timeout=5
    )
    assert answer.status_code == 200
    assert server_names == ["hooks.example.test"]  # SNI carried the name, not 127.0.0.1
    assert r.received()[0].headers["host"] == f"hooks.example.test:{port}"
    # the same address under a name the certificate does not hold: refused by the hostname check
    with pytest.raises(requests.exceptions.SSLError):
        session.post(f"https://other.test:{port}/hook", data=b"{}", timeout=5)
    assert len(r.received()) == 1


def test_an_allow_listed_ipv6_loopback_receiver_is_reached_and_an_unlisted_one_is_not() -> None:
    class V6Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    try:
        server = V6Server(("::1", 0), http.server.BaseHTTPRequestHandler)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")  # not counted as a pass: it did not run
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://[::1]:{server.server_port}/"
        answer = pinned_session(trusted=trusted_hosts(allowed_host_set("127.0.0.1,::1"))).get(url, timeout=5)
        assert answer.status_code == 501  # BaseHTTPRequestHandler has no do_GET: it answered
        with pytest.raises(UnsafeAddressError):
            pinned_session().get(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
