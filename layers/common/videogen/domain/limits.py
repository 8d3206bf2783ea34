"""What a request must be, beyond its model's schema, to be stored and forwarded: text that
encodes as UTF-8, inline images that fit the record together, and a record that fits a DynamoDB
item. Also how a stored request is shown in answers (inline images shortened)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from videogen.domain.errors import RequestValidationError

# A data-URL image is stored with the request, and a DynamoDB item holds at most 400 KB: each
# image, and all of a request's images together, at most this many bytes (about 350,000
# characters of base64).
MAX_INLINE_IMAGE_BYTES = 256 * 1024
# The request as answers show it (data URLs shortened), as JSON in UTF-8 bytes: with the inline
# images (about 350 KB of text) and the rest of a record (under 10 KB) it fits a 400 KB item, and
# a page of 100 stays near 3 MB, well under Lambda's 6 MB answer.
MAX_REQUEST_BYTES = 32 * 1000
# Data URLs longer than this are shortened in answers: a page of 20 generations with inline
# images would otherwise approach Lambda's 6 MB answer, and Step Functions' 256 KB state.
MAX_SHOWN_DATA_URL = 512


def _name(key: str) -> str:
    """A key as it can be shown in an error: a lone surrogate becomes its escape (\\ud800)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string in a JSON value, object keys included; paths are
    named as the catalog's checks name them (`a.b`, `a[0]`)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{_name(str(key))}" if path else _name(str(key))
            if isinstance(key, str):
                yield name, key
            yield from strings(item, name)
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            yield from strings(item, f"{path}[{n}]")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone UTF-16 surrogate (JSON "\ud800"): no UTF-8 form
        return False
    return True


def check_text(body: Any) -> None:
    """RequestValidationError naming each field whose text (or key) has no UTF-8 form: it could
    be neither stored (DynamoDB) nor sent to the provider."""
    fields = sorted({path for path, text in strings(body, "") if not _encodes(text)})
    if fields:
        message = "must be valid Unicode text (it holds a lone UTF-16 surrogate)"
        raise RequestValidationError(
            f"invalid request: {', '.join(fields)}: {message}",
            details=[{"field": field or "body", "message": message} for field in fields],
        )


def is_data_url(value: Any) -> bool:
    return isinstance(value, str) and value[:5].lower() == "data:"


def _data_bytes(data_url: str) -> int:
    """The bytes a (checked, base64) data URL holds, from its text."""
    payload = data_url.partition(",")[2]
    padding = len(payload) - len(payload.rstrip("="))
    return len(payload) * 3 // 4 - padding


def check_record_fits(fields: dict[str, Any], *, max_inline_bytes: int = MAX_INLINE_IMAGE_BYTES) -> None:
    """RequestValidationError when the validated fields could not be recorded: inline images
    over `max_inline_bytes` together (naming each), or a request over MAX_REQUEST_BYTES without
    them."""
    inline = [(path, _data_bytes(text)) for path, text in strings(fields, "") if is_data_url(text)]
    total = sum(size for _, size in inline)
    if total > max_inline_bytes:
        message = (
            f"inline images hold {total} bytes together, more than the {max_inline_bytes} a request "
            "may carry; send the larger ones as https URLs or uploads"
        )
        raise RequestValidationError(
            f"invalid request: {message}", details=[{"field": path, "message": message} for path, _ in inline]
        )
    shown = json.dumps(shorten_data_urls(fields), ensure_ascii=False)
    size = len(shown.encode("utf-8", "surrogatepass"))
    if size > MAX_REQUEST_BYTES:
        message = (
            f"the request is {size} bytes as JSON (inline images aside), "
            f"more than the {MAX_REQUEST_BYTES} a record holds"
        )
        raise RequestValidationError(
            f"invalid request: {message}", details=[{"field": "body", "message": message}]
        )


def shorten_data_urls(value: Any) -> Any:
    """`value` with each long data URL replaced by its header and length, at any depth."""
    if is_data_url(value) and len(value) > MAX_SHOWN_DATA_URL:
        return f"{value.split(',', 1)[0]},... ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: shorten_data_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten_data_urls(item) for item in value]
    return value
