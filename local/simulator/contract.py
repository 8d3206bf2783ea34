"""The provider's contract as the simulator enforces it, read from the snapshot of its docs.

The snapshot (``<repo>/../shared/aimlapi-docs``, or ``$VIDEOGEN_AIML_DOCS``; see its README.md) holds
one OpenAPI 3 document per model page. Every submit is validated here against the request schema
of its model *at the path it was posted to*:

- ``POST /v2/video/generations``: the ``requestBody`` schema of each ``video-models/**/*.json``
  document that documents this path, indexed by the ids of its ``model`` enum.
- ``POST /v2/generate/video/<vendor>/generation`` (the legacy per-vendor path): the documents that
  document that path themselves (Kling, Alibaba, Google pages), plus the vendor's submit DTO of the
  full API spec that several big documents embed under ``components.schemas`` (``LEGACY_DTOS``):
  e.g. ``Minimax.v2.CreateGenerationVideoDTO`` is the body the MiniMax legacy page
  ``video-models/minimax-video/generate-video.md`` points its request schema at. Each DTO is a
  ``oneOf`` of per-model branches, indexed by each branch's ``model`` enum.

Where the snapshot holds several documents for one (path, model) (a model with two pages, or the
several undated copies of the full spec), a body is accepted when one of them accepts it: none of
them can be called the current one.

OpenAPI 3.0 is not JSON Schema; each schema is converted first:

- ``nullable: true`` allows ``null`` (added to ``type`` and to ``enum``);
- ``example``, ``default``, ``description``, ``title``, ``deprecated``, ``discriminator`` and
  ``x-*`` are annotations and are dropped (some ``default`` values have the wrong type, e.g.
  ``"10"`` for an integer: a default is never validated);
- a property's own ``required: true`` (a mistake some pages make) is moved to the object's list;
- ``format: uri`` is checked: the value must be an absolute URI (a scheme, then something), so a
  ``data:`` URI passes and bare Base64 does not. The pages' prose also allows "a Base64-encoded
  image" for some ``format: uri`` fields without saying how; the format is the stricter reading.
  Other formats are not checked.
- A few refusals are written only in a field's description; ``_PROSE_RULES`` turns those into
  schema (a rule applies to every schema whose field description carries its sentence).
- Unknown fields are refused (``additionalProperties: false`` is added to every object schema
  that lists ``properties`` and says nothing of others). The docs are silent on extra fields;
  refusing them is the less convenient behaviour, so a typo in a field name fails here and not
  silently at the provider.

A refusal is the provider's 400 "Body validation error" (errors-and-messages/
errors-with-status-code-4xx.md) in the general error shape (errors-and-messages/general-info.md);
``check`` returns its message. A model posted to a path that does not document it gets the same
400 with the "Invalid enum value. Expected ..., received ..." detail the 4xx page shows for a
``model`` that endpoint does not know: the provider validates the body against the path's model
enum before anything else, so it is a validation error, not a 404 (404 is for a path or resource
that does not exist).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

DOCS_ENV = "VIDEOGEN_AIML_DOCS"
UNIFIED_PATH = "/v2/video/generations"
LEGACY_PATH = "/v2/generate/video/{vendor}/generation"
_LEGACY_PATH_RE = re.compile(r"^/v2/generate/video/(?P<vendor>[a-z0-9-]+)/generation$")
VALIDATION_ERROR = "Body validation error!"

# The legacy vendor path -> the submit DTO of the embedded full API spec that documents its body.
LEGACY_DTOS: Mapping[str, str] = {
    "minimax": "Minimax.v2.CreateGenerationVideoDTO",
    "runway": "Runway.v2.GenerateVideoPayloadDTO",
    "kling": "Kling.v2.SubmitGenerationPayloadDTO",
    "alibaba": "Alibaba.v2.SubmitGenerationPayloadDTO",
    "google": "Google.v2.SubmitGenerationPayloadDTO",
    "bytedance": "Bytedance.v2.SubmitGenerationPayloadDTO",
    "pixverse": "Pixverse.v2.SubmitGenerationPayloadDTO",
    "luma-ai": "LumaAi.v2.CreateGenerationPayload",
}

# Refusals the pages state only in a field's description: (field, sentence of its description,
# JSON Schema added to the schema that has it, what the refusal says). The pages with the sentence:
# video-models/PixVerse/v5-text-to-video.json (and v5-image-to-video, v5-transition, v5.5-*), and
# video-models/Kling-AI/v3-omni-720p-image-to-video.json, v3-omni-1080p-image-to-video.json.
_PROSE_RULES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "duration",
        "1080p quality option does not support 8-second videos",
        {
            "if": {"properties": {"resolution": {"const": "1080p"}}, "required": ["resolution"]},
            "then": {"properties": {"duration": {"not": {"const": 8}}}},
        },
    ),
    (
        "tail_image_url",
        "Not supported when generate_audio is enabled",
        # generate_audio defaults to true on those pages: a tail frame needs it set to false
        {
            "if": {"required": ["tail_image_url"]},
            "then": {"properties": {"generate_audio": {"const": False}}, "required": ["generate_audio"]},
        },
    ),
)

_ANNOTATIONS = frozenset(
    {"example", "examples", "default", "description", "title", "deprecated", "discriminator"}
)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_MAX_EXPECTED_SHOWN = 8


def docs_root() -> Path:
    """Where the snapshot is: $VIDEOGEN_AIML_DOCS, else ``shared/aimlapi-docs`` beside the repo."""
    given = os.environ.get(DOCS_ENV)
    if given:
        return Path(given)
    return Path(__file__).resolve().parents[2].parent / "shared" / "aimlapi-docs"


def legacy_vendor(path: str) -> str | None:
    match = _LEGACY_PATH_RE.match(path)
    return match["vendor"] if match else None


@dataclass
class _Entry:
    source: str  # the page (path in the snapshot) the schema comes from
    validator: Draft202012Validator


@dataclass
class Contract:
    """Request schemas by (path, model id)."""

    root: Path
    entries: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    def paths(self) -> set[str]:
        return {path for path, _ in self.entries}

    def models(self, path: str | None = None) -> set[str]:
        return {model for p, model in self.entries if path is None or p == path}

    def sources(self, path: str, model: str) -> list[str]:
        return [entry.source for entry in self.entries.get((path, model), [])]

    def check(self, path: str, body: Mapping[str, Any]) -> str | None:
        """None when the body is valid for its model at this path; else the 400's message."""
        model = body.get("model")
        entries = self.entries.get((path, model)) if isinstance(model, str) else None
        if not entries:
            known = sorted(self.models(path))
            shown = " | ".join(f"'{m}'" for m in known[:_MAX_EXPECTED_SHOWN])
            if len(known) > _MAX_EXPECTED_SHOWN:
                shown += f" | ... ({len(known)} values)"
            received = (
                "undefined" if model is None else repr(model) if isinstance(model, str) else json.dumps(model)
            )
            return f"{VALIDATION_ERROR}\nmodel: Invalid enum value. Expected {shown}, received {received}"
        best: list[str] | None = None
        for entry in entries:
            errors = [_describe(e) for e in sorted(entry.validator.iter_errors(dict(body)), key=_order)]
            if not errors:
                return None
            if best is None or len(errors) < len(best):
                best = errors
        return VALIDATION_ERROR + "\n" + "\n".join(best or [])

    # loading
    def _add(self, path: str, model: str, source: str, schema: dict[str, Any]) -> None:
        key = (path, model, json.dumps(schema, sort_keys=True))
        if key in self._seen:
            return
        self._seen.add(key)
        validator = Draft202012Validator(schema, format_checker=_FORMATS)
        self.entries.setdefault((path, model), []).append(_Entry(source, validator))


