"""The submit queue (issue 11): accept first, a learned capacity with leases, fair order, the
per-owner cap, the deadline, cancel while pending, and ambiguous submits never resent.

DynamoDB is moto (tables from template.yaml), the provider is the simulator reached by the real
client; faults (429, 503, timeouts) are injected into the simulator."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from local.clock import Clock
from local.simulator import Simulator
from tests.unit.conftest import RecordingWaker, make_queue, make_service
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_queue import DynamoSemaphore
from videogen.domain.capacity import Capacity, CapacityRules
from videogen.domain.catalog import get_model
from videogen.domain.errors import ConflictError, QueueFull
from videogen.domain.models import QUEUE_EXPIRED, Status
from videogen.domain.ports import QueueEntry
from videogen.logic.queue import QueueSettings, fair_number, make_rank
from videogen.logic.schedule import PollSchedule
from videogen.logic.service import GenerationService

T2V = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "a red fox runs", "duration": 5}
FOREVER = lambda: 10**9  # noqa: E731 (an invocation with all the time it needs)


def body(prompt: str = "a red fox runs") -> dict[str, Any]:
    return {**T2V, "prompt": prompt}


def no_retry_client(sim: Simulator) -> AimlClient:
    """The client as the dispatcher's: no status retried on submit, so every 429 is seen."""
    from tests.unit.conftest import SIM_KEY

    return AimlClient(
        sim.url,
        lambda: SIM_KEY,
        connect_timeout=1,
        submit_read_timeout=1,
        poll_read_timeout=1,
        poll_retries=1,
        backoff_factor=0.01,
        submit_retry_statuses=(),
    )


@pytest.fixture
def rules() -> CapacityRules:
    return CapacityRules(floor=1, ceiling=6, initial=2, increase_after=3, decrease_cooldown_seconds=5)


@pytest.fixture
def waker() -> RecordingWaker:
    return RecordingWaker()


@pytest.fixture
def queued(
    aws: dict[str, str], sim: Simulator, clock: Clock, rules: CapacityRules, waker: RecordingWaker
) -> GenerationService:
    settings = QueueSettings(owner_cap=1100, deadline_seconds=3600, claim_seconds=60, job_lease_seconds=600)
    queue = make_queue(aws, clock, rules=rules, settings=settings, waker=waker)
    return make_service(aws, no_retry_client(sim), clock, queue=queue)


def dispatch(service: GenerationService) -> Any:
    assert service.dispatcher is not None
    return service.dispatcher.run(FOREVER, reserve_ms=0)


def limit(service: GenerationService) -> float:
    assert service.queue is not None
    return service.queue.slots.read().limit


# -- the capacity rules, on their own ------------------------------------------------------------
def full(cap: Capacity, *ids: str) -> Capacity:
    """`cap` with a lease for each id (they fit)."""
    for gid in ids:
        acquired = cap.acquire(gid, 0, 100)
        assert acquired is not None, f"no slot for {gid}"
        cap = acquired
    return cap


def test_slow_start_grows_by_one_per_full_window_accept_until_the_first_throttle(
    rules: CapacityRules,
) -> None:
    cap = Capacity.initial(rules)
    assert cap.slots == 2 and cap.probing
    cap = full(cap, "a").succeeded(rules, 0)  # one of two slots used: not a full window, no growth
    assert (cap.limit, cap.successes) == (2, 0)
    cap = full(cap, "b")
    assert cap.acquire("c", 0, 100) is None  # both slots taken
    cap = cap.succeeded(rules, 0)  # a full window: grows at once (slow start)
    assert cap.limit == 3
    cap = full(cap, "c").succeeded(rules, 0)
    assert cap.limit == 4


