"""The model catalog: which video models the service offers and which fields each one takes.

Field names are the UNIFIED names of the AIML API (`image_url`, `enhance_prompt`, `aspect_ratio`,
`tail_image_url`, ...); the provider client translates them for the legacy family. Enums keep each
model's own spelling (`768P` for Hailuo, `720P` for Veo 3 and Wan 2.1, `720p` elsewhere).

Sources: the AIML API's published per-model schemas and usage pages. Values no source
states outright are marked "inferred" next to them. `typical_seconds` values are estimates from
aimlapi.md's timing notes (1-4 min typical, video-01 under a minute); they only pace the first poll.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from videogen.domain.errors import RequestValidationError, UnknownModelError, UnsafeUrlError

FieldKind = Literal["string", "integer", "number", "boolean", "url", "object"]


@dataclass(frozen=True)
class FieldSpec:
    """One request field of a model. `url` fields hold image references (https or data URL)."""

    name: str
    kind: FieldKind
    required: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A model the service can submit to, with every field it accepts except `model`."""

    id: str
    provider: str
    family: Literal["unified", "legacy"]
    mode: Literal["text-to-video", "image-to-video"]
    fields: tuple[FieldSpec, ...]
    typical_seconds: int
    description: str

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name`, or None when the model does not take it."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None


# ---------------------------------------------------------------------------------------------
# Field builders: one place for the wording shared by many models.

SEED_UINT32 = (0, 4_294_967_295)
SEED_INT32 = (0, 2_147_483_647)


def _prompt(max_length: int, *, required: bool = True) -> FieldSpec:
    return FieldSpec(
        "prompt",
        "string",
        required=required,
        max_length=max_length,
        description="Text description of the scene, subject and action to generate.",
    )


def _negative_prompt(max_length: int) -> FieldSpec:
    return FieldSpec(
        "negative_prompt",
        "string",
        max_length=max_length,
        description="Elements to keep out of the video.",
    )


def _image(name: str = "image_url", *, required: bool = False, description: str = "") -> FieldSpec:
    return FieldSpec(
        name,
        "url",
        required=required,
        description=description
        or "Public https URL or base64 data URL of the image used as the first frame.",
    )


def _last_image(name: str = "last_image_url") -> FieldSpec:
    return _image(
        name, description="Public https URL or base64 data URL of the image used as the last frame."
    )


def _duration(*seconds: int) -> FieldSpec:
    return FieldSpec("duration", "integer", enum=seconds, description="Length of the video in seconds.")


def _aspect_ratio(*ratios: str) -> FieldSpec:
    return FieldSpec("aspect_ratio", "string", enum=ratios, description="Aspect ratio of the video.")


def _resolution(*values: str) -> FieldSpec:
    return FieldSpec(
        "resolution",
        "string",
        enum=values,
        description="Output resolution (spelling is model-specific, e.g. 768P or 720p).",
    )


def _seed(bounds: tuple[int, int]) -> FieldSpec:
    return FieldSpec(
        "seed",
        "integer",
        minimum=bounds[0],
        maximum=bounds[1],
        description="Random seed; the same seed and inputs give similar results.",
    )


def _enhance_prompt() -> FieldSpec:
    return FieldSpec(
        "enhance_prompt",
        "boolean",
        description="Let the provider rewrite the prompt for quality (false: follow it literally).",
    )


def _cfg_scale() -> FieldSpec:
    return FieldSpec(
        "cfg_scale",
        "number",
        minimum=0,
        maximum=1,
        description="How closely the video follows the prompt (0 = loosely, 1 = strictly).",
    )


def _bool(name: str, description: str) -> FieldSpec:
    return FieldSpec(name, "boolean", description=description)


_WATERMARK = _bool("watermark", "Add the provider's watermark to the video.")

# Kling documents 2500 characters for prompt and negative_prompt on its own API (inferred for AIML).
_KLING_PROMPT_MAX = 2500

# ---------------------------------------------------------------------------------------------

_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="video-01",
        provider="minimax",
        family="legacy",
        mode="image-to-video",
        description="MiniMax video-01: prompt with an optional first-frame image (the seed's example).",
        typical_seconds=45,  # the seed: "usually less than a minute"
        fields=(
            _prompt(2000),
            _image(),
            _enhance_prompt(),
        ),
    ),
    ModelSpec(
        id="video-01-live2d",
        provider="minimax",
        family="legacy",
        mode="image-to-video",
        description="MiniMax video-01-live2d: animates a first-frame image (anime / Live2D style).",
        typical_seconds=60,  # inferred: same engine as video-01
        fields=(
            _prompt(2000),
            _image(required=True),
            _enhance_prompt(),
        ),
    ),
    ModelSpec(
        id="minimax/hailuo-02",
        provider="minimax",
        family="unified",
        mode="text-to-video",
        description="MiniMax Hailuo 02: text to video, optionally guided by first and last frames.",
        typical_seconds=150,  # inferred
        fields=(
            _prompt(2000),
            _image(),
            _last_image(),
            _resolution("768P", "1080P"),
            _duration(6, 10),
            _enhance_prompt(),
        ),
    ),
    ModelSpec(
        id="kling-video/v1.6/standard/text-to-video",
        provider="kling",
        family="unified",
        mode="text-to-video",
        description="Kling 1.6 Standard: text to video.",
        typical_seconds=180,  # inferred
        fields=(
            _prompt(_KLING_PROMPT_MAX),
            _negative_prompt(_KLING_PROMPT_MAX),
            _aspect_ratio("16:9", "9:16", "1:1"),
            _duration(5, 10),
            _cfg_scale(),
        ),
    ),
    ModelSpec(
        id="klingai/v2.5-turbo/pro/image-to-video",
        provider="kling",
        family="unified",
        mode="image-to-video",
        # The provider's schema for this model requires both image_url and prompt and has no
        # tail_image_url nor aspect_ratio (the output follows the image).
        description="Kling 2.5 Turbo Pro: animates an image following a prompt.",
        typical_seconds=120,  # inferred
        fields=(
            _image(required=True),
            _prompt(_KLING_PROMPT_MAX),
            _negative_prompt(_KLING_PROMPT_MAX),
            _duration(5, 10),
            _cfg_scale(),
        ),
    ),
    ModelSpec(
        id="runway/gen4_turbo",
        provider="runway",
        family="unified",
        mode="image-to-video",
        description="Runway Gen-4 Turbo: animates an image, optionally following a prompt.",
        typical_seconds=60,  # inferred: Runway's turbo models are among the fastest
        fields=(
            _image(required=True),
            _prompt(1000, required=False),
            # inferred: Runway's Gen-4 output ratios (1280:720, 720:1280, 1104:832, 832:1104,
            # 960:960, 1584:672) in the unified spelling.
            _aspect_ratio("16:9", "9:16", "4:3", "3:4", "1:1", "21:9"),
            _duration(5, 10),
            _seed(SEED_UINT32),  # Runway documents 0..4294967295
        ),
    ),
    ModelSpec(
        id="google/veo3",
        provider="google",
        family="unified",
        mode="text-to-video",
        description="Google Veo 3: text to video with generated audio.",
        typical_seconds=240,  # inferred: one of the slower models
        fields=(
            _prompt(4000),  # inferred: no published limit
            _negative_prompt(2000),  # inferred
            _aspect_ratio("16:9", "9:16"),
            _resolution("720P", "1080P"),  # the provider's schema spells these upper-case
            _duration(4, 6, 8),
            _seed(SEED_UINT32),  # inferred: Veo seeds are uint32
            _enhance_prompt(),
            _bool("generate_audio", "Generate a soundtrack with the video."),
        ),
    ),
    ModelSpec(
        id="luma/ray-2",
        provider="luma-ai",
        family="unified",
        mode="text-to-video",
        # Luma's `keyframes` object is not offered: its nested image URLs would need their own checks.
        description="Luma Ray 2: text to video.",
        typical_seconds=120,  # inferred
        fields=(
            _prompt(4000),  # inferred: no published limit
            _aspect_ratio("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"),
            _resolution("540p", "720p", "1080p", "4k"),
            _duration(5, 9),
            _bool("loop", "Make the video loop seamlessly."),
        ),
    ),
    ModelSpec(
        id="alibaba/wan2.1-t2v-plus",
        provider="alibaba",
        family="unified",
        mode="text-to-video",
        # The provider's schema for this model has no duration (it renders 5 s) and one resolution.
        description="Alibaba Wan 2.1 Plus: text to video.",
        typical_seconds=240,  # inferred: Wan Plus renders slowly
        fields=(
            _prompt(800),  # inferred: Alibaba's Wan 2.1 API documents 800 characters
            _negative_prompt(500),  # inferred: same source
            _resolution("720P"),
            _aspect_ratio("16:9", "9:16", "1:1", "4:3", "3:4"),
            _seed(SEED_INT32),  # inferred: Alibaba documents 0..2147483647
            _enhance_prompt(),
            _WATERMARK,
        ),
    ),
    ModelSpec(
        id="pixverse/v5/text-to-video",
        provider="pixverse",
        family="unified",
        mode="text-to-video",
        description="PixVerse v5: text to video with optional style presets.",
        typical_seconds=60,  # inferred
        fields=(
            _prompt(2048),  # inferred: PixVerse's own API documents 2048 characters
            _negative_prompt(2048),
            _aspect_ratio("16:9", "4:3", "1:1", "3:4", "9:16"),
            _resolution("360p", "540p", "720p", "1080p"),
            _duration(5, 8),
            FieldSpec(
                "style",
                "string",
                enum=("anime", "3d_animation", "clay", "comic", "cyberpunk"),
                description="Visual style preset.",
            ),
            _seed(SEED_INT32),  # inferred: PixVerse documents 0..2147483647
        ),
    ),
    ModelSpec(
        id="bytedance/seedance-1-0-lite-t2v",
        provider="bytedance",
        family="unified",
        mode="text-to-video",
        description="ByteDance Seedance 1.0 Lite: text to video.",
        typical_seconds=90,  # inferred
        fields=(
            _prompt(2000),  # inferred: no published limit
            _resolution("480p", "720p", "1080p"),
            _aspect_ratio("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "9:21"),
            _duration(5, 10),
            _seed((-1, 4_294_967_295)),  # inferred: Seedance takes -1 (random) .. 2^32-1
            _bool("camerafixed", "Keep the camera still."),
            _WATERMARK,
        ),
    ),
    ModelSpec(
        id="openai/sora-2-t2v",
        provider="openai",
        family="unified",
        mode="text-to-video",
        description="OpenAI Sora 2: text to video.",
        typical_seconds=300,  # inferred: one of the slower models
        fields=(
            _prompt(4000),  # inferred: no published limit
            _resolution("720p"),  # inferred: Sora 2 (not Pro) renders 1280x720 / 720x1280
            _aspect_ratio("16:9", "9:16"),
            _duration(4, 8, 12),
        ),
    ),
    ModelSpec(
        id="openai/sora-2-i2v",
        provider="openai",
        family="unified",
        mode="image-to-video",
        description="OpenAI Sora 2: animates an image following a prompt.",
        typical_seconds=300,  # inferred
        fields=(
            _prompt(4000),  # inferred
            _image(required=True),
            _resolution("720p"),  # inferred
            _aspect_ratio("16:9", "9:16"),
            _duration(4, 8, 12),
        ),
    ),
)

CATALOG: Mapping[str, ModelSpec] = MappingProxyType({model.id: model for model in _MODELS})

# Unified field name -> the name the legacy per-vendor endpoint uses, per vendor of that family.
LEGACY_FIELD_NAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "minimax": {"image_url": "first_frame_image", "enhance_prompt": "prompt_optimizer"},
        "runway": {"aspect_ratio": "ratio", "tail_image_url": "last_image_url"},
    }
)
# Legacy spellings a caller may send by habit; the error then names the unified field.
_LEGACY_ALIASES = {
    legacy: unified for names in LEGACY_FIELD_NAMES.values() for unified, legacy in names.items()
}


def get_model(model_id: str) -> ModelSpec:
    """The catalog entry for `model_id`; UnknownModelError when there is none."""
    try:
        return CATALOG[model_id]
    except (KeyError, TypeError):
        raise _unknown_model(model_id) from None


def _unknown_model(model_id: object) -> UnknownModelError:
    known = ", ".join(CATALOG)
    hint = ""
    if isinstance(model_id, str):
        close = difflib.get_close_matches(model_id, list(CATALOG), n=1)
        if close:
            hint = f" (did you mean '{close[0]}'?)"
    message = f"unknown model {model_id!r}{hint}; known models: {known}"
    return UnknownModelError(message, details=[{"field": "model", "message": message}])


def describe_catalog() -> list[dict[str, Any]]:
    """The catalog as JSON-able dicts, in catalog order (GET /models)."""
    return [
        {
            "id": model.id,
            "provider": model.provider,
            "mode": model.mode,
            "description": model.description,
            "typical_seconds": model.typical_seconds,
            "fields": [
                {
                    "name": spec.name,
                    "type": spec.kind,
                    "required": spec.required,
                    "enum": list(spec.enum) if spec.enum is not None else None,
                    "minimum": spec.minimum,
                    "maximum": spec.maximum,
                    "max_length": spec.max_length,
                    "description": spec.description,
                }
                for spec in model.fields
            ],
        }
        for model in _MODELS
    ]


# ---------------------------------------------------------------------------------------------
# Validation


class _Invalid(Exception):
    def __init__(self, message: str, *, unsafe_url: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unsafe_url = unsafe_url


def _check_value(spec: FieldSpec, value: Any, check_url: Callable[[str], None]) -> Any:
    """The cleaned value of one field, or _Invalid."""
    if spec.kind in ("string", "url"):
        if not isinstance(value, str):
            raise _Invalid("must be a string")
        if spec.required and not value.strip():
            raise _Invalid("is required and must not be empty")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise _Invalid(f"must be at most {spec.max_length} characters (got {len(value)})")
        if spec.kind == "url":
            if not value.strip():
                raise _Invalid("must be a non-empty URL")
            try:
                check_url(value)
            except UnsafeUrlError as exc:
                raise _Invalid(exc.message, unsafe_url=True) from exc
    elif spec.kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("must be an integer")
    elif spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _Invalid("must be a finite number")
    elif spec.kind == "boolean":
        if not isinstance(value, bool):
            raise _Invalid("must be true or false")
    elif spec.kind == "object":
        if not isinstance(value, Mapping):
            raise _Invalid("must be an object")
        value = dict(value)

    if spec.enum is not None and value not in spec.enum:
        allowed = ", ".join(repr(option) for option in spec.enum)
        hint = ""
        if isinstance(value, str):
            same = [o for o in spec.enum if isinstance(o, str) and o.lower() == value.lower()]
            if same:
                hint = f" (did you mean {same[0]!r}?)"
        raise _Invalid(f"must be one of {allowed}{hint}")
    if spec.minimum is not None and value < spec.minimum:
        raise _Invalid(f"must be at least {_number(spec.minimum)}")
    if spec.maximum is not None and value > spec.maximum:
        raise _Invalid(f"must be at most {_number(spec.maximum)}")
    return value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def validate_request(
    body: Mapping[str, Any], *, check_url: Callable[[str], None]
) -> tuple[ModelSpec, dict[str, Any]]:
    """Check a request body against its model; return the model and the cleaned fields.

    The body names its model in `model` and uses unified field names. Every problem is collected
    and reported at once: RequestValidationError with one `{"field", "message"}` per problem, or
    UnsafeUrlError when refused URLs are the only problems, or UnknownModelError. `check_url` is
    called for every url field (e.g. urls.image_reference_checker(...)) and raises UnsafeUrlError.
    The cleaned dict holds the model's fields in catalog order, without `model`; optional fields
    sent as null are left out; integral floats for integer fields become ints.
    """
    if not isinstance(body, Mapping):
        message = "request body must be a JSON object"
        raise RequestValidationError(message, details=[{"field": "body", "message": message}])
    model_id = body.get("model")
    if model_id is None:
        message = "model is required"
        raise RequestValidationError(message, details=[{"field": "model", "message": message}])
    if not isinstance(model_id, str):
        message = "model must be a string"
        raise RequestValidationError(message, details=[{"field": "model", "message": message}])
    model = get_model(model_id)

    problems: list[dict[str, str]] = []
    unsafe_only = True
    cleaned: dict[str, Any] = {}

    def problem(field: str, message: str, *, unsafe_url: bool = False) -> None:
        nonlocal unsafe_only
        problems.append({"field": field, "message": message})
        unsafe_only = unsafe_only and unsafe_url

    for spec in model.fields:
        value = body.get(spec.name)
        if value is None:
            if spec.required:
                problem(spec.name, "is required")
            continue
        try:
            cleaned[spec.name] = _check_value(spec, value, check_url)
        except _Invalid as exc:
            problem(spec.name, exc.message, unsafe_url=exc.unsafe_url)

    for key in body:
        if key == "model" or (isinstance(key, str) and model.field(key) is not None):
            continue
        message = f"is not accepted by model {model.id}"
        alias = _LEGACY_ALIASES.get(key) if isinstance(key, str) else None
        if alias and model.field(alias) is not None:
            message += f" (use {alias})"
        problem(str(key), message)

    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        if len(problems) > 3:
            summary += f"; and {len(problems) - 3} more"
        error = UnsafeUrlError if unsafe_only else RequestValidationError
        raise error(f"invalid request for {model.id}: {summary}", details=problems)
    return model, cleaned
