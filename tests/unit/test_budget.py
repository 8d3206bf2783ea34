"""The spend guard: a key's budget refuses a request before anything is recorded or paid, the
reservation is one atomic conditional write (no overshoot under concurrency), and the stream
settles each generation once to what the provider reported, or releases a refused submit.
DynamoDB is moto (SpendTable from template.yaml), the provider is the simulator."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from local.simulator import Simulator
from tests.templates import event_filter
from tests.unit.conftest import Clock, make_service
from tests.unit.test_api import T2V, Context, api_components, event
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_store import generation_from_item, item_from_generation
from videogen.adapters.spend_counters import SpendCounters
from videogen.domain.budgets import BudgetExceeded, Limits, parse_overrides
from videogen.domain.models import Generation, Status
from videogen.domain.pricing import KLING_STANDARD_PER_SECOND, estimate_credits
from videogen.entrypoints.http_api import build_app
from videogen.entrypoints.spend_stream import SpendSettlement
from videogen.logic.budget import SpendGuard
from videogen.settings import ConfigurationError, Settings

# kling standard, no duration: the estimate is 10 s at the documented 63 000 credits a second
ESTIMATE = estimate_credits(T2V["model"], T2V)


def counters(aws: dict[str, str]) -> SpendCounters:
    return SpendCounters(boto3.client("dynamodb"), aws["SpendTable"])


def guard(aws: dict[str, str], clock: Clock, **options: Any) -> SpendGuard:
    return SpendGuard(counters(aws), clock=clock, **options)


class DeployedSettlement(SpendSettlement):
    """The SpendFunction as deployed: a stream record its template FilterCriteria do not match
    never reaches it (Lambda drops it), so settling depends on the filters letting it through."""

    reaches = staticmethod(event_filter("SpendFunction"))

    def record(self, raw: Any) -> bool:
        return bool(self.reaches(raw)) and super().record(raw)


def settlement(aws: dict[str, str], clock: Clock) -> SpendSettlement:
    return DeployedSettlement(guard(aws, clock), decode=generation_from_item)


def stream_record(old: Generation | None, new: Generation) -> dict[str, Any]:
    """A DynamoDB stream record of the generations table, as the SpendFunction receives it."""
    images: dict[str, Any] = {"NewImage": item_from_generation(new, due_shards=4)}
    if old is not None:
        images["OldImage"] = item_from_generation(old, due_shards=4)
    return {"eventName": "MODIFY" if old else "INSERT", "dynamodb": images}


def spent(aws: dict[str, str], clock: Clock, owner: str = "key-a") -> dict[str, Any]:
    return guard(aws, clock).usage(owner, 1)


def test_the_estimate_follows_the_documented_prices() -> None:
    assert ESTIMATE == 10 * KLING_STANDARD_PER_SECOND
    assert estimate_credits("kling-video/v1.6/pro/text-to-video", {"duration": "5"}) == 5 * 262_500
    assert estimate_credits("gen3a_turbo", {}) == 525_000
    # undocumented: the dearest documented request, so a budget errs on refusing
    assert estimate_credits("google/veo3", {}) == 2_625_000


def test_a_request_past_the_budget_is_refused_before_any_record_or_provider_call(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(aws, client, clock, spend=guard(aws, clock, default_limits=Limits(daily=ESTIMATE)))
    first = service.submit("key-a", dict(T2V))
    assert first.status is Status.QUEUED and sim.submit_attempts == 1

    with pytest.raises(BudgetExceeded) as refused:
        service.submit("key-a", dict(T2V))

    assert sim.submit_attempts == 1  # nothing sent, nothing paid
    items, _ = service.list_for_owner("key-a", status=None, limit=10, next_token=None)
    assert [g.id for g in items] == [first.id]  # and nothing recorded
    detail = refused.value.details[0]
    assert detail["period"] == "daily" and detail["limit"] == ESTIMATE and detail["spent"] == ESTIMATE
    assert refused.value.http_status == 402 and refused.value.code == "budget_exceeded"
    # another key has a budget of its own
    assert service.submit("key-b", dict(T2V)).status is Status.QUEUED


def test_the_monthly_budget_and_per_key_overrides(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    overrides = parse_overrides('{"key-big": {"daily": 0, "monthly": 0}, "key-small": {"monthly": 1}}')
    spend = guard(aws, clock, default_limits=Limits(monthly=2 * ESTIMATE), overrides=overrides)
    service = make_service(aws, client, clock, spend=spend)
    for _ in range(2):
        service.submit("key-a", dict(T2V))
    with pytest.raises(BudgetExceeded) as refused:
        service.submit("key-a", dict(T2V))
    assert refused.value.details[0]["period"] == "monthly"
    with pytest.raises(BudgetExceeded):  # dearer than the whole budget: refused even when unspent
        service.submit("key-small", dict(T2V))
    for _ in range(3):
        service.submit("key-big", dict(T2V))
    assert sim.submit_attempts == 5


def test_concurrent_requests_at_the_edge_never_overshoot(aws: dict[str, str], clock: Clock) -> None:
    spend = guard(aws, clock, default_limits=Limits(daily=3 * ESTIMATE))
    start = threading.Barrier(12)

    def attempt(n: int) -> bool:
        start.wait()
        try:
            spend.reserve("key-a", T2V["model"], T2V, f"gen_{n}")
            return True
        except BudgetExceeded:
            return False

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(attempt, range(12)))

    assert outcomes.count(True) == 3
    usage = spend.usage("key-a", 1)
    assert usage["daily"]["spent"] == 3 * ESTIMATE and usage["daily"]["remaining"] == 0
    assert usage["days"][0]["requests"] == 3


def test_a_redelivered_request_reserves_once(aws: dict[str, str], clock: Clock) -> None:
    spend = guard(aws, clock)
    for _ in range(3):
        spend.reserve("key-a", T2V["model"], T2V, "gen_same")
    assert spend.usage("key-a", 1)["daily"]["spent"] == ESTIMATE


def test_the_reported_usage_replaces_the_estimate_once(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(aws, client, clock, spend=guard(aws, clock))
    accepted = service.submit("key-a", dict(T2V))
    assert spent(aws, clock)["daily"]["spent"] == ESTIMATE
    reported = sim.jobs[accepted.provider_id].credits_used  # the simulator's own figure
    assert accepted.usage["credits_used"] == reported != ESTIMATE

    settle = settlement(aws, clock)
    submitting = accepted.model_copy(update={"status": Status.SUBMITTING, "usage": {}})
    assert settle.record(stream_record(submitting, accepted)) is True
    # the stream redelivers, later changes carry the same usage: nothing counted twice
    assert settle.record(stream_record(submitting, accepted)) is False
    later = accepted.model_copy(update={"status": Status.GENERATING})
    assert settle.record(stream_record(accepted, later)) is False

    usage = spent(aws, clock)
    assert usage["daily"]["spent"] == reported and usage["monthly"]["spent"] == reported
    assert usage["days"] == [
        {"day": usage["daily"]["period"], "model": T2V["model"], "credits": reported, "requests": 1}
    ]


def test_usage_reported_only_on_the_poll_settles_then(aws: dict[str, str], clock: Clock) -> None:
    spend = guard(aws, clock)
    spend.reserve("key-a", T2V["model"], T2V, "gen_poll")
    stamp = "2026-12-01T00:00:00Z"
    base = Generation(
        id="gen_poll", owner="key-a", status=Status.QUEUED, model=T2V["model"], request=dict(T2V),
        created_at=stamp, updated_at=stamp, created_epoch=0, provider_id="p1",
    )  # fmt: skip
    done = base.model_copy(update={"status": Status.COMPLETED, "usage": {"tokens_used": 42}})
    settle = settlement(aws, clock)
    assert settle.record(stream_record(None, base)) is False  # nothing reported yet: estimate stands
    assert spent(aws, clock)["daily"]["spent"] == ESTIMATE
    assert settle.record(stream_record(base, done)) is True
    assert spent(aws, clock)["daily"]["spent"] == 42


@pytest.mark.parametrize("fault", [{"status": 400}, {"status": 401}, {"status": 403}])
def test_a_refused_submit_releases_its_reservation(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator, fault: dict[str, Any]
) -> None:
    service = make_service(aws, client, clock, spend=guard(aws, clock, default_limits=Limits(daily=ESTIMATE)))
    sim.inject({"on": "submit", **fault})
    failed = service.submit("key-a", dict(T2V))
    assert failed.status is Status.FAILED and failed.provider_id is None
    assert spent(aws, clock)["daily"]["spent"] == ESTIMATE  # reserved until the stream settles it

    submitting = failed.model_copy(update={"status": Status.SUBMITTING, "error": None})
    assert settlement(aws, clock).record(stream_record(submitting, failed)) is True

    assert spent(aws, clock)["daily"]["spent"] == 0
    assert service.submit("key-a", dict(T2V)).status is Status.QUEUED  # the budget is free again


def test_a_submit_whose_outcome_is_unknown_keeps_its_reservation(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    service = make_service(aws, client, clock, spend=guard(aws, clock))
    sim.inject({"on": "submit", "status": 500})
    failed = service.submit("key-a", dict(T2V))
    assert failed.submit_outcome_unknown
    submitting = failed.model_copy(update={"status": Status.SUBMITTING, "error": None})
    assert settlement(aws, clock).record(stream_record(submitting, failed)) is False
    assert spent(aws, clock)["daily"]["spent"] == ESTIMATE  # the provider may have charged it


def test_budget_overrides_are_checked_at_cold_start() -> None:
    base = {
        "TABLE_NAME": "t",
        "IDEMPOTENCY_TABLE_NAME": "i",
        "OUTPUTS_BUCKET": "b",
        "AIML_API_KEY_SECRET_ID": "s",
    }
    settings = Settings.from_env(
        {**base, "BUDGET_OVERRIDES": '{"k1": {"daily": 5}}', "BUDGET_DAILY_CREDITS": "9"}
    )
    assert settings.budget_daily_credits == 9 and parse_overrides(settings.budget_overrides)["k1"] == Limits(
        5, 0
    )
    for bad in ('{"k1": {"daily": -1}}', '{"k1": {"weekly": 3}}', "[1]", "not json"):
        with pytest.raises(ConfigurationError, match="BUDGET_OVERRIDES"):
            Settings.from_env({**base, "BUDGET_OVERRIDES": bad})


@pytest.fixture
def api(aws: dict[str, str], client: AimlClient, clock: Clock) -> Any:
    spend = guard(aws, clock, default_limits=Limits(daily=ESTIMATE))
    components = api_components(aws, make_service(aws, client, clock, spend=spend))
    app = build_app(lambda: components)

    def invoke(*args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        import json

        answer = app.resolve(event(*args, **kwargs), Context())
        return answer["statusCode"], json.loads(answer["body"])

    return invoke


def test_the_api_answers_402_budget_exceeded_and_get_usage(api: Any, sim: Simulator) -> None:
    assert api("POST", "/generations", body=T2V)[0] == 202

    status, body = api("POST", "/generations", body=T2V)

    assert status == 402 and body["error"]["code"] == "budget_exceeded"
    assert body["error"]["details"][0]["period"] == "daily"
    # the first waits in the submit queue, the refused one was neither recorded nor sent
    assert sim.submit_attempts == 0 and len(api("GET", "/generations")[1]["items"]) == 1
    status, usage = api("GET", "/usage", query={"days": "7"})
    assert status == 200 and usage["unit"] == "credits"
    assert usage["daily"]["limit"] == ESTIMATE and usage["daily"]["spent"] == ESTIMATE
    assert usage["monthly"]["limit"] is None and usage["monthly"]["remaining"] is None
    assert [(r["model"], r["requests"]) for r in usage["days"]] == [(T2V["model"], 1)]
    status, other = api("GET", "/usage", key_id="key-b")
    assert status == 200 and other["days"] == [] and other["daily"]["spent"] == 0
    assert api("GET", "/usage", query={"days": "0"})[0] == 422


def test_an_upload_past_the_budget_is_a_failed_generation_not_a_retry(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    from tests.unit.test_uploads import Uploads, only, rejected

    spend = guard(aws, clock, overrides={"s3-uploads": Limits(daily=1)})
    up = Uploads(aws, make_service(aws, client, clock, spend=spend))

    event = up.put("uploads/cheetah.png")
    generation = rejected(up, copy.deepcopy(event), "budget_exceeded")

    assert sim.submit_attempts == 0 and "daily budget" in generation.error.message
    # a redelivery finds the failed record: still nothing paid, nothing reserved
    assert only(up.handle(event))["outcome"] == "duplicate" and up.count() == 1
    assert spent(aws, clock, "s3-uploads")["daily"]["spent"] == 0


def test_a_request_beyond_the_queue_cap_reserves_nothing(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    from tests.unit.conftest import make_queue
    from videogen.domain.errors import QueueFull
    from videogen.logic.queue import QueueSettings

    settings = QueueSettings(owner_cap=1, deadline_seconds=3600, claim_seconds=60, job_lease_seconds=600)
    queue = make_queue(aws, clock, settings=settings)
    service = make_service(aws, client, clock, spend=guard(aws, clock), queue=queue)
    service.accept("key-a", T2V)

    with pytest.raises(QueueFull):
        service.accept("key-a", T2V)

    assert spent(aws, clock)["daily"]["spent"] == ESTIMATE  # the refused one holds no estimate


def test_a_generation_cancelled_while_pending_releases_its_estimate_through_the_stream(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    """Never sent, it costs nothing: the SpendFunction as deployed (its stream filter included)
    gets the cancelling change and gives the estimate back."""
    from tests.unit.conftest import make_queue

    service = make_service(aws, client, clock, spend=guard(aws, clock), queue=make_queue(aws, clock))
    pending = service.accept("key-a", T2V)
    assert spent(aws, clock)["daily"]["spent"] == ESTIMATE
    cancelled = service.cancel("key-a", pending.id)

    assert settlement(aws, clock).record(stream_record(pending, cancelled)) is True
    assert spent(aws, clock)["daily"]["spent"] == 0
