"""S3 uploads -> generations: the upload processor and the real handler fed events shaped like
events/s3_*.json (made with `sam local generate-event s3 put`). S3 and DynamoDB are moto, the
provider is the simulator (it does not fetch the image URL it is given)."""

from __future__ import annotations

import copy
import importlib.util
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from local.simulator import Simulator
from tests.images import png
from tests.unit.conftest import SIM_KEY, Clock, make_service
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.s3_uploads import S3Uploads
from videogen.bootstrap import build_uploads
from videogen.domain.errors import UnsafeUrlError
from videogen.domain.models import Source, Status
from videogen.domain.ports import StaleWriteError
from videogen.domain.uploads import (
    IMAGE_NOT_ACCEPTED,
    INVALID_METADATA,
    NOT_AN_IMAGE,
    TOO_LARGE,
    UNKNOWN_MODEL,
    UploadDefaults,
    UploadOutcome,
    UploadRecord,
)
from videogen.entrypoints.s3_events import UploadProcessingError, handle_event, parse_record
from videogen.logic.service import GenerationService
from videogen.logic.uploads import UploadProcessor

ROOT = Path(__file__).resolve().parents[2]
I2V = "klingai/v2.5-turbo/pro/image-to-video"  # takes duration (5 or 10) and cfg_scale


# A JPEG's start: JFIF, then a frame header (SOF0) of 480x360, which is all a size check reads.
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0\x00\x11\x08\x01\x68\x01\xe0\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    + b"\x00" * 64
    + b"\xff\xd9"
)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += value


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, message: str, extra: dict[str, Any] | None = None, **_: Any) -> None:
        self.lines.append((level, message, dict(extra or {})))

    def info(self, message: str, **kw: Any) -> None:
        self._add("info", message, **kw)

    def warning(self, message: str, **kw: Any) -> None:
        self._add("warning", message, **kw)

    def exception(self, message: str, **kw: Any) -> None:
        self._add("exception", message, **kw)

    def text(self) -> str:
        return json.dumps(self.lines, default=str)


class Uploads:
    """A processor over the moto uploads bucket, plus helpers to put objects and make events."""

    def __init__(self, aws: dict[str, str], service: GenerationService, **defaults: Any) -> None:
        self.bucket = aws["UploadsBucket"]
        self.table = aws["GenerationsTable"]
        self.s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
        self.metrics = RecordingMetrics()
        self.log = RecordingLog()
        self.service = service
        # the dispatcher mints the provider's presigned GET of the pinned object when it submits
        if service.dispatcher is not None:
            uploads = S3Uploads(self.s3)
            service.dispatcher.mint = lambda pinned: uploads.link(pinned, expires_in=3600)
        self.processor = UploadProcessor(
            service=service,
            objects=S3Uploads(self.s3),
            defaults=UploadDefaults(**defaults),
            metrics=self.metrics,
            log=self.log,
        )

    def put(
        self,
        key: str,
        body: bytes | None = None,
        *,
        content_type: str = "image/png",
        metadata: dict[str, str] | None = None,
        sample: str = "s3_put_image.json",
        moto_style: bool = False,
        with_version: bool = False,
    ) -> dict[str, Any]:
        """Upload an object; return the sample event rewritten to name it, its key encoded as S3
        encodes it (`/` kept) or as moto does (`/` as %2F), with the object's version id as S3's
        own events carry it (`with_version`) or without, as the samples and moto's events are."""
        body = png() if body is None else body
        answer = self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {}
        )
        event = json.loads((ROOT / "events" / sample).read_text())
        record = event["Records"][0]
        record["s3"]["bucket"]["name"] = self.bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{self.bucket}"
        obj = record["s3"]["object"]
        obj["key"] = quote_plus(key, safe="" if moto_style else "/")
        obj["size"] = len(body)
        obj["eTag"] = answer["ETag"].strip('"')
        if with_version:
            obj["versionId"] = answer["VersionId"]
        return event

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """The upload function's answer; then the dispatcher's run its wake-up starts."""
        answer = handle_event(event, self.processor).as_dict()
        if self.service.dispatcher is not None:
            self.service.dispatcher.run(lambda: 10**9, reserve_ms=0)
        return answer

    def generation(self, generation_id: str) -> Any:
        return self.service.store.get(generation_id)

    def raw_item(self, generation_id: str) -> dict[str, Any]:
        return boto3.client("dynamodb").get_item(TableName=self.table, Key={"id": {"S": generation_id}})[
            "Item"
        ]

    def count(self) -> int:
        return boto3.client("dynamodb").scan(TableName=self.table, Select="COUNT")["Count"]


