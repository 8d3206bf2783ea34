"""The reliability scenarios of issue 5, measured from ground truth on a running LocalStack.

Each scenario takes a `Harness` (a running local stack: moto, the AIML API simulator, the real
handlers) and sizes, and returns a `Result`: what was measured and whether what must hold held.
`bench/chaos.py` (`make chaos`) runs them at full size; tests/integration/test_reliability.py runs
the deterministic ones smaller, as ordinary tests.

Ground truth, never the service's own word:
- the simulator's jobs: one per accepted (paid) submit, with the request body, so a prompt
  unique to each request counts how often it was paid for (`Simulator.submits_by`);
- the table's records, read back after the run;
- every successful write of a record (id, status, version), captured by a botocore hook on the
  DynamoDB client (`WriteLog`), to prove no status went backwards and no write came after the end;
- every object written to the outputs bucket (PutObject / CompleteMultipartUpload), captured by a
  botocore hook on the S3 client, to count archive copies;
- the completion metric the service emitted (`CountingMetrics`).
The services a scenario builds use the production wiring of bootstrap.py (its botocore retry
config, the real AimlClient, OutputArchive, GenerationStore) on the stack's moto and simulator;
only timeouts are shortened and the clock moved, so the run takes minutes, not hours.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from local.clock import Clock
from local.stack import SIMULATOR_KEY, LocalStack
from videogen import uploads, workflow
from videogen.bootstrap import _RETRIES, LazyClient, build
from videogen.media import OutputArchive
from videogen.models import Generation, Status
from videogen.provider import AimlClient
from videogen.schedule import PollSchedule
from videogen.service import MAX_INLINE_IMAGE_BYTES, GenerationService
from videogen.settings import Settings
from videogen.store import GenerationStore, StaleWriteError
from videogen.urls import check_image_reference

MODEL = "video-01"
RANK = {
    Status.SUBMITTING.value: 0,
    Status.QUEUED.value: 1,
    Status.GENERATING.value: 2,
    **{s.value: 3 for s in Status if s.terminal},
}
# A 1x1 PNG: what the upload handler accepts as an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ff"
    "ff3f0005fe02fea7d6a4830000000049454e44ae426082"
)


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

    def regressions(self, ids: Iterator[str] | list[str]) -> list[str]:
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
        self.settings = Settings.from_env(os.environ)
        self.owner = stack.key_id(stack.api_key)
        pool = 2 * 3 * self.settings.poll_concurrency + 16  # three sweeps at once
        self.dynamodb = LazyClient("dynamodb", retries=_RETRIES, max_pool_connections=pool)._get()
        self.s3 = LazyClient(
            "s3", signature_version="s3v4", retries=_RETRIES, max_pool_connections=pool
        )._get()
        self.store = GenerationStore(
            self.dynamodb, self.settings.table_name, due_shards=self.settings.due_shards
        )
        self.archive = OutputArchive(self.s3, self.settings.outputs_bucket)
        self.http = requests.Session()
        self.http.headers["x-api-key"] = stack.api_key
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=64)
        self.http.mount("http://", adapter)

    def provider(self, *, read_timeout: float = 10.0) -> AimlClient:
        """The production client (bootstrap.py's retry counts) with short waits."""
        return AimlClient(
            self.sim.url,
            lambda: SIMULATOR_KEY,
            submit_read_timeout=read_timeout,
            poll_read_timeout=read_timeout,
            submit_retries=1,
            backoff_factor=0.05,
            retry_after_max=2,
            pool_maxsize=64,
        )

    def service(
        self,
        clock: Callable[[], float] | None = None,
        *,
        metrics: CountingMetrics | None = None,
        provider: Any = None,
        store: Any = None,
        archive: Any = None,
        max_age_seconds: int = 1800,
        concurrency: int | None = None,
    ) -> GenerationService:
        return GenerationService(
            store=store or self.store,
            provider=provider or self.provider(),
            archive=archive or self.archive,
            schedule=PollSchedule(first_poll_factor=0, interval_seconds=0),
            max_age_seconds=max_age_seconds,
            submit_grace_seconds=self.settings.submit_grace_seconds,
            concurrency=concurrency or self.settings.poll_concurrency,
            check_url=functools.partial(
                check_image_reference, strict_dns=False, max_data_bytes=MAX_INLINE_IMAGE_BYTES
            ),
            clock=clock or time.time,
            metrics=metrics,
        )

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
        found = []
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.settings.table_name)
        for page in pages:
            for item in page.get("Items", []):
                prompt = ((item.get("request") or {}).get("M") or {}).get("prompt", {}).get("S")
                if prompt in prompts:
                    found.append(GenerationStore._generation(item))
        return found

    def paid(self, prompts: set[str]) -> dict[str, int]:
        """Simulator jobs (accepted, paid submits) per prompt, for these prompts."""
        return {p: n for p, n in self.sim.submits_by("prompt").items() if p in prompts}

    def wait_for_provider(self, prompts: set[str], timeout: float = 30.0) -> None:
        """Until every simulator job of these prompts is finished at the provider."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = [j for j in self.sim.state()["jobs"] if j["body"].get("prompt") in prompts]
            if all(j["status"] in ("completed", "error") for j in jobs):
                return
            time.sleep(0.1)


def unique_prompts(tag: str, n: int) -> list[str]:
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
    with ThreadPoolExecutor(threads) as pool:
        made = list(pool.map(lambda p: service.submit(owner, {"model": MODEL, "prompt": p}), prompts))
    return [g.id for g in made]


# -- scenarios ----------------------------------------------------------------------------------
@scenario(
    "idempotent_submit",
    "50 concurrent POSTs with one Idempotency-Key; then the same key with another body",
    "1 provider submit, 1 record, every answer the first one or a 409 with Retry-After; "
    "the other body is refused",
)
def idempotent_submit(r: Result, h: Harness, *, concurrency: int = 50) -> None:
    from videogen.idempotency import idempotent_submit as wrap

    # 1) The idempotent submit the API runs, called by `concurrency` threads at once (as many
    #    Lambda containers would be): the provider answers slowly, so they overlap.
    service = h.service()
    submit_once, config = wrap(
        service, table_name=h.settings.idempotency_table_name, dynamodb_client=h.dynamodb
    )
    config.register_lambda_context(h.stack.context_for(next(iter(h.stack.functions))))  # type: ignore[arg-type]  # as the handler does
    prompt_a, prompt_b, prompt_c, prompt_d = unique_prompts("idempotent", 4)
    key = uuid.uuid4().hex
    barrier = threading.Barrier(concurrency)

    def call(body: dict[str, Any]) -> Any:
        barrier.wait()
        try:
            return submit_once(request={"owner": h.owner, "idempotency_key": key, "body": body})
        except Exception as exc:  # noqa: BLE001 (the answer is what is measured)
            return type(exc).__name__

    body_a = {"model": MODEL, "prompt": prompt_a}
    with h.sim_settings(latency_ms=300), ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda _: call(body_a), range(concurrency)))
    firsts = [a for a in answers if isinstance(a, dict)]
    in_flight = [a for a in answers if a == "IdempotencyAlreadyInProgressError"]
    other = [a for a in answers if not isinstance(a, dict) and a != "IdempotencyAlreadyInProgressError"]
    r.check(bool(firsts) and all(a == firsts[0] for a in firsts), "concurrent answers differ")
    r.check(not other, f"unexpected answers: {Counter(map(str, other))}")
    barrier = threading.Barrier(1)
    refused = call({"model": MODEL, "prompt": prompt_b})
    r.check(refused == "IdempotencyValidationError", f"another body with the key was not refused: {refused}")

    # 2) The same through the HTTP API (the local adapter: x-api-key, the real handler).
    key2 = uuid.uuid4().hex
    body_c = {"model": MODEL, "prompt": prompt_c}

    def post(body: dict[str, Any]) -> requests.Response:
        return h.http.post(
            h.stack.api_url + "/generations", json=body, headers={"Idempotency-Key": key2}, timeout=60
        )

    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(lambda _: post(body_c), range(concurrency)))
    accepted = [x.json() for x in responses if x.status_code == 202]
    busy = [x for x in responses if x.status_code == 409]
    r.check(bool(accepted) and all(a["id"] == accepted[0]["id"] for a in accepted), "HTTP answers differ")
    r.check(all(x.headers.get("Retry-After") for x in busy), "a 409 without Retry-After")
    r.check(
        len(accepted) + len(busy) == concurrency,
        f"HTTP statuses {Counter(x.status_code for x in responses)}",
    )
    reused = post({"model": MODEL, "prompt": prompt_d})
    reused_code = reused.json().get("error", {}).get("code") if reused.status_code < 500 else None
    r.check(
        reused.status_code == 422 and reused_code == "idempotency_key_reused",
        f"another body over HTTP answered {reused.status_code} {reused.text[:200]}",
    )

    # Ground truth: the provider's jobs and the table's records.
    paid = h.paid({prompt_a, prompt_b, prompt_c, prompt_d})
    records = Counter(g.request["prompt"] for g in h.records({prompt_a, prompt_b, prompt_c, prompt_d}))
    r.check(paid.get(prompt_a) == 1 and paid.get(prompt_c) == 1, f"provider submits {paid}")
    r.check(records[prompt_a] == 1 and records[prompt_c] == 1, f"records {dict(records)}")
    r.check(not paid.get(prompt_b) and not paid.get(prompt_d), "the refused body reached the provider")
    r.check(not records[prompt_b] and not records[prompt_d], "the refused body was recorded")
    r.measured = {
        "concurrent_calls": concurrency,
        "in_process": {"first_answer": len(firsts), "409_in_flight": len(in_flight)},
        "http": {"202_same_generation": len(accepted), "409_retry_after": len(busy)},
        "provider_submits": paid.get(prompt_a, 0) + paid.get(prompt_c, 0),
        "records": records[prompt_a] + records[prompt_c],
        "other_body": {"in_process": refused, "http": f"{reused.status_code} {reused_code}"},
    }
    r.summary = (
        f"2x{concurrency} calls: {len(firsts) + len(accepted)} first answer, "
        f"{len(in_flight) + len(busy)} 409; 1 submit + 1 record each; other body refused (422)"
    )


@scenario(
    "duplicate_deliveries",
    "the same S3 event 3 times at once; the same scheduled event 3 times at once; a workflow Fetch repeated",
    "no extra submit, no extra completion",
)
def duplicate_deliveries(r: Result, h: Harness, *, generations: int = 20) -> None:
    metrics = CountingMetrics()
    service = h.service(metrics=metrics)
    copies = 3

    with h.write_log() as log:
        # 1) One S3 ObjectCreated event delivered 3 times at once (outside the notification's
        #    prefix, so only these deliveries see it).
        (upload_prompt,) = unique_prompts("s3 upload", 1)
        key = f"chaos/{uuid.uuid4().hex}.png"
        bucket = h.stack.uploads_bucket
        put = h.s3.put_object(
            Bucket=bucket, Key=key, Body=PNG, ContentType="image/png", Metadata={"prompt": upload_prompt}
        )
        event = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": key, "size": len(PNG), "eTag": put["ETag"].strip('"')},
                    },
                }
            ]
        }
        processor = uploads.from_settings(h.settings, service, h.s3)
        with ThreadPoolExecutor(copies) as pool:
            reports = list(pool.map(lambda _: processor.handle(event).as_dict(), range(copies)))
        upload_outcomes = Counter(res["outcome"] for rep in reports for res in rep["results"])

        # 2) One scheduled event delivered 3 times at once: three sweeps over the same due jobs.
        prompts = unique_prompts("scheduled", generations)
        ids = submit_many(service, h.owner, prompts)
        h.wait_for_provider({*prompts, upload_prompt})
        upload_id = next(iter(g.id for g in h.records({upload_prompt})), None)
        sweep_ids = [*ids, *([upload_id] if upload_id else [])]
        outcomes, _ = sweep_until_settled(service, sweep_ids, sweeps_at_once=copies)

        # 3) A workflow: Submit twice (a retried step), then Fetch delivered 3 times at once, twice.
        (wf_prompt,) = unique_prompts("workflow", 1)
        step = {"execution": f"arn:chaos:{uuid.uuid4().hex}", "started_at": "2026-12-01T00:00:00Z"}
        submit_step = {
            **step,
            "action": "submit",
            "input": {"owner": h.owner, "model": MODEL, "prompt": wf_prompt},
        }
        first = workflow.handle(submit_step, service)
        again = workflow.handle(submit_step, service)
        h.wait_for_provider({wf_prompt})
        fetch = {**step, "action": "fetch", "generation_id": first["generation_id"], "polls": 1}
        fetches = []
        for _ in range(2):
            with ThreadPoolExecutor(copies) as pool:
                fetches += list(pool.map(lambda _: workflow.handle(fetch, service), range(copies)))

    all_prompts = {*prompts, upload_prompt, wf_prompt}
    paid = h.paid(all_prompts)
    records = h.records(all_prompts)
    by_prompt = Counter(g.request["prompt"] for g in records)
    wf = next(g for g in records if g.request["prompt"] == wf_prompt)
    r.check(all(paid.get(p) == 1 for p in all_prompts), f"provider submits {paid}")
    r.check(all(by_prompt[p] == 1 for p in all_prompts), f"records {by_prompt}")
    r.check(upload_outcomes.get("accepted") == 1, f"upload outcomes {upload_outcomes}")
    r.check(first["generation_id"] == again["generation_id"], "a repeated Submit made another generation")
    r.check(
        all(g.status is Status.COMPLETED for g in records), f"statuses {Counter(g.status for g in records)}"
    )
    extra = [
        g.id for g in records if log.completions(g.id) != 1 or log.objects[OutputArchive.key_for(g.id)] != 1
    ]
    r.check(not extra, f"completed or copied other than once: {extra[:5]}")
    r.check(wf.status is Status.COMPLETED and log.completions(wf.id) == 1, "workflow completion")
    # The sweeps take every due generation of the table: the metric counts those too.
    completed_metric = int(metrics.totals["GenerationsCompleted"])
    r.check(
        completed_metric == log.all_completions(),
        f"completion metric {completed_metric} for {log.all_completions()} completion writes",
    )
    regressions = log.regressions([g.id for g in records])
    r.check(not regressions, f"status went backwards: {regressions[:3]}")
    r.measured = {
        "s3_event_deliveries": copies,
        "s3_outcomes": dict(upload_outcomes),
        "scheduled_deliveries": copies,
        "swept_generations": len(sweep_ids),
        "sweep_outcomes": dict(outcomes),
        "workflow_submits": 2,
        "workflow_fetches": len(fetches),
        "provider_submits": sum(paid.values()),
        "records": len(records),
        "completions": sum(log.completions(g.id) for g in records),
        "archive_copies": sum(log.objects[OutputArchive.key_for(g.id)] for g in records),
    }
    r.summary = (
        f"{len(records)} generations: {sum(paid.values())} submits, "
        f"{r.measured['completions']} completions, {r.measured['archive_copies']} copies"
    )


@scenario(
    "overlapping_sweeps",
    "3 sweeps at once over 500 active generations",
    "each completes exactly once (one archive copy, one completion metric or event), "
    "no status ever goes backwards",
)
def overlapping_sweeps(r: Result, h: Harness, *, generations: int = 500, sweeps: int = 3) -> None:
    metrics = CountingMetrics()
    service = h.service(metrics=metrics)
    prompts = unique_prompts("overlap", generations)
    with h.sim_settings(default_duration=1.0), h.write_log() as log:
        ids = submit_many(service, h.owner, prompts)
        time.sleep(0.5)  # some are queued, some generating, some done at the provider
        outcomes, rounds = sweep_until_settled(service, ids, sweeps_at_once=sweeps, rounds=40)
    records = {g.id: g for g in h.records(set(prompts))}
    statuses = Counter(g.status.value for g in records.values())
    copies = Counter(log.objects[OutputArchive.key_for(i)] for i in ids)
    completions = Counter(log.completions(i) for i in ids)
    regressions = log.regressions(ids)
    completed_metric = int(metrics.totals["GenerationsCompleted"])
    r.check(len(records) == generations, f"{len(records)} records for {generations}")
    r.check(statuses == {"completed": generations}, f"statuses {dict(statuses)}")
    r.check(copies == {1: generations}, f"archive copies per generation {dict(copies)}")
    r.check(completions == {1: generations}, f"completions per generation {dict(completions)}")
    r.check(completed_metric == log.all_completions(), f"completion metric {completed_metric}")
    r.check(outcomes["completed"] == log.all_completions(), f"completed outcomes {outcomes['completed']}")
    r.check(not regressions, f"status went backwards: {regressions[:3]}")
    r.measured = {
        "generations": generations,
        "sweeps_at_once": sweeps,
        "rounds": rounds,
        "outcomes": dict(outcomes),
        "completed": statuses.get("completed", 0),
        "archive_copies_per_generation": {str(k): v for k, v in copies.items()},
        "completion_writes_per_generation": {str(k): v for k, v in completions.items()},
        "completion_metric": completed_metric,
        "status_writes": sum(len(log.writes[i]) for i in ids),
        "status_regressions": len(regressions),
    }
    r.summary = (
        f"{generations} x {sweeps} sweeps: {statuses.get('completed', 0)} completed once, "
        f"{sum(k * v for k, v in copies.items())} copies, {outcomes.get('conflict', 0)} conflicts lost, "
        f"0 regressions"
        if not regressions
        else f"{len(regressions)} regressions"
    )


CHAOS_FAULTS = [
    {"rate": 0.05, "status": 500},
    {"rate": 0.05, "status": 502},
    {"rate": 0.05, "status": 503},
    {"rate": 0.05, "status": 504},
    {"rate": 0.10, "status": 429, "retry_after": 1},
    {"rate": 0.05, "timeout": True, "seconds": 1.5},
    {"rate": 0.05, "malformed": True},
]


@scenario(
    "provider_chaos",
    "500 generations under 20% 5xx, 10% 429 with Retry-After, 5% read timeouts, 5% malformed bodies, "
    "on submits and polls",
    "every generation ends terminal; 0 lost; 0 paid submits repeated; ambiguous submits flagged and visible",
)
def provider_chaos(r: Result, h: Harness, *, generations: int = 500, seed: int = 5) -> None:
    clock = Clock()
    service = h.service(clock, provider=h.provider(read_timeout=1.0), max_age_seconds=1800)
    prompts = unique_prompts("chaos", generations)
    served_before = h.sim.faults_served
    with (
        h.sim_settings(random_faults=CHAOS_FAULTS, fault_seed=seed, default_duration=0.5),
        h.write_log() as log,
    ):
        ids = submit_many(service, h.owner, prompts)
        h.wait_for_provider(set(prompts))
        outcomes, rounds = sweep_until_settled(service, ids, rounds=60, clock=clock, advance=120)
    served = Counter(h.sim.faults_served)
    served.subtract(served_before)
    records = h.records(set(prompts))
    by_prompt = {g.request["prompt"]: g for g in records}
    asked = set(prompts)
    jobs = [j for j in h.sim.state()["jobs"] if j["body"].get("prompt") in asked]  # paid at the provider
    paid = h.paid(asked)
    repeated = {p: n for p, n in paid.items() if n > 1}
    unrecorded = [j["id"] for j in jobs if j["body"]["prompt"] not in by_prompt]
    # A paid job whose record does not hold its provider id: the submit's answer was lost.
    ambiguous = [
        j
        for j in jobs
        if j["body"]["prompt"] in by_prompt and by_prompt[j["body"]["prompt"]].provider_id != j["id"]
    ]
    not_flagged = [j["id"] for j in ambiguous if not by_prompt[j["body"]["prompt"]].submit_outcome_unknown]
    flagged = [g for g in records if g.submit_outcome_unknown]
    statuses = Counter(g.status.value for g in records)
    reasons = Counter(g.error.code for g in records if g.error is not None)
    # Visible: the caller sees each flagged generation over the API as failed + flagged.
    shown = [h.http.get(f"{h.stack.api_url}/generations/{g.id}", timeout=30).json() for g in flagged[:20]]
    invisible = [
        s.get("id") for s in shown if not (s.get("submit_outcome_unknown") and s.get("status") == "failed")
    ]
    r.check(len(records) == generations and set(ids) == {g.id for g in records}, "lost generations")
    r.check(all(g.is_terminal for g in records), f"not terminal: {dict(statuses)}")
    r.check(not repeated, f"paid submits repeated: {repeated}")
    r.check(not unrecorded, f"paid jobs without a record: {unrecorded[:5]}")
    r.check(not not_flagged, f"ambiguous submits not flagged: {not_flagged[:5]}")
    r.check(not invisible, f"flagged but not shown as such: {invisible[:5]}")
    regressions = log.regressions(ids)
    r.check(not regressions, f"status went backwards: {regressions[:3]}")
    twice = [i for i in ids if log.completions(i) > 1 or log.objects[OutputArchive.key_for(i)] > 1]
    r.check(not twice, f"completed or copied more than once: {twice[:5]}")
    r.check(sum(v for k, v in served.items() if k.startswith("submit:")) > 0, "no submit faults served")
    r.check(sum(v for k, v in served.items() if k.startswith("poll:")) > 0, "no poll faults served")
    r.measured = {
        "generations": generations,
        "faults_served": dict(sorted((k, v) for k, v in served.items() if v)),
        "rounds": rounds,
        "terminal": dict(statuses),
        "reasons": dict(reasons),
        "lost": generations - len(records),
        "paid_jobs": len(jobs),
        "paid_submits_repeated": len(repeated),
        "paid_jobs_unrecorded": len(unrecorded),
        "ambiguous_submits": len(ambiguous),
        "flagged": len(flagged),
        "flagged_shown_by_api": f"{len(shown) - len(invisible)}/{len(shown)}",
        "status_regressions": len(regressions),
        "sweep_outcomes": dict(outcomes),
    }
    r.summary = (
        f"{generations}: {dict(statuses)}; 0 lost, {len(repeated)} repeated, "
        f"{len(ambiguous)} ambiguous -> {len(flagged)} flagged"
    )


class Crash(Exception):
    """A crash injected at one step (the process dies there)."""


class _Armed:
    """Raises Crash once, at the first call that matches the step, before or after the real call."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.fired = False
        self.generation_id: str | None = None  # the record the request wrote (or meant to)

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        target, _, when = self.step.partition("/")
        if self.fired or target != name:
            return call()
        self.fired = True
        if when == "before":
            raise Crash(self.step)
        call()
        raise Crash(self.step)


