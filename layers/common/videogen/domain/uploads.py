"""Uploads in the domain's terms: the S3 object an event names, what the bucket tells of it,
the defaults for what its metadata does not say, and what became of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

# Reason codes of refused uploads (the generation's error.code).
NOT_AN_IMAGE = "upload_not_an_image"
TOO_LARGE = "upload_too_large"
INVALID_METADATA = "upload_invalid_metadata"
UNKNOWN_MODEL = "upload_unknown_model"
IMAGE_NOT_ACCEPTED = "upload_image_not_accepted"  # the model's page rules out its format, shape or size

IMAGE_FIELD = "image_url"  # the first-frame field every image-taking model of the catalog uses


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


class ObjectGoneError(Exception):
    """The event's object is no longer there, or was replaced since (its own event follows)."""


@dataclass(frozen=True)
class ObjectHead:
    size: int
    content_type: str
    metadata: dict[str, str]


class UploadObjects(Protocol):
    """The uploads bucket, reading exactly the object an event names."""

    def head(self, record: UploadRecord) -> ObjectHead: ...
    def read_start(self, record: UploadRecord, length: int) -> bytes: ...
    def presign(self, record: UploadRecord, *, content_type: str, expires_in: int) -> str: ...
    def pin(self, record: UploadRecord) -> dict[str, str]: ...


@dataclass(frozen=True)
class UploadDefaults:
    """What the object's metadata does not say (template parameters -> Settings)."""

    model: str = "video-01"
    prompt: str = "Bring this picture to life with gentle, natural motion."
    owner: str = "s3-uploads"
    max_bytes: int = 10 * 1024 * 1024
    image_url_expiry_seconds: int = 3600
    prefix: str = "uploads/"
    # The owner is the key's first segment after `prefix`, not x-amz-meta-owner: a writer limited
    # by IAM to its own prefix cannot then act as another owner.
    owner_from_prefix: bool = False


class UploadOutcome(StrEnum):
    ACCEPTED = "accepted"  # a generation was recorded and submitted (its status says how it went)
    REJECTED = "rejected"  # a bad upload: recorded as failed with an upload_* reason
    DUPLICATE = "duplicate"  # a redelivered event: the generation already exists
    SKIPPED = "skipped"  # not an ObjectCreated record, or the object is gone / replaced


@dataclass(frozen=True)
class UploadResult:
    outcome: UploadOutcome
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
