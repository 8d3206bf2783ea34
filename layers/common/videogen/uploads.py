"""S3 uploads: drop an image into the uploads bucket, get a video.

An ObjectCreated event names an object; this module turns it into one generation:
- the record's key arrives URL-encoded (`quote_plus`: spaces as `+`, `+` as `%2B`, unicode as
  UTF-8 percent escapes) and is decoded with `unquote_plus`;
- HeadObject gives size, content type and user metadata (`x-amz-meta-prompt`, `-model`, `-owner`
  and any model field such as `-duration`, coerced to the catalog's types); a ranged GET of the
  first bytes checks that it really is a JPEG, PNG or WebP;
- the generation's id is derived from bucket, key and the event's version id / sequencer / ETag,
  so S3's at-least-once delivery (the same event twice, even concurrently) yields one generation:
  the store's conditional create refuses the second one before any provider call;
- the record's request keeps an `s3://bucket/key` reference; the provider gets a presigned GET
  URL minted here (it carries temporary credentials, so it is never stored);
- a bad upload (not an image, too large, bad metadata, unknown model) becomes a `failed`
  generation with an `upload_*` reason code, a log line and a metric, and is not retried. Only
  unexpected infrastructure errors raise, so that Lambda retries the event (and then sends it to
  the dead-letter queue); the deterministic id makes those retries safe.

No AWS client is created at import: `S3Uploads` takes one, `UploadProcessor` takes everything.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import unquote_plus

from videogen.catalog import CATALOG, FieldSpec, get_model
from videogen.errors import RequestValidationError, UnknownModelError
from videogen.models import Generation, GenerationError, Source
from videogen.service import GenerationService, MetricsSink
from videogen.settings import Settings
from videogen.store import StaleWriteError, client_error

# Reason codes of refused uploads (the generation's error.code).
NOT_AN_IMAGE = "upload_not_an_image"
TOO_LARGE = "upload_too_large"
INVALID_METADATA = "upload_invalid_metadata"
UNKNOWN_MODEL = "upload_unknown_model"

IMAGE_FIELD = "image_url"  # the first-frame field every image-taking model of the catalog uses
SNIFF_BYTES = 16
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
# Content types an uploader may declare: an image type we accept, or "unknown" (the bytes decide).
IMAGE_CONTENT_TYPES = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
}
GENERIC_CONTENT_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})
MIME_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
RESERVED_METADATA = frozenset({"model", "owner", "prompt", IMAGE_FIELD})
# Every field name some model takes: such metadata is validated against the chosen model (a field
# that model does not take is refused, as the API refuses it). Other metadata (tools add `mtime`,
# `s3cmd-attrs`, ...) is ignored and logged.
_FIELD_NAMES = frozenset(spec.name for model in CATALOG.values() for spec in model.fields)
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def image_kind(head: bytes) -> str | None:
    """`jpeg`, `png` or `webp` from the first bytes (magic numbers), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


# ---------------------------------------------------------------------------------------------
# Events


class BadEventError(Exception):
    """A record that is not an S3 object event: retrying would never help."""


