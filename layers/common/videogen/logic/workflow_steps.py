"""The steps of a workflow-driven generation (Step Functions): submit once under the
execution's id, fetch (refresh and say how long to wait), and record a failure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from videogen.domain.catalog import get_model
from videogen.domain.errors import ConflictError, NotFoundError, ProviderThrottled
from videogen.domain.models import Driver, Generation, GenerationError, Source, Status
from videogen.domain.ports import ErrorClass, StaleWriteError
from videogen.logic.recorder import Recorder
from videogen.logic.refresh import OUTCOME_METRICS, Refresher, RefreshOutcome
from videogen.logic.submit import Submitter

MAX_ERROR_MESSAGE_CHARS = 1000
# A workflow step that finds another worker copying the video looks again this soon.
ARCHIVE_CLAIM_RECHECK_SECONDS = 5
# A workflow whose generation waits in the submit queue looks again this soon (the dispatcher,
# not the workflow, submits it; 3 h of waiting is 720 fetches, within the workflow's 1,500).
PENDING_RECHECK_SECONDS = 15
PENDING_FIRST_LOOK_MIN_SECONDS = 2


class WorkflowSteps:
    def __init__(self, recorder: Recorder, submitter: Submitter, refresher: Refresher) -> None:
        self.recorder = recorder
        self.submitter = submitter
        self.refresher = refresher

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
        store = self.recorder.store
        existing = store.get(generation_id)
        if existing is None:
            try:
                if self.submitter.queue is not None:
                    return self.submitter.accept(
                        owner, body, source=source, driver=driver, generation_id=generation_id
                    )
                return self.submitter.submit(
                    owner, body, source=source, driver=driver, generation_id=generation_id
                )
            except StaleWriteError:  # a concurrent attempt recorded it first
                existing = store.get(generation_id)
        if existing is None or existing.owner != owner:
            raise ConflictError(f"generation id {generation_id} is taken")
        return existing

    def fetch(self, generation_id: str) -> tuple[Generation, int]:
        """Refresh the generation (poll the provider, archive a finished video, or end it at the
        age limit) and return it with the whole seconds to wait before the next step (see
        `wait_seconds`). Raises NotFoundError for an unknown id, and ProviderThrottled when the
        provider rate-limited the poll, so the workflow backs off."""
        store = self.recorder.store
        generation = store.get(generation_id)
        if generation is None:
            raise NotFoundError(f"generation {generation_id} not found")
        refreshed, outcome = self.refresher.refresh(generation)
        for _ in range(2):  # another writer won the race: read what it wrote and go again
            if outcome is not RefreshOutcome.CONFLICT:
                break
            generation = store.get(generation_id) or generation
            refreshed, outcome = self.refresher.refresh(generation)
        if name := OUTCOME_METRICS.get(outcome):
            self.recorder.count(name)
        wait = self.wait_seconds(refreshed)
        if (
            outcome is RefreshOutcome.PROVIDER_ERROR
            and refreshed.last_poll_error == ErrorClass.RATE_LIMITED.value
        ):
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
        A workflow-driven record is stored without next_poll_at, which only feeds the poller's
        index: read back from the table, one still `submitting` waits out the grace period, any
        other is due now."""
        if generation.is_terminal:
            return 0
        now = self.recorder.clock()
        if generation.status is Status.PENDING:
            # In the submit queue: the dispatcher submits it, usually within a second or two when
            # the provider has room. The first look comes when its first poll would (the model's
            # learned time x FIRST_POLL_FACTOR, so a fast job is not waited on for a fixed 15 s),
            # later ones every PENDING_RECHECK_SECONDS (a fetch past the queue deadline ends it).
            if now - generation.started_epoch >= PENDING_RECHECK_SECONDS:
                return PENDING_RECHECK_SECONDS
            model = get_model(generation.model)
            first = self.refresher.schedule.first_delay(model.typical_seconds, model=model.id)
            return math.ceil(min(max(first, PENDING_FIRST_LOOK_MIN_SECONDS), PENDING_RECHECK_SECONDS))
        if generation.next_poll_at is not None:
            wait = generation.next_poll_at - now
        elif generation.archive_claim_until is not None:  # another fetch is copying the video
            wait = min(generation.archive_claim_until - now, ARCHIVE_CLAIM_RECHECK_SECONDS)
        elif generation.status is Status.SUBMITTING:
            wait = generation.started_epoch + self.refresher.submit_grace_seconds - now
        else:
            wait = 0
        left = generation.started_epoch + self.refresher.max_age_seconds - now
        if left > 0:
            wait = min(wait, left + 1)
        return max(0, math.ceil(wait))

    def record_failure(
        self, generation_id: str, code: str, message: str, *, detail: str | None = None
    ) -> Generation | None:
        """Mark a generation `failed` with a reason, e.g. when a workflow step failed for good.
        A no-op on a generation that already ended (its outcome stands) and None when there is no
        such generation (the request failed before it was recorded). `detail` (what went wrong
        inside, which the owner must not read) is logged, never stored."""
        error = GenerationError(code=code, message=message[:MAX_ERROR_MESSAGE_CHARS])
        for _ in range(3):
            generation = self.recorder.store.get(generation_id)
            if generation is None or generation.is_terminal:
                return generation
            try:
                failed = self.recorder.end(generation, Status.FAILED, self.recorder.clock(), error=error)
            except StaleWriteError:
                continue
            self.recorder.count("GenerationsFailed")
            self.recorder.event("warning", "workflow step failed", failed, error_code=code, detail=detail)
            return failed
        raise ConflictError(f"generation {generation_id} is changing; try again")
