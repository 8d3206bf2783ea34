"""The workflow's use cases (GenerationService.submit_once, fetch, wait_seconds, record_failure) and
its steps (videogen.workflow.handle), with moto for AWS and the simulator for the provider. The
state machine itself runs on the local stack in tests/integration/test_workflow_local.py."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest

from local.simulator import Simulator
from tests.images import png as real_png
from tests.unit.conftest import POLL_RETRIES, Clock, make_service, wait_until
from videogen.adapters.aiml_provider import AimlClient
from videogen.domain.catalog import get_model
from videogen.domain.errors import ConflictError, NotFoundError, ProviderThrottled, RequestValidationError
from videogen.domain.models import Driver, Source, Status
from videogen.entrypoints.workflow_tasks import failure_reason, generation_id_for, handle
from videogen.logic.refresh import RefreshOutcome
from videogen.logic.schedule import PollSchedule
from videogen.logic.service import GenerationService

T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:videogen-generation:run-1"
STARTED = "2026-11-25T10:00:00.000Z"
GEN_ID = generation_id_for(EXECUTION, STARTED)


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def dispatch(service: GenerationService) -> None:
    """The dispatcher's run (DispatcherFunction, woken when the Submit step accepted)."""
    assert service.dispatcher is not None
    service.dispatcher.run(lambda: 10**9, reserve_ms=0)


def submitted(service: GenerationService, owner: str = "owner-a", body: dict[str, Any] = T2V) -> Any:
    """submit_once (the Submit step: `pending`), then the dispatcher's run: the record as stored."""
    service.submit_once(GEN_ID, owner, body)
    dispatch(service)
    return service.store.get(GEN_ID)


def fetch_until_terminal(service: GenerationService, generation_id: str) -> Any:
    def done() -> Any:
        generation, wait = service.fetch(generation_id)
        return (generation, wait) if generation.is_terminal else None

    return wait_until(done, timeout=5)


def step(action: str, **payload: Any) -> dict[str, Any]:
    return {"action": action, "execution": EXECUTION, "started_at": STARTED, **payload}


# ---- submit_once --------------------------------------------------------------------------------
def test_submit_once_records_a_workflow_generation_outside_the_pollers_index(
    service: GenerationService, sim: Simulator
) -> None:
    accepted = service.submit_once(GEN_ID, "owner-a", T2V)
    assert accepted.status is Status.PENDING and sim.submit_count == 0  # the dispatcher submits it
    dispatch(service)
    generation = service.store.get(GEN_ID)

    assert generation is not None and generation.id == GEN_ID and generation.status is Status.QUEUED
    assert generation.source is Source.WORKFLOW and generation.driver is Driver.WORKFLOW
    assert sim.submit_count == 1
    assert list(service.due(service.clock() + 10_000)) == []  # the poller never polls it too
    stored = service.get("owner-a", GEN_ID)  # readable like any other (GET /generations/{id})
    assert (stored.status, stored.source, stored.provider_id) == (
        Status.QUEUED,
        Source.WORKFLOW,
        generation.provider_id,
    )


def test_a_record_read_back_waits_for_its_grace_period_or_is_due(
    service: GenerationService, clock: Clock
) -> None:
    """A workflow generation read back (a retried Submit, the Fetch after the dispatcher submitted
    it) waits as the schedule said, or the grace period while still submitting; it is in no
    index (the poller never polls it)."""
    generation = submitted(service)
    stored = service.store.get(GEN_ID)
    assert stored is not None and stored.next_poll_at is not None
    assert (
        "due_shard"
        not in service.store._client.get_item(TableName=service.store._table, Key={"id": {"S": GEN_ID}})[
            "Item"
        ]
    )

    assert service.wait_seconds(stored) == max(0, math.ceil(stored.next_poll_at - service.clock()))
    submitting = generation.model_copy(update={"status": Status.SUBMITTING, "next_poll_at": None})
    assert (
        service.submit_grace_seconds - 2 <= service.wait_seconds(submitting) <= service.submit_grace_seconds
    )


def test_a_queued_workflow_generation_is_first_looked_at_when_its_first_poll_would_be(
    service: GenerationService, clock: Clock
) -> None:
    """In the submit queue the dispatcher, not the workflow, submits it: the first Fetch comes
    when the model's first poll would (its learned time x the first-poll factor), not a fixed
    15 s later; one still queued after 15 s is looked at every 15 s."""
    model, typical = T2V["model"], get_model(T2V["model"]).typical_seconds
    service.refresher.schedule = PollSchedule(first_poll_factor=0.5)
    for _ in range(20):  # the fleet has seen this model take about 9 s
        service.refresher.schedule.observe(model, 9.0, typical_seconds=typical)
    pending = service.submit_once(GEN_ID, "owner-a", T2V)
    first = service.refresher.schedule.first_delay(typical, model=model)
    assert 3 < first < 8
    assert service.wait_seconds(pending) == math.ceil(first)

    service.refresher.schedule = PollSchedule(first_poll_factor=0)  # a first poll right away
    assert service.wait_seconds(pending) == 2  # the floor: the dispatcher takes a moment
    clock.advance(15)
    assert service.wait_seconds(pending) == 15  # queued behind others: look again every 15 s