@pytest.fixture
def up(aws: dict[str, str], service: GenerationService) -> Uploads:
    return Uploads(aws, service)


def only(result: dict[str, Any]) -> dict[str, Any]:
    (one,) = result["results"]
    return one


# -- happy path -------------------------------------------------------------------------------


def test_an_uploaded_image_becomes_a_generation_and_the_provider_gets_a_presigned_url(
    up: Uploads, sim: Simulator
) -> None:
    event = up.put("uploads/cheetah.png", metadata={"prompt": "Cheetah turns toward the camera."})

    result = only(up.handle(event))

    assert result["outcome"] == "accepted" and result["status"] == "pending"  # then dispatched
    generation = up.generation(result["generation_id"])
    assert generation.source is Source.S3 and generation.owner == "s3-uploads"
    assert generation.model == "video-01"
    assert generation.request == {
        "prompt": "Cheetah turns toward the camera.",
        "image_url": f"s3://{up.bucket}/uploads/cheetah.png",
    }
    # the provider got a presigned https GET URL in the model's own image field
    (job,) = sim.jobs.values()
    url = job.body["image_url"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https" and up.bucket in parts.netloc + parts.path
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["3600"]
    assert query["response-content-type"] == ["image/png"]  # the type the bytes proved
    # ...which really serves the image (moto answers it in-process)
    assert requests.get(url, timeout=5).content == png()
    # the temporary credentials never reach the record, nor the logs
    assert "X-Amz-" not in json.dumps(up.raw_item(generation.id))
    assert "X-Amz-" not in up.log.text()
    assert up.metrics.counts["UploadsAccepted"] == 1


def test_metadata_sets_model_owner_and_typed_fields(up: Uploads, sim: Simulator) -> None:
    prompt = "Un café ☀ qui fume"
    encoded = "=?UTF-8?B?" + __import__("base64").b64encode(prompt.encode()).decode() + "?="
    event = up.put(
        "uploads/latte.jpg",
        JPEG,
        content_type="image/jpeg",
        metadata={
            "prompt": encoded,  # non-ASCII metadata travels RFC 2047-encoded
            "model": I2V,
            "owner": "key-id-123",
            "duration": "10",
            "cfg-scale": "0.5",
            "mtime": "1700000000",  # tools add metadata of their own: ignored
        },
    )

    result = only(up.handle(event))

    generation = up.generation(result["generation_id"])
    assert result["outcome"] == "accepted"
    assert generation.owner == "key-id-123" and generation.model == I2V
    assert generation.request == {
        "image_url": f"s3://{up.bucket}/uploads/latte.jpg",
        "prompt": prompt,
        "duration": 10,
        "cfg_scale": 0.5,
    }
    (job,) = sim.jobs.values()
    assert job.body["duration"] == 10 and job.body["image_url"].startswith("https://")
    assert parse_qs(urlsplit(job.body["image_url"]).query)["response-content-type"] == ["image/jpeg"]
    assert ("info", "metadata ignored: not a request field", {"ignored_metadata": ["mtime"]}) in up.log.lines


def test_webp_and_generic_content_types_are_judged_by_their_bytes(up: Uploads) -> None:
    # (a model whose page states no format: MiniMax's take JPEG and PNG only)
    event = up.put("uploads/frame.webp", WEBP, content_type="binary/octet-stream", metadata={"model": I2V})

    assert only(up.handle(event))["outcome"] == "accepted"


# -- keys arrive URL-encoded ------------------------------------------------------------------


@pytest.mark.parametrize("moto_style", [False, True])
def test_encoded_keys_are_decoded(up: Uploads, moto_style: bool) -> None:
    key = "uploads/my holiday/café ☀ 1+1.png"
    event = up.put(key, sample="s3_put_encoded_key.json", moto_style=moto_style)
    assert "+" in event["Records"][0]["s3"]["object"]["key"]  # a space; the plus is %2B

    result = only(up.handle(event))

    assert result["outcome"] == "accepted"
    assert up.generation(result["generation_id"]).request["image_url"] == f"s3://{up.bucket}/{key}"


def test_parse_record_reads_the_sample_event() -> None:
    event = json.loads((ROOT / "events" / "s3_put_encoded_key.json").read_text())

    record = parse_record(event["Records"][0])

    assert record.key == "uploads/my holiday/café ☀ 1+1.png"
    assert record.event_name == "ObjectCreated:Put" and record.is_object_created
    assert record.sequencer == "0065A1B2C3D4E5F602" and record.etag and record.size == 68


def test_generation_ids_follow_the_event_not_the_delivery() -> None:
    base = UploadRecord("b", "uploads/a.png", "ObjectCreated:Put", etag="e1", sequencer="01")

    assert (
        base.generation_id()
        == UploadRecord("b", "uploads/a.png", "ObjectCreated:Put", etag="e1", sequencer="01").generation_id()
    )
    assert (
        base.generation_id()
        != UploadRecord("b", "uploads/a.png", "ObjectCreated:Put", etag="e1", sequencer="02").generation_id()
    )
    assert (
        base.generation_id()
        != UploadRecord("b", "uploads/b.png", "ObjectCreated:Put", etag="e1", sequencer="01").generation_id()
    )
    versioned = UploadRecord(
        "b", "uploads/a.png", "ObjectCreated:Put", etag="e1", version_id="v1", sequencer="01"
    )
    assert versioned.generation_id() != base.generation_id()
    assert base.generation_id().startswith("gen_") and len(base.generation_id()) == 36


# -- at-least-once delivery -------------------------------------------------------------------


def test_the_same_event_delivered_three_times_is_one_generation_and_one_submit(
    up: Uploads, sim: Simulator
) -> None:
    event = up.put("uploads/cheetah.png")

    outcomes = [only(up.handle(copy.deepcopy(event)))["outcome"] for _ in range(3)]

    assert outcomes == ["accepted", "duplicate", "duplicate"]
    assert sim.submit_count == 1 and up.count() == 1
    assert up.metrics.counts["UploadsDuplicate"] == 2


def test_three_concurrent_deliveries_are_one_generation_and_one_submit(up: Uploads, sim: Simulator) -> None:
    event = up.put("uploads/cheetah.png")
    sim.configure(latency_ms=100)  # keep the winner's submit in flight while the others arrive
    start = threading.Barrier(3)
    outcomes: list[str] = []

    def deliver() -> None:
        start.wait()
        outcomes.append(only(up.handle(copy.deepcopy(event)))["outcome"])

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(outcomes) == ["accepted", "duplicate", "duplicate"]
    assert sim.submit_count == 1 and up.count() == 1


def test_a_redelivered_bad_upload_is_one_failed_generation(up: Uploads, sim: Simulator) -> None:
    event = up.put("uploads/notes.png", b"just some text", content_type="image/png")

    outcomes = [only(up.handle(copy.deepcopy(event)))["outcome"] for _ in range(2)]

    assert outcomes == ["rejected", "duplicate"] and up.count() == 1 and sim.submit_count == 0


# -- bad uploads: failed with a reason, never retried, the provider never called ---------------


def rejected(up: Uploads, event: dict[str, Any], reason: str) -> Any:
    result = only(up.handle(event))  # returns normally: Lambda does not retry
    assert result["outcome"] == "rejected" and result["reason"] == reason, result
    generation = up.generation(result["generation_id"])
    assert generation.status is Status.FAILED and generation.error.code == reason
    assert generation.source is Source.S3 and generation.next_poll_at is None
    assert up.metrics.counts["UploadsRejected"] == 1 and up.metrics.counts[f"UploadsRejected_{reason}"] == 1
    assert any(level == "warning" and extra.get("reason") == reason for level, _, extra in up.log.lines)
    return generation


def test_bytes_that_are_not_an_image_fail(up: Uploads, sim: Simulator) -> None:
    event = up.put("uploads/notes.png", b"%PDF-1.7 not an image at all", sample="s3_put_not_an_image.json")

    generation = rejected(up, event, NOT_AN_IMAGE)

    assert "bytes" in generation.error.message and sim.submit_count == 0
    assert generation.request["image_url"] == f"s3://{up.bucket}/uploads/notes.png"


@pytest.mark.parametrize(
    ("model", "width", "height", "rule"),
    [
        ("video-01", 300, 300, "shorter side over 300"),  # MiniMax's pages: the shorter side > 300 px
        ("video-01", 1200, 400, "width / height between 0.4 and 2.5"),  # ratio 3:1
        ("openai/sora-2-i2v", 1000, 700, "exactly 1280x720, 720x1280"),  # Sora: the video's own size
    ],
)
def test_an_image_its_model_page_rules_out_fails_before_anything_is_paid(
    up: Uploads, sim: Simulator, model: str, width: int, height: int, rule: str
) -> None:
    event = up.put("uploads/frame.png", png(width, height), metadata={"model": model})

    generation = rejected(up, event, IMAGE_NOT_ACCEPTED)

    assert rule in generation.error.message and f"{width}x{height}" in generation.error.message
    assert sim.submit_count == 0


def test_an_image_that_fits_its_model_page_is_submitted(up: Uploads, sim: Simulator) -> None:
    answer = up.handle(up.put("uploads/frame.png", png(1280, 720), metadata={"model": "openai/sora-2-i2v"}))
    assert answer["results"][0]["outcome"] == "accepted" and sim.submit_count == 1


def test_a_declared_non_image_content_type_fails(up: Uploads, sim: Simulator) -> None:
    event = up.put("uploads/cheetah.png", png(), content_type="text/plain")

    generation = rejected(up, event, NOT_AN_IMAGE)

    assert "text/plain" in generation.error.message and sim.submit_count == 0


def test_an_empty_object_fails(up: Uploads, sim: Simulator) -> None:
    rejected(up, up.put("uploads/empty.png", b""), NOT_AN_IMAGE)
    assert sim.submit_count == 0


def test_an_image_over_the_limit_fails_without_being_read(
    aws: dict[str, str], service: GenerationService, sim: Simulator
) -> None:
    up = Uploads(aws, service, max_bytes=1024)
    reads: list[str] = []
    real_read = up.processor.objects.read_start

    def read_start(record: UploadRecord, length: int) -> bytes:
        reads.append(record.key)
        return real_read(record, length)

    up.processor.objects.read_start = read_start  # type: ignore[method-assign]
    event = up.put(
        "uploads/huge.jpg", JPEG + b"\x00" * 2048, content_type="image/jpeg", sample="s3_put_oversized.json"
    )

    generation = rejected(up, event, TOO_LARGE)

    assert "1024" in generation.error.message and reads == [] and sim.submit_count == 0


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"model": I2V, "duration": "abc"}, "duration"),  # not an integer
        ({"model": I2V, "duration": "7"}, "duration"),  # an integer the model does not offer
        ({"model": I2V, "cfg-scale": "high"}, "cfg_scale"),
        ({"enhance-prompt": "maybe"}, "enhance_prompt"),
        ({"aspect-ratio": "16:9"}, "aspect_ratio"),  # a field video-01 does not take
        ({"owner": "not an owner!"}, "owner"),
        ({"image-url": "https://example.com/other.png"}, "image_url"),  # the image is the object
        ({"model": "kling-video/v1.6/standard/text-to-video"}, "model"),  # takes no image
    ],
)
def test_bad_metadata_fails(up: Uploads, sim: Simulator, metadata: dict[str, str], field: str) -> None:
    generation = rejected(up, up.put("uploads/cheetah.png", metadata=metadata), INVALID_METADATA)

    assert field in generation.error.message, generation.error.message
    assert sim.submit_count == 0


