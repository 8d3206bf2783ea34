"""`--image PATH_OR_URL`: a URL is passed on; a local file is read, checked and sent inline (a
base64 data URL) when it fits the API's inline limit, or uploaded to the uploads bucket."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

from videogen_cli.errors import UsageError

# The API takes a data-URL image of at most this many (decoded) bytes: it is stored with the
# request, and a DynamoDB item holds 400 KB.
MAX_INLINE_BYTES = 256 * 1024
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
UPLOADABLE = frozenset(EXTENSIONS)  # what the upload function accepts
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def image_kind(head: bytes) -> str | None:
    """`jpeg`, `png`, `webp` or `gif` from the first bytes, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def is_reference(value: str) -> bool:
    """A URL (https://..., also http:// for the API to refuse with its reason) or a data URL."""
    return bool(_URL.match(value)) or value[:5].lower() == "data:"


@dataclass(frozen=True)
class LocalImage:
    path: Path
    size: int
    kind: str
    name: str = ""  # as the command line gave it

    def __str__(self) -> str:
        return self.name or str(self.path)

    @property
    def mime(self) -> str:
        return MIME[self.kind]

    @property
    def fits_inline(self) -> bool:
        return self.size <= MAX_INLINE_BYTES

    def data_url(self) -> str:
        data = self.path.read_bytes()
        return f"data:{self.mime};base64,{base64.b64encode(data).decode('ascii')}"


def open_local_image(value: str, base: Path | None = None) -> LocalImage:
    """A readable JPEG, PNG, WebP or GIF file (relative to `base`), or a usage error saying what is wrong."""
    path = Path(os.path.expanduser(value))
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UsageError(f"--image {value}: not a file")
        with path.open("rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        raise UsageError(
            f"--image {value}: no such file (an image is a local file or an https URL)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {value}: {exc.strerror or exc}") from None
    kind = image_kind(head)
    if kind is None:
        raise UsageError(f"{value} is not a JPEG, PNG, WebP or GIF image")
    if size == 0:
        raise UsageError(f"{value} is empty")
    return LocalImage(path=path, size=size, kind=kind, name=value)


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
