"""The learning polling schedule: first poll near the expected duration, a cadence that tightens
as completion becomes likely, learning from completions, backing off on throttling; and the
service feeding it (poll times, completions, 429s)."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local.simulator import Simulator
from tests.unit.conftest import POLL_RETRIES, Clock, make_service
from videogen.adapters.aiml_provider import AimlClient
from videogen.domain.catalog import get_model
from videogen.logic.refresh import RefreshOutcome
from videogen.logic.schedule import PollSchedule

KLING = "kling-video/v1.6/standard/text-to-video"
TYPICAL = get_model(KLING).typical_seconds  # the time its page states


def test_first_poll_waits_for_a_share_of_the_catalogs_typical_duration() -> None:
    schedule = PollSchedule(first_poll_factor=0.6)
    assert schedule.first_delay(180, model=KLING) == pytest.approx(108)
    assert schedule.first_delay(45) == pytest.approx(27)  # no model: the catalog value only


def test_cadence_tightens_as_completion_becomes_likely_and_stays_in_bounds() -> None:
    schedule = PollSchedule(interval_seconds=60, min_interval_seconds=5)
    waits = {t: schedule.next_delay(model=KLING, typical_seconds=180, elapsed=t) for t in (30, 100, 150, 180)}
    assert waits[30] == 60  # completion unlikely soon: the longest wait
    assert waits[30] > waits[100] > waits[150] >= waits[180]  # tighter towards the expected time
    assert all(5 <= w <= 60 for w in waits.values())
    assert waits[180] < 30


def test_a_slower_model_is_polled_less_often_at_the_same_stage() -> None:
    schedule = PollSchedule()
    fast = schedule.next_delay(model="a", typical_seconds=60, elapsed=60)
    slow = schedule.next_delay(model="b", typical_seconds=300, elapsed=300)
    assert fast < slow
    # d * h = const gives d ~ sqrt(typical): five times slower is ~2.2x the wait, not 5x
    assert slow / fast == pytest.approx(math.sqrt(5), rel=0.25)


def test_completions_teach_the_model_its_real_duration() -> None:
    schedule = PollSchedule(first_poll_factor=0.6, memory=10)
    for _ in range(10):
        schedule.observe(KLING, 90, typical_seconds=180)  # the catalog guessed 180; it takes 90
    belief = schedule.belief(KLING, 180)
    assert belief.median == pytest.approx(90, rel=0.15)
    assert schedule.first_delay(180, model=KLING) == pytest.approx(0.6 * belief.median)
    # other models keep their catalog prior
    assert schedule.first_delay(60, model="runway/gen4_turbo") == pytest.approx(36)
    # and the cadence follows the learned time: at 90 s it is now near completion
    learned = schedule.next_delay(model=KLING, typical_seconds=180, elapsed=90)
    untaught = PollSchedule().next_delay(model=KLING, typical_seconds=180, elapsed=90)
    assert learned < untaught


def test_learning_follows_recent_completions_and_ignores_nonsense() -> None:
    schedule = PollSchedule(memory=5)
    for _ in range(20):
        schedule.observe("m", 100, typical_seconds=100)
    for _ in range(20):
        schedule.observe("m", 200, typical_seconds=100)  # the provider slowed down
    assert schedule.belief("m", 100).median == pytest.approx(200, rel=0.1)
    before = schedule.belief("m", 100)
    for bad in (0, -5, math.nan, math.inf):
        schedule.observe("m", bad, typical_seconds=100)
    assert schedule.belief("m", 100) == before


def test_throttling_backs_off_the_job_and_slows_the_whole_fleet_until_polls_succeed() -> None:
    schedule = PollSchedule(interval_seconds=60, max_backoff_seconds=300, max_pressure=8)
    assert schedule.failure_delay(1) == 60
    assert schedule.failure_delay(3) == 240
    assert schedule.failure_delay(6) == 300  # capped
    assert schedule.failure_delay(1, retry_after=400) == 400  # Retry-After wins when longer

    normal = schedule.next_delay(model=KLING, typical_seconds=180, elapsed=150)
    schedule.failure_delay(1, 2, throttled=True)
    schedule.failure_delay(1, 2, throttled=True)
    assert schedule.pressure == 4
    slowed = PollSchedule().next_delay(model=KLING, typical_seconds=180, elapsed=150) * 4
    assert schedule.next_delay(model=KLING, typical_seconds=180, elapsed=150) == pytest.approx(slowed)
    for _ in range(5):
        schedule.failure_delay(1, throttled=True)
    assert schedule.pressure == 8  # bounded
    for _ in range(100):  # every successful poll eases it
        schedule.next_delay(model=KLING, typical_seconds=180, elapsed=150)
    assert schedule.pressure == 1
    assert schedule.next_delay(model=KLING, typical_seconds=180, elapsed=150) == pytest.approx(normal)


def test_while_work_waits_for_a_slot_the_cadence_is_tighter_but_keeps_its_bounds() -> None:
    schedule = PollSchedule(min_interval_seconds=5, urgent_min_interval_seconds=2)
    for elapsed in (0.5 * TYPICAL, 0.9 * TYPICAL, TYPICAL, 1.5 * TYPICAL):
        normal = schedule.next_delay(model=KLING, typical_seconds=TYPICAL, elapsed=elapsed)
        urgent = schedule.next_delay(model=KLING, typical_seconds=TYPICAL, elapsed=elapsed, urgent=True)
        assert 2 <= urgent <= normal <= 60
    at_the_median = schedule.next_delay(model=KLING, typical_seconds=TYPICAL, elapsed=TYPICAL, urgent=True)
    assert at_the_median < schedule.next_delay(model=KLING, typical_seconds=TYPICAL, elapsed=TYPICAL) / 2
    # nothing to balance without the job's model and age: the longest wait, urgent or not
    assert schedule.next_delay(urgent=True) == schedule.next_delay() == 60


def test_zero_intervals_poll_at_once_for_tests_and_the_local_stack() -> None:
    schedule = PollSchedule(first_poll_factor=0, interval_seconds=0)
    assert schedule.first_delay(180, model=KLING) == 0
    assert schedule.next_delay(model=KLING, typical_seconds=180, elapsed=1) == 0
    assert schedule.next_delay() == 0
    assert schedule.failure_delay(3) == 0
    assert PollSchedule(interval_seconds=1).next_delay(model=KLING, typical_seconds=180, elapsed=1) == 1


def test_one_schedule_is_safe_to_share_between_sweep_threads() -> None:
    schedule = PollSchedule(memory=1000)

    def work(i: int) -> float:
        schedule.observe("m", 100 + i % 3, typical_seconds=100)
        schedule.failure_delay(1, throttled=i % 50 == 0)
        return schedule.next_delay(model="m", typical_seconds=100, elapsed=i % 120)

    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(work, range(2000)))
    assert all(0 < w <= 60 * 8 for w in waits)
    assert schedule.belief("m", 100).median == pytest.approx(101, rel=0.05)


# -- the service drives it ----------------------------------------------------------------------
def test_the_service_asks_the_schedule_for_every_poll_time_and_teaches_it(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    schedule = PollSchedule(first_poll_factor=0.5, interval_seconds=60)
    service = make_service(aws, client, clock, schedule=schedule)
    sim.configure(default_duration=1.5)  # real seconds: running at the first poll, done after

    generation = service.submit("owner-a", {"model": KLING, "prompt": "A fox"})
    assert generation.next_poll_at is not None
    assert generation.next_poll_at - generation.created_epoch == pytest.approx(0.5 * TYPICAL, abs=1)

    clock.advance(150)
    polled, outcome = service.refresh(generation)
    assert outcome is RefreshOutcome.WAITING
    expected = schedule.next_delay(model=KLING, typical_seconds=TYPICAL, elapsed=150)
    assert polled.next_poll_at - clock() == pytest.approx(expected, abs=2)
    assert expected < 60  # near the typical time: tighter than the longest wait

    time.sleep(1.6)  # the job is now done at the simulator
    clock.advance(20)
    _, outcome = service.refresh(polled)
    assert outcome is RefreshOutcome.COMPLETED
    # learnt: finished between the poll at 150 s and the one at 170 s
    belief = schedule.belief(KLING, TYPICAL)
    assert belief.weight > schedule.prior_weight
    assert belief.median < TYPICAL


def test_a_throttled_poll_backs_off_the_fleet(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    schedule = PollSchedule(first_poll_factor=0, interval_seconds=10)
    service = make_service(aws, client, clock, schedule=schedule)
    sim.configure(default_duration=3600)
    generation = service.submit("owner-a", {"model": KLING, "prompt": "A fox"})

    sim.inject(*[{"on": "poll", "status": 429, "retry_after": 0}] * (POLL_RETRIES + 1))
    before = clock()
    updated, outcome = service.refresh(generation)
    assert outcome is RefreshOutcome.PROVIDER_ERROR
    assert updated.last_poll_error == "rate_limited"
    assert schedule.pressure == 2
    assert updated.next_poll_at is not None and updated.next_poll_at >= int(before + 10)