@functools.cache
def load(root: Path | None = None) -> Contract:
    """The contract of the snapshot at ``root`` (default ``docs_root()``), read once per process."""
    root = Path(root) if root is not None else docs_root()
    models_dir = root / "video-models"
    if not models_dir.is_dir():
        raise FileNotFoundError(
            f"the AIML API docs snapshot is not at {root}"
            f" (set {DOCS_ENV} to the folder holding video-models/)"
        )
    contract = Contract(root=root)
    for file in sorted(models_dir.rglob("*.json")):
        source = file.relative_to(root).as_posix()
        document = json.loads(file.read_text(encoding="utf-8"))
        components = (document.get("components") or {}).get("schemas") or {}
        for path, operations in (document.get("paths") or {}).items():
            if path != UNIFIED_PATH and not legacy_vendor(path):
                continue
            schema = _request_schema((operations or {}).get("post"))
            if schema is not None:
                for model, branch in _branches(schema, components):
                    contract._add(path, model, source, _standalone(branch, components))
        for vendor, dto in LEGACY_DTOS.items():
            if dto in components:
                path = LEGACY_PATH.format(vendor=vendor)
                for model, branch in _branches(components[dto], components):
                    contract._add(
                        path, model, f"{source}#/components/schemas/{dto}", _standalone(branch, components)
                    )
    return contract


