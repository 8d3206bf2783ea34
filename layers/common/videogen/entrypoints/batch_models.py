"""Request and response models of the /batches routes (feed validation and openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from videogen.domain.batches import MAX_INLINE_ITEMS, Batch, BatchStatus, LineError


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True)


class BatchRequest(_Model):
    """Either `items` (inline POST /generations bodies) or `manifest_key` (a JSONL or CSV object
    in the uploads bucket, under batches/<your API key id>/)."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "model": "kling-video/v1.6/standard/text-to-video",
                            "prompt": "A red fox",
                            "duration": 5,
                        },
                        {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A blue whale"},
                    ]
                },
                {"manifest_key": "batches/abc123/prompts.jsonl"},
            ]
        },
    )

    items: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_INLINE_ITEMS, description=f"up to {MAX_INLINE_ITEMS} POST /generations bodies"
    )
    manifest_key: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="S3 key in the uploads bucket, under batches/<your API key id>/; up to 100,000 lines",
    )
    format: str | None = Field(
        None, pattern="^(jsonl|csv)$", description="jsonl or csv; default: csv for a .csv key, else jsonl"
    )
    callback_url: str | None = Field(
        None,
        max_length=4096,
        description="public https URL that receives a signed webhook when the batch ends",
    )


class BatchOut(_Model):
    id: str
    status: BatchStatus = Field(description="validating, running, completed, failed, cancelling or cancelled")
    created_at: str
    updated_at: str
    completed_at: str | None = None
    source: str = Field(description="inline or s3")
    manifest_key: str
    lines: int = Field(description="request lines read from the manifest (0 while validating)")
    valid: int
    invalid: int
    invalid_lines: list[LineError] = Field(description="the first 100 invalid lines; all are in the results")
    counts: dict[str, int] = Field(
        description="generations by status; `waiting`: valid lines not yet accepted into the submit queue"
    )
    finished: int = Field(description="lines whose generation ended (any outcome)")
    progress: float = Field(description="finished / valid, 0 to 1")
    credits_used: int = Field(description="credits reported (or estimated for completed ones) so far")
    counted_at: str | None = Field(None, description="when the counts were taken (live for small batches)")
    callback_url: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, batch: Batch) -> BatchOut:
        finished = batch.finished
        return cls(
            id=batch.id,
            status=batch.status,
            created_at=batch.created_at,
            updated_at=batch.updated_at,
            completed_at=batch.completed_at,
            source=batch.source,
            manifest_key=batch.manifest_key,
            lines=batch.lines,
            valid=batch.valid,
            invalid=batch.invalid,
            invalid_lines=batch.invalid_lines,
            counts=batch.counts,
            finished=finished,
            progress=round(finished / batch.valid, 4)
            if batch.valid
            else (1.0 if batch.status.terminal else 0.0),
            credits_used=batch.credits_used,
            counted_at=batch.counted_at,
            callback_url=batch.callback_url,
            error=batch.error,
        )


class BatchCreated(BatchOut):
    rejected_lines: list[LineError] = Field(
        default_factory=list, description="inline items refused at once (line = position, from 1)"
    )


class BatchPage(_Model):
    items: list[BatchOut]
    next_token: str | None = None


class ResultsManifest(_Model):
    key: str = Field(
        description="the results manifest in the outputs bucket (JSONL, one line per manifest line)"
    )
    url: str = Field(description="short-lived presigned link to it")


class BatchResult(_Model):
    model_config = ConfigDict(defer_build=True, extra="allow")

    line: int
    generation_id: str | None = None
    status: str = Field(description="a generation status, invalid, waiting (not yet accepted) or cancelled")
    video_key: str | None = None
    video_url: str | None = Field(None, description="short-lived presigned link to the video")
    error: dict[str, Any] | None = None


class BatchResults(_Model):
    batch_id: str
    status: BatchStatus
    manifest: ResultsManifest
    items: list[BatchResult]
    next_token: str | None = None