class _CrashingStore:
    def __init__(self, store: GenerationStore, armed: _Armed) -> None:
        self._store, self._armed = store, armed
        self.due_shards = store.due_shards

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create(self, generation: Generation) -> Generation:
        self._armed.generation_id = generation.id
        return self._armed.around("record_write", lambda: self._store.create(generation))

    def save(self, current: Generation, **changes: Any) -> Generation:
        if changes.get("status") is Status.QUEUED:
            name = "record_update"
        elif changes.get("archive_claim_until") is not None:
            name = "archive_claim"
        elif changes.get("status") is Status.COMPLETED:
            name = "status_change"
        else:
            name = "other_write"
        return self._armed.around(name, lambda: self._store.save(current, **changes))


class _CrashingProvider:
    def __init__(self, provider: AimlClient, armed: _Armed) -> None:
        self._provider, self._armed = provider, armed

    def submit(self, model: Any, fields: Mapping[str, Any]) -> Any:
        return self._armed.around("provider_submit", lambda: self._provider.submit(model, fields))

    def poll(self, model: Any, provider_id: str) -> Any:
        return self._armed.around("provider_poll", lambda: self._provider.poll(model, provider_id))


class _CrashingArchive:
    def __init__(self, archive: OutputArchive, armed: _Armed) -> None:
        self._archive, self._armed = archive, armed

    def archive(self, generation_id: str, source_url: str) -> str:
        return self._armed.around("archive_copy", lambda: self._archive.archive(generation_id, source_url))

    def link(self, key: str, *, expires_in: int, now: float) -> Any:
        return self._archive.link(key, expires_in=expires_in, now=now)