def test_after_a_throttle_growth_is_additive_and_the_limit_shrinks_to_what_the_provider_held(
    rules: CapacityRules,
) -> None:
    cap = full(Capacity(limit=5), "a", "b", "c", "d", "e")
    cap = cap.release("e").throttled(rules, 10)  # refused with four of ours running
    assert (cap.limit, cap.slots) == (4, 4) and not cap.probing  # halving (2.5) would idle two
    assert cap.throttled(rules, 11).limit == 4  # the same overload (within the cooldown)
    # Within the cooldown, a slot that freed and was refused again: down to what is held, no lower
    assert cap.release("a").throttled(rules, 11).limit == 3
    assert cap.release("a").release("b").release("c").throttled(rules, 11).limit == 2  # half
    cap = full(cap.release("a"), "e")  # a job of ours ended; its slot taken again: a full window
    cap = cap.succeeded(rules, 20).succeeded(rules, 20)
    assert cap.limit == 4  # two of the three successes needed now
    cap = cap.succeeded(rules, 20)
    assert cap.limit == 5
    # Refused again with no acceptance in between: what is held may count a job that ended
    # unseen, so each further refusal takes one slot off, down to what is held, never below half.
    again = full(Capacity(limit=6), *"abcdef").release("f").throttled(rules, 10)
    assert again.limit == 5  # the first: what was held
    assert again.throttled(rules, 20).limit == 4  # the second: one less, five still held
    assert again.release("e").release("d").throttled(rules, 20).limit == 3  # three held: three
    assert again.release("e").release("d").release("c").throttled(rules, 20).limit == 2.5  # half
    # A cap cut by the provider: refused while holding few, the limit halves (not below the floor).
    few = Capacity(limit=5, decreased_at=1).acquire("a", 30, 100)
    assert few is not None
    cut = few.throttled(rules, 30)
    assert cut.limit == 2.5 and cut.slots == 2
    assert cut.release("a").throttled(rules, 40).limit == 1.25
    assert Capacity(limit=1.5, decreased_at=1).throttled(rules, 50).limit == 1  # the floor


def test_a_throttle_never_grows_the_limit(rules: CapacityRules) -> None:
    """Leases beyond the limit (it shrank while they ran): a refusal keeps it, never raises it."""
    cap = full(Capacity(limit=6), "a", "b", "c", "d", "e", "f")
    cap = replace(cap, limit=3.0).throttled(rules, 10)
    assert cap.limit == 3


def test_the_ceiling_bounds_growth(rules: CapacityRules) -> None:
    cap = Capacity.initial(rules)
    for i in range(40):
        acquired = cap.acquire(f"g{i}", 0, 100)
        cap = (acquired or cap).succeeded(rules, 0)
    assert cap.limit == rules.ceiling


def test_a_lapsed_lease_frees_its_slot(rules: CapacityRules) -> None:
    cap = Capacity.initial(rules)
    cap = cap.acquire("a", 0, 60)
    cap = cap.acquire("b", 0, 60) if cap else None
    assert cap is not None and cap.acquire("c", 30, 90) is None
    later = cap.acquire("c", 61, 120)  # a and b lapsed (their holders died)
    assert later is not None and set(later.leases) == {"c"}


def test_fair_rank_puts_a_late_single_request_at_the_head() -> None:
    head = make_rank(5, "2026-01-01T00:00:00.000Z", "gen_a5")
    assert fair_number(None, head) == 5  # a new owner: the head's round
    assert fair_number(make_rank(999, "t", "gen_a999"), head) == 1000  # a busy owner: after its last
    assert fair_number(make_rank(1, "t", "gen_b1"), head) == 5  # an owner that fell behind catches up


# -- the semaphore in DynamoDB -----------------------------------------------------------------------
def test_concurrent_acquires_never_exceed_the_limit(aws: dict[str, str], rules: CapacityRules) -> None:
    from concurrent.futures import ThreadPoolExecutor

    semaphore = DynamoSemaphore(boto3.client("dynamodb"), aws["QueueTable"], rules)
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda i: semaphore.update(lambda c: c.acquire(f"g{i}", 0, 100)), range(8)))
    assert sum(1 for t in taken if t is not None) == 2
    assert len(semaphore.read().leases) == 2


# -- accept, dispatch, complete --------------------------------------------------------------------
def test_accept_records_pending_with_a_position_and_submits_nothing(
    queued: GenerationService, sim: Simulator, waker: RecordingWaker
) -> None:
    first = queued.accept("key-a", body())
    second = queued.accept("key-a", body("two"))
    assert first.status is Status.PENDING and second.status is Status.PENDING
    assert sim.state()["submit_attempts"] == 0  # accepted, not sent
    assert queued.queue_view(first)[0] == 0
    position, start = queued.queue_view(second)
    assert position == 1 and start is not None
    assert waker.wakeups == [0, 0]  # each accept wakes the dispatcher at once


def after_a_throttle(service: GenerationService) -> None:
    """The semaphore as it is once the provider has refused a submit (no more slow start)."""
    assert service.queue is not None
    service.queue.slots.semaphore.update(lambda c: replace(c, decreased_at=1.0))