def _request_schema(operation: Any) -> dict[str, Any] | None:
    if not isinstance(operation, dict):
        return None
    content = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    schema = content.get("schema")
    return schema if isinstance(schema, dict) else None


def _resolve(schema: dict[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/components/schemas/"):
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(schema: dict[str, Any], components: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(model id, the schema for it) for each model a request schema (or its oneOf) documents."""
    schema = _resolve(schema, components)
    for combinator in ("oneOf", "anyOf"):
        if isinstance(schema.get(combinator), list):
            for branch in schema[combinator]:
                yield from _branches(branch, components)
            return
    model = (schema.get("properties") or {}).get("model") or {}
    enum = model.get("enum") if isinstance(model, dict) else None
    if isinstance(model, dict) and isinstance(model.get("const"), str):
        enum = [model["const"]]
    for model_id in enum or []:
        if isinstance(model_id, str):
            yield model_id, schema


def _standalone(branch: dict[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    """The branch converted to JSON Schema, with the components it refers to (transitively)."""
    needed: dict[str, Any] = {}
    pending = [branch]
    while pending:
        for ref in _refs(pending.pop()):
            name = ref.rsplit("/", 1)[-1]
            if name not in needed and name in components:
                needed[name] = components[name]
                pending.append(components[name])
    schema = _convert(copy.deepcopy(branch))
    properties = branch.get("properties") or {}
    rules = [
        copy.deepcopy(rule)
        for name, sentence, rule in _PROSE_RULES
        if sentence in str((properties.get(name) or {}).get("description", ""))
    ]
    if rules:
        schema["allOf"] = [*schema.get("allOf", []), *rules]
    if needed:
        schema["components"] = {"schemas": {name: _convert(copy.deepcopy(s)) for name, s in needed.items()}}
    return schema


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _convert(node: Any, *, in_all_of: bool = False) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (2020-12), in place; see the module docstring."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    for key in [k for k in node if k in _ANNOTATIONS or k.startswith("x-")]:
        del node[key]
    nullable = node.pop("nullable", False) is True
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = (
            [r for r in node.get("required", []) if isinstance(r, str)]
            if isinstance(node.get("required"), list)
            else []
        )
        for name, prop in properties.items():
            # A property's own `required: true` (not an object's list of required names).
            own = (
                prop.pop("required")
                if isinstance(prop, dict) and isinstance(prop.get("required"), bool)
                else None
            )
            if own and name not in required:
                required.append(name)
            properties[name] = _convert(prop)
        if required:
            node["required"] = required
        elif "required" in node:
            del node["required"]
        if "additionalProperties" not in node and not in_all_of:
            node["additionalProperties"] = False
    for key in ("items", "not", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _convert(node[key])
    for key in ("oneOf", "anyOf"):
        if isinstance(node.get(key), list):
            node[key] = [_convert(item) for item in node[key]]
    if isinstance(node.get("allOf"), list):
        node["allOf"] = [_convert(item, in_all_of=True) for item in node["allOf"]]
    if nullable:
        kind = node.get("type")
        if isinstance(kind, str):
            node["type"] = [kind, "null"]
        if isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    return node


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


def _order(error: ValidationError) -> tuple[str, ...]:
    return tuple(str(part) for part in error.absolute_path)


def _describe(error: ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "body"
    return f"{where}: {error.message}"