def test_an_unknown_model_fails(up: Uploads, sim: Simulator) -> None:
    generation = rejected(up, up.put("uploads/cheetah.png", metadata={"model": "video-99"}), UNKNOWN_MODEL)

    assert generation.model == "video-99" and "video-99" in generation.error.message
    assert sim.submit_count == 0


def test_a_bad_record_does_not_sink_the_good_one(up: Uploads, sim: Simulator) -> None:
    bad = up.put("uploads/notes.png", b"text", sample="s3_put_not_an_image.json")
    good = up.put("uploads/cheetah.png")
    event = {"Records": bad["Records"] + good["Records"]}

    result = up.handle(event)

    assert [r["outcome"] for r in result["results"]] == ["rejected", "accepted"]
    assert sim.submit_count == 1


def test_a_provider_refusal_is_a_failed_generation_not_a_retry(up: Uploads, sim: Simulator) -> None:
    sim.inject({"on": "submit", "status": 422, "body": {"message": "image too small"}})

    result = only(up.handle(up.put("uploads/cheetah.png")))

    assert result["outcome"] == "accepted" and result["status"] == "failed"
    assert up.generation(result["generation_id"]).error.code == "provider_validation"


# -- what is skipped, what is retried ---------------------------------------------------------


def test_a_deleted_or_replaced_object_is_skipped(up: Uploads, sim: Simulator) -> None:
    gone = up.put("uploads/gone.png")
    up.s3.delete_object(Bucket=up.bucket, Key="uploads/gone.png")
    replaced = up.put("uploads/replaced.png")
    up.put("uploads/replaced.png", JPEG, content_type="image/jpeg")  # a newer PUT, its own event follows

    results = up.handle({"Records": gone["Records"] + replaced["Records"]})["results"]

    assert [r["outcome"] for r in results] == ["skipped", "skipped"]
    assert up.count() == 0 and sim.submit_count == 0