def test_slow_start_fills_the_provider_up_to_its_cap_in_the_first_dispatch(
    queued: GenerationService, sim: Simulator
) -> None:
    """A new stack (limit 2, ceiling 6) and a provider that takes 4 at once: the first run keeps
    submitting while every accept finds the window full, until the provider refuses; the limit
    lands on what the provider held (4), not on half the limit it had reached."""
    sim.configure(max_concurrent_jobs=4, default_duration=60)  # none ends during the run
    try:
        ids = [queued.accept("key-a", body(f"p{i}")).id for i in range(8)]
        report = dispatch(queued)
    finally:
        sim.configure(max_concurrent_jobs=None, default_duration=0.3)
    assert report.submitted == 4 and report.throttled == 1
    assert limit(queued) == 4
    states = [queued.store.get(i).status for i in ids]
    assert states.count(Status.QUEUED) == 4 and states.count(Status.PENDING) == 4


def test_dispatch_submits_up_to_the_limit_and_a_finished_job_frees_its_slot(
    queued: GenerationService, sim: Simulator, clock: Clock, waker: RecordingWaker
) -> None:
    after_a_throttle(queued)  # additive growth: the limit does not move within one dispatch
    ids = [queued.accept("key-a", body(f"p{i}")).id for i in range(3)]
    report = dispatch(queued)
    assert report.submitted == 2  # the initial limit
    states = [queued.store.get(i).status for i in ids]
    assert states.count(Status.QUEUED) == 2 and states.count(Status.PENDING) == 1
    assert queued.queue_view(queued.store.get(ids[2]))[0] == 0
    # the first job finishes at the provider: the sweep sees it, frees its slot and wakes the dispatcher
    import time

    time.sleep(0.5)
    waker.wakeups.clear()
    queued.sweep(FOREVER)
    assert waker.wakeups, "a freed slot wakes the dispatcher"
    assert dispatch(queued).submitted == 1
    assert all(queued.store.get(i).status is not Status.PENDING for i in ids)
    assert sim.state()["submit_count"] == 3


def test_a_sweeps_finished_jobs_give_their_slots_back_in_one_write_and_wake_once(
    aws: dict[str, str], sim: Simulator, clock: Clock, waker: RecordingWaker
) -> None:
    """Six jobs end in one concurrent sweep: one rewrite of the capacity item frees all six slots
    (one by one, the sweep's threads would race on that item) and the dispatcher is woken once."""
    rules = CapacityRules(floor=1, ceiling=10, initial=6, increase_after=3)
    queue = make_queue(aws, clock, rules=rules, waker=waker)
    service = make_service(aws, no_retry_client(sim), clock, queue=queue, concurrency=6)
    sim.configure(default_duration=0.2)
    ids = [service.accept("key-a", body(f"p{i}")).id for i in range(6)]
    assert dispatch(service).submitted == 6
    assert len(queue.slots.read().leases) == 6
    import time

    time.sleep(0.5)  # every job finished at the provider
    writes: list[int] = []
    update = queue.slots.semaphore.update

    def counted(change: Any) -> Any:
        answer = update(change)
        writes.append(answer is not None)
        return answer

    queue.slots.semaphore.update = counted  # type: ignore[method-assign]
    waker.wakeups.clear()

    report = service.sweep(FOREVER)

    assert report.outcomes == {"completed": 6}
    assert writes == [True]  # one write gave back all six
    assert queue.slots.read().leases == {}
    assert waker.wakeups == [0]
    assert all(service.store.get(i).status is Status.COMPLETED for i in ids)


def test_a_failed_batch_release_leaves_the_slots_to_their_leases_and_the_sweep_completes(
    aws: dict[str, str], sim: Simulator, clock: Clock, waker: RecordingWaker
) -> None:
    rules = CapacityRules(floor=1, ceiling=10, initial=3, increase_after=3)
    queue = make_queue(aws, clock, rules=rules, waker=waker)
    service = make_service(aws, no_retry_client(sim), clock, queue=queue)
    sim.configure(default_duration=0.2)
    for i in range(3):
        service.accept("key-a", body(f"p{i}"))
    assert dispatch(service).submitted == 3
    import time

    time.sleep(0.5)

    def unreachable(_: Any) -> Any:
        raise ConnectionError("DynamoDB unreachable (injected)")

    counted: list[tuple[str, float]] = []
    queue.metrics = SimpleNamespace(add_metric=lambda name, unit, value: counted.append((name, value)))
    queue.slots.semaphore.update = unreachable  # type: ignore[method-assign]
    report = service.sweep(FOREVER)

    assert report.outcomes == {"completed": 3}  # the completions stand
    assert counted == [("SlotReleaseErrors", 3)]
    del queue.slots.semaphore.update  # the item as it is: the three slots wait for their leases
    assert len(queue.slots.read().live(clock())) == 3
    clock.advance(601)
    assert queue.slots.read().live(clock()) == {}


