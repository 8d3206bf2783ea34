"""What every reliability scenario stands on: the running stack (`Harness`), the result it
reports (`Result`, `scenario`), the ground-truth recorders (`WriteLog`, `CountingMetrics`) and
the helpers that submit and sweep many generations at once.

Services are built by videogen.bootstrap.build_service, the production wiring, on the
harness's boto3 clients; a scenario replaces single parts (the clock, the metrics sink, a
wrapped store) through its overrides and keeps the rest.

The stack loads the layer's modules afresh when it starts (a cold start), and build_service
imports the service's modules when it is called: a scenario meets the service's classes from
that load, not from the one this package was imported with. So the scenarios compare statuses
by value (Status is a StrEnum) and import what must be the service's own class (an exception
to catch, a provider client whose errors the service catches, the entry points that call it)
when they run."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from local.clock import Clock
from local.stack import LocalStack
from videogen.bootstrap import build_service, dynamodb_client, s3_client
from videogen.domain.models import Generation, Status
from videogen.logic.service import GenerationService
from videogen.settings import Settings

MODEL = "video-01"
# Where a status stands in a record's life: a write may only keep or raise it.
# `pending` and `submitting` share a rank: a throttled submit goes back to the queue.
RANK = {
    Status.PENDING.value: 0,
    Status.SUBMITTING.value: 0,
    Status.QUEUED.value: 1,
    Status.GENERATING.value: 2,
    **{s.value: 3 for s in Status if s.terminal},
}


@dataclass
class Result:
    key: str
    scenario: str
    must_hold: str
    holds: bool = False
    measured: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # The same scenario with its guard removed, which must fail (bench/reliability/controls.py).
    negative_control: dict[str, Any] | None = None

    def check(self, condition: bool, failure: str) -> None:
        if not condition:
            self.failures.append(failure)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "must_hold": self.must_hold,
            "holds": self.holds,
            "summary": self.summary,
            "measured": self.measured,
            "failures": self.failures,
            "seconds": round(self.seconds, 1),
            **({"negative_control": self.negative_control} if self.negative_control is not None else {}),
        }


def scenario(key: str, description: str, must_hold: str) -> Callable[..., Callable[..., Result]]:
    """Times a scenario, catches what it raises as a failure, and sets `holds`."""

    def wrap(run: Callable[..., None]) -> Callable[..., Result]:
        @functools.wraps(run)
        def timed(*args: Any, **kwargs: Any) -> Result:
            result = Result(key, description, must_hold)
            started = time.perf_counter()
            try:
                run(result, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 (a crashed scenario is a failed one, reported)
                result.failures.append(f"scenario raised {type(exc).__name__}: {exc}")
            result.seconds = time.perf_counter() - started
            result.holds = not result.failures
            return result

        return timed

    return wrap


# -- measuring ----------------------------------------------------------------------------------
class CountingMetrics:
    """A MetricsSink that adds up every metric by name (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: defaultdict[str, float] = defaultdict(float)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        with self._lock:
            self.totals[name] += value


class WriteLog:
    """Successful record writes and output objects, seen by botocore hooks on the clients."""

    def __init__(self, dynamodb: Any, s3: Any, outputs_bucket: str) -> None:
        self._lock = threading.Lock()
        self._bucket = outputs_bucket
        self.writes: dict[str, list[tuple[int, str]]] = defaultdict(list)  # id -> [(version, status)]
        self.objects: Counter[str] = Counter()  # key -> times written
        self._hooks: list[tuple[Any, str, Callable[..., None]]] = [
            (dynamodb, "before-parameter-build.dynamodb.PutItem", self._before_put),
            (dynamodb, "after-call.dynamodb.PutItem", self._after_put),
            (s3, "before-parameter-build.s3.PutObject", self._before_object),
            (s3, "before-parameter-build.s3.CompleteMultipartUpload", self._before_object),
            (s3, "after-call.s3.PutObject", self._after_object),
            (s3, "after-call.s3.CompleteMultipartUpload", self._after_object),
        ]

    def __enter__(self) -> WriteLog:
        for client, event, hook in self._hooks:
            client.meta.events.register(event, hook, unique_id=f"writelog-{id(self)}-{event}")
        return self

    def __exit__(self, *exc: object) -> None:
        for client, event, _ in self._hooks:
            client.meta.events.unregister(event, unique_id=f"writelog-{id(self)}-{event}")

    def _before_put(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        item = params.get("Item") or {}
        if "id" in item and "status" in item and "version" in item:
            context["writelog"] = (item["id"]["S"], int(item["version"]["N"]), item["status"]["S"])

    def _after_put(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        write = context.get("writelog")
        if write and http_response.status_code == 200:
            with self._lock:
                self.writes[write[0]].append((write[1], write[2]))

    def _before_object(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == self._bucket:
            context["writelog_key"] = params.get("Key")

    def _after_object(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        key = context.get("writelog_key")
        if key and http_response.status_code == 200:
            with self._lock:
                self.objects[key] += 1

    def regressions(self, ids: Iterable[str]) -> list[str]:
        """Ids whose written statuses ever went backwards, had two writes of one version, or
        were written again after a terminal status."""
        bad = []
        for gid in ids:
            history = sorted(self.writes.get(gid, []))
            versions = [v for v, _ in history]
            ranks = [RANK[s] for _, s in history]
            terminal_at = next((i for i, (_, s) in enumerate(history) if RANK[s] == 3), None)
            if (
                len(set(versions)) != len(versions)
                or ranks != sorted(ranks)
                or (terminal_at is not None and terminal_at != len(history) - 1)
            ):
                bad.append(f"{gid}: {history}")
        return bad

    def all_completions(self) -> int:
        """Completion writes of every record (other scenarios' leftovers included)."""
        return sum(self.completions(gid) for gid in list(self.writes))

    def completions(self, gid: str) -> int:
        return sum(1 for _, s in self.writes.get(gid, []) if s == Status.COMPLETED.value)


# -- the harness --------------------------------------------------------------------------------
class Harness:
    """A running LocalStack and what the scenarios build on it. Generations the scenarios make
    belong to the stack's first API key, so the HTTP API shows them to that key."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sim = stack.simulator
        # The stack's function environment (moto, the simulator, URL_DNS_STRICT=false: local
        # image hosts need not resolve), as a handler reads it at a cold start.
        self.settings = Settings.from_env(os.environ)
        self.owner = stack.key_id(stack.api_key)
        # The production clients (bootstrap's retry config); up to three sweeps at once share
        # them, so their pools are sized as for one sweep three times as wide.
        wide = self.settings.model_copy(update={"poll_concurrency": 3 * self.settings.poll_concurrency})
        self.dynamodb = dynamodb_client(wide).get()
        self.s3 = s3_client(wide).get()
        self.http = requests.Session()
        self.http.headers["x-api-key"] = stack.api_key
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=64)
        self.http.mount("http://", adapter)
        # A negative control's guard removal: part name -> factory(the parts assembled so far),
        # applied to every service the scenario builds (see `without`).
        self.removed: dict[str, Callable[[dict[str, Any]], Any]] = {}

    def without(self, **parts: Callable[[dict[str, Any]], Any]) -> Harness:
        """This harness, but every service a scenario builds has `parts` replaced (each made
        from the assembled parts: `store=lambda p: Double(p["dynamodb"], ...)`); `provider` and
        `persistence` factories get the part they replace as `p["provider"]`."""
        other = copy.copy(self)
        other.removed = {**self.removed, **parts}
        return other

    def build(self, parts: dict[str, Any]) -> GenerationService:
        """build_service(settings, **parts), with the guard removal of a negative control."""
        for name, make in self.removed.items():
            if name in ("store", "provider", "archive"):
                parts[name] = make({**parts, "settings": self.settings})
        waker = BackgroundDispatch()  # a wake-up runs the dispatcher in the background
        parts.setdefault("waker", waker)
        service: GenerationService = build_service(self.settings, **parts)
        waker.service = service
        return service

    def service(
        self,
        clock: Callable[[], float] | None = None,
        *,
        metrics: CountingMetrics | None = None,
        **overrides: Any,
    ) -> GenerationService:
        """The production service on the harness's clients (so a WriteLog sees its writes),
        polls due at once, no log lines; `overrides` replace further parts (store, provider,
        archive, max_age_seconds, concurrency, ...)."""
        from videogen.logic.schedule import PollSchedule

        parts: dict[str, Any] = {
            "dynamodb": self.dynamodb,
            "s3": self.s3,
            "schedule": PollSchedule(first_poll_factor=0, interval_seconds=0),
            "max_age_seconds": 1800,
            "clock": clock or time.time,
            "metrics": metrics,
            "log": None,
            **overrides,
        }
        return self.build(parts)

    def poller_tick(self, service: GenerationService) -> dict[str, Any]:
        """One scheduled invocation of the poller's entry point (videogen.entrypoints.poller:
        the due-index sweep of logic/sweep.py, fan-out included) over `service`, with the
        poller function's Lambda context and schedule event. Shards it hands to invocations of
        their own are swept here, one after the other. Its summary."""
        from videogen.entrypoints.poller import PollerTick  # the service's own load (see above)

        function = next(iter(self.stack.scheduled_functions))
        context = self.stack.context_for(function)

        class ShardsHere:
            """The poller's asynchronous self-invocation, run in this process instead."""

            def invoke_shards(self, function_arn: str, shards: Any) -> list[str]:
                for shard in shards:
                    tick.handle({"shard": shard}, context)
                return []  # every shard was handed off

        tick = PollerTick(service, ShardsHere())
        summary: dict[str, Any] = tick.handle(self.stack.schedule_event(function), context)
        return summary

    def write_log(self) -> WriteLog:
        return WriteLog(self.dynamodb, self.s3, self.settings.outputs_bucket)

    @contextlib.contextmanager
    def sim_settings(self, **settings: Any) -> Iterator[None]:
        """Simulator settings for a scenario, put back afterwards."""
        saved = {k: v for k, v in self.sim.state()["config"].items() if k in settings}
        self.sim.configure(**settings)
        try:
            yield
        finally:
            self.sim.configure(**saved)

    def records(self, prompts: set[str]) -> list[Generation]:
        """Every record of the table whose request prompt is one of `prompts` (a scan)."""
        from videogen.adapters.dynamodb_store import generation_from_item

        found = []
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.settings.table_name)
        for page in pages:
            for item in page.get("Items", []):
                prompt = ((item.get("request") or {}).get("M") or {}).get("prompt", {}).get("S")
                if prompt in prompts:
                    found.append(generation_from_item(item))
        return found

    def paid(self, prompts: set[str]) -> dict[str, int]:
        """Simulator jobs (accepted, paid submits) per prompt, for these prompts."""
        return {p: n for p, n in self.sim.submits_by("prompt").items() if p in prompts}

    def wait_for_provider(self, prompts: set[str], timeout: float = 30.0) -> None:
        """Until no record of these prompts waits in the submit queue or in a submit (the
        dispatcher runs in the background), and every simulator job of them is finished."""
        from videogen.domain.models import Status

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = any(g.status in (Status.PENDING, Status.SUBMITTING) for g in self.records(prompts))
            jobs = [j for j in self.sim.state()["jobs"] if j["body"].get("prompt") in prompts]
            if not waiting and all(j["status"] in ("completed", "error") for j in jobs):
                return
            time.sleep(0.1)


# -- helpers ------------------------------------------------------------------------------------
class BackgroundDispatch:
    """The dispatch queue and DispatcherFunction, in process: a wake-up runs the service's
    dispatcher in a thread of its own (one run at a time, as one concurrent invocation), a
    delayed wake-up after its delay."""

    def __init__(self) -> None:
        self.service: GenerationService | None = None
        self._lock = threading.Lock()

    def wake(self, delay_seconds: int = 0) -> None:
        timer = threading.Timer(max(0, delay_seconds), self._run)
        timer.daemon = True
        timer.start()

    def _run(self) -> None:
        service = self.service
        if service is None or service.dispatcher is None:
            return
        with self._lock:
            try:
                service.dispatcher.run(lambda: 600_000, reserve_ms=0)
            except Exception:  # noqa: BLE001 (as a failed invocation: the next wake-up runs again)
                return


def unique_prompts(tag: str, n: int) -> list[str]:
    """Prompts no other run shares: the simulator's jobs per prompt count paid submits."""
    run = uuid.uuid4().hex[:8]
    return [f"{tag} {run} #{i}" for i in range(n)]


def sweep_until_settled(
    service: GenerationService,
    ids: list[str],
    *,
    sweeps_at_once: int = 1,
    rounds: int = 20,
    clock: Clock | None = None,
    advance: float = 0.0,
    pause: float = 0.2,
) -> tuple[Counter[str], int]:
    """Run `sweeps_at_once` sweeps concurrently, round after round, until every one of `ids` is
    terminal; the outcomes summed over all sweeps, and the rounds it took."""
    outcomes: Counter[str] = Counter()
    for done_rounds in range(1, rounds + 1):
        with ThreadPoolExecutor(sweeps_at_once) as pool:
            reports = list(pool.map(lambda _: service.sweep(lambda: 600_000), range(sweeps_at_once)))
        for report in reports:
            outcomes.update(report.outcomes)
        if all((g := service.store.get(i)) is not None and g.is_terminal for i in ids):
            return outcomes, done_rounds
        if clock is not None:
            clock.advance(advance)
        time.sleep(pause)
    return outcomes, rounds


def submit_many(service: GenerationService, owner: str, prompts: list[str], threads: int = 16) -> list[str]:
    """One submit per prompt, `threads` at once; the generation ids."""
    with ThreadPoolExecutor(threads) as pool:
        made = list(pool.map(lambda p: service.submit(owner, {"model": MODEL, "prompt": p}), prompts))
    return [g.id for g in made]