# -- the object the provider fetches is the object that was checked ---------------------------

SWAPPED = b"<html>not the image that was checked</html>"


def _overwrite_after(up: Uploads, step: str, key: str) -> None:
    """Put other bytes under `key` right after the processor's `step` (read_start: the checks are
    done; pin: the object is pinned, its URL minted later by the dispatcher), as a second PUT
    racing the processing would."""
    real = getattr(up.processor.objects, step)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)
        up.s3.put_object(Bucket=up.bucket, Key=key, Body=SWAPPED, ContentType="image/png")
        return answer

    setattr(up.processor.objects, step, wrapped)


def _fetched(sim: Simulator) -> tuple[str, bytes]:
    """The image URL the provider's job got, and what it serves now."""
    (job,) = sim.jobs.values()
    url = job.body["image_url"]
    return url, requests.get(url, timeout=5).content


def test_an_overwrite_after_the_check_cannot_swap_the_image_of_a_versioned_event(
    up: Uploads, sim: Simulator
) -> None:
    event = up.put("uploads/cheetah.png", with_version=True)
    _overwrite_after(up, "read_start", "uploads/cheetah.png")

    assert only(up.handle(event))["outcome"] == "accepted"

    url, served = _fetched(sim)
    assert served == png()  # the checked version, not the later PUT
    assert "versionId=" in url and "/uploads/cheetah.png" in url


