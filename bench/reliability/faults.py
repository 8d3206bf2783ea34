"""The faults the scenarios inject, each where the real one would strike:

- crashes (`Armed` and the `Crashing*` wrappers): the service's own store, provider and archive
  wrapped, so an exception stands for the process dying just before or just after one call;
- AWS faults (`AwsFaults`): botocore `before-send` hooks answer instead of the network, so the
  clients' retry handler meets them exactly as it would meet DynamoDB throttling or S3 5xx; and
  writes that land but whose answer is lost (`lose_every`): the hook makes the write through a
  clean client of its own, then answers 500 as if the connection had dropped after the commit,
  so botocore's retry meets its own write;
- provider faults (`CHAOS_FAULTS`): the simulator's random faults, served on submits and polls.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from videogen.domain.models import Generation, Status
from videogen.domain.ports import Archive, Provider, Store

# The simulator's random faults for provider_chaos: 20% 5xx, 10% 429 with Retry-After, 5% read
# timeouts (the answer comes after the client's read timeout), 5% malformed bodies.
CHAOS_FAULTS = [
    {"rate": 0.05, "status": 500},
    {"rate": 0.05, "status": 502},
    {"rate": 0.05, "status": 503},
    {"rate": 0.05, "status": 504},
    {"rate": 0.10, "status": 429, "retry_after": 1},
    {"rate": 0.05, "timeout": True, "seconds": 1.5},
    {"rate": 0.05, "malformed": True},
]


# -- crashes ------------------------------------------------------------------------------------
class Crash(Exception):
    """A crash injected at one step (the process dies there)."""


class Armed:
    """Raises Crash once, at the first call that matches the step, before or after the real call."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.fired = False
        self.generation_id: str | None = None  # the record the request wrote (or meant to)

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        target, _, when = self.step.partition("/")
        if self.fired or target != name:
            return call()
        self.fired = True
        if when == "before":
            raise Crash(self.step)
        call()
        raise Crash(self.step)


class CrashingStore:
    """The store, with each write named by the step it is: the record write, its update after
    the submit, the archive claim, the status change."""

    def __init__(self, store: Store, armed: Armed) -> None:
        self._store, self._armed = store, armed
        self.due_shards = store.due_shards

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create(self, generation: Generation) -> Generation:
        self._armed.generation_id = generation.id
        return self._armed.around("record_write", lambda: self._store.create(generation))

    def save(self, current: Generation, **changes: Any) -> Generation:
        if changes.get("status") == Status.QUEUED:
            name = "record_update"
        elif changes.get("archive_claim_until") is not None:
            name = "archive_claim"
        elif changes.get("status") == Status.COMPLETED:
            name = "status_change"
        else:
            name = "other_write"
        return self._armed.around(name, lambda: self._store.save(current, **changes))


class CrashingProvider:
    def __init__(self, provider: Provider, armed: Armed) -> None:
        self._provider, self._armed = provider, armed

    def submit(self, model: Any, fields: Mapping[str, Any]) -> Any:
        return self._armed.around("provider_submit", lambda: self._provider.submit(model, fields))

    def poll(self, model: Any, provider_id: str) -> Any:
        return self._armed.around("provider_poll", lambda: self._provider.poll(model, provider_id))


class CrashingArchive:
    def __init__(self, archive: Archive, armed: Armed) -> None:
        self._archive, self._armed = archive, armed

    def archive(self, generation_id: str, source_url: str) -> str:
        return self._armed.around("archive_copy", lambda: self._archive.archive(generation_id, source_url))

    def link(self, key: str, *, expires_in: int, now: float) -> Any:
        return self._archive.link(key, expires_in=expires_in, now=now)


