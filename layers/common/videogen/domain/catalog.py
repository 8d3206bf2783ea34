"""The model catalog: every AIML API video model and the request fields each one takes, exactly
as the provider's own schemas say.

The data is generated: `make catalog` (scripts/gen_catalog.py) reads the provider's reference
pages and writes catalog.json beside this module; a test regenerates it and fails on any diff.
Each model keeps its request schema (JSON Schema: types, enums, ranges, lengths, item counts,
required fields) for the path it is submitted to: the unified `POST /v2/video/generations`, or
the vendor's older path where that is the only one documented. What a schema cannot say (a rule
between two fields) is in videogen.domain.catalog_rules, each rule citing its page.

Requests are checked against these schemas by videogen.domain.validation.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from videogen.domain.errors import UnknownModelError

FieldKind = Literal["string", "integer", "number", "boolean", "url", "array", "object", "any"]
# A model whose page states no generation time is paced as if it took this long, until its own
# completions have been seen (videogen.logic.schedule learns them).
DEFAULT_TYPICAL_SECONDS = 120
_DATA = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class FieldSpec:
    """One request field of a model, with its JSON Schema. `url` fields hold a URL the provider
    fetches (an image, a video, an audio track): https, or a data URL for images."""

    name: str
    kind: FieldKind
    schema: Mapping[str, Any]
    required: bool = False

    @property
    def enum(self) -> tuple[Any, ...] | None:
        values = self.schema.get("enum")
        return tuple(values) if values is not None else None

    @property
    def minimum(self) -> float | None:
        return self.schema.get("minimum")

    @property
    def maximum(self) -> float | None:
        return self.schema.get("maximum")

    @property
    def max_length(self) -> int | None:
        return self.schema.get("maxLength")

    @property
    def default(self) -> Any:
        return self.schema.get("default")

    @property
    def items(self) -> FieldKind | None:
        """For an array: the kind of its items."""
        return _kind(self.name, self.schema["items"]) if "items" in self.schema else None

    @property
    def description(self) -> str:
        return describe_field(self)


@dataclass(frozen=True)
class ImageSpec:
    """What an image field's page requires of the image itself (format, shape, size), read from
    the page's words by the catalog's generator; checked wherever the bytes can be seen (uploads,
    data URLs)."""

    formats: tuple[str, ...] | None = None  # jpeg, png, webp
    ratio_above: float | None = None  # width / height must be over this
    ratio_below: float | None = None  # ... and under this
    short_side_above: int | None = None  # pixels
    max_bytes: int | None = None
    sizes_by_resolution: Mapping[str, tuple[tuple[int, int], ...]] | None = None
    page: str = ""

    def problems(self, kind: str, width: int, height: int, size: int, resolution: Any = None) -> list[str]:
        """Why an image of this kind, width, height and byte size does not fit (none: it does)."""
        found = []
        if self.formats is not None and kind not in self.formats:
            found.append(
                f"must be a {' or '.join(f.upper() for f in self.formats)} image (it is {kind.upper()})"
            )
        ratio = width / height if height else 0.0
        bounded = self.ratio_above is not None and self.ratio_below is not None
        if bounded and not self.ratio_above < ratio < self.ratio_below:  # type: ignore[operator]
            found.append(
                f"must have a width / height between {self.ratio_above:g} and {self.ratio_below:g}"
                f" (it is {width}x{height})"
            )
        if self.short_side_above is not None and min(width, height) <= self.short_side_above:
            found.append(
                f"must have a shorter side over {self.short_side_above} pixels (it is {width}x{height})"
            )
        if self.max_bytes is not None and size > self.max_bytes:
            found.append(f"must be at most {self.max_bytes} bytes (it is {size})")
        if self.sizes_by_resolution:
            allowed = self.sizes_by_resolution.get(str(resolution)) or tuple(
                size for sizes in self.sizes_by_resolution.values() for size in sizes
            )
            if (width, height) not in allowed:
                shown = ", ".join(f"{w}x{h}" for w, h in allowed)
                found.append(f"must be exactly {shown} (it is {width}x{height})")
        return found


@dataclass(frozen=True)
class ModelSpec:
    """A model the service can submit to, with every field it accepts except `model`."""

    id: str
    vendor: str
    provider: str  # the vendor segment of the legacy path, or the vendor's folder in the docs
    family: Literal["unified", "legacy"]
    mode: str
    inputs: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    typical_seconds: int
    typical_seconds_stated: bool
    page: str  # the schema's page in the provider's docs
    # Where several pages document the model at its path and differ, each page's fields (the
    # first page's first): a body one of them accepts is valid. `fields` lists them all.
    pages_fields: tuple[tuple[FieldSpec, ...], ...] = ()
    # Image fields whose page states what the image itself must be.
    images: Mapping[str, ImageSpec] = field(default_factory=dict)

    @property
    def variants(self) -> tuple[tuple[FieldSpec, ...], ...]:
        return self.pages_fields or (self.fields,)

    @property
    def description(self) -> str:
        return f"{self.vendor} {self.mode}: takes {', '.join(self.inputs) or 'no input'}."

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name`, or None when the model does not take it."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None


def _kind(name: str, schema: Mapping[str, Any]) -> FieldKind:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string" and (schema.get("format") == "uri" or name.endswith("_url")):
        return "url"
    if kind in ("string", "integer", "number", "boolean", "array", "object"):
        return kind
    return "any"


def _fields(data: Mapping[str, Any]) -> tuple[FieldSpec, ...]:
    required = set(data["required"])
    return tuple(
        FieldSpec(name, _kind(name, schema), MappingProxyType(schema), required=name in required)
        for name, schema in data["properties"].items()
    )


def _model(data: Mapping[str, Any]) -> ModelSpec:
    fields = _fields(data)
    alternatives = tuple(_fields(variant) for variant in data.get("alternatives", []))
    names = {spec.name for spec in fields}
    # A field only another page documents is listed too (optional: not every page takes it).
    extra = {
        spec.name: FieldSpec(spec.name, spec.kind, spec.schema)
        for variant in alternatives
        for spec in variant
        if spec.name not in names
    }
    return ModelSpec(
        id=data["id"],
        vendor=data["vendor"],
        provider=data["provider"],
        family=data["family"],
        mode=data["mode"],
        inputs=tuple(data["inputs"]),
        fields=fields + tuple(extra.values()),
        typical_seconds=data["typical_seconds"] or DEFAULT_TYPICAL_SECONDS,
        typical_seconds_stated=data["typical_seconds"] is not None,
        page=data["page"],
        pages_fields=(fields, *alternatives) if alternatives else (),
        images=MappingProxyType({name: _image_spec(spec) for name, spec in data.get("images", {}).items()}),
    )


def _image_spec(data: Mapping[str, Any]) -> ImageSpec:
    sizes = data.get("sizes_by_resolution")
    return ImageSpec(
        formats=tuple(data["formats"]) if "formats" in data else None,
        ratio_above=data.get("ratio_above"),
        ratio_below=data.get("ratio_below"),
        short_side_above=data.get("short_side_above"),
        max_bytes=data.get("max_bytes"),
        sizes_by_resolution={r: tuple((w, h) for w, h in s) for r, s in sizes.items()} if sizes else None,
        page=data["page"],
    )


@cache
def _models() -> Mapping[str, ModelSpec]:
    """The catalog, read from catalog.json at its first use (not at a cold start)."""
    data = json.loads(_DATA.read_text(encoding="utf-8"))
    return MappingProxyType({entry["id"]: _model(entry) for entry in data["models"]})


class _Catalog(Mapping[str, ModelSpec]):
    """Model id -> ModelSpec, read at the first lookup."""

    def __getitem__(self, model_id: str) -> ModelSpec:
        return _models()[model_id]

    def __iter__(self) -> Iterator[str]:
        return iter(_models())

    def __len__(self) -> int:
        return len(_models())


CATALOG: Mapping[str, ModelSpec] = _Catalog()


def get_model(model_id: str) -> ModelSpec:
    """The catalog entry for `model_id`; UnknownModelError when there is none."""
    try:
        return CATALOG[model_id]
    except (KeyError, TypeError):
        raise _unknown_model(model_id) from None


def _unknown_model(model_id: object) -> UnknownModelError:
    hint = ""
    if isinstance(model_id, str):
        close = difflib.get_close_matches(model_id, list(CATALOG), n=3)
        if close:
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)"
    message = f"unknown model {model_id!r}{hint}; GET /models lists the {len(CATALOG)} models"
    return UnknownModelError(message, details=[{"field": "model", "message": message}])


def describe_field(spec: FieldSpec) -> str:
    """A short description written from the field's schema (the provider's prose is not copied)."""
    kind = {"url": "URL", "any": "value"}.get(spec.kind, spec.kind)
    if spec.kind == "array" and spec.items:
        kind = f"list of {spec.items}s"
    parts = [("required " if spec.required else "optional ") + kind]
    if spec.enum is not None:
        parts.append("one of " + ", ".join(json.dumps(v) for v in spec.enum))
    if spec.minimum is not None or spec.maximum is not None:
        parts.append(f"from {number_text(spec.minimum, '-inf')} to {number_text(spec.maximum, 'inf')}")
    if spec.max_length is not None:
        parts.append(f"at most {spec.max_length} characters")
    low, high = spec.schema.get("minItems"), spec.schema.get("maxItems")
    if low is not None or high is not None:
        parts.append(f"{low or 0} to {high if high is not None else 'any number of'} items")
    if spec.default is not None:
        parts.append(f"default {json.dumps(spec.default)}")
    return "; ".join(parts)


@cache
def describe_catalog() -> list[dict[str, Any]]:
    """The catalog as JSON-able dicts, in catalog order (GET /models): built once per process,
    as the catalog never changes while it runs. Callers read it, never change it."""
    return [
        {
            "id": model.id,
            "provider": model.provider,
            "vendor": model.vendor,
            "mode": model.mode,
            "inputs": list(model.inputs),
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
                    "default": spec.default,
                    "items": spec.items,
                    "min_items": spec.schema.get("minItems"),
                    "max_items": spec.schema.get("maxItems"),
                    "description": spec.description,
                }
                for spec in model.fields
            ],
        }
        for model in CATALOG.values()
    ]


def number_text(value: float | None, missing: str = "") -> str:
    if value is None:
        return missing
    return str(int(value)) if float(value).is_integer() else str(value)