@dataclass(frozen=True)
class UploadRecord:
    """One S3 event record, key decoded."""

    bucket: str
    key: str
    event_name: str
    size: int | None = None
    etag: str | None = None  # without quotes
    version_id: str | None = None
    sequencer: str | None = None

    @property
    def reference(self) -> str:
        """What the generation's request keeps instead of a URL."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_object_created(self) -> bool:
        return self.event_name.startswith(("ObjectCreated:", "s3:ObjectCreated:"))

    def generation_id(self) -> str:
        """Deterministic: every delivery of this event gives the same id. The version id (versioned
        bucket) or the sequencer tells two PUTs of the same key apart; without them (moto's events),
        the ETag does, so re-uploading identical bytes under the same key is one generation."""
        marker = self.version_id or self.sequencer or self.etag or ""
        digest = hashlib.sha256("\0".join(("s3", self.bucket, self.key, marker)).encode()).hexdigest()
        return "gen_" + digest[:32]


def parse_record(record: Mapping[str, Any]) -> UploadRecord:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        bucket = s3["bucket"]["name"]
        raw_key = obj["key"]
    except (KeyError, TypeError) as exc:
        raise BadEventError(f"not an S3 event record (missing {exc})") from None
    if not isinstance(bucket, str) or not isinstance(raw_key, str) or not bucket or not raw_key:
        raise BadEventError("an S3 event record needs a bucket name and an object key")
    size = obj.get("size")
    etag = obj.get("eTag") or obj.get("etag")
    return UploadRecord(
        bucket=bucket,
        key=unquote_plus(raw_key),  # S3 encodes keys like a form: '+' is a space, '%2B' a plus
        event_name=str(record.get("eventName") or ""),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=str(etag).strip('"') if etag else None,
        version_id=str(obj["versionId"]) if obj.get("versionId") else None,
        sequencer=str(obj["sequencer"]) if obj.get("sequencer") else None,
    )


# ---------------------------------------------------------------------------------------------
# The bucket


class ObjectGoneError(Exception):
    """The event's object is no longer there, or was replaced since (its own event follows)."""


@dataclass(frozen=True)
class ObjectHead:
    size: int
    content_type: str
    metadata: dict[str, str]


class UploadObjects(Protocol):
    def head(self, record: UploadRecord) -> ObjectHead: ...
    def read_start(self, record: UploadRecord, length: int) -> bytes: ...
    def presign(self, record: UploadRecord, *, content_type: str, expires_in: int) -> str: ...


class S3Uploads:
    """The uploads bucket through a boto3 S3 client (SigV4, so presigned URLs are v4).

    Every read names the event's object exactly: its version id when the event has one, else
    If-Match on its ETag, so a key overwritten since the event is never read in its place."""

    _GONE = frozenset({"404", "NoSuchKey", "NoSuchVersion", "405", "MethodNotAllowed"})
    _REPLACED = frozenset({"412", "PreconditionFailed"})

    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    @staticmethod
    def _object(record: UploadRecord) -> dict[str, str]:
        params = {"Bucket": record.bucket, "Key": record.key}
        if record.version_id:
            params["VersionId"] = record.version_id
        return params

    def _exact(self, record: UploadRecord) -> dict[str, str]:
        params = self._object(record)
        if not record.version_id and record.etag:
            params["IfMatch"] = f'"{record.etag}"'
        return params

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._s3, operation)(**params)
        except client_error() as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in self._GONE:
                raise ObjectGoneError("the object no longer exists") from None
            if code in self._REPLACED:
                raise ObjectGoneError("the object was replaced since this event") from None
            raise

    def head(self, record: UploadRecord) -> ObjectHead:
        answer = self._call("head_object", **self._exact(record))
        return ObjectHead(
            size=int(answer.get("ContentLength", 0)),
            content_type=str(answer.get("ContentType") or ""),
            metadata={str(k).lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()},
        )

    def read_start(self, record: UploadRecord, length: int) -> bytes:
        answer = self._call("get_object", Range=f"bytes=0-{length - 1}", **self._exact(record))
        body = answer["Body"]
        try:
            return bytes(body.read(length))
        finally:
            body.close()

    def presign(self, record: UploadRecord, *, content_type: str, expires_in: int) -> str:
        # The provider sees the type the bytes proved, whatever the uploader declared.
        params = {**self._object(record), "ResponseContentType": content_type}
        return str(self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))


# ---------------------------------------------------------------------------------------------
# Processing


@dataclass(frozen=True)
class UploadDefaults:
    """What the object's metadata does not say (template parameters -> Settings)."""

    model: str = "video-01"
    prompt: str = "Bring this picture to life with gentle, natural motion."
    owner: str = "s3-uploads"
    max_bytes: int = 10 * 1024 * 1024
    image_url_expiry_seconds: int = 3600


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # a generation was recorded and submitted (its status says how it went)
    REJECTED = "rejected"  # a bad upload: recorded as failed with an upload_* reason
    DUPLICATE = "duplicate"  # a redelivered event: the generation already exists
    SKIPPED = "skipped"  # not an ObjectCreated record, or the object is gone / replaced