def test_an_overwrite_after_the_object_is_pinned_cannot_swap_the_image_of_an_unversioned_event(
    up: Uploads, sim: Simulator
) -> None:
    event = up.put("uploads/cheetah.png")  # moto's events carry no version id
    _overwrite_after(up, "pin", "uploads/cheetah.png")

    result = only(up.handle(event))

    assert result["outcome"] == "accepted"
    url, served = _fetched(sim)
    assert served == png()  # a copy of the checked object, which no uploader's PUT touches
    assert f"/checked/{result['generation_id']}" in url
    assert up.s3.get_object(Bucket=up.bucket, Key="uploads/cheetah.png")["Body"].read() == SWAPPED


def test_an_overwrite_between_the_check_and_the_copy_is_skipped_not_submitted(
    up: Uploads, sim: Simulator
) -> None:
    event = up.put("uploads/cheetah.png")
    _overwrite_after(up, "read_start", "uploads/cheetah.png")

    result = only(up.handle(event))

    assert result["outcome"] == "skipped" and "replaced" in result["reason"]
    assert sim.submit_count == 0 and up.count() == 0


def test_an_event_with_nothing_to_pin_the_object_to_is_skipped(up: Uploads, sim: Simulator) -> None:
    event = up.put("uploads/cheetah.png")
    del event["Records"][0]["s3"]["object"]["eTag"]
    event["Records"][0]["s3"]["object"].pop("sequencer", None)

    result = only(up.handle(event))

    assert result["outcome"] == "skipped" and "neither a version id nor an ETag" in result["reason"]
    assert sim.submit_count == 0


# -- who owns an upload -------------------------------------------------------------------------


def test_by_default_the_owner_is_the_metadata_whatever_the_key(up: Uploads, sim: Simulator) -> None:
    event = up.put("uploads/alice/cheetah.png", metadata={"owner": "bob"})

    result = only(up.handle(event))

    assert result["outcome"] == "accepted" and up.generation(result["generation_id"]).owner == "bob"


