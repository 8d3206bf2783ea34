"""The use cases of videogen: submit, refresh, sweep, cancel, get, list. Every entry point (API,
poller, and later the workflow and S3 uploads) calls these; none talks to the provider, DynamoDB
or S3 itself. Adapters arrive through the constructor, so tests pass fakes or moto-backed ones."""

from __future__ import annotations

import functools
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from videogen.catalog import ModelSpec, get_model, validate_request
from videogen.errors import ConflictError, NotFoundError, ProviderThrottled, UnsafeUrlError
from videogen.media import ArchiveError, VideoLink
from videogen.models import (
    ACTIVE_ORDER,
    Driver,
    Generation,
    GenerationError,
    Source,
    Status,
    new_generation_id,
    utc_now_iso,
)
from videogen.provider import ErrorClass, PollResult, ProviderError, ProviderStatus, SubmitResult
from videogen.schedule import PollSchedule
from videogen.store import GenerationStore, StaleWriteError

T = TypeVar("T")
# Due generations the sweep's reader may hold ahead of the workers (about one page of the index).
READ_AHEAD = 256


def check_image_reference(value: str, **options: Any) -> None:
    """videogen.urls.check_image_reference, imported at the first image checked (it brings
    ipaddress and socket; most cold starts never check a URL)."""
    from videogen.urls import check_image_reference as check

    check(value, **options)


def check_callback_url(value: str, **options: Any) -> None:
    """videogen.urls.check_callback_url, imported at the first callback checked."""
    from videogen.urls import check_callback_url as check

    check(value, **options)


