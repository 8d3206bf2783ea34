"""Uploads: an image dropped into the uploads bucket becomes one image-to-video generation.

- HeadObject gives size, content type and user metadata (`x-amz-meta-prompt`, `-model`, `-owner`
  and any model field such as `-duration`, coerced to the catalog's types); a ranged GET of the
  first bytes checks that it really is a JPEG, PNG or WebP;
- the generation's id is derived from the object (UploadRecord.generation_id), so S3's
  at-least-once delivery (the same event twice, even concurrently) yields one generation: the
  store's conditional create refuses the second one before any provider call;
- the record's request keeps an `s3://bucket/key` reference; the provider gets a presigned GET
  URL minted here (it carries temporary credentials, so it is never stored);
- a bad upload (not an image, too large, bad metadata, unknown model) becomes a `failed`
  generation with an `upload_*` reason code, a log line and a metric, and is not retried.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from functools import cache
from typing import Any

from videogen.domain.catalog import CATALOG, FieldSpec, ModelSpec, get_model
from videogen.domain.errors import RequestValidationError, UnknownModelError
from videogen.domain.models import OWNER_PATTERN, Generation, GenerationError, Source
from videogen.domain.ports import MetricsSink, StaleWriteError
from videogen.domain.uploads import (
    IMAGE_FIELD,
    IMAGE_NOT_ACCEPTED,
    INVALID_METADATA,
    NOT_AN_IMAGE,
    TOO_LARGE,
    UNKNOWN_MODEL,
    ObjectGoneError,
    ObjectHead,
    UploadDefaults,
    UploadObjects,
    UploadOutcome,
    UploadRecord,
    UploadResult,
)
from videogen.logic.images import image_kind, image_problems
from videogen.logic.service import GenerationService

# The first bytes read of an upload: enough for any image header (a JPEG's dimensions may come
# after its EXIF block).
HEAD_BYTES = 64 * 1024
_OWNER = re.compile(OWNER_PATTERN)
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


@cache
def _field_names() -> frozenset[str]:
    """Every field name some model takes: such metadata is validated against the chosen model (a
    field that model does not take is refused, as the API refuses it). Other metadata (tools add
    `mtime`, `s3cmd-attrs`, ...) is ignored and logged."""
    return frozenset(spec.name for model in CATALOG.values() for spec in model.fields)


_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


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

    # -- one object -----------------------------------------------------------------------
    def process(self, record: UploadRecord) -> UploadResult:
        if not record.is_object_created:
            self._info("not an ObjectCreated event; skipped", record, event_name=record.event_name)
            self.metric("UploadsSkipped")
            return UploadResult(UploadOutcome.SKIPPED, record.reference, reason="not_object_created")
        generation_id = record.generation_id()
        try:
            head = self.objects.head(record)
        except ObjectGoneError as exc:
            return self._skip(record, generation_id, str(exc))
        request = self._request(head.metadata, record.key)
        try:
            kind, start = self._check_image(record, head)
            if request.problems:
                summary = "; ".join(f"{p['field']}: {p['message']}" for p in request.problems)
                raise _Rejected(INVALID_METADATA, f"bad metadata: {summary}", request.problems)
            model = self._check_model(request)
            if problems := image_problems(model, IMAGE_FIELD, start, head.size, request.body):
                details = [{"field": IMAGE_FIELD, "message": problem} for problem in problems]
                message = f"the image does not suit {model.id}: {'; '.join(problems)}"
                raise _Rejected(IMAGE_NOT_ACCEPTED, message, details)
            body = {"model": request.model, **request.body, IMAGE_FIELD: record.reference}
            generation = self._submit(request.owner, body, generation_id, record, MIME_TYPES[kind])
        except ObjectGoneError as exc:
            return self._skip(record, generation_id, str(exc))
        except _Rejected as rejected:
            return self._reject(record, generation_id, request, rejected)
        except StaleWriteError:
            return self._duplicate(record, generation_id)
        self.metric("UploadsAccepted")
        self._info("upload submitted", record, generation_id=generation.id, status=generation.status.value)
        return UploadResult(UploadOutcome.ACCEPTED, record.reference, generation.id, generation.status.value)

    def _submit(
        self, owner: str, body: dict[str, Any], generation_id: str, record: UploadRecord, content_type: str
    ) -> Generation:
        """Into the submit queue (the dispatcher mints the presigned GET of the pinned object when
        it submits, so a queued upload's link cannot expire while it waits); straight to the
        provider with a link minted now when the service has no queue."""
        try:
            if self.service.queue is not None:
                pinned = self.objects.pin(record)
                return self.service.accept(
                    owner,
                    body,
                    source=Source.S3,
                    generation_id=generation_id,
                    provider_refs={IMAGE_FIELD: {**pinned, "content_type": content_type}},
                )
            url = self.objects.presign(
                record, content_type=content_type, expires_in=self.defaults.image_url_expiry_seconds
            )
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

    def _check_image(self, record: UploadRecord, head: ObjectHead) -> tuple[str, bytes]:
        """The image's kind and first bytes; _Rejected when it is not an image we take."""
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
        start = self.objects.read_start(record, HEAD_BYTES)
        kind = image_kind(start)
        if kind is None:
            raise _Rejected(NOT_AN_IMAGE, "the bytes are not a JPEG, PNG or WebP image")
        return kind, start

    def _check_model(self, request: _Request) -> ModelSpec:
        try:
            model = get_model(request.model)
        except UnknownModelError as exc:
            raise _Rejected(UNKNOWN_MODEL, exc.message, exc.details) from None
        if model.field(IMAGE_FIELD) is None:
            message = f"model {model.id} takes no image ({model.mode}); name an image-to-video model"
            raise _Rejected(INVALID_METADATA, message, [{"field": "model", "message": message}])
        return model

    # -- metadata -------------------------------------------------------------------------
    def _request(self, metadata: Mapping[str, str], key: str) -> _Request:
        """Owner, model and request fields from the user metadata (or the owner from the key, see
        UploadDefaults.owner_from_prefix), defaults filling the gaps. Problems are collected, and
        reported once the image itself has been checked."""
        problems: list[dict[str, str]] = []
        values: dict[str, str] = {}
        for raw_name, raw_value in metadata.items():
            name = raw_name.lower().replace("-", "_")
            try:
                values[name] = _decode_header_value(raw_value)
            except ValueError:
                problems.append({"field": name, "message": "is not a valid (RFC 2047) header value"})
        owner = values.pop("owner", "").strip() or self.defaults.owner
        if self.defaults.owner_from_prefix:
            owner, problem = self._owner_from_key(key)
            if problem:
                problems.append({"field": "owner", "message": problem})
        elif not _OWNER.match(owner):
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
        ignored = sorted(name for name in values if name not in _field_names())
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

    def _owner_from_key(self, key: str) -> tuple[str, str | None]:
        """The key's first segment after the upload prefix (`uploads/<owner>/...`), and a problem
        when there is none. Only IAM limits who writes under a prefix, so the segment is the one
        owner a writer cannot choose freely when each is granted its own."""
        prefix = self.defaults.prefix
        rest = key[len(prefix) :] if key.startswith(prefix) else ""
        segment, slash, _ = rest.partition("/")
        if not slash or not segment:
            problem = f"the key must be {prefix}<owner>/<name>: the owner comes from the key"
            return self.defaults.owner, problem
        if not _OWNER.match(segment):
            return self.defaults.owner, "the key's owner segment must be 1-128 letters, digits or ._:@-"
        return segment, None

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
        self.metric("UploadsRejected")
        self.metric(f"UploadsRejected_{rejected.code}")
        self.warn(
            "upload rejected",
            record=record,
            generation_id=generation_id,
            reason=rejected.code,
            detail=rejected.message,
        )
        return UploadResult(UploadOutcome.REJECTED, record.reference, generation_id, "failed", rejected.code)

    def _duplicate(self, record: UploadRecord, generation_id: str) -> UploadResult:
        self.metric("UploadsDuplicate")
        self._info("duplicate delivery; the generation already exists", record, generation_id=generation_id)
        return UploadResult(UploadOutcome.DUPLICATE, record.reference, generation_id)

    def _skip(self, record: UploadRecord, generation_id: str, why: str) -> UploadResult:
        self.metric("UploadsSkipped")
        self.warn("upload skipped", record=record, generation_id=generation_id, reason=why)
        return UploadResult(UploadOutcome.SKIPPED, record.reference, generation_id, reason=why)

    # -- observability --------------------------------------------------------------------
    def metric(self, name: str) -> None:
        self.metrics.add_metric(name, "Count", 1)

    def _info(self, message: str, record: UploadRecord, **extra: Any) -> None:
        if self.log is not None:
            self.log.info(message, extra={"object": record.reference, **extra})

    def warn(self, message: str, *, record: UploadRecord | None = None, **extra: Any) -> None:
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
    if spec.kind in ("object", "array"):
        wanted, shape = (dict, "a JSON object") if spec.kind == "object" else (list, "a JSON list")
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError(f"must be {shape}") from None
        if not isinstance(parsed, wanted):
            raise ValueError(f"must be {shape}")
        return parsed
    return text