def test_while_work_waits_for_a_slot_running_jobs_are_polled_tighter_until_the_queue_drains(
    aws: dict[str, str], sim: Simulator, clock: Clock, rules: CapacityRules, waker: RecordingWaker
) -> None:
    schedule = PollSchedule(first_poll_factor=0.5, interval_seconds=60)
    queue = make_queue(aws, clock, rules=rules, waker=waker)
    service = make_service(aws, no_retry_client(sim), clock, queue=queue, schedule=schedule)
    sim.configure(default_duration=600)  # real seconds: every job is still running when polled
    after_a_throttle(service)  # the limit stays at 2 within the dispatch
    ids = [service.accept("key-a", body(f"p{i}")).id for i in range(3)]
    assert dispatch(service).submitted == 2
    assert queue.slots.read().waiting == 1  # the dispatcher left one generation waiting

    typical = get_model(T2V["model"]).typical_seconds
    running = next(service.store.get(i) for i in ids if service.store.get(i).status is Status.QUEUED)
    clock.advance(0.9 * typical)
    age = clock() - running.created_epoch
    polled, _ = service.refresh(running)
    urgent = schedule.next_delay(model=T2V["model"], typical_seconds=typical, elapsed=age, urgent=True)
    normal = schedule.next_delay(model=T2V["model"], typical_seconds=typical, elapsed=age)
    assert urgent < normal / 2  # a second of delay now also holds a slot the waiting job needs
    assert polled.next_poll_at is not None
    assert polled.next_poll_at - clock() == pytest.approx(urgent, abs=1)

    # the waiting generation is cancelled: the next dispatcher run finds the queue empty
    waiting = next(i for i in ids if service.store.get(i).status is Status.PENDING)
    service.cancel("key-a", waiting)
    dispatch(service)
    assert queue.slots.read().waiting == 0
    clock.advance(10)  # past what a process trusts of its last read
    again, _ = service.refresh(polled)
    assert again.next_poll_at is not None
    relaxed = schedule.next_delay(
        model=T2V["model"], typical_seconds=typical, elapsed=clock() - running.created_epoch
    )
    assert again.next_poll_at - clock() == pytest.approx(relaxed, abs=1)


def test_the_backlog_is_written_only_when_it_changes_and_a_failed_read_polls_normally(
    aws: dict[str, str], clock: Clock, rules: CapacityRules
) -> None:
    queue = make_queue(aws, clock, rules=rules)
    semaphore = queue.slots.semaphore
    writes: list[Capacity] = []
    update = semaphore.update

    def counted(change: Any) -> Capacity | None:
        written = update(change)
        if written is not None:
            writes.append(written)
        return written

    semaphore.update = counted  # type: ignore[method-assign]
    queue.note_backlog(5)
    queue.note_backlog(7)  # still waiting: nothing to write
    queue.note_backlog(0)
    queue.note_backlog(0)
    assert [w.waiting for w in writes] == [5, 0]
    queue.note_backlog(6, seen=replace(semaphore.read(), waiting=2))  # the run saw it waiting already
    assert len(writes) == 2

    queue.note_backlog(3)
    clock.advance(10)
    assert queue.backlogged()

    def broken() -> Capacity:
        raise RuntimeError("DynamoDB unavailable")

    semaphore.read = broken  # type: ignore[method-assign]
    clock.advance(10)
    assert not queue.backlogged()  # the hint fails safe: the normal cadence


