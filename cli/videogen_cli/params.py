"""`--param k=v`: model fields from the command line, typed as the model's `GET /models` says.

With the model's fields known, a value becomes that field's type (`integer`, `number`, `boolean`,
`object`; `string` and `url` stay text, so `resolution=720` stays "720" where the model wants
text). A value that does not fit its type, or a field the model does not list, is sent as it is
written (guessed: int, float, true/false, JSON object/array, else text), and the API answers with
the field named. Without the catalog (it could not be read), every value is guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from videogen_cli.errors import UsageError

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


def split_param(text: str) -> tuple[str, str]:
    """`k=v` -> ("k", "v"); the value may contain `=` and may be empty."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"--param wants NAME=VALUE, got {text!r}")
    if not _NAME.match(name):
        raise UsageError(f"--param {text!r}: {name!r} is not a field name (letters, digits, _)")
    return name, value


def guess(value: str) -> Any:
    """A value with no known type: int, float, true/false, JSON object/array, else the text."""
    stripped = value.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(stripped):
        return int(stripped)
    if _FLOAT.match(stripped):
        return float(stripped)
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


def coerce(value: str, kind: str | None) -> Any:
    """`value` as a field of type `kind` (GET /models' `type`); guessed when it does not fit."""
    stripped = value.strip()
    if kind == "integer":
        if _INT.match(stripped):
            return int(stripped)
        if _FLOAT.match(stripped) and float(stripped).is_integer():
            return int(float(stripped))
        return value
    if kind == "number":
        if _INT.match(stripped):
            return int(stripped)
        if _FLOAT.match(stripped):
            return float(stripped)
        return value
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        return value
    if kind in ("string", "url"):
        return value
    if kind == "object":
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return guess(value)


def field_types(model: Mapping[str, Any] | None) -> dict[str, str] | None:
    """{field name: type} from a `GET /models` entry; None when the model is not known."""
    if not model:
        return None
    types: dict[str, str] = {}
    for spec in model.get("fields") or []:
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            types[spec["name"]] = str(spec.get("type") or "")
    return types


def parse_params(items: Iterable[str], types: Mapping[str, str] | None) -> dict[str, Any]:
    """The `--param` values as request fields. A field given twice is a usage error."""
    fields: dict[str, Any] = {}
    for item in items:
        name, raw = split_param(item)
        if name in fields:
            raise UsageError(f"--param {name} is given twice")
        kind = types.get(name) if types is not None else None
        fields[name] = coerce(raw, kind) if kind else guess(raw)
    return fields


def metadata_value(value: Any) -> str:
    """A request field as S3 user metadata text (the upload function types it again)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