def test_a_retried_submit_returns_the_record_and_never_submits_twice(
    service: GenerationService, sim: Simulator
) -> None:
    first = submitted(service)

    again = service.submit_once(GEN_ID, "owner-a", T2V)
    dispatch(service)

    assert (again.id, again.provider_id, again.version) == (first.id, first.provider_id, first.version)
    assert sim.submit_count == 1
    with pytest.raises(ConflictError):
        service.submit_once(GEN_ID, "owner-b", T2V)  # someone else's id


def test_submit_once_validates_before_recording(service: GenerationService, sim: Simulator) -> None:
    with pytest.raises(RequestValidationError):
        service.submit_once(GEN_ID, "owner-a", {"model": "no-such-model", "prompt": "x"})
    assert service.store.get(GEN_ID) is None and sim.submit_count == 0


# ---- fetch and its wait hint --------------------------------------------------------------------
def test_fetch_drives_the_generation_to_completed(service: GenerationService) -> None:
    submitted(service)

    generation, wait = fetch_until_terminal(service, GEN_ID)

    assert generation.status is Status.COMPLETED and generation.video_key and wait == 0
    assert service.video_link(generation) is not None


def test_the_wait_follows_the_poll_schedule_so_slow_models_are_not_hammered(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(
        aws, client, clock, schedule=PollSchedule(first_poll_factor=0.6, interval_seconds=15)
    )
    sim.configure(default_duration=60)  # still running at the first fetch

    generation = submitted(service)
    first_wait = service.wait_seconds(generation)

    assert generation.next_poll_at is not None
    assert first_wait == math.ceil(generation.next_poll_at - clock())
    assert first_wait >= 0.6 * 180 - 2  # Kling v1.6 typically takes 180 s: no poll for ~108 s
    clock.advance(first_wait)
    generation, wait = service.fetch(GEN_ID)
    assert generation.status in (Status.QUEUED, Status.GENERATING)
    assert generation.next_poll_at is not None and wait == math.ceil(generation.next_poll_at - clock())
    assert wait >= 1


def test_the_wait_never_runs_far_past_the_age_limit(service: GenerationService, clock: Clock) -> None:
    generation = submitted(service)
    generation = service.store.save(generation, next_poll_at=int(clock() + 10_000))

    clock.advance(service.max_age_seconds - 5)

    assert service.wait_seconds(generation) <= 6


def test_fetch_past_the_age_limit_times_out(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    metrics = RecordingMetrics()
    service = make_service(aws, client, clock, metrics=metrics)
    sim.configure(default_duration=3600)
    submitted(service)
    clock.advance(service.max_age_seconds + 1)

    generation, wait = service.fetch(GEN_ID)

    assert generation.status is Status.TIMED_OUT and wait == 0
    assert generation.error is not None and generation.error.code == "timed_out"
    assert metrics.counts["GenerationsTimedOut"] == 1


def test_a_rate_limited_poll_raises_provider_throttled(service: GenerationService, sim: Simulator) -> None:
    submitted(service)
    sim.inject(*[{"on": "poll", "status": 429, "retry_after": 0}] * (POLL_RETRIES + 1))

    with pytest.raises(ProviderThrottled) as throttled:
        service.fetch(GEN_ID)

    assert throttled.value.code == "provider_rate_limited"
    assert throttled.value.details[0]["retry_after"] >= 0
    stored = service.store.get(GEN_ID)
    assert stored is not None and stored.status is Status.QUEUED  # still active, backed off
    assert stored.poll_failures == 1 and stored.last_poll_error == "rate_limited"
    generation, _ = fetch_until_terminal(service, GEN_ID)  # and it recovers
    assert generation.status is Status.COMPLETED


def test_other_provider_errors_keep_the_loop_going_with_a_backed_off_wait(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(
        aws, client, clock, schedule=PollSchedule(first_poll_factor=0, interval_seconds=15)
    )
    submitted(service)
    sim.inject(*[{"on": "poll", "status": 503}] * (POLL_RETRIES + 1))

    generation, wait = service.fetch(GEN_ID)

    assert generation.status is Status.QUEUED and generation.last_poll_error == "server"
    assert wait >= 15


def test_fetch_retries_after_losing_a_race(
    service: GenerationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted(service)
    real_refresh = service.refresher.refresh
    calls: list[int] = []

    def refresh(generation: Any) -> Any:
        calls.append(generation.version)
        if len(calls) == 1:
            return generation, RefreshOutcome.CONFLICT
        return real_refresh(generation)

    monkeypatch.setattr(service.refresher, "refresh", refresh)

    generation, _ = service.fetch(GEN_ID)

    assert len(calls) == 2 and generation.version > calls[0]


def test_fetch_of_an_unknown_generation(service: GenerationService) -> None:
    with pytest.raises(NotFoundError):
        service.fetch("gen_nope")


# ---- record_failure -----------------------------------------------------------------------------
def test_record_failure_fails_an_active_generation_once(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    metrics = RecordingMetrics()
    service = make_service(aws, client, clock, metrics=metrics)
    submitted(service)

    failed = service.record_failure(GEN_ID, "workflow_error", "Boom: " + "x" * 5000)

    assert failed is not None and failed.status is Status.FAILED
    assert failed.error is not None and failed.error.code == "workflow_error"
    assert len(failed.error.message) == 1000
    assert metrics.counts["GenerationsFailed"] == 1
    again = service.record_failure(GEN_ID, "other", "later")  # a no-op: the outcome stands
    assert again == service.store.get(GEN_ID) and again is not None and again.error == failed.error


def test_record_failure_never_overwrites_a_finished_generation(service: GenerationService) -> None:
    submitted(service)
    completed, _ = fetch_until_terminal(service, GEN_ID)

    assert service.record_failure(GEN_ID, "workflow_error", "late") == completed
    assert service.record_failure("gen_absent", "workflow_error", "x") is None


# ---- the steps ----------------------------------------------------------------------------------
def test_generation_ids_are_per_execution() -> None:
    assert generation_id_for(EXECUTION, STARTED) == GEN_ID
    assert GEN_ID.startswith("gen_") and len(GEN_ID) == 36
    assert generation_id_for(EXECUTION, "2027-01-01T00:00:00.000Z") != GEN_ID  # a reused name
    assert generation_id_for(EXECUTION + "x", STARTED) != GEN_ID


def test_submit_step_answers_the_workflow_state(service: GenerationService) -> None:
    out = handle(step("submit", input={"owner": "owner-a", **T2V}), service)

    assert out == {
        "generation_id": GEN_ID,
        "status": "pending",
        "wait_seconds": out["wait_seconds"],
        "polls": 0,
    }
    assert isinstance(out["wait_seconds"], int) and out["wait_seconds"] >= 0
    stored = service.store.get(GEN_ID)
    assert stored is not None and stored.owner == "owner-a" and stored.request == {"prompt": T2V["prompt"]}


def test_fetch_steps_until_completed_carry_the_generation_with_its_video_link(
    service: GenerationService,
) -> None:
    handle(step("submit", input={"owner": "owner-a", **T2V}), service)
    dispatch(service)

    def fetched() -> Any:
        out = handle(step("fetch", generation_id=GEN_ID, polls=3), service)
        return out if out["status"] == "completed" else None

    out = wait_until(fetched)
    assert out["polls"] == 3 and out["wait_seconds"] == 0 and "cause" not in out
    shown = out["generation"]
    assert shown["id"] == GEN_ID and shown["source"] == "workflow" and shown["status"] == "completed"
    assert shown["video"]["url"].startswith("http") and shown["video"]["expires_at"] > 0
    json.dumps(out)  # what Lambda sends back must be JSON


def test_a_failed_generation_carries_a_cause(service: GenerationService) -> None:
    handle(step("submit", input={"owner": "owner-a", **T2V, "prompt": "boom [sim:error]"}), service)
    dispatch(service)

    def fetched() -> Any:
        out = handle(step("fetch", generation_id=GEN_ID, polls=1), service)
        return out if out["status"] != "queued" and out["status"] != "generating" else None

    out = wait_until(fetched)
    assert out["status"] == "failed"
    cause = json.loads(out["cause"])
    assert cause["generation_id"] == GEN_ID and cause["error"]["code"] == "provider_failed"


def test_a_provider_refusal_at_submit_ends_in_a_failed_state(
    service: GenerationService, sim: Simulator
) -> None:
    sim.inject({"on": "submit", "status": 403})

    out = handle(step("submit", input={"owner": "owner-a", **T2V}), service)
    assert out["status"] == "pending"
    dispatch(service)
    out = handle(step("fetch", generation_id=GEN_ID, polls=1), service)

    assert (
        out["status"] == "failed" and json.loads(out["cause"])["error"]["code"] == "provider_out_of_credits"
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (step("submit", input=T2V), "owner"),
        (step("submit", input={**T2V, "owner": "has spaces"}), "owner"),
        (step("explode"), "action"),
        ({"action": "fetch", "generation_id": GEN_ID, "polls": 1}, "execution"),
    ],
)
def test_bad_steps_are_refused_by_field(service: GenerationService, payload: dict, field: str) -> None:
    with pytest.raises(RequestValidationError) as refused:
        handle(payload, service)
    assert any(field in d["field"] for d in refused.value.details), refused.value.details


def test_record_failure_step_records_the_steps_error(service: GenerationService) -> None:
    submitted(service)
    cause = json.dumps({"errorType": "KeyError", "errorMessage": "'video'", "stackTrace": ["..."]})

    out = handle(step("record_failure", error="KeyError", cause=cause), service)

    assert out == {"generation_id": GEN_ID, "recorded": True, "status": "failed"}
    stored = service.store.get(GEN_ID)
    assert stored is not None and stored.error is not None
    assert (stored.error.code, stored.error.message) == (
        "workflow_error",
        "a workflow step failed (KeyError)",
    )
    # before Submit recorded anything (e.g. a refused request) there is nothing to mark
    other = {"execution": EXECUTION + "-2"}
    assert (
        handle({**step("record_failure", error="UnknownModelError", cause=""), **other}, service)["recorded"]
        is False
    )


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        (
            "ProviderThrottled",
            '{"errorMessage": "slow down"}',
            (
                "provider_rate_limited",
                "the provider kept rate-limiting the generation's polls (ProviderThrottled)",
                "ProviderThrottled: slow down",
            ),
        ),
        (
            "PollLimitReached",
            "not finished",
            (
                "poll_limit_reached",
                "the generation did not finish within the workflow's polls (PollLimitReached)",
                "PollLimitReached: not finished",
            ),
        ),
        (
            "Lambda.ServiceException",
            "",
            (
                "workflow_lambda_error",
                "a workflow step's function could not run (Lambda.ServiceException)",
                "Lambda.ServiceException",
            ),
        ),
        (
            "States.Timeout",
            None,
            ("workflow_step_timed_out", "a workflow step timed out (States.Timeout)", "States.Timeout"),
        ),
        (
            "ValueError",
            "[1, 2]",
            ("workflow_error", "a workflow step failed (ValueError)", "ValueError: [1, 2]"),
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:x",
            None,
            (
                "workflow_error",
                "a workflow step failed (unnamed error)",
                "arn:aws:lambda:us-east-1:123456789012:function:x",
            ),
        ),
    ],
)
def test_failure_reasons(error: str, cause: str | None, expected: tuple[str, str, str]) -> None:
    assert failure_reason(error, cause) == expected


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda message, extra=None: self.lines.append((level, message, extra or {}))


def test_a_steps_internal_error_text_is_logged_not_stored(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    """A Lambda errorMessage can name ARNs and the account: the owner reads the generation, so
    it keeps the code and a plain message; the text goes to the logs."""
    log = RecordingLog()
    service = make_service(aws, client, clock, log=log)
    submitted(service)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:videogen-WorkflowFunction-AbC123"
    cause = json.dumps(
        {"errorType": "AccessDeniedException", "errorMessage": f"User: {arn} is not authorized"}
    )

    handle(step("record_failure", error="AccessDeniedException", cause=cause), service)

    stored = service.get("owner-a", GEN_ID)
    assert stored.error is not None and stored.error.code == "workflow_error"
    shown = json.dumps(stored.model_dump(mode="json"))
    assert "arn:" not in shown and "123456789012" not in shown, shown
    logged = [extra for _, message, extra in log.lines if message == "workflow step failed"]
    assert logged and arn in logged[0]["detail"]


def test_inline_images_are_summarised_in_the_state(service: GenerationService) -> None:
    png = "data:image/png;base64," + base64.b64encode(real_png()).decode()  # 480x360, ~2 KB
    body = {"model": "video-01", "prompt": "Cheetah turns toward the camera.", "image_url": png}
    handle(step("submit", input={"owner": "owner-a", **body}), service)
    dispatch(service)

    out = wait_until(
        lambda: (
            (o := handle(step("fetch", generation_id=GEN_ID, polls=1), service))["status"] == "completed"
            and o
        )
    )

    assert out["generation"]["request"]["image_url"] == f"data:image/png;base64,... ({len(png)} characters)"
    stored = service.store.get(GEN_ID)
    assert stored is not None and stored.request["image_url"] == png  # the record keeps it whole