# -- AWS faults ---------------------------------------------------------------------------------
class FaultyResponse:
    """What botocore's before-send hook may answer instead of sending (then parsed and retried
    like any answer)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body

        self.response = AWSResponse("http://fault.invalid", status, headers, Raw())


class AwsFaults:
    """Injects DynamoDB throttling and S3 5xx through botocore `before-send` hooks: the answer
    replaces the network call, so botocore's retry handler sees it exactly as a real one.
    With `lose_every`, every n-th DynamoDB PutItem (of those not throttled) is made for real and
    its answer replaced by a 500: the write landed, the caller does not know, botocore retries."""

    DYNAMODB = ("PutItem", "GetItem", "Query")
    S3 = ("PutObject", "UploadPart", "CompleteMultipartUpload", "CreateMultipartUpload")

    def __init__(self, dynamodb: Any, s3: Any, *, every: int, lose_every: int | None = None) -> None:
        self._clients = (dynamodb, s3)
        self._lock = threading.Lock()
        self.every = every  # every n-th call of each operation fails (deterministic)
        self.lose_every = lose_every
        self._calls: Counter[str] = Counter()
        self._puts = 0
        self.injected: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self._shadow: Any = None  # a clean client (no hooks) that makes the writes whose answer is lost
        if lose_every:
            import boto3

            meta = dynamodb.meta
            self._shadow = boto3.client(
                "dynamodb", region_name=meta.region_name, endpoint_url=meta.endpoint_url
            )

    def _draw(self, operation: str) -> int | None:
        """The call's number when it is to fail, else None (never with `every` 0)."""
        if not self.every:
            return None
        with self._lock:
            self._calls[operation] += 1
            n = self._calls[operation]
        return n if n % self.every == 1 or self.every == 1 else None

    def _lose(self, request: Any) -> bool:
        """Whether this PutItem is one whose answer is lost (never the retry of one)."""
        if not self.lose_every or request.context.get("answer_lost"):
            return False
        with self._lock:
            self._puts += 1
            return self._puts % self.lose_every == 0

    def _dynamodb(self, request: Any, **kwargs: Any) -> Any:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        n = self._draw(f"dynamodb.{operation}")
        if n is None:
            if operation == "PutItem" and self._lose(request):
                return self._landed_then_lost(request)
            self.sent[f"dynamodb.{operation}"] += 1
            return None
        error = ("ProvisionedThroughputExceededException", "ThrottlingException")[n // self.every % 2]
        self.injected[f"dynamodb.{operation}:{error}"] += 1
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error}", "message": "injected"})
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": uuid.uuid4().hex}
        return FaultyResponse(400, headers, body.encode()).response

    def _landed_then_lost(self, request: Any) -> Any:
        """Make the write through the clean client; if it landed, answer 500 instead of its
        answer. A write that does not land (a real lost race) goes on to DynamoDB untouched."""
        from botocore.exceptions import ClientError

        params = json.loads(request.body)
        try:
            self._shadow.put_item(**params)
        except ClientError:
            self.sent["dynamodb.PutItem"] += 1
            return None
        request.context["answer_lost"] = True
        self.injected["dynamodb.PutItem:landed, answer lost"] += 1
        self.sent["dynamodb.PutItem"] += 1
        body = json.dumps(
            {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "lost"}
        )
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": uuid.uuid4().hex}
        return FaultyResponse(500, headers, body.encode()).response

    def _s3(self, request: Any, **kwargs: Any) -> Any:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        n = self._draw(f"s3.{operation}")
        if n is None:
            self.sent[f"s3.{operation}"] += 1
            return None
        status, code = ((500, "InternalError"), (503, "SlowDown"))[n // self.every % 2]
        self.injected[f"s3.{operation}:{code}"] += 1
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        return FaultyResponse(status, {"Content-Type": "application/xml"}, body).response

    def __enter__(self) -> AwsFaults:
        dynamodb, s3 = self._clients
        for op in self.DYNAMODB:
            dynamodb.meta.events.register(f"before-send.dynamodb.{op}", self._dynamodb, unique_id=f"f-{op}")
        for op in self.S3:
            s3.meta.events.register(f"before-send.s3.{op}", self._s3, unique_id=f"f-{op}")
        return self

    def __exit__(self, *exc: object) -> None:
        dynamodb, s3 = self._clients
        for op in self.DYNAMODB:
            dynamodb.meta.events.unregister(f"before-send.dynamodb.{op}", unique_id=f"f-{op}")
        for op in self.S3:
            s3.meta.events.unregister(f"before-send.s3.{op}", unique_id=f"f-{op}")
