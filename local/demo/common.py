"""What both parts of the demo (api.py, workflow.py) share: the error that ends the demo, the MP4
download and check, and how a saved file's path is printed."""

from __future__ import annotations

from pathlib import Path

import requests

from local.stack import ROOT


class DemoError(Exception):
    """A step failed; the message says which and why."""


def download_mp4(url: str, dest: Path) -> int:
    """Fetch the presigned link (no API key: it is a plain S3 link) and check the ftyp box."""
    try:
        with requests.get(url, stream=True, timeout=(3.05, 60)) as answer:
            if answer.status_code != 200:
                raise DemoError(f"video download answered HTTP {answer.status_code}: {answer.text[:200]}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".part")
            size = 0
            with tmp.open("wb") as out:
                for chunk in answer.iter_content(64 * 1024):
                    out.write(chunk)
                    size += len(chunk)
    except requests.RequestException as exc:
        raise DemoError(f"video download failed: {type(exc).__name__}: {exc}") from exc
    with tmp.open("rb") as f:
        head = f.read(12)
    if len(head) < 8 or head[4:8] != b"ftyp":
        tmp.unlink(missing_ok=True)
        raise DemoError(f"the downloaded file is not an MP4 (first bytes {head!r})")
    tmp.replace(dest)
    return size


def shown_path(path: Path) -> str:
    """The path relative to the repository when it is inside it (shorter to read), else as given."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
