"""Watching a generation and fetching its video, with progress on stderr.

On a terminal the progress is one line rewritten in place; otherwise (a pipe, a log, a test)
one line per status change and a line per download, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import requests

from videogen_cli.api import TERMINAL, USER_AGENT, ApiClient
from videogen_cli.errors import ApiError, GenerationFailedError, NetworkError
from videogen_cli.images import human_size

CHUNK = 256 * 1024
BAR_WIDTH = 28
HEARTBEAT = 30.0  # seconds between progress lines when stderr is not a terminal


@dataclass
class Console:
    out: TextIO
    err: TextIO
    quiet: bool = False
    tty: bool = field(init=False)

    def __post_init__(self) -> None:
        isatty = getattr(self.err, "isatty", None)
        self.tty = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self._live = False

    def print(self, text: str = "") -> None:
        """A result line on stdout."""
        self.out.write(text + "\n")
        self.out.flush()

    def info(self, text: str) -> None:
        """A message on stderr (kept even with --quiet: errors and hints)."""
        self.clear_live()
        self.err.write(text + "\n")
        self.err.flush()

    def note(self, text: str) -> None:
        """Progress-like chatter on stderr, dropped with --quiet."""
        if not self.quiet:
            self.info(text)

    def live(self, text: str, *, changed: bool) -> None:
        """A progress line: rewritten in place on a terminal, printed when `changed` otherwise."""
        if self.quiet:
            return
        if self.tty:
            self.err.write("\r\033[K" + text)
            self.err.flush()
            self._live = True
        elif changed:
            self.err.write(text + "\n")
            self.err.flush()

    def clear_live(self) -> None:
        if self._live:
            self.err.write("\r\033[K")
            self.err.flush()
            self._live = False

    def end_live(self) -> None:
        """Keep the last progress line and move to the next one."""
        if self._live:
            self.err.write("\n")
            self.err.flush()
            self._live = False


def pause(seconds: float) -> None:
    time.sleep(seconds)


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def estimate(elapsed: float, typical: float | None) -> str:
    """What to expect, from the model's typical duration (GET /models' `typical_seconds`)."""
    if not typical:
        return ""
    if elapsed < typical:
        return f"typically ~{clock(typical)}, about {clock(typical - elapsed)} left"
    return f"typically ~{clock(typical)}, taking longer than usual"


def progress_line(generation: dict[str, Any], elapsed: float, typical: float | None) -> str:
    status = str(generation.get("status", "?"))
    parts = [str(generation.get("id", "?")), f"{status:<10}"]
    if status in TERMINAL:
        parts.append(f"after {clock(elapsed)}")
    else:
        parts.append(f"{clock(elapsed)} elapsed")
        hint = estimate(elapsed, typical)
        if hint:
            parts.append(f"({hint})")
    return "  ".join(parts)


@dataclass
class Watch:
    """Poll one generation until it ends; `on_poll` is told of every answer (tests, hooks)."""

    client: ApiClient
    console: Console
    interval: float = 2.0
    timeout: float | None = None
    sleep: Callable[[float], None] | None = None  # default: pause() (tests replace it)
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # for tests

    def typical_seconds(self, model_id: str) -> float | None:
        try:
            model = self.client.model(model_id)
        except (ApiError, NetworkError):
            return None  # the estimate is a nicety: never fail a wait over it
        value = model.get("typical_seconds") if model else None
        return float(value) if isinstance(value, int | float) and value > 0 else None

    def until_done(self, generation: dict[str, Any]) -> dict[str, Any]:
        """The generation once terminal. GenerationFailedError when --timeout passes first."""
        started = self.monotonic()
        created = parse_time(generation.get("created_at"))
        offset = 0.0
        if created is not None:
            since = (self.now() - created).total_seconds()
            offset = since if 0 <= since < 7 * 86400 else 0.0  # ignore a skewed clock
        typical = self.typical_seconds(str(generation.get("model", "")))
        last_status, last_line = None, -HEARTBEAT
        while True:
            status = generation.get("status")
            waited = self.monotonic() - started
            # off a terminal: a line per status change, and one every HEARTBEAT seconds meanwhile
            changed = status != last_status or waited - last_line >= HEARTBEAT
            self.console.live(progress_line(generation, offset + waited, typical), changed=changed)
            if changed:
                last_status, last_line = status, waited
            if status in TERMINAL:
                self.console.end_live()
                return generation
            if self.timeout is not None and waited >= self.timeout:
                self.console.end_live()
                gid = generation.get("id")
                raise GenerationFailedError(
                    f"{gid} is still {status} after {clock(waited)} (--timeout {self.timeout:g})",
                    generation=generation,
                    hints=[f"  it keeps running; resume with: videogen wait {gid}"],
                )
            self._pause(generation, offset, started, typical)
            generation = self.client.get(str(generation["id"]))

    def _pause(
        self, generation: dict[str, Any], offset: float, started: float, typical: float | None
    ) -> None:
        """Sleep `interval`; on a terminal, redraw the elapsed time every second meanwhile."""
        remaining = self.interval
        while remaining > 0:
            step = min(remaining, 1.0) if self.console.tty else remaining
            (self.sleep or pause)(step)
            remaining -= step
            if self.console.tty and not self.console.quiet:
                waited = self.monotonic() - started
                self.console.live(progress_line(generation, offset + waited, typical), changed=False)


def default_output(generation_id: str) -> Path:
    return Path(f"{generation_id}.mp4")


def download(
    url: str,
    dest: Path,
    console: Console,
    *,
    session: requests.Session | None = None,
    timeout: tuple[float, float] = (5.0, 60.0),
    label: str | None = None,
) -> int:
    """Stream `url` into `dest` (through a temporary file beside it) with a progress bar.

    No API key is sent: the link is a presigned S3 URL. A 403 (the link expired) is an ApiError
    with code `link_expired`, so the caller can fetch a fresh link and try again."""
    http = session or requests.Session()
    dest = dest.expanduser()
    tmp = dest.with_name(f".{dest.name}.part")
    written = 0
    try:
        with http.get(url, stream=True, timeout=timeout, headers={"User-Agent": USER_AGENT}) as response:
            if response.status_code in (401, 403):
                raise ApiError(response.status_code, "link_expired", "the video link was refused (expired?)")
            if not response.ok:
                raise ApiError(
                    response.status_code, f"http_{response.status_code}", "downloading the video failed"
                )
            total = int(response.headers.get("Content-Length") or 0) or None
            if dest.parent and not dest.parent.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            last_draw = 0.0
            console.note(f"downloading to {label or dest}" + (f" ({human_size(total)})" if total else ""))
            with tmp.open("wb") as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
                    now = time.monotonic()
                    if console.tty and now - last_draw >= 0.1:
                        last_draw = now
                        console.live(bar(written, total, now - started), changed=False)
            console.live(bar(written, total, time.monotonic() - started), changed=False)
            console.clear_live()
            os.replace(tmp, dest)
    except requests.RequestException as exc:
        raise NetworkError(f"downloading the video failed: {exc.__class__.__name__}") from None
    finally:
        console.clear_live()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return written


def bar(done: int, total: int | None, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    speed = f"{human_size(rate)}/s" if rate else ""
    if not total:
        return f"  {human_size(done)}  {speed}"
    fraction = min(1.0, done / total)
    filled = int(BAR_WIDTH * fraction)
    return (
        f"  [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction * 100:5.1f}%  "
        f"{human_size(done)} / {human_size(total)}  {speed}"
    )


def is_mp4(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(12)
    return len(head) >= 8 and head[4:8] == b"ftyp"
