"""Batches: the API's use cases (create, get, list, results, cancel, resume) and the steps of
the batch state machine (prepare, enqueue, track, finish, fail). docs/batches.md.

Each line goes through the submit queue like any POST /generations (`Submitter.accept`), under
the id `line_generation_id(batch, line)`: an enqueue step that is retried, or a whole re-run of the
batch, finds the ids it already recorded and skips them, so nothing is recorded or submitted
twice. A batch never holds more than `queue_share` of its owner's queue cap: past it, the step
raises BatchQueueFull and Step Functions retries it with backoff, so the owner's own single
requests still find room (other owners are served in fair order by the queue itself)."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from videogen.domain.batches import (
    MANIFEST_FORMATS,
    MAX_INLINE_ITEMS,
    MAX_INVALID_SHOWN,
    MAX_MANIFEST_BYTES,
    Batch,
    BatchNotFound,
    BatchObjects,
    BatchQueueFull,
    BatchStatus,
    BatchStore,
    ExecutionStarter,
    GenerationReader,
    InvalidBatch,
    LineError,
    ManifestLine,
    line_error,
    line_generation_id,
    new_batch_id,
    parse_manifest,
)
from videogen.domain.errors import ConflictError, QueueFull, VideogenError
from videogen.domain.models import Generation, GenerationError, Source, Status, utc_now_iso
from videogen.domain.ports import StaleWriteError
from videogen.domain.pricing import estimate_credits, reported_credits
from videogen.logic.service import GenerationService

# A batch of at most this many valid lines is counted live by GET /batches/{id} (10 BatchGetItem
# calls); a larger one shows the tracker's last count (counted_at).
LIVE_COUNT_MAX = 1000
BATCH_GET_SIZE = 100
# The tracker's pause between looks: TRACK_SECONDS, longer for big batches (a look reads every
# line's record: 100,000 lines is 1,000 BatchGetItem calls).
LINES_PER_TRACK_SECOND = 200
RESULTS_PAGE_MAX = 1000


def prefix_of(batch_id: str) -> str:
    return f"batches/{batch_id}/"


def owner_manifest_prefix(owner: str) -> str:
    """Where an owner's manifests go in the uploads bucket: nobody reads another key's manifest."""
    return f"batches/{owner}/"


class BatchService:
    def __init__(
        self,
        *,
        store: BatchStore,
        generations: GenerationReader,
        objects: BatchObjects,
        starter: ExecutionStarter,
        service: GenerationService,
        uploads_bucket: str,
        outputs_bucket: str,
        queue_share: float = 0.8,
        track_seconds: int = 30,
        presign_expiry_seconds: int = 3600,
        run_input: Mapping[str, Any] | None = None,
        notify: Callable[[Batch], None] | None = None,
        clock: Callable[[], float] = time.time,
        log: Any = None,
    ) -> None:
        self.store = store
        self.generations = generations
        self.objects = objects
        self.starter = starter
        self.service = service
        self.uploads_bucket = uploads_bucket
        self.outputs_bucket = outputs_bucket
        self.queue_share = queue_share
        self.track_seconds = track_seconds
        self.presign_expiry_seconds = presign_expiry_seconds
        # what every run's execution input carries besides the batch id (the Map's knobs)
        self.run_input = dict(run_input or {"max_concurrency": 10, "items_per_child": 50})
        self.notify = notify
        self.clock = clock
        self.log = log

    # -- the API ----------------------------------------------------------------------------
    def create(
        self,
        owner: str,
        *,
        items: list[Any] | None = None,
        manifest_key: str | None = None,
        fmt: str | None = None,
        callback_url: str | None = None,
    ) -> tuple[Batch, list[LineError]]:
        """Record a batch and start its run. Inline items are checked now (their bad lines are
        returned at once); a manifest is read and checked by the run's first step. Raises
        InvalidBatch (422) for a batch that cannot start."""
        if (items is None) == (manifest_key is None):
            raise InvalidBatch("give either items (inline requests) or manifest_key (an S3 manifest)")
        callback_url = self.service.submitter.callback_url(callback_url)
        batch_id = new_batch_id()
        invalid: list[LineError] = []
        if items is not None:
            if not items:
                raise InvalidBatch("items is empty")
            if len(items) > MAX_INLINE_ITEMS:
                raise InvalidBatch(
                    f"at most {MAX_INLINE_ITEMS} inline items; use an S3 manifest for more",
                    details=[{"field": "items", "message": f"{len(items)} items"}],
                )
            text = "\n".join(json.dumps(item, separators=(",", ":")) for item in items) + "\n"
            bucket, key, fmt = self.outputs_bucket, prefix_of(batch_id) + "input.jsonl", "jsonl"
            invalid = [line.error for line in self._checked(parse_manifest(text, fmt)) if line.error]
            self.objects.write(bucket, key, text.encode(), "application/x-ndjson")
            source = "inline"
        else:
            assert manifest_key is not None
            bucket, key, source = self.uploads_bucket, manifest_key, "s3"
            if not key.startswith(owner_manifest_prefix(owner)) or ".." in key:
                raise InvalidBatch(
                    f"manifest_key must be under {owner_manifest_prefix(owner)} in the uploads bucket",
                    details=[{"field": "manifest_key", "message": "not under your prefix"}],
                )
            fmt = fmt or ("csv" if key.lower().endswith(".csv") else "jsonl")
            if fmt not in MANIFEST_FORMATS:
                raise InvalidBatch(f"format must be one of {', '.join(MANIFEST_FORMATS)}")
            size = self.objects.size(bucket, key)
            if size is None:
                raise InvalidBatch(
                    f"no manifest at {key}",
                    details=[{"field": "manifest_key", "message": "no such object in the uploads bucket"}],
                )
            if size > MAX_MANIFEST_BYTES:
                raise InvalidBatch(f"a manifest is at most {MAX_MANIFEST_BYTES} bytes")
        stamp = utc_now_iso(self.clock())
        batch = self.store.create(
            Batch(
                id=batch_id,
                owner=owner,
                status=BatchStatus.VALIDATING,
                created_at=stamp,
                updated_at=stamp,
                source=source,
                manifest_bucket=bucket,
                manifest_key=key,
                format=fmt,
                callback_url=callback_url,
            )
        )
        return self._start(batch), invalid

    def get(self, owner: str, batch_id: str) -> Batch:
        batch = self.store.get(batch_id)
        if batch is None or batch.owner != owner:
            raise BatchNotFound(f"batch {batch_id} not found")
        return self._live(batch)

    def list_for_owner(
        self, owner: str, *, limit: int, next_token: str | None
    ) -> tuple[list[Batch], str | None]:
        batches, token = self.store.list_by_owner(owner, limit=limit, next_token=next_token)
        return [self._live(batch) for batch in batches], token

    def _live(self, batch: Batch) -> Batch:
        """A running batch of at most LIVE_COUNT_MAX valid lines, counted now (the tracker only
        counts once the Map has accepted every line, and then every BatchTrackSeconds)."""
        if batch.status.terminal or batch.status is BatchStatus.VALIDATING or batch.valid > LIVE_COUNT_MAX:
            return batch
        counts, credits, _ = self._count(batch, self._lines(batch))
        now = utc_now_iso(self.clock())
        return batch.model_copy(update={"counts": counts, "credits_used": credits, "counted_at": now})

    def cancel(self, owner: str, batch_id: str) -> Batch:
        """Nothing new starts; the tracker cancels the lines still pending in the submit queue
        (the provider has no cancel call: a started job runs to its end)."""
        batch = self.get(owner, batch_id)
        for _ in range(3):
            if batch.status.terminal:
                raise ConflictError(f"batch {batch_id} is already {batch.status.value}")
            if batch.status is BatchStatus.CANCELLING:
                return batch
            try:
                return self._save(batch, status=BatchStatus.CANCELLING)
            except StaleWriteError:
                batch = self.get(owner, batch_id)
        raise ConflictError(f"batch {batch_id} is changing; try again")

    def resume(self, owner: str, batch_id: str) -> Batch:
        """A new run of a batch whose run stopped (failed, aborted): it accepts the lines the
        stopped run did not reach, and skips the ones it did."""
        batch = self.get(owner, batch_id)
        if batch.status in (BatchStatus.COMPLETED, BatchStatus.CANCELLED):
            raise ConflictError(f"batch {batch_id} is already {batch.status.value}")
        if batch.status is BatchStatus.FAILED:
            status = BatchStatus.RUNNING if batch.lines else BatchStatus.VALIDATING
            batch = self._save(batch, status=status, error=None, completed_at=None)
        return self._start(batch)

    def results(
        self, owner: str, batch_id: str, *, limit: int = 100, next_token: str | None = None
    ) -> dict[str, Any]:
        """A page of the results manifest (as of the tracker's last look), each completed line
        with a presigned link to its video, and a presigned link to the whole manifest."""
        batch = self.get(owner, batch_id)
        key = prefix_of(batch.id) + "results.jsonl"
        data = self.objects.read(self.outputs_bucket, key)
        if data is None:
            raise ConflictError(f"batch {batch_id} has no results yet; try again in a minute")
        try:
            start = int(next_token or 0)
        except ValueError:
            raise InvalidBatch("next_token: not a token from a previous page") from None
        rows = data.decode().splitlines()
        now = self.clock()
        page = []
        for row in rows[start : start + min(limit, RESULTS_PAGE_MAX)]:
            item = json.loads(row)
            if item.get("video_key"):
                item["video_url"] = self.service.archive.link(
                    item["video_key"], expires_in=self.presign_expiry_seconds, now=now
                ).url
            page.append(item)
        end = start + len(page)
        return {
            "batch_id": batch.id,
            "status": batch.status.value,
            "manifest": {
                "key": key,
                "url": self.objects.link(self.outputs_bucket, key, self.presign_expiry_seconds),
            },
            "items": page,
            "next_token": str(end) if end < len(rows) else None,
        }

    # -- the state machine's steps ----------------------------------------------------------
    def prepare(self, batch_id: str) -> dict[str, Any]:
        """Read and check the manifest: the valid lines go to an item file for the Distributed
        Map (ItemReader), the invalid ones onto the batch (and later the results manifest)."""
        batch = self._batch(batch_id)
        data = self.objects.read(batch.manifest_bucket, batch.manifest_key)
        if data is None:
            raise InvalidBatch(f"the manifest {batch.manifest_key} is gone")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidBatch("the manifest is not UTF-8 text") from None
        items, invalid, lines = [], [], 0
        for line in self._checked(parse_manifest(text, batch.format)):
            lines += 1
            if line.error is not None:
                invalid.append(line.error)
            else:
                items.append({"line": line.line, "body": line.body})
        prefix = prefix_of(batch.id)
        self.objects.write(self.outputs_bucket, prefix + "items.json", _json(items), "application/json")
        # the valid line numbers alone: what every count reads (items.json holds the bodies)
        lines_file = _json([item["line"] for item in items])
        self.objects.write(self.outputs_bucket, prefix + "lines.json", lines_file, "application/json")
        self.objects.write(
            self.outputs_bucket,
            prefix + "invalid.json",
            _json([error.model_dump(exclude_none=True) for error in invalid]),
            "application/json",
        )
        status = batch.status
        if status is BatchStatus.VALIDATING:
            status = BatchStatus.RUNNING
        self._save_latest(
            batch,
            status=status,
            lines=lines,
            valid=len(items),
            invalid=len(invalid),
            invalid_lines=invalid[:MAX_INVALID_SHOWN],
        )
        return {"bucket": self.outputs_bucket, "key": prefix + "items.json", "valid": len(items)}

    def enqueue(self, batch_id: str, items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Accept each line (one Distributed Map child's item batch) through the submit queue.
        A line already recorded is skipped; a line refused for its content or its budget is
        recorded failed with the reason (the batch goes on). BatchQueueFull when the owner's
        share of the queue is full: the step is retried later and resumes where it stopped."""
        batch = self._batch(batch_id)
        done = {"accepted": 0, "existing": 0, "rejected": 0, "skipped": 0}
        if batch.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
            done["skipped"] = sum(1 for _ in items)
            return done
        service = self.service
        queue = service.queue
        cap = math.floor(queue.settings.owner_cap * self.queue_share) if queue is not None else None
        queued: int | None = None
        for item in items:
            line, body = int(item["line"]), dict(item["body"])
            generation_id = line_generation_id(batch.id, line)
            if service.store.get(generation_id) is not None:
                done["existing"] += 1
                continue
            if body.get("callback_url") is None:
                body.pop("callback_url", None)
            if queue is not None and cap is not None:
                if queued is None:
                    queued = queue.index.owner_count(batch.owner)
                if queued >= cap:
                    raise BatchQueueFull(
                        f"batch {batch.id}: {queued} of the owner's generations are queued "
                        f"(batch share {cap})"
                    )
            try:
                service.accept(batch.owner, body, source=Source.BATCH, generation_id=generation_id)
                done["accepted"] += 1
                queued = (queued or 0) + 1
            except StaleWriteError:  # a concurrent attempt at the same line recorded it first
                done["existing"] += 1
            except QueueFull as exc:  # the owner's single requests filled the queue meanwhile
                raise BatchQueueFull(f"batch {batch.id}: {exc.message}") from None
            except VideogenError as exc:  # the line's content, or the owner's budget (402)
                if exc.http_status >= 500:
                    raise
                self._reject(batch, generation_id, body, exc)
                done["rejected"] += 1
        return done

    def track(self, batch_id: str) -> dict[str, Any]:
        """Count the batch's generations, cancel its pending ones if it is cancelling, write the
        results manifest; `done` once every accepted line has ended."""
        batch = self._batch(batch_id)
        lines = self._lines(batch)
        counts, credits, found = self._count(batch, lines)
        if batch.status is BatchStatus.CANCELLING:
            for generation in found.values():
                if generation.status is Status.PENDING:
                    # ConflictError: taken for a submit meanwhile; it runs to its end
                    with contextlib.suppress(ConflictError):
                        self.service.cancel(batch.owner, generation.id)
            counts, credits, found = self._count(batch, lines)
        self._write_results(batch, lines, found)
        active = sum(1 for g in found.values() if not g.is_terminal)
        waiting = len(lines) - len(found)
        done = active == 0 and (waiting == 0 or batch.status is BatchStatus.CANCELLING)
        self._save_latest(batch, counts=counts, credits_used=credits, counted_at=utc_now_iso(self.clock()))
        wait = max(self.track_seconds, len(lines) // LINES_PER_TRACK_SECOND)
        return {"done": done, "wait": wait, "active": active, "waiting": waiting}

    def finish(self, batch_id: str) -> Batch:
        """The batch ends: completed, or cancelled if it was cancelling. The Batch Completed event
        and webhook go out before the terminal write (a retried finish after it sends nothing; a
        crash in between sends again: at least once, logic/batch_notify.py)."""
        batch = self._batch(batch_id)
        if batch.status.terminal:
            return batch
        self.track(batch_id)
        batch = self._batch(batch_id)
        status = BatchStatus.CANCELLED if batch.status is BatchStatus.CANCELLING else BatchStatus.COMPLETED
        return self._end(batch, status=status)

    def fail(self, batch_id: str, error: str) -> Batch:
        batch = self._batch(batch_id)
        if batch.status.terminal:
            return batch
        if batch.valid:
            self.track(batch_id)  # the results manifest, as far as the batch got
            batch = self._batch(batch_id)
        return self._end(batch, status=BatchStatus.FAILED, error=error[:1000])

    def _end(self, batch: Batch, **changes: Any) -> Batch:
        now = utc_now_iso(self.clock())
        changes.update(completed_at=now)
        if self.notify is not None:
            self.notify(batch.model_copy(update={**changes, "updated_at": now}))
        return self._save_latest(batch, **changes) or self._batch(batch.id)

    # -- helpers ----------------------------------------------------------------------------
    def _start(self, batch: Batch) -> Batch:
        run = batch.runs + 1
        arn = self.starter.start(f"{batch.id}-run{run}", {**self.run_input, "batch_id": batch.id})
        return self._save_latest(batch, execution_arn=arn, runs=run) or batch

    def _batch(self, batch_id: str) -> Batch:
        batch = self.store.get(batch_id)
        if batch is None:
            raise BatchNotFound(f"batch {batch_id} not found")
        return batch

    def _save(self, batch: Batch, **changes: Any) -> Batch:
        return self.store.save(batch, updated_at=utc_now_iso(self.clock()), **changes)

    def _save_latest(self, batch: Batch, **changes: Any) -> Batch | None:
        """Write `changes` onto the latest record (re-read after a lost race). A status change is
        applied only while the record is not terminal; None when it already was (nothing written)."""
        for _ in range(5):
            if "status" in changes and batch.status.terminal:
                return None
            if batch.status is BatchStatus.CANCELLING and changes.get("status") is BatchStatus.RUNNING:
                changes = {k: v for k, v in changes.items() if k != "status"}
            try:
                return self._save(batch, **changes)
            except StaleWriteError:
                batch = self._batch(batch.id)
        raise ConflictError(f"batch {batch.id} is changing; try again")

    def _checked(self, lines: Iterable[ManifestLine]) -> Iterable[ManifestLine]:
        """Each line checked as POST /generations checks a body (records nothing)."""
        for line in lines:
            if line.error is not None or line.body is None:
                yield line
                continue
            try:
                self.service.submitter.check(line.body)
            except VideogenError as exc:
                yield ManifestLine(line.line, None, line_error(line.line, exc))
                continue
            yield line

    def _lines(self, batch: Batch) -> list[int]:
        """The batch's valid line numbers (written by prepare)."""
        data = self.objects.read(self.outputs_bucket, prefix_of(batch.id) + "lines.json")
        return [int(line) for line in json.loads(data)] if data else []

    def _count(self, batch: Batch, lines: list[int]) -> tuple[dict[str, int], int, dict[int, Generation]]:
        found: dict[int, Generation] = {}
        for start in range(0, len(lines), BATCH_GET_SIZE):
            chunk = lines[start : start + BATCH_GET_SIZE]
            ids = {line_generation_id(batch.id, line): line for line in chunk}
            for generation_id, generation in self.generations.get_many(list(ids)).items():
                found[ids[generation_id]] = generation
        counts: dict[str, int] = {}
        credits = 0
        for generation in found.values():
            counts[generation.status.value] = counts.get(generation.status.value, 0) + 1
            reported = reported_credits(generation.usage)
            if reported is not None:
                credits += reported
            elif generation.status is Status.COMPLETED:
                credits += estimate_credits(generation.model, generation.request)
        waiting = len(lines) - len(found)
        if waiting:
            # lines not accepted yet; a cancelled batch will never accept them
            stopped = batch.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED)
            label = "cancelled" if stopped else "waiting"
            counts[label] = counts.get(label, 0) + waiting
        return counts, credits, found

    def _write_results(self, batch: Batch, lines: list[int], found: Mapping[int, Generation]) -> None:
        """The results manifest: one JSON line per manifest line, in line order."""
        rows: list[tuple[int, dict[str, Any]]] = []
        invalid = self.objects.read(self.outputs_bucket, prefix_of(batch.id) + "invalid.json")
        for error in json.loads(invalid) if invalid else []:
            rows.append((error["line"], {"line": error["line"], "status": "invalid", "error": error}))
        cancelled = batch.status is BatchStatus.CANCELLING
        for line in lines:
            generation = found.get(line)
            row: dict[str, Any] = {"line": line, "generation_id": line_generation_id(batch.id, line)}
            if generation is None:
                row["status"] = "cancelled" if cancelled else "waiting"
                row["generation_id"] = None if cancelled else row["generation_id"]
            else:
                row["status"] = generation.status.value
                if generation.video_key:
                    row["video_key"] = generation.video_key
                if generation.error is not None:
                    row["error"] = generation.error.model_dump(exclude_none=True)
            rows.append((line, row))
        rows.sort(key=lambda pair: pair[0])
        body = "".join(json.dumps(row, separators=(",", ":")) + "\n" for _, row in rows)
        self.objects.write(
            self.outputs_bucket, prefix_of(batch.id) + "results.jsonl", body.encode(), "application/x-ndjson"
        )

    def _reject(self, batch: Batch, generation_id: str, body: Mapping[str, Any], exc: VideogenError) -> None:
        with contextlib.suppress(StaleWriteError):  # a concurrent attempt recorded it first
            self.service.record_rejected(
                batch.owner,
                generation_id=generation_id,
                model=str(body.get("model", "")),
                request={k: v for k, v in body.items() if k != "callback_url"},
                error=GenerationError(code=exc.code, message=exc.message),
                source=Source.BATCH,
            )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