# Every step between the record write and the status change, crashed before and after its call,
# with what recovery (the next sweeps) must make of the generation.
CRASH_STEPS: dict[str, str] = {
    "record_write/before": "unrecorded_unpaid",  # the caller got an error; nothing paid
    "record_write/after": "flagged",  # recorded, never sent: flagged after the grace period
    "provider_submit/before": "flagged",
    "provider_submit/after": "flagged",  # paid, answer lost with the process: flagged, recorded
    "record_update/before": "flagged",
    "record_update/after": "completed",
    "provider_poll/before": "completed",
    "provider_poll/after": "completed",
    "archive_claim/before": "completed",
    "archive_claim/after": "completed",  # the claim lapses after its lease, a later sweep copies
    "archive_copy/before": "completed",
    "archive_copy/after": "completed",
    "status_change/before": "completed",
    "status_change/after": "completed",
}


@scenario(
    "crash_points",
    "an exception injected at every step between record write, provider submit, record update, "
    "archive copy and status change",
    "after recovery (the next sweep or retry) no paid job is unrecorded and every record is "
    "progressing or flagged",
)
def crash_points(r: Result, h: Harness, *, steps: Mapping[str, str] | None = None) -> None:
    steps = dict(steps or CRASH_STEPS)
    clock = Clock()
    healthy = h.service(clock)
    outcomes: dict[str, str] = {}
    for step, expected in steps.items():
        armed = _Armed(step)
        crashing = h.service(
            clock,
            store=_CrashingStore(h.store, armed),
            provider=_CrashingProvider(h.provider(), armed),
            archive=_CrashingArchive(h.archive, armed),
        )
        (prompt,) = unique_prompts(f"crash {step}", 1)
        with contextlib.suppress(Crash):  # the request, then sweeps until the crash was reached
            crashing.submit(h.owner, {"model": MODEL, "prompt": prompt})
        h.wait_for_provider({prompt})
        gid = armed.generation_id or ""
        for _ in range(4):
            if armed.fired or (gen := h.store.get(gid)) is None:
                break
            with contextlib.suppress(Crash, StaleWriteError):
                crashing.refresh(gen)
        r.check(armed.fired, f"{step}: the crash was never reached")
        # Recovery: a healthy process, later (past the submit grace period and the archive lease).
        clock.advance(max(healthy.submit_grace_seconds, healthy.archive_lease_seconds) + 1)
        for _ in range(4):
            if (gen := h.store.get(gid)) is not None:
                healthy.refresh(gen)
        found = h.store.get(gid)
        records = [found] if found is not None else []
        jobs = h.paid({prompt}).get(prompt, 0)
        if not records:
            outcome = "unrecorded_unpaid" if jobs == 0 else "LOST"
        else:
            gen = records[0]
            recorded = gen.provider_id is not None or gen.submit_outcome_unknown
            if jobs and not recorded:
                outcome = "LOST"
            elif gen.submit_outcome_unknown and gen.status is Status.FAILED:
                outcome = "flagged"
            elif gen.status is Status.COMPLETED:
                outcome = "completed"
            elif not gen.is_terminal and gen.next_poll_at is not None:
                outcome = "progressing"
            else:
                outcome = f"stuck:{gen.status.value}"
            r.check(len(records) == 1 and jobs <= 1, f"{step}: {len(records)} records, {jobs} jobs")
        outcomes[step] = outcome
        r.check(outcome == expected, f"{step}: {outcome}, expected {expected}")
    r.measured = {"steps": len(steps), "after_recovery": outcomes}
    r.summary = f"{len(steps)} crash points: " + ", ".join(
        f"{n} {o}" for o, n in sorted(Counter(outcomes.values()).items())
    )