def test_a_429_requeues_the_generation_and_halves_the_limit(
    queued: GenerationService, sim: Simulator, waker: RecordingWaker
) -> None:
    gen = queued.accept("key-a", body())
    sim.inject({"on": "submit", "status": 429})
    report = dispatch(queued)
    assert report.throttled == 1 and report.submitted == 0
    back = queued.store.get(gen.id)
    assert back.status is Status.PENDING and back.error is None  # a throttle never fails it
    assert back.queue_rank == gen.queue_rank  # keeps its place
    assert limit(queued) == 1
    assert waker.wakeups[-1] >= 2  # a delayed wake-up: the dispatcher tries again later
    assert dispatch(queued).submitted == 1
    assert queued.store.get(gen.id).status is Status.QUEUED


def test_successes_at_a_full_window_grow_the_limit(queued: GenerationService) -> None:
    import time

    after_a_throttle(queued)
    for i in range(8):
        queued.accept("key-a", body(f"p{i}"))
    assert limit(queued) == 2
    for _ in range(3):  # jobs end and new ones start, the window always full
        dispatch(queued)
        time.sleep(0.5)
        queued.sweep(FOREVER)
    assert limit(queued) >= 3


@pytest.mark.parametrize(
    "fault", [{"status": 503}, {"status": 500}, {"timeout": True, "seconds": 1.5}, {"drop": True}]
)
def test_an_ambiguous_submit_is_never_resent(
    queued: GenerationService, sim: Simulator, fault: dict[str, Any]
) -> None:
    gen = queued.accept("key-a", body())
    sim.inject({"on": "submit", **fault})
    dispatch(queued)
    ended = queued.store.get(gen.id)
    assert ended.status is Status.FAILED and ended.submit_outcome_unknown
    assert sim.state()["submit_attempts"] == 1
    assert dispatch(queued).submitted == 0  # nothing is left to send
    assert sim.state()["submit_attempts"] == 1
    assert queued.queue.slots.read().live(queued.clock()) == {}  # the slot was given back


def test_a_crashed_dispatcher_leaks_no_slot(queued: GenerationService, clock: Clock) -> None:
    """A dispatcher took both slots and died before submitting: the leases lapse."""
    assert queued.queue is not None
    gen = queued.accept("key-a", body())
    assert queued.queue.slots.acquire("gen_crashed_1") is not None
    assert queued.queue.slots.acquire("gen_crashed_2") is not None
    assert dispatch(queued).submitted == 0  # no room
    clock.advance(61)  # past the claim lease
    assert dispatch(queued).submitted == 1
    assert queued.store.get(gen.id).status is Status.QUEUED


class MemoryQueueIndex:
    """QueueIndex in memory, with DynamoQueue's semantics (sorted ranks, counters changed with the
    entries, the cap on add): moto's transactions cost ~50 ms each, too slow for a 1,000 burst.
    DynamoQueue itself is exercised by every other test here."""

    def __init__(self) -> None:
        self.entries: dict[str, QueueEntry] = {}

    def add(self, entry: QueueEntry, cap: int) -> bool:
        if entry.rank in self.entries or self.owner_count(entry.owner) >= cap:
            return False
        self.entries[entry.rank] = entry
        return True

    def remove(self, rank: str, owner: str) -> None:
        self.entries.pop(rank, None)

    def head(self, limit: int) -> list[QueueEntry]:
        return [self.entries[r] for r in sorted(self.entries)[:limit]]

    def ahead_of(self, rank: str) -> int:
        return sum(1 for r in self.entries if r < rank)

    def depth(self) -> int:
        return len(self.entries)

    def owner_last(self, owner: str) -> str | None:
        return max((r for r, e in self.entries.items() if e.owner == owner), default=None)

    def owner_count(self, owner: str) -> int:
        return sum(1 for e in self.entries.values() if e.owner == owner)


def test_one_burst_does_not_starve_another_callers_single_request(
    aws: dict[str, str], sim: Simulator, clock: Clock, rules: CapacityRules
) -> None:
    settings = QueueSettings(owner_cap=1100, deadline_seconds=3600, claim_seconds=60, job_lease_seconds=600)
    queue = make_queue(aws, clock, rules=rules, settings=settings)
    queue.index = MemoryQueueIndex()
    service = make_service(aws, no_retry_client(sim), clock, queue=queue)
    after_a_throttle(service)  # two slots, not grown within the run (slow start is over)
    burst = [service.accept("key-a", body(f"burst {i}")) for i in range(1000)]
    assert service.queue_view(burst[-1])[0] == 999
    single = service.accept("key-b", body("just one"))
    assert service.queue_view(burst[-1])[0] == 1000  # key-b's one request went ahead of it
    assert service.queue_view(single)[0] == 1  # after key-a's head, not 1,001st
    dispatch(service)  # two slots: key-a's head and key-b's request
    assert service.store.get(single.id).status is Status.QUEUED
    assert service.store.get(burst[0].id).status is Status.QUEUED
    assert service.store.get(burst[1].id).status is Status.PENDING
    # key-b sends another while key-a still has 998 queued: one round later, still not last
    second = service.accept("key-b", body("and another"))
    assert service.queue_view(second)[0] <= 2


