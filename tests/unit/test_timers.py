"""Poll timers (videogen.logic.timers on SQS) and the shared schedule (ModelStatsTable): moto for
AWS, the simulator for the provider. Each failure path injects its fault: a timer that could not be
armed (the sweep recovers it), a timer that fires early or late, the timer path and the sweep
racing on one completion, the statistics table unreachable."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import boto3
import pytest

from local.clock import Clock
from local.simulator import Simulator
from tests.unit.conftest import make_service, wait_until
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_model_stats import DynamoModelStats
from videogen.adapters.sqs_timers import MAX_DELAY_SECONDS, SqsPollTimers
from videogen.domain.models import Driver, Status
from videogen.domain.polling import Timer, delay_seconds
from videogen.entrypoints.poll_timers import PollTimerEvents
from videogen.logic.refresh import RefreshOutcome
from videogen.logic.schedule import PollSchedule, poll_at
from videogen.logic.service import GenerationService

T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "A red fox runs through snow"}
MODEL = T2V["model"]


class SpySqs:
    """The real (moto) SQS client, with every message sent recorded (SendMessage, and each entry
    of a SendMessageBatch); `fail` makes sends raise, `refuse` names generations whose batch
    entries SQS reports failed."""

    def __init__(self) -> None:
        self.client = boto3.client("sqs")
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.fail = False
        self.refuse: set[str] = set()

    def send_message(self, **kwargs: Any) -> Any:
        if self.fail:
            raise ConnectionError("SQS unreachable (injected)")
        self.calls.append("SendMessage")
        self.sent.append(kwargs)
        return self.client.send_message(**kwargs)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        if self.fail:
            raise ConnectionError("SQS unreachable (injected)")
        self.calls.append("SendMessageBatch")
        refused = [e for e in Entries if Timer.from_json(e["MessageBody"]).generation_id in self.refuse]
        taken = [e for e in Entries if e not in refused]
        answer = self.client.send_message_batch(QueueUrl=QueueUrl, Entries=taken) if taken else {}
        self.sent += [{"QueueUrl": QueueUrl, **{k: v for k, v in e.items() if k != "Id"}} for e in taken]
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in refused]
        return {"Successful": answer.get("Successful", []), "Failed": failed}

    def timers(self) -> list[tuple[Timer, int]]:
        return [(Timer.from_json(m["MessageBody"]), m["DelaySeconds"]) for m in self.sent]


class Metrics:
    def __init__(self) -> None:
        self.values: list[tuple[str, float]] = []

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values.append((name, value))

    def named(self, name: str) -> list[float]:
        return [v for n, v in self.values if n == name]


@pytest.fixture
def sqs(aws: dict[str, str]) -> SpySqs:
    return SpySqs()


def queue_url(aws: dict[str, str]) -> str:
    return boto3.client("sqs").get_queue_url(QueueName=aws["PollTimerQueue"])["QueueUrl"]


def timed_service(
    aws: dict[str, str], client: Any, clock: Clock, sqs: SpySqs, **overrides: Any
) -> GenerationService:
    options: dict[str, Any] = {
        "timers": SqsPollTimers(sqs, queue_url(aws)),
        "schedule": PollSchedule(first_poll_factor=0.6, interval_seconds=60),
        "timer_grace_seconds": 30,
        "metrics": Metrics(),
    }
    return make_service(aws, client, clock, **{**options, **overrides})


# -- arming ------------------------------------------------------------------------------------
def test_an_accepted_submit_arms_its_first_poll_to_the_second(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs
) -> None:
    service = timed_service(aws, client, clock, sqs)
    generation = service.submit("owner-a", T2V)

    [(timer, delay)] = sqs.timers()
    assert timer == Timer(generation.id, generation.next_poll_at or 0)
    # delivered no earlier than the due second, and at most a second after it
    assert generation.next_poll_at is not None
    assert 0 <= clock() + delay - generation.next_poll_at < 1.5
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(aws), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # moto holds it back


def test_a_failed_submit_and_a_workflow_submit_arm_nothing(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    service = timed_service(aws, client, clock, sqs)
    sim.inject({"on": "submit", "status": 500})
    failed = service.submit("owner-a", T2V)
    workflow = service.submit("owner-a", T2V, driver=Driver.WORKFLOW)

    assert failed.status is Status.FAILED and workflow.status is Status.QUEUED
    assert sqs.sent == []  # the state machine's Wait polls a workflow generation


def test_waits_beyond_sqs_limit_are_capped_and_rounded_up() -> None:
    assert delay_seconds(1000.2, 100.0, max_delay=MAX_DELAY_SECONDS) == MAX_DELAY_SECONDS
    assert delay_seconds(105, 100.4, max_delay=MAX_DELAY_SECONDS) == 5  # 4.6 s -> 5: never early
    assert delay_seconds(90, 100.0, max_delay=MAX_DELAY_SECONDS) == 0  # overdue: now


@pytest.mark.parametrize("now", [1000.0, 1000.0001, 1000.5, 1000.9999])
@pytest.mark.parametrize("delay", [0.0001, 0.4, 1.0, 14.6, 59.99])
def test_stored_poll_times_round_up_never_before_the_wait(now: float, delay: float) -> None:
    due = poll_at(now, delay)
    assert isinstance(due, int) and now + delay <= due < now + delay + 1


# -- firing ------------------------------------------------------------------------------------
def test_a_due_timer_refreshes_and_arms_the_next_poll(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    sim.configure(default_duration=30)  # still running when the timer fires
    service = timed_service(aws, client, clock, sqs)
    generation = service.submit("owner-a", T2V)
    [(first, _)] = sqs.timers()
    clock.advance(first.due - clock() + 0.2)

    assert service.fire_timer(first) == RefreshOutcome.WAITING.value
    polled = service.store.get(generation.id)
    assert polled is not None and polled.poll_count == 1
    [_, (second, delay)] = sqs.timers()
    assert second == Timer(generation.id, polled.next_poll_at or 0) and second.due > first.due
    assert delay == math.ceil(second.due - clock()) or delay == math.ceil(second.due - clock()) + 1


def test_a_timer_of_a_generation_that_moved_on_is_dropped_without_a_poll(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    service = timed_service(aws, client, clock, sqs)
    generation = service.submit("owner-a", T2V)
    [(timer, _)] = sqs.timers()
    clock.advance(timer.due - clock())
    service.cancel("owner-a", generation.id)
    polls = sim.poll_count

    assert service.fire_timer(timer) == "stale"  # cancelled
    assert service.fire_timer(Timer(generation.id, timer.due - 5)) == "stale"  # an older due time
    assert service.fire_timer(Timer("gen-missing", timer.due)) == "stale"
    assert sim.poll_count == polls


def test_an_early_timer_is_rearmed_for_the_rest_of_its_wait(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    service = timed_service(aws, client, clock, sqs)
    generation = service.submit("owner-a", T2V)
    long_wait = Timer(generation.id, int(clock()) + 2000)  # a hop of a wait over 900 s
    polls = sim.poll_count

    assert service.fire_timer(long_wait) == "rearmed"
    assert sqs.timers()[-1] == (long_wait, MAX_DELAY_SECONDS)
    clock.advance(1500)
    assert service.fire_timer(long_wait) == "rearmed"
    assert 498 <= sqs.timers()[-1][1] <= 500  # the rest of the wait, 500 s less the seconds this test took
    assert sim.poll_count == polls


def test_a_timer_completes_a_finished_job_once(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    service = timed_service(aws, client, clock, sqs)
    generation = service.submit("owner-a", T2V)
    [(timer, _)] = sqs.timers()
    time.sleep(0.4)  # the simulator's job (0.3 s of real time) is done
    clock.advance(timer.due - clock())

    assert service.fire_timer(timer) == RefreshOutcome.COMPLETED.value
    done = service.store.get(generation.id)
    assert done is not None and done.status is Status.COMPLETED and done.video_key
    assert len(sqs.sent) == 1  # nothing more to poll
    assert service.fire_timer(timer) == "stale"  # a redelivered message changes nothing
    # counted once, as a sweep's completion is: the dashboard's Generations and its alarms see it
    assert service.metrics.named("GenerationsCompleted") == [1]  # type: ignore[attr-defined]


# -- the sweep as the safety net ---------------------------------------------------------------
def test_a_lost_timer_is_recovered_by_the_sweep_after_the_grace(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    sim.configure(default_duration=3600)
    service = timed_service(aws, client, clock, sqs)
    sqs.fail = True  # SendMessage fails: the first poll's timer is lost
    generation = service.submit("owner-a", T2V)
    assert generation.status is Status.QUEUED  # the submit itself succeeded
    assert service.metrics.named("PollTimerArmErrors") == [1]  # type: ignore[attr-defined]
    sqs.fail = False
    assert generation.next_poll_at is not None

    clock.advance(generation.next_poll_at - clock() + 5)  # due, but within the grace: a timer's
    assert service.sweep(lambda: 60_000).due == 0
    clock.advance(30)  # overdue by more than the grace: lost
    report = service.sweep(lambda: 60_000)

    assert report.due == 1 and report.outcomes == {"waiting": 1}
    polled = service.store.get(generation.id)
    assert polled is not None and polled.poll_count == 1
    assert sqs.timers() == [(Timer(generation.id, polled.next_poll_at or 0), sqs.timers()[0][1])]


def test_without_timers_the_sweep_takes_everything_due_at_once(
    aws: dict[str, str], client: AimlClient, clock: Clock
) -> None:
    service = make_service(aws, client, clock)  # no timer queue configured: the sweep alone
    generation = service.submit("owner-a", T2V)
    assert generation.next_poll_at is not None
    clock.advance(generation.next_poll_at - clock())
    assert service.sweep(lambda: 60_000).due == 1


def test_timer_and_sweep_racing_complete_exactly_once(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    """Both read the same version and both see the job done at the same moment (the provider
    answers neither before both asked); only one claims the copy and writes `completed`."""
    barrier = threading.Barrier(2, timeout=10)
    archived: list[str] = []

    class BothAtOnce:
        def submit(self, model: Any, fields: Any) -> Any:
            return client.submit(model, fields)

        def poll(self, model: Any, provider_id: str) -> Any:
            answer = client.poll(model, provider_id)
            barrier.wait()
            return answer

    service = timed_service(aws, BothAtOnce(), clock, sqs, timer_grace_seconds=0)
    real_archive = service.archive.archive

    def counting_archive(generation_id: str, url: str) -> str:
        archived.append(generation_id)
        return real_archive(generation_id, url)

    service.archive.archive = counting_archive  # type: ignore[method-assign]
    generation = service.submit("owner-a", T2V)
    [(timer, _)] = sqs.timers()
    time.sleep(0.4)
    clock.advance(timer.due - clock())

    results: dict[str, Any] = {}
    timer_thread = threading.Thread(target=lambda: results.setdefault("timer", service.fire_timer(timer)))
    sweep_thread = threading.Thread(target=lambda: results.setdefault("sweep", service.sweep(lambda: 60_000)))
    timer_thread.start()
    sweep_thread.start()
    timer_thread.join(15)
    sweep_thread.join(15)

    outcomes = [results["timer"], *[k for k, n in results["sweep"].outcomes.items() for _ in range(n)]]
    assert sorted(outcomes) == ["completed", "conflict"]
    assert archived == [generation.id]  # one copy into the bucket
    done = service.store.get(generation.id)
    assert done is not None and done.status is Status.COMPLETED
    # whichever of the two wrote it, the completion is counted once
    assert service.metrics.named("GenerationsCompleted") == [1]  # type: ignore[attr-defined]
    assert len(service.metrics.named("DetectionDelaySeconds")) == 1  # type: ignore[attr-defined]


# -- the consumer ------------------------------------------------------------------------------
class Context:
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:timers",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_the_consumer_drops_unreadable_timers_and_retries_on_store_failures(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    service = timed_service(aws, client, clock, sqs)
    generation = service.submit("owner-a", T2V)
    [(timer, _)] = sqs.timers()
    time.sleep(0.4)
    clock.advance(timer.due - clock())
    events = PollTimerEvents(service)

    answer = events.handle(sqs_event("not json", timer.to_json()), Context())
    assert answer == {"batchItemFailures": []}
    done = service.store.get(generation.id)
    assert done is not None and done.status is Status.COMPLETED

    real_get = service.store.get

    def unreachable_for_one(generation_id: str) -> Any:
        if generation_id == "gen-x":
            raise ConnectionError("DynamoDB unreachable (injected)")
        return real_get(generation_id)

    service.store.get = unreachable_for_one  # type: ignore[method-assign]
    answer = events.handle(
        sqs_event(timer.to_json(), json.dumps({"id": "gen-x", "due": timer.due})), Context()
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # back after its visibility


# -- the shared schedule -----------------------------------------------------------------------
def stats(aws: dict[str, str]) -> DynamoModelStats:
    return DynamoModelStats(boto3.client("dynamodb"), aws["ModelStatsTable"])


def test_every_completion_is_added_to_the_shared_statistics_and_a_cold_start_reads_them(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    shared = stats(aws)
    poller = make_service(
        aws, client, clock, schedule=PollSchedule(first_poll_factor=0, interval_seconds=0, shared=shared)
    )
    generation = poller.submit("owner-a", T2V)
    time.sleep(0.4)
    clock.advance(100)  # the job took about 100 s as the service sees it
    poller.sweep(lambda: 60_000)
    done = poller.store.get(generation.id)
    assert done is not None and done.status is Status.COMPLETED

    sums = shared.read(MODEL)
    assert sums is not None and sums.count == 1
    assert math.exp(sums.total) == pytest.approx(50, rel=0.05)  # midpoint of [0, 100] s

    # Another function, freshly started (the API's submit): its first poll uses what was learned.
    catalog_only = PollSchedule(first_poll_factor=1.0)
    cold = PollSchedule(first_poll_factor=1.0, shared=stats(aws))
    typical = 186  # the catalog's time for this model
    assert catalog_only.first_delay(typical, model=MODEL) == pytest.approx(typical)
    # the catalog's prior (worth 2 completions) pooled with the one seen: exp((2 ln 186 + ln 50) / 3)
    expected = math.exp((2 * math.log(typical) + sums.total) / 3)
    assert cold.first_delay(typical, model=MODEL) == pytest.approx(expected, rel=0.01)
    assert expected < 0.7 * typical


def test_the_workflow_path_feeds_the_shared_statistics(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    shared = stats(aws)
    service = make_service(aws, client, clock, schedule=PollSchedule(shared=shared))
    generation = service.submit_once("gen-workflow-1", "owner-a", T2V)
    assert generation.status is Status.PENDING  # the workflow's Submit only accepts it
    assert service.dispatcher is not None  # the DispatcherFunction's work: submit to the provider
    assert service.dispatcher.run(lambda: 10**9, reserve_ms=0).submitted == 1
    time.sleep(0.4)
    clock.advance(40)
    wait_until(lambda: service.fetch(generation.id)[0].status is Status.COMPLETED)

    sums = shared.read(MODEL)
    assert sums is not None and sums.count == 1


def test_shared_statistics_are_cached_and_a_failing_table_never_fails_a_poll(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    reads: list[str] = []
    now = [0.0]

    class Counting(DynamoModelStats):
        def read(self, model: str) -> Any:
            reads.append(model)
            return super().read(model)

    schedule = PollSchedule(
        shared=Counting(boto3.client("dynamodb"), aws["ModelStatsTable"]), monotonic=lambda: now[0]
    )
    for _ in range(5):
        schedule.first_delay(120, model=MODEL)
    assert reads == [MODEL]  # one GetItem per model per TTL
    now[0] += 61
    schedule.first_delay(120, model=MODEL)
    assert reads == [MODEL, MODEL]

    broken = PollSchedule(
        first_poll_factor=0,
        interval_seconds=0,
        shared=DynamoModelStats(boto3.client("dynamodb"), "no-such-table"),
    )
    service = make_service(aws, client, clock, schedule=broken)
    generation = service.submit("owner-a", T2V)
    time.sleep(0.4)
    service.sweep(lambda: 60_000)
    done = service.store.get(generation.id)
    assert done is not None and done.status is Status.COMPLETED
    assert broken.shared_errors >= 2  # the read and the add failed; the poll did not


# -- the wiring --------------------------------------------------------------------------------
def test_the_settings_turn_timers_the_shared_schedule_and_the_fixed_baseline_on(aws: dict[str, str]) -> None:
    from videogen.bootstrap import build_schedule, build_service
    from videogen.logic.schedule import FixedSchedule
    from videogen.settings import Settings

    base = {
        "table_name": aws["GenerationsTable"],
        "idempotency_table_name": aws["IdempotencyTable"],
        "outputs_bucket": aws["OutputsBucket"],
        "aiml_api_key_secret_id": aws["AimlApiKeySecret"],
    }
    bare = build_service(Settings.model_validate(base))
    assert not bare.arming.enabled and bare.sweeper.lag_seconds == 0 and bare.schedule.shared is None

    wired = build_service(
        Settings.model_validate(
            {**base, "poll_timer_queue_url": queue_url(aws), "model_stats_table_name": aws["ModelStatsTable"]}
        )
    )
    assert wired.arming.enabled and wired.sweeper.lag_seconds == 30
    assert isinstance(wired.schedule.shared, DynamoModelStats)

    fixed = build_schedule(Settings.model_validate({**base, "poll_fixed_interval_seconds": 15}))
    assert isinstance(fixed, FixedSchedule)
    assert fixed.first_delay(300, model=MODEL) == 15
    assert fixed.next_delay(model=MODEL, typical_seconds=300, elapsed=290) == 15


def test_a_sweep_arms_its_timers_ten_to_a_call_and_a_refused_one_is_counted_lost(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    """One SendMessageBatch per ten timers instead of a SendMessage each; SQS refusing an entry
    (or the whole call) loses those timers only, counted, and the sweep goes on."""
    sim.configure(default_duration=3600)  # still running at every poll
    service = timed_service(aws, client, clock, sqs, timer_grace_seconds=0)
    generations = [service.submit("owner-a", {**T2V, "prompt": f"A fox, take {n}"}) for n in range(23)]
    sqs.calls.clear(), sqs.sent.clear()
    clock.advance(max(g.next_poll_at or 0 for g in generations) - clock() + 1)
    sqs.refuse = {generations[4].id}

    report = service.sweep(lambda: 60_000)

    assert report.outcomes == {"waiting": 23}
    assert sqs.calls == ["SendMessageBatch"] * 3  # 10 + 10 + 3
    polled = {g.id: service.store.get(g.id) for g in generations}
    armed = {timer.generation_id: timer.due for timer, _ in sqs.timers()}
    assert armed == {i: g.next_poll_at for i, g in polled.items() if i != generations[4].id}
    assert service.metrics.named("PollTimerArmErrors") == [1]  # type: ignore[attr-defined]

    sqs.fail, sqs.refuse = True, set()  # the queue unreachable: every timer of the sweep lost
    clock.advance(max(g.next_poll_at or 0 for g in polled.values() if g) - clock() + 1)
    assert service.sweep(lambda: 60_000).outcomes == {"waiting": 23}
    assert sum(service.metrics.named("PollTimerArmErrors")) == 1 + 23  # type: ignore[attr-defined]


def test_a_batch_of_fired_timers_arms_the_next_ones_in_one_call(
    aws: dict[str, str], client: AimlClient, clock: Clock, sqs: SpySqs, sim: Simulator
) -> None:
    sim.configure(default_duration=3600)
    service = timed_service(aws, client, clock, sqs)
    generations = [service.submit("owner-a", {**T2V, "prompt": f"A heron, take {n}"}) for n in range(4)]
    bodies = [m["MessageBody"] for m in sqs.sent]
    sqs.calls.clear(), sqs.sent.clear()
    clock.advance(max(g.next_poll_at or 0 for g in generations) - clock() + 0.2)

    answer = PollTimerEvents(service).handle(sqs_event(*bodies), Context())

    assert answer == {"batchItemFailures": []}
    assert sqs.calls == ["SendMessageBatch"]
    assert sorted(t.generation_id for t, _ in sqs.timers()) == sorted(g.id for g in generations)