class _FaultyResponse:
    """What botocore's before-send hook may answer instead of sending (then parsed and retried
    like any answer)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body

        self.response = AWSResponse("http://fault.invalid", status, headers, Raw())


class AwsFaults:
    """Injects DynamoDB throttling and S3 5xx through botocore `before-send` hooks: the answer
    replaces the network call, so botocore's retry handler sees it exactly as a real one."""

    DYNAMODB = ("PutItem", "GetItem", "Query")
    S3 = ("PutObject", "UploadPart", "CompleteMultipartUpload", "CreateMultipartUpload")

    def __init__(self, dynamodb: Any, s3: Any, *, every: int) -> None:
        self._clients = (dynamodb, s3)
        self._lock = threading.Lock()
        self.every = every  # every n-th call of each operation fails (deterministic)
        self._calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()

    def _draw(self, operation: str) -> int | None:
        """The call's number when it is to fail, else None."""
        with self._lock:
            self._calls[operation] += 1
            n = self._calls[operation]
        return n if n % self.every == 1 or self.every == 1 else None

    def _dynamodb(self, request: Any, **kwargs: Any) -> Any:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        n = self._draw(f"dynamodb.{operation}")
        if n is None:
            self.sent[f"dynamodb.{operation}"] += 1
            return None
        error = ("ProvisionedThroughputExceededException", "ThrottlingException")[n // self.every % 2]
        self.injected[f"dynamodb.{operation}:{error}"] += 1
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error}", "message": "injected"})
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": uuid.uuid4().hex}
        return _FaultyResponse(400, headers, body.encode()).response

    def _s3(self, request: Any, **kwargs: Any) -> Any:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        n = self._draw(f"s3.{operation}")
        if n is None:
            self.sent[f"s3.{operation}"] += 1
            return None
        status, code = ((500, "InternalError"), (503, "SlowDown"))[n // self.every % 2]
        self.injected[f"s3.{operation}:{code}"] += 1
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        return _FaultyResponse(status, {"Content-Type": "application/xml"}, body).response

    def __enter__(self) -> AwsFaults:
        dynamodb, s3 = self._clients
        for op in self.DYNAMODB:
            dynamodb.meta.events.register(f"before-send.dynamodb.{op}", self._dynamodb, unique_id=f"f-{op}")
        for op in self.S3:
            s3.meta.events.register(f"before-send.s3.{op}", self._s3, unique_id=f"f-{op}")
        return self

    def __exit__(self, *exc: object) -> None:
        dynamodb, s3 = self._clients
        for op in self.DYNAMODB:
            dynamodb.meta.events.unregister(f"before-send.dynamodb.{op}", unique_id=f"f-{op}")
        for op in self.S3:
            s3.meta.events.unregister(f"before-send.s3.{op}", unique_id=f"f-{op}")


@scenario(
    "aws_faults",
    "DynamoDB throttling and S3 errors during writes and the archive copy",
    "retried; nothing lost",
)
def aws_faults(r: Result, h: Harness, *, generations: int = 60, every: int = 4) -> None:
    # The service exactly as bootstrap.py builds it for the Lambda functions (its clients, its
    # botocore retry config), on the local stack.
    components = build(h.settings)
    service = components.service
    service.log = None  # its INFO lines are not what is measured
    service.metrics = CountingMetrics()  # nor its metric documents
    dynamodb = components.dynamodb._get()
    s3 = service.archive._s3._get()  # type: ignore[attr-defined]
    prompts = unique_prompts("aws faults", generations)
    errors: list[str] = []

    def submit(prompt: str) -> str | None:
        try:
            return service.submit(h.owner, {"model": MODEL, "prompt": prompt}).id
        except Exception as exc:  # noqa: BLE001 (an error escaping the retries is what is counted)
            errors.append(type(exc).__name__)
            return None

    with AwsFaults(dynamodb, s3, every=every) as faults:
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = [i for i in pool.map(submit, prompts) if i]
        submit_seconds = time.perf_counter() - started
        h.wait_for_provider(set(prompts))
        started = time.perf_counter()
        rounds = 0
        for rounds in range(1, 31):  # noqa: B007
            try:
                service.sweep(lambda: 600_000)
            except Exception as exc:  # noqa: BLE001
                errors.append(type(exc).__name__)
            with contextlib.suppress(Exception):
                if all(g.is_terminal for g in (service.store.get(i) for i in ids) if g):
                    break
            time.sleep(1.0)
        sweep_seconds = time.perf_counter() - started
    records = h.records(set(prompts))
    statuses = Counter(g.status.value for g in records)
    missing_objects = []
    for g in records:
        try:
            h.s3.head_object(Bucket=h.settings.outputs_bucket, Key=g.video_key or "-")
        except Exception:  # noqa: BLE001
            missing_objects.append(g.id)
    paid = h.paid(set(prompts))
    retries = dynamodb.meta.config.retries
    r.check(sum(faults.injected.values()) > 0, "no fault injected")
    r.check(any(k.startswith("s3.") for k in faults.injected), "no S3 fault injected")
    r.check(not errors, f"errors escaped the retries: {Counter(errors)}")
    r.check(
        len(records) == generations and statuses == {"completed": generations}, f"statuses {dict(statuses)}"
    )
    r.check(not missing_objects, f"videos missing from the bucket: {missing_objects[:5]}")
    r.check(all(n == 1 for n in paid.values()) and len(paid) == generations, "provider submits")
    r.measured = {
        "generations": generations,
        "failed_call_every": every,
        "submit_seconds": round(submit_seconds, 1),
        "sweep_seconds": round(sweep_seconds, 1),
        "botocore_retries": retries,
        "injected": dict(sorted(faults.injected.items())),
        "calls_sent": dict(sorted(faults.sent.items())),
        "errors_escaped": len(errors),
        "completed": statuses.get("completed", 0),
        "videos_in_bucket": len(records) - len(missing_objects),
        "rounds": rounds,
    }
    r.summary = (
        f"{sum(faults.injected.values())} faults injected ({retries['mode']} retries, "
        f"{retries.get('total_max_attempts', retries.get('max_attempts'))} attempts): "
        f"{len(errors)} escaped, {statuses.get('completed', 0)}/{generations} completed, archived"
    )


def _error_shape_ok(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and set(error) <= {"code", "message", "details"}
        and (error.get("details") is None or isinstance(error["details"], list))
    )


@scenario(
    "fuzzed_api",
    "schemathesis against the served OpenAPI document on the local stack, at least 1,000 cases",
    "0 server errors; every error in the one error shape",
)
def fuzzed_api(r: Result, h: Harness, *, cases: int = 1000, seed: int = 5) -> None:
    """Schemathesis generates requests from the API's OpenAPI document (openapi.json, the
    document the routes produce: a test fails when it drifts) and sends them to the local API
    with the caller's key; positive and negative (schema-violating) cases alike."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_path(str(h.stack.root / "openapi.json"))
    schema.config.update(base_url=h.stack.api_url)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # Some plans give few or no cases (GET /models has no input to break): ask the others for more.
    per_operation = max(1, -(-cases * 13 // (10 * 2 * len(operations))))
    sent: Counter[int] = Counter()
    server_errors: list[str] = []
    bad_shape: list[str] = []
    headers = {"x-api-key": h.stack.api_key}
    unsatisfiable: set[str] = set()

    plans = [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for attempt in range(5):  # small input spaces (GET /models) give fewer cases than asked: go again
        if sum(sent.values()) >= cases:
            break
        for operation, mode in plans:
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.settings(
                max_examples=per_operation,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.seed(seed + attempt)
            @hypothesis.given(case=strategy)
            def run(case: Any) -> None:
                response = case.call(headers=headers, timeout=60)
                sent[response.status_code] += 1
                label = f"{case.method} {case.formatted_path} -> {response.status_code}"
                if response.status_code >= 500:
                    server_errors.append(f"{label}: {response.text[:200]}")
                elif response.status_code >= 400 and not _error_shape_ok(response):
                    bad_shape.append(f"{label}: {response.text[:200]}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                unsatisfiable.add(f"{operation.label} {mode.value}")
    total = sum(sent.values())
    r.check(total >= cases, f"only {total} cases sent")
    r.check(not server_errors, f"server errors: {server_errors[:5]}")
    r.check(not bad_shape, f"errors not in the error shape: {bad_shape[:5]}")
    r.measured = {
        "cases": total,
        "operations": len(operations),
        "statuses": {str(k): v for k, v in sorted(sent.items())},
        "server_errors": len(server_errors),
        "errors_off_shape": len(bad_shape),
        "no_cases_possible": sorted(unsatisfiable),
        "schemathesis": schemathesis.__version__ if hasattr(schemathesis, "__version__") else "",
    }
    r.summary = (
        f"{total} cases over {len(operations)} operations: "
        f"{len(server_errors)} 5xx, {len(bad_shape)} off-shape errors"
    )


@scenario(
    "load",
    "20 concurrent clients for 60 s, a submit/get/list mix, against the local API",
    "0 server errors, 0 lost generations; report requests/s and p99",
)
def load(
    r: Result, h: Harness, *, clients: int = 20, seconds: float = 60.0, drain_seconds: float = 120.0
) -> None:
    """Each client: 20% POST /generations, 50% GET /generations/{id} (its own, or now and then
    an unknown id), 30% GET /generations?limit=10. The poller's schedule ticks meanwhile (every
    5 s, as in `make local`). Afterwards, every accepted generation must be readable and,
    once the poller has caught up, completed."""
    url = h.stack.api_url
    run = uuid.uuid4().hex[:8]
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    asked: set[str] = set()
    server_errors: list[str] = []

    def client(n: int) -> None:
        rng = random.Random(n)
        session = requests.Session()
        session.headers["x-api-key"] = h.stack.api_key
        mine: list[str] = []
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            draw = rng.random()
            started = time.perf_counter()
            if draw < 0.2 or not mine:
                kind = "submit"
                prompt = f"load {run} {n}-{i}"
                with lock:
                    asked.add(prompt)
                response = session.post(
                    url + "/generations", json={"model": MODEL, "prompt": prompt}, timeout=60
                )
                if response.status_code == 202:
                    mine.append(response.json()["id"])
            elif draw < 0.7:
                kind = "get"
                gid = rng.choice(mine) if rng.random() < 0.95 else f"gen_{uuid.uuid4().hex}"
                response = session.get(f"{url}/generations/{gid}", timeout=60)
            else:
                kind = "list"
                response = session.get(url + "/generations", params={"limit": 10}, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[f"{kind} {response.status_code}"] += 1
                if response.status_code >= 500:
                    server_errors.append(f"{kind} {response.status_code} {response.text[:200]}")
        with lock:
            accepted.extend(mine)

    h.stack.start_timer(5.0)  # the schedule of `make local`
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        wall = time.perf_counter() - started
        deadline = time.monotonic() + drain_seconds
        pending = list(accepted)
        unreadable: list[str] = []
        while pending and time.monotonic() < deadline:
            still = []
            for gid in pending:
                answer = h.http.get(f"{url}/generations/{gid}", timeout=60)
                if answer.status_code != 200:
                    unreadable.append(f"{gid}: {answer.status_code}")
                elif answer.json()["status"] not in ("completed",):
                    still.append(gid)
            pending = still
            if pending:
                time.sleep(1.0)
    finally:
        h.stack.stop_timer()
    requests_done = len(latencies)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0
    # Ground truth: the table holds exactly the accepted generations of this run, and the
    # provider was paid once for each.
    recorded = {g.id for g in h.records(asked)}
    paid = h.paid(asked)
    r.check(recorded == set(accepted), f"{len(recorded)} records for {len(accepted)} accepted submits")
    r.check(len(paid) == len(accepted) and all(n == 1 for n in paid.values()), "provider submits")
    r.check(requests_done > 0, "no requests")
    r.check(not server_errors, f"server errors: {server_errors[:5]}")
    r.check(not unreadable, f"accepted generations not readable: {unreadable[:5]}")
    r.check(not pending, f"{len(pending)} accepted generations not completed after {drain_seconds:.0f} s")
    r.measured = {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": requests_done,
        "requests_per_second": round(requests_done / wall, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else 0.0,
        "p99_ms": round(p99 * 1000, 1),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": len(server_errors),
        "accepted": len(accepted),
        "records": len(recorded),
        "provider_submits": sum(paid.values()),
        "lost": len(unreadable) + len(set(accepted) - recorded),
        "not_completed_after_drain": len(pending),
    }
    r.summary = (
        f"{requests_done} requests in {wall:.0f} s = {requests_done / wall:.1f} req/s, "
        f"p99 {p99 * 1000:.0f} ms; "
        f"{len(server_errors)} 5xx; {len(accepted)} accepted, {len(unreadable)} lost"
    )


ALL = {
    "idempotent_submit": idempotent_submit,
    "duplicate_deliveries": duplicate_deliveries,
    "overlapping_sweeps": overlapping_sweeps,
    "provider_chaos": provider_chaos,
    "crash_points": crash_points,
    "aws_faults": aws_faults,
    "fuzzed_api": fuzzed_api,
    "load": load,
}
