"""Request and response models of the HTTPS API. They feed request validation and the OpenAPI
document (openapi.json), so every field carries a description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from videogen.domain.limits import shorten_data_urls
from videogen.domain.models import Generation, GenerationError, Status
from videogen.domain.ports import VideoLink


class _Model(BaseModel):
    """Schemas are built on first use (a request, the OpenAPI document), not at a cold start."""

    model_config = ConfigDict(defer_build=True)


class GenerationRequest(_Model):
    """`model` plus that model's fields, named as in the AIML API's unified video endpoint
    (prompt, image_url, duration, aspect_ratio, ...). `GET /models` lists each model's fields;
    the service checks them against the catalog before any paid call."""

    model_config = ConfigDict(
        defer_build=True,
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "kling-video/v1.6/standard/text-to-video",
                    "prompt": "A red fox runs through snow",
                    "duration": 5,
                },
                {
                    "model": "video-01",
                    "prompt": "Cheetah turns toward the camera.",
                    "image_url": "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg",
                },
            ]
        },
    )

    model: str = Field(description="model id from GET /models", min_length=1, max_length=200)
    callback_url: str | None = Field(
        None,
        max_length=4096,
        description="public https URL that receives the generation once it ends, as a signed webhook "
        "(Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)",
    )


class VideoOut(_Model):
    url: str = Field(description="short-lived presigned link to the archived MP4")
    expires_at: float = Field(description="epoch seconds after which the link stops working")


class GenerationOut(_Model):
    id: str = Field(description="generation id")
    status: Status = Field(
        description="pending (in our submit queue), submitting, queued (at the provider), generating, "
        "completed, failed, timed_out or cancelled"
    )
    model: str
    source: str = Field(description="how it was requested: api, s3, workflow or batch")
    request: dict[str, Any] = Field(
        description="the model fields as validated; a long data URL is shown as its header and length"
    )
    created_at: str
    updated_at: str
    completed_at: str | None = None
    provider_generation_id: str | None = Field(None, description="the AIML API's id for the job")
    provider_status: str | None = Field(None, description="the provider's last raw status")
    usage: dict[str, Any] = Field(default_factory=dict, description="what the provider reported as used")
    error: GenerationError | None = None
    submit_outcome_unknown: bool = Field(
        False,
        description="true when the provider may have taken the job but did not answer; never resubmitted",
    )
    video: VideoOut | None = Field(None, description="present once completed")
    callback_url: str | None = Field(None, description="receives a signed webhook when the generation ends")
    queue_position: int | None = Field(
        None, description="while pending: generations ahead of this one in the submit queue (0: next)"
    )
    estimated_start: str | None = Field(
        None,
        description="while pending: when it should be submitted to the provider (ISO-8601 UTC), an "
        "estimate from the queue position, the learned provider limit and the model's typical time",
    )

    @classmethod
    def of(
        cls,
        generation: Generation,
        link: VideoLink | None,
        queue: tuple[int | None, str | None] = (None, None),
    ) -> GenerationOut:
        return cls(
            id=generation.id,
            status=generation.status,
            model=generation.model,
            source=generation.source.value,
            # The record keeps inline images whole; answers (a page of 20, the workflow's state) do not.
            request=shorten_data_urls(generation.request),
            created_at=generation.created_at,
            updated_at=generation.updated_at,
            completed_at=generation.completed_at,
            provider_generation_id=generation.provider_id,
            provider_status=generation.provider_status,
            usage=generation.usage,
            error=generation.error,
            submit_outcome_unknown=generation.submit_outcome_unknown,
            video=VideoOut(url=link.url, expires_at=link.expires_at) if link else None,
            callback_url=generation.callback_url,
            queue_position=queue[0],
            estimated_start=queue[1],
        )


class GenerationPage(_Model):
    items: list[GenerationOut]
    next_token: str | None = Field(
        None, description="pass as next_token for the next page; null on the last page"
    )


class ModelField(_Model):
    name: str
    type: str = Field(description="string, integer, number, boolean, url, array, object or any")
    required: bool
    description: str = ""
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    default: Any = Field(None, description="what the provider uses when the field is not sent")
    items: str | None = Field(None, description="for an array: the type of its items")
    min_items: int | None = None
    max_items: int | None = None


class ModelOut(_Model):
    id: str
    provider: str
    vendor: str
    mode: str = Field(description="text-to-video, image-to-video, video-to-video, lip-sync, ...")
    inputs: list[str] = Field(description="what it takes in: text, image, images, video, audio, ...")
    description: str
    typical_seconds: int = Field(description="how long a generation usually takes, as its page states")
    fields: list[ModelField]


class ModelList(_Model):
    models: list[ModelOut]


class WebhookSecretOut(_Model):
    secret: str = Field(
        description="your signing secret (`whsec_` + base64): verify `webhook-signature` with it "
        "(Standard Webhooks); it verifies only deliveries meant for you"
    )
    version: int = Field(description="bumped by each rotation")
    previous_version: int | None = Field(
        None, description="the version rotated away, still signing until previous_valid_until"
    )
    previous_valid_until: int | None = Field(
        None, description="epoch seconds: until then deliveries carry both signatures"
    )


class ErrorDetail(_Model):
    code: str = Field(description="machine-readable error code")
    message: str
    details: list[dict[str, Any]] | None = Field(None, description="per-field problems, or related ids")


class ErrorBody(_Model):
    error: ErrorDetail