def test_owner_from_prefix_takes_the_key_segment_and_ignores_the_metadata(
    aws: dict[str, str], service: GenerationService, sim: Simulator
) -> None:
    strict = Uploads(aws, service, owner_from_prefix=True)
    event = strict.put("uploads/alice/cheetah.png", metadata={"owner": "mallory"})

    result = only(strict.handle(event))

    assert result["outcome"] == "accepted" and strict.generation(result["generation_id"]).owner == "alice"


@pytest.mark.parametrize(
    "key", ["uploads/cheetah.png", "uploads//cheetah.png", "uploads/al ice!/cheetah.png"]
)
def test_owner_from_prefix_refuses_a_key_without_an_owner_segment(
    aws: dict[str, str], service: GenerationService, sim: Simulator, key: str
) -> None:
    strict = Uploads(aws, service, owner_from_prefix=True)
    event = strict.put(key, metadata={"owner": "mallory"})

    result = only(strict.handle(event))

    assert result["outcome"] == "rejected" and result["reason"] == INVALID_METADATA
    generation = strict.generation(result["generation_id"])
    assert generation.owner == "s3-uploads"  # never the owner the metadata claims
    assert "owner" in generation.error.message
    assert sim.submit_count == 0


def test_events_that_are_not_object_created_are_skipped(up: Uploads) -> None:
    event = up.put("uploads/cheetah.png")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"

    assert only(up.handle(event))["outcome"] == "skipped"
    assert up.handle({"not": "s3"}) == {"results": [], "outcomes": {}, "errors": 0}
    assert up.handle({"Records": [{"s3": {}}]})["results"] == []


def test_infrastructure_errors_raise_after_the_other_records_are_done(up: Uploads, sim: Simulator) -> None:
    broken = up.put("uploads/broken.png")
    good = up.put("uploads/cheetah.png")
    real_head = up.processor.objects.head

    def head(record: UploadRecord) -> Any:
        if record.key == "uploads/broken.png":
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "HeadObject")
        return real_head(record)

    up.processor.objects.head = head  # type: ignore[method-assign]
    event = {"Records": broken["Records"] + good["Records"]}

    with pytest.raises(UploadProcessingError):
        up.handle(event)
    assert sim.submit_count == 1 and up.metrics.counts["UploadErrors"] == 1

    # Lambda's retry: the good record is a duplicate now, the broken one goes through
    up.processor.objects.head = real_head  # type: ignore[method-assign]
    assert [r["outcome"] for r in up.handle(event)["results"]] == ["accepted", "duplicate"]
    assert sim.submit_count == 2


# -- the service mechanism --------------------------------------------------------------------


def test_provider_fields_only_replace_s3_references(service: GenerationService, sim: Simulator) -> None:
    body = {"model": "video-01", "prompt": "p", "image_url": "https://example.com/a.png"}
    with pytest.raises(ValueError, match="s3:// reference"):
        service.submit("o", body, provider_fields={"image_url": "https://127.0.0.1/x"})
    # without a minted URL, an s3:// reference is refused like any non-https URL (the API's case)
    with pytest.raises(UnsafeUrlError):
        service.submit("o", {**body, "image_url": "s3://bucket/key.png"})
    # a reference left in another field is refused too
    body = {
        "model": "minimax/hailuo-02",
        "prompt": "p",
        "image_url": "s3://b/a.png",
        "last_image_url": "s3://b/a.png",
    }
    with pytest.raises(UnsafeUrlError):
        service.submit("o", body, provider_fields={"image_url": "https://b.s3.amazonaws.com/a.png?sig"})
    assert sim.submit_count == 0


def test_submit_with_a_given_id_refuses_a_second_time(service: GenerationService, sim: Simulator) -> None:
    body = {"model": "video-01", "prompt": "p", "image_url": "s3://b/a.png"}
    minted = {"image_url": "http://127.0.0.1:9/b/a.png?X-Amz-Signature=x"}  # loopback: not checked

    first = service.submit("o", body, generation_id="gen_fixed", provider_fields=minted)
    with pytest.raises(StaleWriteError):
        service.submit("o", body, generation_id="gen_fixed", provider_fields=minted)

    assert first.id == "gen_fixed" and first.request["image_url"] == "s3://b/a.png"
    assert sim.submit_count == 1
    (job,) = sim.jobs.values()
    assert job.body["image_url"] == minted["image_url"]