def test_owners_alternate_in_the_queue(queued: GenerationService) -> None:
    """Round-robin on DynamoDB: a burst of 5 and a burst of 3 interleave."""
    a = [queued.accept("key-a", body(f"a{i}")) for i in range(5)]
    b = [queued.accept("key-b", body(f"b{i}")) for i in range(3)]
    assert queued.queue is not None
    order = [e.generation_id for e in queued.queue.index.head(10)]
    assert order == [a[0].id, b[0].id, a[1].id, b[1].id, a[2].id, b[2].id, a[3].id, a[4].id]


def test_an_owner_beyond_its_cap_gets_queue_full(aws: dict[str, str], sim: Simulator, clock: Clock) -> None:
    settings = QueueSettings(owner_cap=3, deadline_seconds=3600, claim_seconds=60, job_lease_seconds=600)
    service = make_service(aws, no_retry_client(sim), clock, queue=make_queue(aws, clock, settings=settings))
    for i in range(3):
        service.accept("key-a", body(f"p{i}"))
    with pytest.raises(QueueFull) as refused:
        service.accept("key-a", body("four"))
    assert refused.value.http_status == 429 and refused.value.code == "queue_full"
    assert service.accept("key-b", body("other")).status is Status.PENDING  # the cap is per owner


def test_a_generation_pending_past_the_deadline_expires(
    queued: GenerationService, sim: Simulator, clock: Clock
) -> None:
    assert queued.queue is not None
    for i in range(2):
        queued.queue.slots.acquire(f"gen_busy_{i}")  # the provider has no room
    gen = queued.accept("key-a", body())
    clock.advance(3599)
    queued.sweep(FOREVER)
    assert queued.store.get(gen.id).status is Status.PENDING
    clock.advance(2)
    queued.sweep(FOREVER)  # the due-index brings it back at its deadline
    ended = queued.store.get(gen.id)
    assert ended.status is Status.FAILED and ended.error is not None and ended.error.code == QUEUE_EXPIRED
    assert queued.queue.index.depth() == 0
    assert sim.state()["submit_attempts"] == 0


def test_cancel_of_a_pending_generation_removes_it_and_costs_nothing(
    queued: GenerationService, sim: Simulator
) -> None:
    assert queued.queue is not None
    gen = queued.accept("key-a", body())
    cancelled = queued.cancel("key-a", gen.id)
    assert cancelled.status is Status.CANCELLED
    assert queued.queue.index.depth() == 0
    assert dispatch(queued).submitted == 0
    assert sim.state()["submit_attempts"] == 0
    with pytest.raises(ConflictError):
        queued.cancel("key-a", gen.id)


# -- the dispatcher's function: wake-ups on the dispatch queue ----------------------------------------
def test_the_dispatcher_function_runs_once_per_batch_and_a_throttled_run_wakes_itself_later(
    aws: dict[str, str], sim: Simulator, clock: Clock, rules: CapacityRules
) -> None:
    from videogen.adapters.sqs_waker import SqsWaker
    from videogen.entrypoints.dispatcher import DispatchWakeups

    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=aws["DispatchQueue"])["QueueUrl"]
    service = make_service(
        aws, no_retry_client(sim), clock, queue=make_queue(aws, clock, rules=rules, waker=SqsWaker(sqs, url))
    )
    gen = service.accept("key-a", body())
    woken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(woken) == 1  # the accept's wake-up, at once
    sqs.delete_message(QueueUrl=url, ReceiptHandle=woken[0]["ReceiptHandle"])

    class Context:
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 60_000

    sim.inject({"on": "submit", "status": 429})
    answer = DispatchWakeups(service).handle({"Records": [{"body": "{}"}] * 3}, Context())
    assert answer["batchItemFailures"] == [] and answer["throttled"] == 1 and answer["retry_in"] == 2
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # delayed: not visible yet
    assert service.store.get(gen.id).status is Status.PENDING