@dataclass(frozen=True)
class UploadResult:
    outcome: Outcome
    reference: str
    generation_id: str | None = None
    status: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None} | {"outcome": self.outcome.value}


@dataclass
class UploadReport:
    results: list[UploadResult] = field(default_factory=list)
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        return {"results": [r.as_dict() for r in self.results], "outcomes": counts, "errors": self.errors}


class UploadProcessingError(Exception):
    """Some record met an unexpected (infrastructure) error: the invocation fails so Lambda retries
    the whole event; the records already handled are duplicates on the retry."""


class _Rejected(Exception):
    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []


@dataclass
class _Request:
    owner: str
    model: str
    body: dict[str, Any]  # request fields from metadata and defaults, without model and image
    problems: list[dict[str, str]]  # metadata that could not be read or coerced


class UploadProcessor:
    """S3 event -> generations, through the service's use cases only."""

    def __init__(
        self,
        *,
        service: GenerationService,
        objects: UploadObjects,
        defaults: UploadDefaults,
        metrics: MetricsSink | None = None,
        log: Any = None,
    ) -> None:
        self.service = service
        self.objects = objects
        self.defaults = defaults
        self.metrics = metrics or service.metrics
        self.log = log if log is not None else service.log

    # -- the event ------------------------------------------------------------------------
    def handle(self, event: Mapping[str, Any]) -> UploadReport:
        """Every record, each on its own: a bad upload never sinks the others. Raises
        UploadProcessingError after the last record when any record met an unexpected error."""
        report = UploadReport()
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            self._warn("not an S3 event; ignored", keys=sorted(event) if isinstance(event, Mapping) else None)
            return report
        first_error: Exception | None = None
        for raw in records:
            try:
                record = parse_record(raw)
            except BadEventError as exc:
                self._warn("bad S3 event record; ignored", error=str(exc))
                self._metric("UploadsSkipped")
                continue
            try:
                report.results.append(self.process(record))
            except Exception as exc:  # counted, logged, re-raised below
                report.errors += 1
                first_error = first_error or exc
                self._metric("UploadErrors")
                if self.log is not None:
                    self.log.exception(
                        "upload failed; the event will be retried",
                        extra={"object": record.reference, "error": type(exc).__name__},
                    )
        if first_error is not None:
            raise UploadProcessingError(
                f"{report.errors} of {len(records)} upload record(s) failed: {type(first_error).__name__}"
            ) from first_error
        return report

    # -- one object -----------------------------------------------------------------------
    def process(self, record: UploadRecord) -> UploadResult:
        if not record.is_object_created:
            self._info("not an ObjectCreated event; skipped", record, event_name=record.event_name)
            self._metric("UploadsSkipped")
            return UploadResult(Outcome.SKIPPED, record.reference, reason="not_object_created")
        generation_id = record.generation_id()
        try:
            head = self.objects.head(record)
        except ObjectGoneError as exc:
            return self._skip(record, generation_id, str(exc))
        request = self._request(head.metadata)
        try:
            kind = self._check_image(record, head)
            if request.problems:
                summary = "; ".join(f"{p['field']}: {p['message']}" for p in request.problems)
                raise _Rejected(INVALID_METADATA, f"bad metadata: {summary}", request.problems)
            self._check_model(request)
            url = self.objects.presign(
                record, content_type=MIME_TYPES[kind], expires_in=self.defaults.image_url_expiry_seconds
            )
            body = {"model": request.model, **request.body, IMAGE_FIELD: record.reference}
            generation = self._submit(request.owner, body, generation_id, url)
        except ObjectGoneError as exc:
            return self._skip(record, generation_id, str(exc))
        except _Rejected as rejected:
            return self._reject(record, generation_id, request, rejected)
        except StaleWriteError:
            return self._duplicate(record, generation_id)
        self._metric("UploadsAccepted")
        self._info("upload submitted", record, generation_id=generation.id, status=generation.status.value)
        return UploadResult(Outcome.ACCEPTED, record.reference, generation.id, generation.status.value)

    def _submit(self, owner: str, body: dict[str, Any], generation_id: str, url: str) -> Generation:
        try:
            return self.service.submit(
                owner,
                body,
                source=Source.S3,
                generation_id=generation_id,
                provider_fields={IMAGE_FIELD: url},
            )
        except UnknownModelError as exc:
            raise _Rejected(UNKNOWN_MODEL, exc.message, exc.details) from None
        except RequestValidationError as exc:  # includes UnsafeUrlError (a metadata URL field)
            raise _Rejected(INVALID_METADATA, exc.message, exc.details) from None

    def _check_image(self, record: UploadRecord, head: ObjectHead) -> str:
        if head.size > self.defaults.max_bytes:
            raise _Rejected(
                TOO_LARGE,
                f"the image is {head.size} bytes; the limit is {self.defaults.max_bytes} bytes",
            )
        if head.size == 0:
            raise _Rejected(NOT_AN_IMAGE, "the object is empty")
        declared = head.content_type.split(";", 1)[0].strip().lower()
        if declared not in IMAGE_CONTENT_TYPES and declared not in GENERIC_CONTENT_TYPES:
            raise _Rejected(
                NOT_AN_IMAGE,
                f"content type {declared!r} is not a JPEG, PNG or WebP image",
            )
        kind = image_kind(self.objects.read_start(record, SNIFF_BYTES))
        if kind is None:
            raise _Rejected(NOT_AN_IMAGE, "the bytes are not a JPEG, PNG or WebP image")
        return kind

    def _check_model(self, request: _Request) -> None:
        try:
            model = get_model(request.model)
        except UnknownModelError as exc:
            raise _Rejected(UNKNOWN_MODEL, exc.message, exc.details) from None
        if model.field(IMAGE_FIELD) is None:
            message = f"model {model.id} takes no image ({model.mode}); name an image-to-video model"
            raise _Rejected(INVALID_METADATA, message, [{"field": "model", "message": message}])

    # -- metadata -------------------------------------------------------------------------
    def _request(self, metadata: Mapping[str, str]) -> _Request:
        """Owner, model and request fields from the user metadata, defaults filling the gaps.
        Problems are collected, and reported once the image itself has been checked."""
        problems: list[dict[str, str]] = []
        values: dict[str, str] = {}
        for raw_name, raw_value in metadata.items():
            name = raw_name.lower().replace("-", "_")
            try:
                values[name] = _decode_header_value(raw_value)
            except ValueError:
                problems.append({"field": name, "message": "is not a valid (RFC 2047) header value"})
        owner = values.pop("owner", "").strip() or self.defaults.owner
        if not OWNER_PATTERN.match(owner):
            problems.append({"field": "owner", "message": "must be 1-128 letters, digits or ._:@-"})
            owner = self.defaults.owner
        model_id = values.pop("model", "").strip() or self.defaults.model
        prompt = values.pop("prompt", "").strip() or self.defaults.prompt
        callback_url = values.pop("callback_url", "").strip()  # x-amz-meta-callback-url
        if IMAGE_FIELD in values:
            values.pop(IMAGE_FIELD)
            problems.append({"field": IMAGE_FIELD, "message": "comes from the uploaded object itself"})
        model = CATALOG.get(model_id)
        body: dict[str, Any] = {"prompt": prompt}
        if callback_url:
            body["callback_url"] = callback_url  # checked by the service like the API's
        ignored = sorted(name for name in values if name not in _FIELD_NAMES)
        for name in sorted(set(values) - set(ignored)):
            spec = model.field(name) if model is not None else None
            if spec is None:
                body[name] = values[name]  # the model does not take it: validation says so
                continue
            try:
                body[name] = _coerce(spec, values[name])
            except ValueError as exc:
                problems.append({"field": name, "message": str(exc)})
        if ignored and self.log is not None:
            self.log.info("metadata ignored: not a request field", extra={"ignored_metadata": ignored})
        return _Request(owner=owner, model=model_id, body=body, problems=problems)

    # -- outcomes -------------------------------------------------------------------------
    def _reject(
        self, record: UploadRecord, generation_id: str, request: _Request, rejected: _Rejected
    ) -> UploadResult:
        error = GenerationError(code=rejected.code, message=rejected.message[:1000])
        body = dict(request.body)
        callback_url = body.pop("callback_url", None)  # the uploader hears of the rejection too
        try:
            self.service.record_rejected(
                request.owner,
                generation_id=generation_id,
                model=request.model[:200],
                request={**body, IMAGE_FIELD: record.reference},
                error=error,
                source=Source.S3,
                callback_url=callback_url,
            )
        except StaleWriteError:
            return self._duplicate(record, generation_id)
        self._metric("UploadsRejected")
        self._metric(f"UploadsRejected_{rejected.code}")
        self._warn(
            "upload rejected",
            record=record,
            generation_id=generation_id,
            reason=rejected.code,
            detail=rejected.message,
        )
        return UploadResult(Outcome.REJECTED, record.reference, generation_id, "failed", rejected.code)

    def _duplicate(self, record: UploadRecord, generation_id: str) -> UploadResult:
        self._metric("UploadsDuplicate")
        self._info("duplicate delivery; the generation already exists", record, generation_id=generation_id)
        return UploadResult(Outcome.DUPLICATE, record.reference, generation_id)

    def _skip(self, record: UploadRecord, generation_id: str, why: str) -> UploadResult:
        self._metric("UploadsSkipped")
        self._warn("upload skipped", record=record, generation_id=generation_id, reason=why)
        return UploadResult(Outcome.SKIPPED, record.reference, generation_id, reason=why)

    # -- observability --------------------------------------------------------------------
    def _metric(self, name: str) -> None:
        self.metrics.add_metric(name, "Count", 1)

    def _info(self, message: str, record: UploadRecord, **extra: Any) -> None:
        if self.log is not None:
            self.log.info(message, extra={"object": record.reference, **extra})

    def _warn(self, message: str, *, record: UploadRecord | None = None, **extra: Any) -> None:
        if self.log is not None:
            if record is not None:
                extra["object"] = record.reference
            self.log.warning(message, extra=extra)