def read_ahead(items: Iterable[T], size: int) -> Iterator[T]:
    """`items`, iterated by a thread of its own up to `size` items ahead of the consumer. The
    sweep reads the due-index this way so that the next page's query runs while the current
    page's provider calls are in flight, instead of stalling every worker while it is read. An
    error of the reader surfaces at the consumer, in order; closing the iterator stops the reader."""
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(size, 1))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, which raises it)
            put(("error", exc))

    reader = threading.Thread(target=produce, name="sweep-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


class Provider(Protocol):
    def submit(self, model: ModelSpec, fields: Mapping[str, Any]) -> SubmitResult: ...
    def poll(self, model: ModelSpec, provider_id: str) -> PollResult: ...


class Archive(Protocol):
    def archive(self, generation_id: str, source_url: str) -> str: ...
    def link(self, key: str, *, expires_in: int, now: float) -> VideoLink: ...


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class Outcome(StrEnum):
    """What one refresh did; a sweep counts these and reports them as metrics."""

    WAITING = "waiting"  # still queued/generating, next poll scheduled
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    FLAGGED = "flagged"  # submit outcome unknown: marked failed and flagged for a human
    PROVIDER_ERROR = "provider_error"  # poll failed; retried on a later sweep
    ARCHIVE_ERROR = "archive_error"  # video ready but the copy failed; retried on a later sweep
    UNKNOWN_STATUS = "unknown_status"  # provider said something unmapped; kept active
    CONFLICT = "conflict"  # another writer changed the record first
    SKIPPED = "skipped"  # terminal or not ours to poll


@dataclass
class SweepReport:
    due: int = 0
    deferred: int = 0  # due but left for the next tick (time budget)
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


# A data-URL image is stored with the request, and a DynamoDB item holds at most 400 KB.
MAX_INLINE_IMAGE_BYTES = 256 * 1024
MAX_ERROR_MESSAGE_CHARS = 1000
# A workflow step that finds another worker copying the video looks again this soon.
ARCHIVE_CLAIM_RECHECK_SECONDS = 5

# What one workflow fetch counts (a sweep reports the same names for its outcomes).
_FETCH_METRICS = {
    Outcome.COMPLETED: "GenerationsCompleted",
    Outcome.FAILED: "GenerationsFailed",
    Outcome.FLAGGED: "GenerationsFlagged",
    Outcome.TIMED_OUT: "GenerationsTimedOut",
    Outcome.PROVIDER_ERROR: "ProviderPollErrors",
    Outcome.ARCHIVE_ERROR: "ArchiveErrors",
    Outcome.UNKNOWN_STATUS: "UnknownProviderStatus",
}

# HTTP status a caller sees when the provider refused or failed a submit.
SUBMIT_FAILURE_HTTP_STATUS = {
    ErrorClass.VALIDATION: 422,
    ErrorClass.RATE_LIMITED: 429,
    ErrorClass.TIMEOUT: 504,
}


@dataclass
class _NullMetrics:
    def add_metric(self, name: str, unit: Any, value: float) -> None:
        return None


class GenerationService:
    def __init__(
        self,
        *,
        store: GenerationStore,
        provider: Provider,
        archive: Archive,
        schedule: PollSchedule | None = None,
        max_age_seconds: int = 1800,
        presign_expiry_seconds: int = 3600,
        submit_grace_seconds: int = 120,
        archive_lease_seconds: int = 600,
        concurrency: int = 32,
        check_url: Callable[[str], None] | None = None,
        check_callback: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        metrics: MetricsSink | None = None,
        log: Any = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.archive = archive
        self.schedule = schedule or PollSchedule()
        self.max_age_seconds = max_age_seconds
        self.presign_expiry_seconds = presign_expiry_seconds
        self.submit_grace_seconds = submit_grace_seconds
        # How long a claimed archive copy is left to its claimant before another worker retries it.
        self.archive_lease_seconds = archive_lease_seconds
        self.concurrency = concurrency
        # Image URLs the provider will fetch must be public https (no SSRF through the provider).
        self.check_url = check_url or functools.partial(
            check_image_reference, strict_dns=True, max_data_bytes=MAX_INLINE_IMAGE_BYTES
        )
        # Webhook receivers: the same public-https rule (checked again at each delivery).
        self.check_callback = check_callback or functools.partial(check_callback_url, strict_dns=True)
        self.clock = clock
        self.metrics: MetricsSink = metrics or _NullMetrics()
        self.log = log

    # -- submit ---------------------------------------------------------------------------
    def submit(
        self,
        owner: str,
        body: Mapping[str, Any],
        *,
        source: Source = Source.API,
        driver: Driver = Driver.POLLER,
        generation_id: str | None = None,
        provider_fields: Mapping[str, str] | None = None,
    ) -> Generation:
        """Validate, record, then call the provider. The record is written before the paid call,
        so a job the provider accepted is never unrecorded. Provider failures do not raise: the
        returned record is `failed` with the classified reason (and flagged when the provider may
        have taken the job anyway).

        `generation_id`: a caller-derived id (e.g. from an S3 object), so a redelivered event
        finds the record already there: StaleWriteError, before any provider call.
        `provider_fields`: values sent to the provider instead of the recorded ones, for url
        fields the body sets to a private `s3://bucket/key` reference. The caller mints the
        provider-side value (a presigned GET URL: it carries temporary credentials, so it is never
        stored); neither the reference nor the minted URL goes through the public-URL check, every
        other url field still does."""
        minted = dict(provider_fields or {})
        body = dict(body)
        callback_url = self._callback_url(body.pop("callback_url", None))
        model, fields = validate_request(body, check_url=self._url_check(body, minted))
        for name, value in fields.items():
            if name not in minted and isinstance(value, str) and value.startswith("s3://"):
                raise UnsafeUrlError(
                    f"invalid request for {model.id}: {name}: only https URLs are accepted",
                    details=[{"field": name, "message": "only https URLs are accepted"}],
                )
        now = self.clock()
        generation = self.store.create(
            Generation(
                id=generation_id or new_generation_id(),
                owner=owner,
                status=Status.SUBMITTING,
                model=model.id,
                request=fields,
                source=source,
                driver=driver,
                created_at=utc_now_iso(now),
                updated_at=utc_now_iso(now),
                created_epoch=now,
                # If this process dies mid-submit, the sweep finds the record after the grace
                # period and flags it, rather than leaving it 'submitting' forever.
                next_poll_at=int(now + self.submit_grace_seconds),
                callback_url=callback_url,
            )
        )
        self._log("info", "generation recorded", generation)
        try:
            result = self.provider.submit(model, {**fields, **minted})
        except ProviderError as exc:
            self._count_provider_error(exc)
            return self._fail_submit(generation, exc)
        self.metrics.add_metric("GenerationsSubmitted", "Count", 1)
        now = self.clock()
        accepted = self.store.save(
            generation,
            status=Status.QUEUED,
            provider_id=result.provider_id,
            provider_status=result.raw_status,
            usage=result.usage,
            updated_at=utc_now_iso(now),
            next_poll_at=int(now + self.schedule.first_delay(model.typical_seconds, model=model.id)),
        )
        self._log("info", "generation submitted", accepted, provider_id=result.provider_id)
        return accepted

    def _callback_url(self, value: Any) -> str | None:
        """`callback_url` of a request: absent, or a URL the webhook may be sent to."""
        if value is None:
            return None
        if not isinstance(value, str):
            message = "must be a string"
        else:
            try:
                self.check_callback(value)
                return value
            except UnsafeUrlError as exc:
                message = exc.message
        raise UnsafeUrlError(
            f"callback_url: {message}", details=[{"field": "callback_url", "message": message}]
        )

    def _url_check(self, body: Mapping[str, Any], minted: Mapping[str, str]) -> Callable[[str], None]:
        """The URL check for one submit: `self.check_url`, except for the s3:// references whose
        provider-side URL the caller minted (see submit)."""
        if not minted:
            return self.check_url
        references = set()
        for name, url in minted.items():
            reference = body.get(name)
            if not (isinstance(reference, str) and reference.startswith("s3://") and isinstance(url, str)):
                raise ValueError(f"provider_fields[{name!r}] must replace an s3:// reference of the body")
            references.add(reference)

        def check(value: str) -> None:
            if value not in references:
                self.check_url(value)

        return check

    def record_rejected(
        self,
        owner: str,
        *,
        generation_id: str,
        model: str,
        request: Mapping[str, Any],
        error: GenerationError,
        source: Source,
        callback_url: str | None = None,
    ) -> Generation:
        """Record a request refused before any provider call (e.g. an upload that is not an
        image) as a `failed` generation, so its sender can see why. Conditional on the id being
        new: a redelivered event raises StaleWriteError and nothing changes. A `callback_url`
        that passes the callback check is kept (its webhook tells of the rejection); another is
        dropped."""
        try:
            callback_url = self._callback_url(callback_url)
        except UnsafeUrlError:
            callback_url = None
        now = self.clock()
        generation = self.store.create(
            Generation(
                id=generation_id,
                owner=owner,
                status=Status.FAILED,
                model=model,
                request=dict(request),
                source=source,
                created_at=utc_now_iso(now),
                updated_at=utc_now_iso(now),
                created_epoch=now,
                error=error,
                callback_url=callback_url,
            )
        )
        self._log("warning", "request rejected", generation, error_code=error.code)
        return generation

    def _fail_submit(self, generation: Generation, exc: ProviderError) -> Generation:
        if exc.outcome_unknown:
            error = GenerationError(
                code="submit_outcome_unknown",
                message=(
                    "the provider may have accepted this job but its answer was lost "
                    f"({exc.error_class.value}); it was not resubmitted"
                ),
                provider_class=exc.error_class.value,
            )
        else:
            error = GenerationError(
                code=f"provider_{exc.error_class.value}",
                message=exc.message,
                provider_class=exc.error_class.value,
            )
        failed = self.store.save(
            generation,
            status=Status.FAILED,
            error=error,
            submit_outcome_unknown=exc.outcome_unknown,
            updated_at=utc_now_iso(self.clock()),
            next_poll_at=None,
        )
        self.metrics.add_metric("GenerationsFailed", "Count", 1)
        self._log("warning", "submit failed", failed, error_code=error.code)
        return failed

    # -- refresh --------------------------------------------------------------------------
    def refresh(self, generation: Generation) -> tuple[Generation, Outcome]:
        """Bring one active generation one step forward: poll the provider, archive a finished
        video, or end it (age limit, provider failure). Never raises for provider or archive
        faults: those leave the generation active with a later poll time."""
        if generation.is_terminal:
            return generation, Outcome.SKIPPED
        try:
            return self._refresh(generation)
        except StaleWriteError:
            return generation, Outcome.CONFLICT

    def _refresh(self, gen: Generation) -> tuple[Generation, Outcome]:
        now = self.clock()
        age = now - gen.created_epoch
        if gen.status is Status.SUBMITTING:
            if age < self.submit_grace_seconds:
                return gen, Outcome.WAITING
            error = GenerationError(
                code="submit_outcome_unknown",
                message="the submit did not finish; the provider may have accepted the job; not resubmitted",
            )
            flagged = self._end(gen, Status.FAILED, now, error=error, submit_outcome_unknown=True)
            return flagged, Outcome.FLAGGED
        if gen.video_provider_url is None and age > self.max_age_seconds:
            error = GenerationError(code="timed_out", message=f"not finished after {self.max_age_seconds} s")
            return self._end(gen, Status.TIMED_OUT, now, error=error), Outcome.TIMED_OUT
        if gen.video_provider_url is not None and age > 2 * self.max_age_seconds:
            error = GenerationError(code="archive_failed", message="the finished video could not be copied")
            return self._end(gen, Status.FAILED, now, error=error), Outcome.FAILED

        if gen.archive_claim_until is not None and now < gen.archive_claim_until:
            return gen, Outcome.WAITING  # another worker is copying the video right now

        model = get_model(gen.model)
        assert gen.provider_id is not None  # set by submit for every non-submitting record
        try:
            result = self.provider.poll(model, gen.provider_id)
        except ProviderError as exc:
            failures = gen.poll_failures + 1
            throttled = exc.error_class is ErrorClass.RATE_LIMITED
            delay = self.schedule.failure_delay(failures, exc.retry_after, throttled=throttled)
            updated = self.store.save(
                gen,
                poll_failures=failures,
                last_poll_error=exc.error_class.value,
                poll_count=gen.poll_count + 1,
                updated_at=utc_now_iso(now),
                next_poll_at=int(now + delay),
            )
            return updated, Outcome.PROVIDER_ERROR

        common = {
            "provider_status": result.raw_status,
            "poll_count": gen.poll_count + 1,
            "poll_failures": 0,
            "last_poll_error": None,
            "updated_at": utc_now_iso(now),
            "usage": {**gen.usage, **result.usage},
        }
        match result.status:
            case ProviderStatus.COMPLETED:
                if gen.video_provider_url is None:  # first sight of it done (not an archive retry)
                    self._learn_duration(gen, model, age)
                return self._complete(gen, result, now, common)
            case ProviderStatus.FAILED | ProviderStatus.EXPIRED:
                code = "provider_expired" if result.status is ProviderStatus.EXPIRED else "provider_failed"
                error = GenerationError(
                    code=code, message=result.error_message or f"provider status {result.raw_status}"
                )
                return self._end(gen, Status.FAILED, now, error=error, **common), Outcome.FAILED
            case ProviderStatus.CANCELLED:
                error = GenerationError(code="provider_cancelled", message="the provider cancelled the job")
                return self._end(gen, Status.CANCELLED, now, error=error, **common), Outcome.CANCELLED
            case ProviderStatus.QUEUED | ProviderStatus.GENERATING:
                status = Status(result.status.value)
                if ACTIVE_ORDER[status] < ACTIVE_ORDER[gen.status]:
                    status = gen.status  # never move backwards
                delay = self.schedule.next_delay(
                    model=model.id, typical_seconds=model.typical_seconds, elapsed=age
                )
                updated = self.store.save(gen, status=status, next_poll_at=int(now + delay), **common)
                return updated, Outcome.WAITING
            case _:
                self._log("warning", "unknown provider status", gen, provider_status=result.raw_status)
                delay = self.schedule.next_delay(
                    model=model.id, typical_seconds=model.typical_seconds, elapsed=age
                )
                updated = self.store.save(gen, next_poll_at=int(now + delay), **common)
                return updated, Outcome.UNKNOWN_STATUS

    def _learn_duration(self, gen: Generation, model: ModelSpec, age: float) -> None:
        """Teach the schedule how long this model took: the job finished between the previous
        poll (the record's last write) and this one."""
        try:
            last_poll = datetime.fromisoformat(gen.updated_at).timestamp() - gen.created_epoch
        except ValueError:
            last_poll = age
        seconds = (min(max(last_poll, 0.0), age) + age) / 2
        self.schedule.observe(model.id, seconds, typical_seconds=model.typical_seconds)

    def _complete(
        self, gen: Generation, result: PollResult, now: float, common: dict[str, Any]
    ) -> tuple[Generation, Outcome]:
        if not result.video_url:
            updated = self.store.save(
                gen,
                **{
                    **common,
                    "last_poll_error": ErrorClass.MALFORMED_RESPONSE.value,
                    "poll_failures": gen.poll_failures + 1,
                },
                next_poll_at=int(now + self.schedule.next_delay()),
            )
            return updated, Outcome.PROVIDER_ERROR
        # Claim the copy with a write conditional on the version read: of the sweeps and fetches
        # that found this job done at the same time, exactly one copies it (the others conflict),
        # so the video is written to our bucket once. The claim keeps the provider's (expiring)
        # link on record until our copy exists, and lapses after the lease: if the copier dies,
        # a later sweep takes the copy up.
        lease_end = now + self.archive_lease_seconds
        gen = self.store.save(
            gen,
            video_provider_url=result.video_url,
            status=Status.GENERATING,
            archive_claim_until=lease_end,
            next_poll_at=math.ceil(lease_end),
            **common,
        )
        try:
            key = self.archive.archive(gen.id, result.video_url)
        except ArchiveError as exc:
            updated = self.store.save(
                gen,
                archive_claim_until=None,
                last_poll_error=f"archive: {exc}",
                updated_at=utc_now_iso(now),
                next_poll_at=int(now + self.schedule.failure_delay(gen.poll_failures + 1)),
                poll_failures=gen.poll_failures + 1,
            )
            self._log("warning", "archive failed; will retry", updated)
            return updated, Outcome.ARCHIVE_ERROR
        done = self._end(
            gen,
            Status.COMPLETED,
            self.clock(),
            video_key=key,
            video_provider_url=None,
            archive_claim_until=None,
            completed_at=utc_now_iso(now),
        )
        return done, Outcome.COMPLETED

    def _end(self, gen: Generation, status: Status, now: float, **changes: Any) -> Generation:
        changes.setdefault("updated_at", utc_now_iso(now))
        ended = self.store.save(gen, status=status, next_poll_at=None, **changes)
        self._log("info", f"generation {status.value}", ended)
        return ended

    # -- sweep ----------------------------------------------------------------------------
    def due(self, now: float) -> Iterator[Generation]:
        for shard in range(self.store.due_shards):
            yield from self.store.due(str(shard), now)

    def sweep(
        self,
        remaining_ms: Callable[[], int],
        *,
        reserve_ms: int = 10_000,
        generations: Iterable[Generation] | None = None,
    ) -> SweepReport:
        """Refresh every due generation (or `generations`, e.g. one shard's: see
        videogen.fanout) with at most `concurrency` provider calls in flight. Stops taking new
        work when less than `reserve_ms` of the invocation is left; what is left stays due and is
        taken by the next tick."""
        started = time.perf_counter()
        report = SweepReport()
        due = read_ahead(self.due(self.clock()) if generations is None else generations, READ_AHEAD)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sweep") as pool:
            in_flight: set[Future[tuple[Generation, Outcome]]] = set()
            for generation in due:
                report.due += 1
                if remaining_ms() < reserve_ms:
                    report.deferred += 1
                    continue
                while len(in_flight) >= self.concurrency:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    self._collect(finished, report)
                in_flight.add(pool.submit(self.refresh, generation))
            self._collect(wait(in_flight).done, report)
        report.duration_ms = (time.perf_counter() - started) * 1000
        self._emit_sweep_metrics(report)
        return report

    def _collect(self, finished: set[Future[tuple[Generation, Outcome]]], report: SweepReport) -> None:
        for future in finished:
            try:
                _, outcome = future.result()
            except Exception as exc:  # one bad record must not end the sweep
                if self.log:
                    self.log.exception("refresh crashed", extra={"error": type(exc).__name__})
                outcome = Outcome.PROVIDER_ERROR
            report.count(outcome)

    def _emit_sweep_metrics(self, report: SweepReport) -> None:
        self.metrics.add_metric("SweepDue", "Count", report.due)
        self.metrics.add_metric("SweepDeferred", "Count", report.deferred)
        self.metrics.add_metric("SweepDuration", "Milliseconds", report.duration_ms)
        names = {
            Outcome.COMPLETED: "GenerationsCompleted",
            Outcome.FAILED: "GenerationsFailed",
            Outcome.FLAGGED: "GenerationsFlagged",
            Outcome.TIMED_OUT: "GenerationsTimedOut",
            Outcome.PROVIDER_ERROR: "ProviderPollErrors",
            Outcome.ARCHIVE_ERROR: "ArchiveErrors",
            Outcome.UNKNOWN_STATUS: "UnknownProviderStatus",
        }
        for outcome, name in names.items():
            if report.outcomes.get(outcome.value):
                self.metrics.add_metric(name, "Count", report.outcomes[outcome.value])

    # -- reads and cancel -----------------------------------------------------------------
    def get(self, owner: str, generation_id: str) -> Generation:
        generation = self.store.get(generation_id)
        if generation is None or generation.owner != owner:
            raise NotFoundError(f"generation {generation_id} not found")  # same answer: no probing ids
        return generation

    def list(
        self, owner: str, *, status: Status | None = None, limit: int = 20, next_token: str | None = None
    ) -> tuple[list[Generation], str | None]:
        return self.store.list_by_owner(owner, status=status, limit=limit, next_token=next_token)

    def cancel(self, owner: str, generation_id: str) -> Generation:
        """Stop tracking a generation. The provider has no cancel call, so a job it already
        started still runs (and is paid); we only stop polling and archiving it."""
        generation = self.get(owner, generation_id)
        for _ in range(3):
            if generation.is_terminal:
                raise ConflictError(f"generation {generation_id} is already {generation.status.value}")
            try:
                error = GenerationError(code="cancelled", message="cancelled by the caller")
                return self._end(generation, Status.CANCELLED, self.clock(), error=error)
            except StaleWriteError:
                generation = self.get(owner, generation_id)
        raise ConflictError(f"generation {generation_id} is changing; try again")

    def video_link(self, generation: Generation) -> VideoLink | None:
        if generation.status is not Status.COMPLETED or not generation.video_key:
            return None
        return self.archive.link(
            generation.video_key, expires_in=self.presign_expiry_seconds, now=self.clock()
        )

    # -- workflow (Step Functions) ------------------------------------------------------
    def submit_once(
        self,
        generation_id: str,
        owner: str,
        body: Mapping[str, Any],
        *,
        source: Source = Source.WORKFLOW,
        driver: Driver = Driver.WORKFLOW,
    ) -> Generation:
        """`submit` under an id the caller derives from its own request (a workflow execution),
        so a retried step returns the record the first attempt wrote and never calls the provider
        again. The id must not belong to another owner's generation."""
        existing = self.store.get(generation_id)
        if existing is None:
            try:
                return self.submit(owner, body, source=source, driver=driver, generation_id=generation_id)
            except StaleWriteError:  # a concurrent attempt recorded it first
                existing = self.store.get(generation_id)
        if existing is None or existing.owner != owner:
            raise ConflictError(f"generation id {generation_id} is taken")
        return existing

    def fetch(self, generation_id: str) -> tuple[Generation, int]:
        """One step of a workflow-driven generation: refresh it (poll the provider, archive a
        finished video, or end it at the age limit) and return it with the whole seconds to wait
        before the next step (see `wait_seconds`). Raises NotFoundError for an unknown id, and
        ProviderThrottled when the provider rate-limited the poll, so the workflow backs off."""
        generation = self.store.get(generation_id)
        if generation is None:
            raise NotFoundError(f"generation {generation_id} not found")
        refreshed, outcome = self.refresh(generation)
        for _ in range(2):  # another writer won the race: read what it wrote and go again
            if outcome is not Outcome.CONFLICT:
                break
            generation = self.store.get(generation_id) or generation
            refreshed, outcome = self.refresh(generation)
        if name := _FETCH_METRICS.get(outcome):
            self.metrics.add_metric(name, "Count", 1)
        wait = self.wait_seconds(refreshed)
        if outcome is Outcome.PROVIDER_ERROR and refreshed.last_poll_error == ErrorClass.RATE_LIMITED.value:
            raise ProviderThrottled(
                f"the provider rate-limited the poll of {generation_id}; next poll in {wait} s",
                details=[{"generation_id": generation_id, "retry_after": wait}],
            )
        return refreshed, wait

    def wait_seconds(self, generation: Generation) -> int:
        """Whole seconds until the generation's next poll is due: its `next_poll_at`, set by the
        PollSchedule (the first poll after FIRST_POLL_FACTOR x the model's typical time, then the
        interval, backing off after failures), so slow models are not polled every few seconds.
        0 when due or finished; never much past the age limit, so a stuck job ends on time.
        (A workflow-driven record is stored without next_poll_at, which only feeds the poller's
        index: read back from the table, one still `submitting` waits out the grace period, any
        other is due now.)"""
        if generation.is_terminal:
            return 0
        now = self.clock()
        if generation.next_poll_at is not None:
            wait = generation.next_poll_at - now
        elif generation.archive_claim_until is not None:  # another fetch is copying the video
            wait = min(generation.archive_claim_until - now, ARCHIVE_CLAIM_RECHECK_SECONDS)
        elif generation.status is Status.SUBMITTING:
            wait = generation.created_epoch + self.submit_grace_seconds - now
        else:
            wait = 0
        left = generation.created_epoch + self.max_age_seconds - now
        if left > 0:
            wait = min(wait, left + 1)
        return max(0, math.ceil(wait))

    def record_failure(self, generation_id: str, code: str, message: str) -> Generation | None:
        """Mark a generation `failed` with a reason, e.g. when a workflow step failed for good.
        A no-op on a generation that already ended (its outcome stands) and None when there is no
        such generation (the request failed before it was recorded)."""
        error = GenerationError(code=code, message=message[:MAX_ERROR_MESSAGE_CHARS])
        for _ in range(3):
            generation = self.store.get(generation_id)
            if generation is None or generation.is_terminal:
                return generation
            try:
                failed = self._end(generation, Status.FAILED, self.clock(), error=error)
            except StaleWriteError:
                continue
            self.metrics.add_metric("GenerationsFailed", "Count", 1)
            return failed
        raise ConflictError(f"generation {generation_id} is changing; try again")

    # -- helpers --------------------------------------------------------------------------
    def _count_provider_error(self, exc: ProviderError) -> None:
        self.metrics.add_metric(f"ProviderErrors_{exc.error_class.value}", "Count", 1)

    def _log(self, level: str, message: str, generation: Generation, **extra: Any) -> None:
        if self.log is not None:
            getattr(self.log, level)(
                message,
                extra={
                    "generation_id": generation.id,
                    "status": generation.status.value,
                    "model": generation.model,
                    **extra,
                },
            )
