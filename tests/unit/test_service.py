"""The use cases end to end at the service level: moto for DynamoDB/S3, the simulator for the
provider, the real client between them. Each failure path of the core issue injects its fault."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.simulator import Simulator
from tests.unit.conftest import POLL_RETRIES, Clock, make_service, wait_until
from videogen.adapters.aiml_provider import AimlClient
from videogen.domain.errors import ConflictError, NotFoundError, RequestValidationError
from videogen.domain.models import Driver, Status
from videogen.domain.ports import StaleWriteError
from videogen.logic.refresh import RefreshOutcome
from videogen.logic.service import GenerationService
from videogen.logic.sweep import read_ahead

T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}
SEED = {
    "model": "video-01",
    "prompt": "Cheetah turns toward the camera.",
    "image_url": "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg",
}


def sweep_until_terminal(service: GenerationService, generation_id: str, timeout: float = 5.0) -> Any:
    def done() -> Any:
        service.sweep(lambda: 60_000)
        current = service.store.get(generation_id)
        return current if current and current.is_terminal else None

    return wait_until(done, timeout=timeout)


def test_submit_records_then_queues_at_the_provider(service: GenerationService, sim: Simulator) -> None:
    generation = service.submit("owner-a", T2V)

    assert generation.status is Status.QUEUED
    assert generation.provider_id in sim.jobs
    assert sim.submit_count == 1
    stored = service.store.get(generation.id)
    assert stored is not None and stored.status is Status.QUEUED and stored.owner == "owner-a"
    assert stored.usage  # the provider's reported usage is kept


def test_record_exists_before_the_provider_is_called(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    seen: list[Any] = []

    class Spy:
        def submit(self, model: Any, fields: Any) -> Any:
            items, _ = service.store.list_by_owner("owner-a", status=None, limit=5, next_token=None)
            seen.extend(items)
            return client.submit(model, fields)

        def poll(self, model: Any, provider_id: str) -> Any:
            return client.poll(model, provider_id)

    service = make_service(aws, Spy(), clock)
    service.submit("owner-a", T2V)

    assert [g.status for g in seen] == [Status.SUBMITTING]


def test_invalid_request_is_refused_before_any_record_or_provider_call(
    service: GenerationService, sim: Simulator
) -> None:
    with pytest.raises(RequestValidationError) as refused:
        service.submit("owner-a", {"model": "kling-video/v1.6/standard/text-to-video", "duration": 7})

    fields = {d["field"] for d in refused.value.details}
    assert {"prompt", "duration"} <= fields
    assert sim.submit_attempts == 0
    assert service.list_for_owner("owner-a")[0] == []


def test_poller_drives_a_generation_to_completed_with_the_video_in_our_bucket(
    service: GenerationService, aws: dict[str, str]
) -> None:
    generation = service.submit("owner-a", SEED)

    done = sweep_until_terminal(service, generation.id)

    assert done.status is Status.COMPLETED
    assert done.video_provider_url is None  # dropped once our copy exists
    body = boto3.client("s3").get_object(Bucket=aws["OutputsBucket"], Key=done.video_key)["Body"].read()
    assert body[4:8] == b"ftyp"
    link = service.video_link(done)
    assert link is not None and done.video_key in link.url and "Signature" in link.url


def test_provider_rejection_on_submit_leaves_a_failed_record_with_the_reason(
    service: GenerationService, sim: Simulator
) -> None:
    sim.inject({"on": "submit", "status": 403})

    failed = service.submit("owner-a", T2V)

    assert failed.status is Status.FAILED
    assert failed.error is not None and failed.error.code == "provider_out_of_credits"
    assert failed.error.provider_class == "out_of_credits"
    assert not failed.submit_outcome_unknown
    assert service.store.get(failed.id) == failed


@pytest.mark.parametrize(
    "fault", [{"status": 500}, {"status": 502}, {"timeout": True, "seconds": 2}, {"malformed": True}]
)
def test_ambiguous_submit_is_flagged_and_never_resubmitted(
    service: GenerationService, sim: Simulator, fault: dict[str, Any]
) -> None:
    sim.inject({"on": "submit", **fault})

    flagged = service.submit("owner-a", T2V)

    assert flagged.status is Status.FAILED
    assert flagged.submit_outcome_unknown
    assert flagged.error is not None and flagged.error.code == "submit_outcome_unknown"
    assert sim.submit_attempts == 1  # the provider saw exactly one request
    service.sweep(lambda: 60_000)
    assert sim.submit_attempts == 1


def test_throttled_submit_is_retried_because_the_provider_did_not_take_it(
    service: GenerationService, sim: Simulator
) -> None:
    sim.inject({"on": "submit", "status": 429, "retry_after": 0})

    generation = service.submit("owner-a", T2V)

    assert generation.status is Status.QUEUED
    assert sim.submit_count == 1


def test_provider_outage_during_a_sweep_keeps_generations_active(
    service: GenerationService, sim: Simulator, client: AimlClient
) -> None:
    generation = service.submit("owner-a", T2V)
    attempts_per_poll = POLL_RETRIES + 1
    sim.inject(*[{"on": "poll", "status": 503}] * attempts_per_poll)

    report = service.sweep(lambda: 60_000)

    assert sim.pending_faults == []  # the client retried every attempt it is allowed
    assert report.outcomes == {RefreshOutcome.PROVIDER_ERROR.value: 1}
    during = service.store.get(generation.id)
    assert during is not None and during.status is Status.QUEUED
    assert during.last_poll_error == "server" and during.poll_failures == 1
    assert sweep_until_terminal(service, generation.id).status is Status.COMPLETED


def test_failed_archive_copy_keeps_the_provider_link_and_is_retried(
    service: GenerationService, sim: Simulator
) -> None:
    generation = service.submit("owner-a", T2V)
    sim.inject({"on": "download", "status": 500})

    def archive_failed() -> Any:
        service.sweep(lambda: 60_000)
        current = service.store.get(generation.id)
        return current if current and current.video_provider_url else None

    pending = wait_until(archive_failed)
    assert pending.status is Status.GENERATING
    assert pending.last_poll_error and pending.last_poll_error.startswith("archive")

    assert sweep_until_terminal(service, generation.id).status is Status.COMPLETED


def test_provider_error_status_fails_the_generation_with_the_providers_message(
    service: GenerationService,
) -> None:
    generation = service.submit("owner-a", {**T2V, "prompt": "boom [sim:error]"})

    failed = sweep_until_terminal(service, generation.id)

    assert failed.status is Status.FAILED
    assert failed.error is not None and failed.error.code == "provider_failed" and failed.error.message


def test_unknown_provider_status_keeps_the_generation_active(
    service: GenerationService, sim: Simulator
) -> None:
    sim.configure(default_duration=30)
    generation = service.submit("owner-a", {**T2V, "prompt": "odd [sim:status=rendering-ish]"})

    report = service.sweep(lambda: 60_000)

    assert report.outcomes == {RefreshOutcome.UNKNOWN_STATUS.value: 1}
    current = service.store.get(generation.id)
    assert current is not None and not current.is_terminal and current.provider_status == "rendering-ish"


def test_generation_past_the_age_limit_times_out(
    service: GenerationService, sim: Simulator, clock: Clock
) -> None:
    sim.configure(default_duration=30)
    generation = service.submit("owner-a", T2V)
    clock.advance(601)

    report = service.sweep(lambda: 60_000)

    assert report.outcomes == {RefreshOutcome.TIMED_OUT.value: 1}
    assert service.store.get(generation.id).status is Status.TIMED_OUT  # type: ignore[union-attr]
    assert list(service.due(clock() + 10_000)) == []  # out of the due-index


def test_a_record_stuck_in_submitting_is_flagged_after_the_grace_period(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    class Crashes:
        def submit(self, model: Any, fields: Any) -> Any:
            raise RuntimeError("the process died mid-submit")

        def poll(self, model: Any, provider_id: str) -> Any:
            raise AssertionError("never polled")

    crashing = make_service(aws, Crashes(), clock)
    with pytest.raises(RuntimeError):
        crashing.submit("owner-a", T2V)
    (stuck,), _ = crashing.list_for_owner("owner-a")
    assert stuck.status is Status.SUBMITTING

    service = make_service(aws, client, clock)
    assert service.sweep(lambda: 60_000).due == 0  # not due during the grace period
    clock.advance(61)
    report = service.sweep(lambda: 60_000)

    assert report.outcomes == {RefreshOutcome.FLAGGED.value: 1}
    flagged = service.store.get(stuck.id)
    assert flagged is not None and flagged.status is Status.FAILED and flagged.submit_outcome_unknown
    assert sim.submit_attempts == 0  # never resubmitted


def test_writes_are_conditional_on_the_version_read(service: GenerationService) -> None:
    generation = service.submit("owner-a", T2V)
    service.store.save(generation, provider_status="generating")

    with pytest.raises(StaleWriteError):
        service.store.save(generation, status=Status.COMPLETED)
    assert service.store.get(generation.id).status is Status.QUEUED  # type: ignore[union-attr]


def test_a_stale_refresh_is_a_conflict_not_a_regression(service: GenerationService) -> None:
    generation = service.submit("owner-a", T2V)
    service.cancel("owner-a", generation.id)

    _, outcome = service.refresh(generation)  # a sweep holding the old copy

    assert outcome is RefreshOutcome.CONFLICT
    assert service.store.get(generation.id).status is Status.CANCELLED  # type: ignore[union-attr]


def test_cancel_rules(service: GenerationService, sim: Simulator) -> None:
    sim.configure(default_duration=30)
    generation = service.submit("owner-a", T2V)

    with pytest.raises(NotFoundError):
        service.cancel("owner-b", generation.id)
    cancelled = service.cancel("owner-a", generation.id)
    assert cancelled.status is Status.CANCELLED
    with pytest.raises(ConflictError):
        service.cancel("owner-a", generation.id)
    assert list(service.due(10**10)) == []


def test_reads_are_isolated_by_owner_and_paginated_newest_first(
    service: GenerationService, sim: Simulator
) -> None:
    sim.configure(default_duration=30)
    mine = [service.submit("owner-a", {**T2V, "prompt": f"clip {i}"}).id for i in range(5)]
    theirs = service.submit("owner-b", T2V)

    with pytest.raises(NotFoundError):
        service.get("owner-a", theirs.id)
    first, token = service.list_for_owner("owner-a", limit=2)
    assert token
    second, token2 = service.list_for_owner("owner-a", limit=2, next_token=token)
    third, token3 = service.list_for_owner("owner-a", limit=2, next_token=token2)
    assert [g.id for g in first + second + third] == list(reversed(mine))
    assert token3 is None
    with pytest.raises(RequestValidationError):
        service.list_for_owner("owner-b", next_token=token)  # a token is bound to its owner


def test_workflow_driven_generations_stay_out_of_the_poller_index(service: GenerationService) -> None:
    generation = service.submit("owner-a", T2V, driver=Driver.WORKFLOW)

    assert generation.status is Status.QUEUED
    assert list(service.due(10**10)) == []


def test_sweep_stops_taking_work_when_the_invocation_runs_out_of_time(
    service: GenerationService, sim: Simulator
) -> None:
    sim.configure(default_duration=30)
    for i in range(3):
        service.submit("owner-a", {**T2V, "prompt": f"clip {i}"})

    report = service.sweep(lambda: 5_000, reserve_ms=10_000)

    assert report.due == 3 and report.deferred == 3
    assert sim.poll_count == 0


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def test_metrics_count_submits_errors_sweeps_and_completions(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    metrics = RecordingMetrics()
    service = make_service(aws, client, clock, metrics=metrics)
    generation = service.submit("owner-a", T2V)
    sim.inject({"on": "submit", "status": 403})
    service.submit("owner-a", T2V)

    sweep_until_terminal(service, generation.id)

    assert metrics.counts["GenerationsSubmitted"] == 1
    assert metrics.counts["ProviderErrors_out_of_credits"] == 1
    assert metrics.counts["GenerationsFailed"] == 1
    assert metrics.counts["GenerationsCompleted"] == 1
    assert metrics.counts["SweepDue"] >= 1 and "SweepDuration" in metrics.counts


class _SlowCountingArchive:
    """The real archive, counting copies; the first copy waits until the test lets it go."""

    def __init__(self, archive: Any) -> None:
        import threading

        self._archive = archive
        self.copies = 0
        self.copying = threading.Event()
        self.release = threading.Event()

    def archive(self, generation_id: str, source_url: str) -> str:
        self.copies += 1
        self.copying.set()
        self.release.wait(5)
        return self._archive.archive(generation_id, source_url)

    def link(self, key: str, *, expires_in: int, now: float) -> Any:
        return self._archive.link(key, expires_in=expires_in, now=now)


def test_a_refresh_that_finds_the_copy_claimed_leaves_it_to_the_claimant(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    # Found by bench/reliability.py (overlapping_sweeps): a sweep that read the record after
    # another had started copying it polled, found it done and copied it again (two archive
    # writes; the version check only stopped the second completion). The copy is now claimed
    # by a conditional write, and a claimed record is left alone until the claim lapses.
    import threading

    service = make_service(aws, client, clock)
    archive = _SlowCountingArchive(service.archive)
    slow = make_service(aws, client, clock, archive=archive)
    generation = service.submit("owner-a", T2V)
    wait_until(lambda: sim.state()["jobs"][0]["status"] == "completed")

    first = threading.Thread(target=slow.refresh, args=(generation,))
    first.start()
    assert archive.copying.wait(5)
    claimed = service.store.get(generation.id)
    assert claimed is not None and claimed.archive_claim_until is not None
    again, outcome = slow.refresh(claimed)  # a second sweep reads the claimed record
    archive.release.set()
    first.join(5)

    assert outcome is RefreshOutcome.WAITING and again.version == claimed.version
    done = service.store.get(generation.id)
    assert done is not None and done.status is Status.COMPLETED and done.archive_claim_until is None
    assert archive.copies == 1


def test_a_claim_that_lapses_is_taken_up_by_a_later_sweep(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(aws, client, clock, archive_lease_seconds=300)
    generation = service.submit("owner-a", T2V)
    wait_until(lambda: sim.state()["jobs"][0]["status"] == "completed")
    # The copier claimed the copy, then died before finishing it.
    current = service.store.get(generation.id)
    assert current is not None
    service.store.save(current, archive_claim_until=clock() + 300, next_poll_at=int(clock() + 300))

    assert service.sweep(lambda: 60_000).due == 0  # not due while claimed
    clock.advance(301)

    assert sweep_until_terminal(service, generation.id).status is Status.COMPLETED


def test_a_workflow_fetch_that_finds_the_copy_claimed_looks_again_soon(
    service: GenerationService, clock: Clock
) -> None:
    generation = service.submit("owner-a", T2V, driver=Driver.WORKFLOW)
    # As read back from the table: a workflow record keeps no next_poll_at (poller index only).
    claimed = generation.model_copy(
        update={"status": Status.GENERATING, "next_poll_at": None, "archive_claim_until": clock() + 600}
    )

    assert 0 < service.wait_seconds(claimed) <= 5  # not the whole lease, nor a busy loop


def test_read_ahead_reads_the_due_index_while_the_consumer_works() -> None:
    read: list[int] = []
    released = threading.Event()

    def pages() -> Iterator[int]:
        for n in range(10):
            read.append(n)
            yield n
        released.set()

    items = read_ahead(pages(), 16)
    assert next(items) == 0
    # the consumer holds one item; the reader has gone on to the end without it asking
    assert released.wait(5)
    assert read == list(range(10))
    assert list(items) == list(range(1, 10))


def test_read_ahead_stays_within_its_size_and_raises_the_readers_error_in_order() -> None:
    read: list[int] = []

    def failing() -> Iterator[int]:
        for n in range(3):
            read.append(n)
            yield n
        raise RuntimeError("query failed")

    items = read_ahead(failing(), 1)
    assert next(items) == 0
    time.sleep(0.2)
    assert len(read) <= 3  # one item in the consumer's hands, one buffered, one waiting to be put
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(RuntimeError, match="query failed"):
        next(items)


def test_closing_read_ahead_stops_its_reader() -> None:
    read: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            read.append(n)
            yield n
            n += 1

    items = read_ahead(endless(), 2)
    assert next(items) == 0
    items.close()
    time.sleep(0.3)
    count = len(read)
    time.sleep(0.3)
    assert len(read) == count <= 5


# -- a write that lands during the paid submit ------------------------------------------------


class DuringSubmit:
    """The provider, with `during(generation_id)` run inside the paid call: the record is
    `submitting` there, as another writer (a sweep, a cancel) would meet it."""

    def __init__(self, provider: Any, service: GenerationService, during: Any) -> None:
        self._provider = provider
        self._service = service
        self._during = during

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def submit(self, model: Any, fields: Any) -> Any:
        (pending,) = self._service.list_for_owner("owner-a", limit=5)[0]
        assert pending.status is Status.SUBMITTING
        self._during(pending.id)
        return self._provider.submit(model, fields)


class WarningLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str, **_: Any) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str, **_: Any) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str, **_: Any) -> None:
        self.lines.append(("error", message))


def test_a_cancel_while_submitting_is_refused_and_the_job_stays_tracked(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(aws, client, clock)
    refusals: list[str] = []

    def cancel(generation_id: str) -> None:
        with pytest.raises(ConflictError) as refused:
            service.cancel("owner-a", generation_id)
        refusals.append(refused.value.message)

    service.submitter.provider = DuringSubmit(client, service, cancel)

    generation = service.submit("owner-a", T2V)

    assert refusals and "being submitted" in refusals[0] and "try again" in refusals[0]
    assert generation.status is Status.QUEUED and generation.provider_id in sim.jobs
    assert service.store.get(generation.id) == generation


def test_a_write_during_the_paid_call_does_not_lose_the_provider_id(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(aws, client, clock)

    def touch(generation_id: str) -> None:  # another writer saves the record: its version moves on
        current = service.store.get(generation_id)
        assert current is not None
        service.store.save(current, updated_at=current.updated_at)

    service.submitter.provider = DuringSubmit(client, service, touch)

    generation = service.submit("owner-a", T2V)

    stored = service.store.get(generation.id)
    assert stored is not None and stored.status is Status.QUEUED
    assert stored.provider_id == generation.provider_id and stored.provider_id in sim.jobs
    assert stored.next_poll_at is not None


def test_a_record_flagged_during_the_paid_call_still_gets_the_provider_id(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    log = WarningLog()
    service = make_service(aws, client, clock, log=log)

    def flag(generation_id: str) -> None:  # the sweep finds the submit overdue and ends it
        clock.advance(3600)
        current = service.store.get(generation_id)
        assert current is not None
        _, outcome = service.refresh(current)
        assert outcome is RefreshOutcome.FLAGGED

    service.submitter.provider = DuringSubmit(client, service, flag)

    generation = service.submit("owner-a", T2V)

    stored = service.store.get(generation.id)
    assert stored is not None and stored.status is Status.FAILED  # one end only: no second event
    assert stored.error is not None and stored.error.code == "submit_outcome_unknown"
    assert stored.provider_id is not None and stored.provider_id in sim.jobs
    assert ("warning", "the provider took a job whose record had already ended") in log.lines


def test_a_record_that_keeps_changing_raises_rather_than_dropping_the_id_silently(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    log = WarningLog()
    service = make_service(aws, client, clock, log=log)
    store = service.store
    real_save = store.save

    def save(current: Any, **changes: Any) -> Any:
        if "provider_id" in changes:
            raise StaleWriteError("another writer won")
        return real_save(current, **changes)

    store.save = save  # type: ignore[method-assign]

    with pytest.raises(StaleWriteError, match="not recorded"):
        service.submit("owner-a", T2V)
    assert sim.submit_count == 1
    errors = [line for line in log.lines if line[0] == "error"]
    assert errors == [("error", "could not record the provider's id")]
