"""Batches: many generation requests from one manifest (docs/batches.md).

A batch's lines are numbered as in its manifest (1-based physical lines; a CSV's line 1 is its
header), and line N's generation id derives from (batch id, N): a retried or re-run step that
accepts line N again finds that id taken and records nothing new (logic/batches.py)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from videogen.domain.errors import VideogenError
from videogen.domain.models import Generation

MAX_INLINE_ITEMS = 1000
MAX_MANIFEST_LINES = 100_000
# A manifest object larger than this is refused before it is read (100,000 lines of ~5 KB).
MAX_MANIFEST_BYTES = 512 * 1024 * 1024
# One line (its JSON) must fit a Distributed Map item with room to spare (Step Functions caps an
# item batch at 256 KiB): a longer one (an inline data-URL image, say) is an invalid line.
MAX_LINE_BYTES = 64 * 1024
# Invalid lines kept on the batch record (all of them are in the results manifest).
MAX_INVALID_SHOWN = 100
MANIFEST_FORMATS = ("jsonl", "csv")


class BatchStatus(StrEnum):
    VALIDATING = "validating"  # the manifest is being read and checked (Prepare)
    RUNNING = "running"  # lines are being accepted and their generations run
    COMPLETED = "completed"  # every generation ended (each with its own outcome)
    FAILED = "failed"  # the batch itself failed (unreadable manifest, no valid line)
    CANCELLING = "cancelling"  # DELETE seen: nothing new starts, pending ones are cancelled
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)


class BatchNotFound(VideogenError):
    code = "not_found"
    http_status = 404


class InvalidBatch(VideogenError):
    code = "invalid_batch"
    http_status = 422


class BatchQueueFull(VideogenError):
    """A batch step found the owner's share of the submit queue full: Step Functions retries the
    step with backoff (statemachine/batch.asl.json), so the batch waits instead of failing."""

    code = "batch_queue_full"
    http_status = 429


class LineError(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int = Field(description="1-based line of the manifest (a CSV's header is line 1)")
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class Batch(BaseModel):
    """One batch as stored (BatchesTable). Counts are the tracker's last look (`counted_at`)."""

    model_config = ConfigDict(frozen=True)

    id: str
    owner: str
    status: BatchStatus
    created_at: str
    updated_at: str
    source: str = Field(description="inline or s3")
    manifest_bucket: str
    manifest_key: str
    format: str = "jsonl"
    callback_url: str | None = None
    lines: int = 0  # request lines (blank lines not counted)
    valid: int = 0
    invalid: int = 0
    invalid_lines: list[LineError] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)  # generation status -> count
    credits_used: int = 0
    counted_at: str | None = None
    completed_at: str | None = None
    execution_arn: str | None = None
    runs: int = 0  # executions started (a re-run resumes)
    error: str | None = None
    version: int = 1

    @property
    def accepted(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if status in _TERMINAL_GENERATION_STATUSES)


_TERMINAL_GENERATION_STATUSES = {"completed", "failed", "timed_out", "cancelled"}


def new_batch_id() -> str:
    return "bat_" + uuid.uuid4().hex[:24]


def line_generation_id(batch_id: str, line: int) -> str:
    """The generation id of a batch line: the same for every attempt at that line."""
    return f"{batch_id}-{line:06d}"


@dataclass(frozen=True)
class ManifestLine:
    line: int
    body: dict[str, Any] | None  # None: unreadable (see error)
    error: LineError | None = None


def _cell(value: str) -> Any:
    """A CSV cell: a JSON number, boolean, array or object when it reads as one, else the text."""
    text = value.strip()
    if text[:1] in "-0123456789[{" or text in ("true", "false"):
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def parse_manifest(text: str, fmt: str) -> Iterator[ManifestLine]:
    """The request lines of a manifest, each numbered; a line that is not a JSON object (JSONL) or
    a CSV row of the header's width comes with its error instead of a body. Blank lines are skipped
    (but counted in the numbering). InvalidBatch for a manifest that has more than
    MAX_MANIFEST_LINES request lines or a CSV without a `model` column."""
    if fmt not in MANIFEST_FORMATS:
        raise InvalidBatch(f"format must be one of {', '.join(MANIFEST_FORMATS)}")
    lines = _parse_csv(text) if fmt == "csv" else _parse_jsonl(text)
    for count, item in enumerate(lines, start=1):
        if count > MAX_MANIFEST_LINES:
            raise InvalidBatch(f"a manifest has at most {MAX_MANIFEST_LINES} request lines")
        yield item


def _parse_jsonl(text: str) -> Iterator[ManifestLine]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(raw.encode()) > MAX_LINE_BYTES:
            yield _bad(number, "line_too_long", f"a line is at most {MAX_LINE_BYTES} bytes")
            continue
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield _bad(number, "invalid_json", f"not JSON: {exc.msg}")
            continue
        if not isinstance(body, dict):
            yield _bad(number, "invalid_json", "a line must be a JSON object (a POST /generations body)")
            continue
        yield ManifestLine(number, body)


def _parse_csv(text: str) -> Iterator[ManifestLine]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in reader:
        number = reader.line_num
        if header is None:
            header = [name.strip() for name in row]
            if "model" not in header:
                raise InvalidBatch("a CSV manifest's first line is its header, with a `model` column")
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield _bad(number, "invalid_csv", f"{len(row)} cells; the header has {len(header)}")
            continue
        body = {name: _cell(cell) for name, cell in zip(header, row, strict=True) if cell.strip()}
        if len(json.dumps(body).encode()) > MAX_LINE_BYTES:
            yield _bad(number, "line_too_long", f"a line is at most {MAX_LINE_BYTES} bytes")
            continue
        yield ManifestLine(number, body)


def _bad(line: int, code: str, message: str) -> ManifestLine:
    return ManifestLine(line, None, LineError(line=line, code=code, message=message))


def line_error(line: int, exc: VideogenError) -> LineError:
    return LineError(line=line, code=exc.code, message=exc.message, details=exc.details)


def counts_of(statuses: Mapping[str, int]) -> dict[str, int]:
    return {status: n for status, n in sorted(statuses.items()) if n}


# -- ports (adapters/dynamodb_batches.py, s3_batches.py, sfn_batches.py) --------------------
class BatchStore(Protocol):
    """Batch records; `save` is conditional on the version read (StaleWriteError)."""

    def create(self, batch: Batch) -> Batch: ...
    def get(self, batch_id: str) -> Batch | None: ...
    def save(self, current: Batch, **changes: Any) -> Batch: ...
    def list_by_owner(
        self, owner: str, *, limit: int, next_token: str | None
    ) -> tuple[list[Batch], str | None]: ...


class GenerationReader(Protocol):
    """Many generation records at once (BatchGetItem): the ones that exist, by id."""

    def get_many(self, ids: list[str]) -> dict[str, Generation]: ...


class BatchObjects(Protocol):
    """Manifests, item files and results manifests in S3."""

    def size(self, bucket: str, key: str) -> int | None: ...  # None: no such object
    def read(self, bucket: str, key: str) -> bytes | None: ...
    def write(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...
    def link(self, bucket: str, key: str, expires_in: int) -> str: ...


class ExecutionStarter(Protocol):
    def start(self, name: str, payload: Mapping[str, Any]) -> str: ...  # the execution's ARN