# -- the real handler, fed the sample events --------------------------------------------------


class Context:
    function_name = "videogen-upload"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:videogen-upload"
    aws_request_id = "req-upload-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def handler(aws: dict[str, str], sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    env = {
        "TABLE_NAME": aws["GenerationsTable"],
        "IDEMPOTENCY_TABLE_NAME": aws["IdempotencyTable"],
        "OUTPUTS_BUCKET": aws["OutputsBucket"],
        "AIML_API_KEY_SECRET_ID": aws["AimlApiKeySecret"],
        "AIML_BASE_URL": sim.url,
        "URL_DNS_STRICT": "false",
        "UPLOAD_MAX_BYTES": "4096",
        "POWERTOOLS_SERVICE_NAME": "videogen",
        "POWERTOOLS_METRICS_NAMESPACE": "Videogen",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("_upload_app_under_test", ROOT / "functions/upload/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the cold start: settings, service, S3 client
    yield module.lambda_handler


def sample(name: str, up: Uploads, key: str, body: bytes, content_type: str = "image/png") -> dict[str, Any]:
    """events/<name> with the eTag and size of an object put under the sample's own key."""
    event = json.loads((ROOT / "events" / name).read_text())
    record = event["Records"][0]
    assert record["s3"]["bucket"]["name"] == up.bucket  # the samples name the local stack's bucket
    answer = up.s3.put_object(Bucket=up.bucket, Key=key, Body=body, ContentType=content_type)
    record["s3"]["object"]["eTag"] = answer["ETag"].strip('"')
    return event


def test_the_handler_turns_the_sample_events_into_generations(
    handler: Any, up: Uploads, sim: Simulator
) -> None:
    image = sample("s3_put_image.json", up, "uploads/cheetah.jpg", JPEG, "image/jpeg")
    encoded = sample("s3_put_encoded_key.json", up, "uploads/my holiday/café ☀ 1+1.png", png())
    not_image = sample("s3_put_not_an_image.json", up, "uploads/notes.png", b"hello")
    oversized = sample("s3_put_oversized.json", up, "uploads/huge.jpg", JPEG + b"\x00" * 8192, "image/jpeg")

    answers = [handler(event, Context()) for event in (image, encoded, not_image, oversized, image)]

    assert [a["results"][0]["outcome"] for a in answers] == [
        "accepted",
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
    ]
    assert [a["results"][0].get("reason") for a in answers[2:4]] == [NOT_AN_IMAGE, TOO_LARGE]
    assert sim.submit_count == 2
    secret = f"Bearer {SIM_KEY}"
    assert all(secret not in json.dumps(a) for a in answers)
    accepted = up.generation(answers[1]["results"][0]["generation_id"])
    assert accepted.request["image_url"] == f"s3://{up.bucket}/uploads/my holiday/café ☀ 1+1.png"


def test_from_settings_builds_a_sigv4_processor(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    from videogen.settings import Settings

    settings = Settings(
        table_name="t",
        idempotency_table_name="i",
        outputs_bucket="o",
        aiml_api_key_secret_id="s",
        upload_default_model="runway/gen4_turbo",
        upload_max_bytes=2048,
        upload_prefix="in/",
        upload_owner_from_prefix=True,
    )
    processor = build_uploads(settings, make_service(aws, client, clock))

    assert processor.defaults == UploadDefaults(
        model="runway/gen4_turbo",
        prompt=settings.upload_default_prompt,
        owner="s3-uploads",
        max_bytes=2048,
        image_url_expiry_seconds=3600,
        prefix="in/",
        owner_from_prefix=True,
    )
    url = processor.objects.presign(
        UploadRecord(aws["UploadsBucket"], "uploads/a.png", "ObjectCreated:Put", version_id="v1"),
        content_type="image/png",
        expires_in=600,
    )
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url


def test_outcome_names_are_stable() -> None:
    # dashboards and the README count on these
    assert [o.value for o in UploadOutcome] == ["accepted", "rejected", "duplicate", "skipped"]
    assert {NOT_AN_IMAGE, TOO_LARGE, INVALID_METADATA, UNKNOWN_MODEL} == {
        "upload_not_an_image",
        "upload_too_large",
        "upload_invalid_metadata",
        "upload_unknown_model",
    }
