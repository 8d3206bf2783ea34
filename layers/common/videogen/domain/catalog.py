"""The model catalog: every AIML API video model and the request fields each one takes, exactly
as the provider's own schemas say.

The data is generated: `make catalog` (scripts/gen_catalog.py) reads the provider's reference
pages and writes catalog.json beside this module; a test regenerates it and fails on any diff.
Each model keeps its request schema (JSON Schema: types, enums, ranges, lengths, item counts,
required fields) for the path it is submitted to: the unified `POST /v2/video/generations`, or
the vendor's older path where that is the only one documented. What a schema cannot say (a rule
between two fields) is in videogen.domain.catalog_rules, each rule citing its page.

Validation takes the schema at its word: every value it allows is accepted, every other one is
refused with the field named, and a field the schema does not list is refused too (the schemas
do not say whether the provider ignores unknown fields; refusing is the safe reading).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from videogen.domain.errors import RequestValidationError, UnknownModelError, UnsafeUrlError

FieldKind = Literal["string", "integer", "number", "boolean", "url", "array", "object", "any"]
# A model whose page states no generation time is paced as if it took this long, until its own
# completions have been seen (videogen.logic.schedule learns them).
DEFAULT_TYPICAL_SECONDS = 120
_DATA = Path(__file__).with_name("catalog.json")
# An absolute URI (RFC 3986: a scheme, a colon, then something): what `format: uri` asks for.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")

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
        parts.append(f"from {_number(spec.minimum, '-inf')} to {_number(spec.maximum, 'inf')}")
    if spec.max_length is not None:
        parts.append(f"at most {spec.max_length} characters")
    low, high = spec.schema.get("minItems"), spec.schema.get("maxItems")
    if low is not None or high is not None:
        parts.append(f"{low or 0} to {high if high is not None else 'any number of'} items")
    if spec.default is not None:
        parts.append(f"default {json.dumps(spec.default)}")
    return "; ".join(parts)


def describe_catalog() -> list[dict[str, Any]]:
    """The catalog as JSON-able dicts, in catalog order (GET /models)."""
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


def _number(value: float | None, missing: str = "") -> str:
    if value is None:
        return missing
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------------------------------------
# Validation


class _Problems:
    """Every problem of one request, each naming its field (a dotted path)."""

    def __init__(self, check_url: Callable[[str], None]) -> None:
        self.check_url = check_url
        self.found: list[dict[str, str]] = []
        self.unsafe_only = True
        self.unknown = 0  # fields the model's page does not list

    def add(self, field: str, message: str, *, unsafe_url: bool = False) -> None:
        self.found.append({"field": field, "message": message})
        self.unsafe_only = self.unsafe_only and unsafe_url


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    return [kind] if isinstance(kind, str) else list(kind or [])


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, Mapping)
    return False


def check_value(schema: Mapping[str, Any], value: Any, field: str, problems: _Problems, *, url: bool) -> Any:
    """The cleaned value at `field` (integral floats of integer fields become ints), problems
    recorded. `url`: a string here is a URL the provider fetches (the safety check applies)."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _check_options(schema, key, value, field, problems, url=url)
    kinds = _types(schema)
    if kinds and not any(_is_type(value, kind) for kind in kinds):
        problems.add(field, f"must be {' or '.join(_article(k) for k in kinds)}")
        return value
    if value is None:
        return value
    if "enum" in schema and value not in schema["enum"]:
        problems.add(field, _enum_message(schema["enum"], value))
        return value
    if _is_type(value, "number") and not isinstance(value, str):
        if isinstance(value, float) and "integer" in kinds and "number" not in kinds:
            value = int(value)
        if "minimum" in schema and value < schema["minimum"]:
            problems.add(field, f"must be at least {_number(schema['minimum'])}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.add(field, f"must be at most {_number(schema['maximum'])}")
    elif isinstance(value, str):
        _check_string(schema, value, field, problems, url=url or schema.get("format") == "uri")
    elif isinstance(value, list):
        value = _check_list(schema, value, field, problems, url=url)
    elif isinstance(value, Mapping):
        value = check_object(schema, value, field, problems)
    return value


def _check_string(
    schema: Mapping[str, Any], value: str, field: str, problems: _Problems, *, url: bool
) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.add(field, f"must be at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.add(field, f"must be at most {schema['maxLength']} characters (got {len(value)})")
    if schema.get("format") == "uri" and not _URI.match(value):
        problems.add(field, "must be a URL")
    elif url and "enum" not in schema:
        try:
            problems.check_url(value)
        except UnsafeUrlError as exc:
            problems.add(field, exc.message, unsafe_url=True)


def _check_list(
    schema: Mapping[str, Any], value: list[Any], field: str, problems: _Problems, *, url: bool
) -> list[Any]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.add(field, f"must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.add(field, f"must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return list(value)
    return [check_value(items, item, f"{field}[{n}]", problems, url=url) for n, item in enumerate(value)]


def check_object(schema: Mapping[str, Any], value: Mapping[str, Any], field: str, problems: _Problems) -> Any:
    properties = schema.get("properties")
    if properties is None:
        return dict(value)
    cleaned = {}
    for name in schema.get("required", []):
        if name not in value:
            problems.add(f"{field}.{name}", "is required")
    for key, item in value.items():
        if key not in properties:
            problems.add(f"{field}.{key}", "is not accepted here")
            continue
        cleaned[key] = check_value(
            properties[key], item, f"{field}.{key}", problems, url=key.endswith("_url")
        )
    return cleaned


def _check_options(
    schema: Mapping[str, Any], key: str, value: Any, field: str, problems: _Problems, *, url: bool
) -> Any:
    """anyOf / oneOf: the value fits (exactly one, for oneOf) of the options."""
    fits, unsafe = [], []
    for option in schema[key]:
        trial = _Problems(problems.check_url)
        cleaned = check_value(option, value, field, trial, url=url)
        if not trial.found:
            fits.append(cleaned)
        elif trial.unsafe_only:  # the right shape, with a URL that may not be fetched
            unsafe.append(trial.found)
    if unsafe:  # a URL that may not be fetched is refused, whatever other form would take it
        for found in unsafe[0]:
            problems.add(found["field"], found["message"], unsafe_url=True)
        return value
    if (key == "anyOf" and fits) or (key == "oneOf" and len(fits) == 1):
        return fits[0]
    problems.add(field, "matches more than one form" if fits else "does not match any form this field takes")
    return value


def _article(kind: str) -> str:
    return {"integer": "an integer", "array": "a list", "object": "an object", "null": "null"}.get(
        kind, f"a {kind}"
    )


def _enum_message(options: list[Any], value: Any) -> str:
    allowed = ", ".join(repr(option) for option in options)
    hint = ""
    if isinstance(value, str):
        same = [o for o in options if isinstance(o, str) and o.lower() == value.lower()]
        if same:
            hint = f" (did you mean {same[0]!r}?)"
    return f"must be one of {allowed}{hint}"


def _once_per_url(check_url: Callable[[str], None]) -> Callable[[str], None]:
    """`check_url`, asked once per URL of a request (a model with several pages checks each
    page's fields; a URL check may resolve DNS)."""
    verdicts: dict[str, UnsafeUrlError | None] = {}

    def check(url: str) -> None:
        if url not in verdicts:
            try:
                check_url(url)
                verdicts[url] = None
            except UnsafeUrlError as exc:
                verdicts[url] = exc
        if verdicts[url] is not None:
            raise verdicts[url]  # type: ignore[misc]

    return check


def _check_fields(
    model: ModelSpec, fields: tuple[FieldSpec, ...], body: Mapping[str, Any], check_url: Callable[[str], None]
) -> tuple[_Problems, dict[str, Any]]:
    """The problems of `body` against one page's fields, and the cleaned fields."""
    problems = _Problems(check_url)
    cleaned: dict[str, Any] = {}
    names = {spec.name for spec in fields}
    for spec in fields:
        if spec.name not in body:
            if spec.required:
                problems.add(spec.name, "is required")
            continue
        url = spec.kind == "url" or (spec.kind == "array" and spec.items == "url")
        cleaned[spec.name] = check_value(spec.schema, body[spec.name], spec.name, problems, url=url)
    for key in body:
        if key == "model" or key in names:
            continue
        message = f"is not accepted by model {model.id}"
        alias = _LEGACY_ALIASES.get(key) if isinstance(key, str) else None
        if alias and alias in names:
            message += f" (use {alias})"
        problems.add(str(key), message)
        problems.unknown += 1
    return problems, cleaned


def validate_request(
    body: Mapping[str, Any], *, check_url: Callable[[str], None]
) -> tuple[ModelSpec, dict[str, Any]]:
    """Check a request body against its model's schema; return the model and the cleaned fields.

    Every problem is collected and reported at once: RequestValidationError with one `{"field",
    "message"}` per problem, or UnsafeUrlError when refused URLs are the only problems, or
    UnknownModelError. `check_url` is called for every URL the provider would fetch and raises
    UnsafeUrlError. The cleaned dict holds the model's fields in catalog order, without `model`."""
    from videogen.domain.catalog_rules import check_rules

    if not isinstance(body, Mapping):
        message = "request body must be a JSON object"
        raise RequestValidationError(message, details=[{"field": "body", "message": message}])
    model_id = body.get("model")
    if model_id is None or not isinstance(model_id, str):
        message = "model is required" if model_id is None else "model must be a string"
        raise RequestValidationError(message, details=[{"field": "model", "message": message}])
    model = get_model(model_id)
    check_once = _once_per_url(check_url)
    tried = [_check_fields(model, fields, body, check_once) for fields in model.variants]
    # The page that fits: one with no problem, else the one that knows most of the body's fields.
    problems, cleaned = next(
        (t for t in tried if not t[0].found), min(tried, key=lambda t: (t[0].unknown, len(t[0].found)))
    )
    if not problems.found:
        for field, message in check_rules(model, cleaned):
            problems.add(field, message)
    if problems.found:
        found = problems.found
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in found[:3])
        if len(found) > 3:
            summary += f"; and {len(found) - 3} more"
        error = UnsafeUrlError if problems.unsafe_only else RequestValidationError
        raise error(f"invalid request for {model.id}: {summary}", details=found)
    return model, cleaned
