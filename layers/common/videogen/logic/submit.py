"""Submit: validate a request against the catalog, record it, then call the provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from videogen.domain.catalog import ModelSpec
from videogen.domain.errors import UnsafeUrlError
from videogen.domain.limits import check_record_fits, check_text
from videogen.domain.models import (
    Driver,
    Generation,
    GenerationError,
    Source,
    Status,
    new_generation_id,
    utc_now_iso,
)
from videogen.domain.ports import ErrorClass, Provider, ProviderError, StaleWriteError, SubmitResult
from videogen.domain.validation import validate_request
from videogen.logic.budget import NoSpendGuard, SpendGuard
from videogen.logic.images import check_data_url_images
from videogen.logic.queue import SubmitQueue
from videogen.logic.recorder import Recorder
from videogen.logic.schedule import PollSchedule, poll_at
from videogen.logic.timers import TimerArming

# What the caller is told when the provider call failed; the provider's own words (host and port
# of a failed connection, say) go to the logs only. A refused request keeps the provider's reason.
PROVIDER_FAILURES = {
    "auth": "the provider refused the service's credentials",
    "out_of_credits": "the provider account has no credits left",
    "not_found": "the provider does not know this request's path or model",
    "rate_limited": "the provider kept rate-limiting the submit; nothing was taken",
    "server": "the provider failed the submit",
    "timeout": "the provider did not answer in time",
    "malformed_response": "the provider's answer could not be read",
    "connection": "the provider could not be reached",
}
# Re-reads after losing a write race while recording the provider's id: each lost race means
# another writer's change landed, and there are only a few writers of one record.
_ACCEPT_ATTEMPTS = 5


class Submitter:
    def __init__(
        self,
        recorder: Recorder,
        provider: Provider,
        schedule: PollSchedule,
        *,
        submit_grace_seconds: int,
        check_image_url: Callable[[str], None],
        check_callback_url: Callable[[str], None],
        spend: SpendGuard | NoSpendGuard | None = None,
        arming: TimerArming | None = None,
        queue: SubmitQueue | None = None,
    ) -> None:
        self.queue = queue
        self.recorder = recorder
        self.provider = provider
        self.schedule = schedule
        # The first poll's timer, armed once the provider took the job (videogen.logic.timers).
        self.arming = arming or TimerArming(recorder)
        self.submit_grace_seconds = submit_grace_seconds
        # Image URLs the provider will fetch must be public https (no SSRF through the provider).
        self.check_image_url = check_image_url
        # Webhook receivers: the same public-https rule (checked again at each delivery).
        self.check_callback_url = check_callback_url
        # The key's spend budget (videogen.logic.budget): reserved before any record or payment.
        self.spend = spend or NoSpendGuard()

    def _validate(
        self, body: Mapping[str, Any], private: Mapping[str, Any]
    ) -> tuple[ModelSpec, dict[str, Any], str | None]:
        """The model, the validated fields and the callback URL of a request. `private`: the url
        fields whose s3:// reference the caller resolves itself (see submit); every other url
        field must be public."""
        body = dict(body)
        check_text(body)
        callback_url = self.callback_url(body.pop("callback_url", None))
        model, fields = validate_request(body, check_url=self._url_check(body, private))
        check_data_url_images(model, fields)
        check_record_fits(fields)
        for name, value in fields.items():
            if name not in private and isinstance(value, str) and value.startswith("s3://"):
                raise UnsafeUrlError(
                    f"invalid request for {model.id}: {name}: only https URLs are accepted",
                    details=[{"field": name, "message": "only https URLs are accepted"}],
                )
        return model, fields, callback_url

    def check(self, body: Mapping[str, Any]) -> None:
        """Validate a request as accept would (a batch line, before it is queued); raises the
        same errors, records nothing."""
        self._validate(body, {})

    def accept(
        self,
        owner: str,
        body: Mapping[str, Any],
        *,
        source: Source = Source.API,
        driver: Driver = Driver.POLLER,
        generation_id: str | None = None,
        provider_refs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Generation:
        """Accept a request: validate it, record it `pending` in the submit queue and wake the
        dispatcher, which submits it when the provider has room (logic/dispatch.py). No provider
        call here. The one way in for the API, uploads and the workflow.

        `generation_id`: as in submit (a redelivered event raises StaleWriteError, and its queue
        entry is taken back). `provider_refs`: for url fields the body sets to a private
        `s3://bucket/key` reference, where the object is (bucket, key, version_id, content_type);
        the dispatcher mints the provider-side URL from it at submit time, so a generation that
        waits does not carry an expiring link (nor its credentials)."""
        queue = self.queue
        if queue is None:
            raise RuntimeError("accept needs a submit queue (GenerationService(queue=...))")
        refs = {name: dict(ref) for name, ref in (provider_refs or {}).items()}
        model, fields, callback_url = self._validate(body, refs)
        now = self.recorder.clock()
        stamp = utc_now_iso(now)
        generation_id = generation_id or new_generation_id()
        rank = queue.admit(owner, stamp, generation_id)
        generation = Generation(
            id=generation_id,
            owner=owner,
            status=Status.PENDING,
            model=model.id,
            request=fields,
            source=source,
            driver=driver,
            created_at=stamp,
            updated_at=stamp,
            created_epoch=now,
            # The sweep looks at it again at the queue deadline (and ends it there if still pending).
            next_poll_at=poll_at(now, queue.settings.deadline_seconds),
            callback_url=callback_url,
            queue_rank=rank,
            provider_refs=refs,
        )
        # The entry first: QueueFull before anything is reserved; and a crash before the record
        # leaves an entry without a record, which the dispatcher drops (the other order could
        # leave a pending record no dispatcher sees).
        queue.enter(generation, now)
        try:
            self.spend.reserve(owner, model.id, fields, generation_id)  # BudgetExceeded: nothing recorded
            self.recorder.store.create(generation)
        except BaseException:  # refused or failed: the queue entry is taken back
            queue.index.remove(rank, owner)
            raise
        self.recorder.count("GenerationsAccepted")
        self.recorder.event("info", "generation accepted", generation, queue_rank=rank)
        queue.wake()
        return generation

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
        """Validate, record, then call the provider at once, outside the submit queue (tools and
        tests; the entry points use `accept`). The record is written before the paid call,
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
        for name, url in minted.items():
            if not isinstance(url, str):
                raise ValueError(f"provider_fields[{name!r}] must be a URL")
        model, fields, callback_url = self._validate(body, minted)
        generation_id = generation_id or new_generation_id()
        self.spend.reserve(owner, model.id, fields, generation_id)  # BudgetExceeded: nothing recorded or paid
        with self.recorder.about(generation_id):
            generation = self._record(generation_id, owner, model.id, fields, source, driver, callback_url)
            sent, _ = self.send(generation, model, minted, requeue=False)
        return sent

    def send(
        self, generation: Generation, model: ModelSpec, minted: Mapping[str, str], *, requeue: bool
    ) -> tuple[Generation, bool]:
        """The paid call for a `submitting` record, and its outcome recorded: accepted (`queued`
        with the provider's id), or failed with the reason. With `requeue` (the dispatcher), a
        429 is returned as (record, True), the record unchanged: the dispatcher puts it back in
        the queue. A submit whose outcome is unknown is never sent again (failed, flagged)."""
        recorder = self.recorder
        try:
            result = self.provider.submit(model, {**generation.request, **minted})
        except ProviderError as exc:
            recorder.count(f"ProviderErrors_{exc.error_class.value}")
            if requeue and exc.error_class is ErrorClass.RATE_LIMITED and not exc.outcome_unknown:
                return generation, True
            return self._fail(generation, exc), False
        recorder.count("GenerationsSubmitted")
        first_poll = self.schedule.first_delay(model.typical_seconds, model=model.id)
        accepted = self._record_accepted(generation, result, first_poll)
        recorder.event("info", "generation submitted", accepted, provider_id=result.provider_id)
        self.arming.arm(accepted)
        return accepted, False

    def _record_accepted(self, generation: Generation, result: SubmitResult, first_poll: float) -> Generation:
        """Write the provider's id onto the record: the job is paid for, and without its id it
        can be neither polled nor archived. Another writer may have changed the record during the
        paid call (the sweep flagging a slow submit, a workflow step): then the id goes onto
        whatever record is there now. A record still `submitting` becomes `queued`; an ended one
        keeps its status (a second end would notify twice) but gains the id, and a warning says so."""
        current: Generation | None = generation
        for _ in range(_ACCEPT_ATTEMPTS):
            if current is None:
                break
            if current.provider_id == result.provider_id:
                return current
            now = self.recorder.clock()
            changes: dict[str, Any] = {
                "provider_id": result.provider_id,
                "provider_status": result.raw_status,
                "usage": result.usage,
                "updated_at": utc_now_iso(now),
            }
            if current.status is Status.SUBMITTING:
                changes.update(status=Status.QUEUED, next_poll_at=poll_at(now, first_poll))
            elif current.is_terminal:
                self.recorder.event(
                    "warning",
                    "the provider took a job whose record had already ended",
                    current,
                    provider_id=result.provider_id,
                )
            try:
                return self.recorder.store.save(current, **changes)
            except StaleWriteError:
                current = self.recorder.store.get(generation.id)
        # Out of attempts (or the record was deleted): the id must not be lost with the exception.
        self.recorder.event(
            "error", "could not record the provider's id", generation, provider_id=result.provider_id
        )
        raise StaleWriteError(f"generation {generation.id}: provider id {result.provider_id} not recorded")

    def _record(
        self,
        generation_id: str,
        owner: str,
        model: str,
        fields: dict[str, Any],
        source: Source,
        driver: Driver,
        callback_url: str | None,
    ) -> Generation:
        """The `submitting` record, written before the paid call (StaleWriteError if it exists)."""
        now = self.recorder.clock()
        generation = self._create(
            now,
            id=generation_id,
            owner=owner,
            status=Status.SUBMITTING,
            model=model,
            request=fields,
            source=source,
            driver=driver,
            # If this process dies mid-submit, the sweep finds the record after the grace
            # period and flags it, rather than leaving it 'submitting' forever.
            next_poll_at=poll_at(now, self.submit_grace_seconds),
            callback_url=callback_url,
        )
        self.recorder.event("info", "generation recorded", generation)
        return generation

    def _create(self, now: float, **fields: Any) -> Generation:
        """A new record, created at `now` (conditional on its id being new)."""
        stamp = utc_now_iso(now)
        return self.recorder.store.create(
            Generation(created_at=stamp, updated_at=stamp, created_epoch=now, **fields)
        )

    def callback_url(self, value: Any) -> str | None:
        """`callback_url` of a request: absent, or a URL the webhook may be sent to."""
        if value is None:
            return None
        if not isinstance(value, str):
            message = "must be a string"
        else:
            try:
                self.check_callback_url(value)
                return value
            except UnsafeUrlError as exc:
                message = exc.message
        raise UnsafeUrlError(
            f"callback_url: {message}", details=[{"field": "callback_url", "message": message}]
        )

    def _url_check(self, body: Mapping[str, Any], private: Mapping[str, Any]) -> Callable[[str], None]:
        """The URL check for one request: `check_image_url`, except for the s3:// references
        whose provider-side URL the caller resolves (see submit and accept)."""
        if not private:
            return self.check_image_url
        references = set()
        for name in private:
            reference = body.get(name)
            if not (isinstance(reference, str) and reference.startswith("s3://")):
                raise ValueError(f"provider field {name!r} must replace an s3:// reference of the body")
            references.add(reference)

        def check(value: str) -> None:
            if value not in references:
                self.check_image_url(value)

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
            callback_url = self.callback_url(callback_url)
        except UnsafeUrlError:
            callback_url = None
        generation = self._create(
            self.recorder.clock(),
            id=generation_id,
            owner=owner,
            status=Status.FAILED,
            model=model,
            request=dict(request),
            source=source,
            error=error,
            callback_url=callback_url,
        )
        self.recorder.event("warning", "request rejected", generation, error_code=error.code)
        return generation

    def _fail(self, generation: Generation, exc: ProviderError) -> Generation:
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
            reason = PROVIDER_FAILURES.get(exc.error_class.value)
            error = GenerationError(
                code=f"provider_{exc.error_class.value}",
                message=reason or exc.message,  # validation: the provider's reason for refusing
                provider_class=exc.error_class.value,
            )
        failed = self.recorder.store.save(
            generation,
            status=Status.FAILED,
            error=error,
            submit_outcome_unknown=exc.outcome_unknown,
            updated_at=utc_now_iso(self.recorder.clock()),
            next_poll_at=None,
        )
        self.recorder.count("GenerationsFailed")
        self.recorder.event("warning", "submit failed", failed, error_code=error.code, detail=str(exc))
        self.recorder.left(generation)
        return failed
