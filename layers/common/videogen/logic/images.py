"""Images whose bytes are at hand (an upload, a data URL): their format and dimensions, checked
against what the model's page requires (videogen.domain.catalog.ImageSpec), so a request the
provider would refuse is refused before anything is paid. An https URL's image is the provider's
to fetch and judge."""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping
from typing import Any

from videogen.domain.catalog import ModelSpec
from videogen.domain.errors import RequestValidationError
from videogen.lazy import lazy_import

# imagesize (with what it imports, about 20 ms) loads at the first image measured, not at a cold start.
imagesize = lazy_import("imagesize")

_DATA_URL = re.compile(r"^data:image/([a-z+.-]+);base64,", re.IGNORECASE)


def image_kind(head: bytes) -> str | None:
    """`jpeg`, `png` or `webp` from the first bytes (magic numbers), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def dimensions(head: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's first bytes (a header is enough), or None."""
    width, height = imagesize.get(io.BytesIO(head))
    return (width, height) if width > 0 and height > 0 else None


def image_problems(
    model: ModelSpec, field: str, head: bytes, size: int, fields: Mapping[str, Any]
) -> list[str]:
    """Why the image in `field` (its first bytes and its byte size) does not fit the model."""
    spec = model.images.get(field)
    if spec is None:
        return []
    kind = image_kind(head) or "unknown"
    found = dimensions(head)
    if found is None:
        return [f"could not read the image's dimensions ({kind})"]
    return spec.problems(kind, found[0], found[1], size, fields.get("resolution"))


def check_data_url_images(model: ModelSpec, fields: Mapping[str, Any]) -> None:
    """RequestValidationError naming each data-URL image that does not fit its model's page."""
    problems = []
    for name in model.images:
        value = fields.get(name)
        if not isinstance(value, str) or not _DATA_URL.match(value):
            continue
        try:
            data = base64.b64decode(value.split(",", 1)[1], validate=False)
        except (binascii.Error, ValueError):
            continue  # the URL check refuses a malformed data URL
        problems += [
            {"field": name, "message": m} for m in image_problems(model, name, data, len(data), fields)
        ]
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise RequestValidationError(f"invalid request for {model.id}: {summary}", details=problems)
