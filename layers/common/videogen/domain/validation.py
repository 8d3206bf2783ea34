"""Request validation by the catalog's schemas: every value a model's schema allows is accepted,
every other one is refused with the field named, and a field the schema does not list is refused
too (the schemas do not say whether the provider ignores unknown fields; refusing is the safe
reading). Every URL the provider would fetch, nested or in a list, goes through the caller's URL
check. Rules between fields come from videogen.domain.catalog_rules."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from videogen.domain.catalog import FieldSpec, ModelSpec, get_model, number_text
from videogen.domain.catalog_rules import check_rules
from videogen.domain.errors import RequestValidationError, UnsafeUrlError

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
            problems.add(field, f"must be at least {number_text(schema['minimum'])}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.add(field, f"must be at most {number_text(schema['maximum'])}")
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