def _decode_header_value(value: str) -> str:
    """S3 returns non-ASCII metadata as RFC 2047 encoded words (=?UTF-8?B?...?=); plain ASCII
    values come back unchanged."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, UnicodeDecodeError, LookupError) as exc:
        raise ValueError(str(exc)) from None


def _coerce(spec: FieldSpec, text: str) -> Any:
    """A metadata string as the field's type; the catalog then checks enums and ranges."""
    value = text.strip()
    if spec.kind == "integer":
        if not _INTEGER.match(value):
            raise ValueError(f"must be an integer (got {text!r})")
        return int(value)
    if spec.kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"must be a number (got {text!r})") from None
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number (got {text!r})")
        return number
    if spec.kind == "boolean":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"must be true or false (got {text!r})")
    if spec.kind == "object":
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError("must be a JSON object") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
        return parsed
    return text


def from_settings(settings: Settings, service: GenerationService, s3_client: Any = None) -> UploadProcessor:
    """The processor a handler builds once per cold start (SigV4: presigned URLs must be v4). The
    S3 client (and boto3) is made on the first event, not at the cold start's import."""
    if s3_client is None:
        from videogen.bootstrap import LazyClient

        s3_client = LazyClient(
            "s3", signature_version="s3v4", retries={"mode": "adaptive", "max_attempts": 8}
        )
    return UploadProcessor(
        service=service,
        objects=S3Uploads(s3_client),
        defaults=UploadDefaults(
            model=settings.upload_default_model,
            prompt=settings.upload_default_prompt,
            owner=settings.upload_default_owner,
            max_bytes=settings.upload_max_bytes,
            image_url_expiry_seconds=settings.upload_image_url_expiry_seconds,
        ),
    )
