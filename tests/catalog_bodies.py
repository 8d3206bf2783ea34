"""Request bodies built from a model's schema, for the catalog, contract and property tests:
the smallest valid body, and a value of each field's own kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from videogen.domain.catalog import ModelSpec
from videogen.domain.catalog_rules import RULES

# Public https URLs of each kind (never fetched by the tests: the provider is the simulator).
URLS = {
    "image": "https://images.example.com/cat.png",
    "video": "https://videos.example.com/clip.mp4",
    "audio": "https://audio.example.com/voice.mp3",
}


def url_for(name: str) -> str:
    lowered = name.lower()
    if "video" in lowered or lowered in ("character", "reference", "driving"):
        return URLS["video"]
    if "audio" in lowered or "sound" in lowered or "voice" in lowered:
        return URLS["audio"]
    return URLS["image"]


def value_for(name: str, schema: Mapping[str, Any]) -> Any:
    """A valid value of `schema` (its default, else its first enum value, else one in range)."""
    if "default" in schema and _fits(schema, schema["default"]):
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return value_for(name, schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "string":
        if schema.get("format") == "uri" or name.endswith("_url"):
            return url_for(name)
        text = "A red fox runs through fresh snow at dawn"
        return text[: schema.get("maxLength", len(text))].ljust(schema.get("minLength", 0), "x")
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        value = low if low is not None else (high if high is not None and high < 1 else 1)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        return [value_for(name, schema.get("items", {"type": "string"})) for _ in range(count)]
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: value_for(key, properties[key]) for key in schema.get("required", [])}
    return "x"


def _fits(schema: Mapping[str, Any], value: Any) -> bool:
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if not isinstance(kind, str) or kind not in checks or not checks[kind](value):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str) and (schema.get("format") == "uri" or "maxLength" in schema):
        return schema.get("format") != "uri" and len(value) <= schema.get("maxLength", len(value))
    return True


def minimal_body(model: ModelSpec) -> dict[str, Any]:
    """The model and its required fields only."""
    return {
        "model": model.id,
        **{f.name: value_for(f.name, f.schema) for f in model.variants[0] if f.required},
    }


def full_body(model: ModelSpec) -> dict[str, Any]:
    """The model and every field its first page documents, each at a valid value (its default where it
    has one)."""
    body = {"model": model.id, **{f.name: value_for(f.name, f.schema) for f in model.variants[0]}}
    for rule in RULES:  # a field a documented rule forbids with the others' values is left out
        if rule.broken_by(model, body):
            body.pop(rule.field_name)
    return body
