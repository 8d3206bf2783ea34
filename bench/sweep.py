"""The sweep: one invocation of the real poller handler over 1,000 due generations, the provider
(the simulator, in its own process) answering every status request after 200 ms, DynamoDB and
Secrets Manager on moto's server (in its own process too: on AWS their work is not done in the
Lambda's interpreter), tables created from template.yaml.

- against the seed's way: one GET after another (requests.get, as in the provider's examples),
  timed on a 100-generation sample and scaled to the 1,000;
- against the ideal of the configured concurrency C: 1,000 x 200 ms / C;
- and with 50,000 terminal generations in a second table besides the same 1,000 active ones:
  the items the sweep's queries read (sum of ScannedCount, counted by a botocore hook) and its
  time, sweeps of the two tables alternating so that machine noise hits both alike.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import requests

from bench.common import ROOT, SIM_KEY, configure, load_handler, median, moto_server, sim_state, simulator
from local.aws.apigw import LambdaContext
from local.aws.cfn import Template
from tests.catalog_bodies import minimal_body
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_store import GenerationStore, item_from_generation
from videogen.domain.catalog import CATALOG
from videogen.domain.models import Generation, Status, utc_now_iso

EVENT = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


class DynamoCounter:
    """Counts a client's DynamoDB calls, and the items its queries read (ScannedCount)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.scanned = 0
        self.returned = 0

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "Query":
            self.scanned += int(parsed.get("ScannedCount", 0))
            self.returned += int(parsed.get("Count", 0))

    def reset(self) -> None:
        self.calls.clear()
        self.scanned = self.returned = 0


def _active(store: GenerationStore, jobs: list[tuple[str, str]], now: float) -> list[dict[str, Any]]:
    """The active generations, due now (what a tick finds when they come due)."""
    return [
        item_from_generation(
            Generation(
                id=f"gen_active_{index:05d}",
                owner="bench-owner",
                status=Status.GENERATING,
                model=model,
                request={"prompt": "A red fox runs through fresh snow at dawn, cinematic"},
                created_at=utc_now_iso(now - 90),
                updated_at=utc_now_iso(now - 30),
                created_epoch=now - 90,
                provider_id=provider_id,
                provider_status="generating",
                usage={"credits_used": 100},
                next_poll_at=int(now - 1),
                poll_count=1,
            ),
            due_shards=store.due_shards,
        )
        for index, (model, provider_id) in enumerate(jobs)
    ]


def _history(store: GenerationStore, count: int, now: float) -> list[dict[str, Any]]:
    """Finished generations as the table holds them after a month: one serialised record,
    varied in its keys (id, owner, created_at) so each is a distinct item of the same size."""
    template = item_from_generation(
        Generation(
            id="gen_done_000000",
            owner="owner-0",
            status=Status.COMPLETED,
            model="kling-video/v1.6/standard/text-to-video",
            request={"prompt": "A cheetah turns toward the camera, golden light, slow motion"},
            created_at=utc_now_iso(now),
            updated_at=utc_now_iso(now),
            completed_at=utc_now_iso(now),
            created_epoch=now,
            version=6,
            provider_id=str(10**14),
            provider_status="completed",
            usage={"credits_used": 100},
            video_key="videos/gen_done_000000.mp4",
            poll_count=4,
        ),
        due_shards=store.due_shards,
    )
    models = list(CATALOG)
    items = []
    for index in range(count):
        created = now - 86_400 * 30 + index * 50
        item = dict(template)
        item["id"] = {"S": f"gen_done_{index:06d}"}
        item["owner"] = {"S": f"owner-{index % 40}"}
        item["model"] = {"S": models[index % len(models)]}
        item["created_at"] = {"S": utc_now_iso(created)}
        item["created_epoch"] = {"N": str(created)}
        item["video_key"] = {"S": f"videos/gen_done_{index:06d}.mp4"}
        items.append(item)
    return items


def _seed_provider(url: str, count: int) -> list[tuple[str, str]]:
    """`count` jobs at the simulator, spread over the catalog's models (both endpoint families)."""
    client = AimlClient(url, lambda: SIM_KEY, pool_maxsize=4)
    models = list(CATALOG.values())
    jobs = []
    for index in range(count):
        model = models[index % len(models)]
        fields = {k: v for k, v in minimal_body(model).items() if k != "model"}  # what its schema takes
        jobs.append((model.id, client.submit(model, fields).provider_id))
    client.close()
    return jobs


def sequential_seconds(url: str, jobs: list[tuple[str, str]]) -> float:
    """The seed's way: for each generation, one GET, then the next (no session, no overlap)."""
    started = time.perf_counter()
    for model_id, provider_id in jobs:
        model = CATALOG[model_id]
        path = (
            f"/v2/generate/video/{model.provider}/generation"
            if model.family == "legacy"
            else "/v2/video/generations"
        )
        answer = requests.get(
            url + path,
            params={"generation_id": provider_id},
            headers={"Authorization": f"Bearer {SIM_KEY}"},
            timeout=30,
        )
        answer.raise_for_status()
    return time.perf_counter() - started


def bench(
    *,
    due: int = 1000,
    history: int = 50_000,
    latency_ms: int = 200,
    sample: int = 100,
    repeats: int = 3,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's fake credentials
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE"]:
        os.environ.pop(name, None)
    with simulator(default_duration=86_400) as url, moto_server() as moto:
        aws = moto.url
        os.environ["AWS_ENDPOINT_URL"] = aws  # the handler's clients, and the bench's
        log(f"  seeding {due} jobs at the simulator, tables (one with {history:,} finished generations)")
        jobs = _seed_provider(url, due)
        stacks: dict[str, dict[str, Any]] = {}
        for label, stack_name in (("fresh", "bench-fresh"), ("history", "bench-history")):
            template = Template(ROOT / "template.yaml", stack_name=stack_name)
            created = template.create_resources(
                boto3.Session(), aws, secret_values={"AimlApiKeySecret": SIM_KEY}
            )
            env = dict(template.functions()["PollerFunction"].environment)
            env.update(
                {
                    "AIML_BASE_URL": url,
                    "URL_DNS_STRICT": "false",
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                    "POWERTOOLS_LOG_LEVEL": "WARNING",
                    # the sweep alone, as these figures define it (every due generation taken at
                    # once, no timer armed); the poll timers are measured by bench/timeliness.py
                    "POLL_TIMER_QUEUE_URL": "",
                }
            )
            ddb = boto3.client("dynamodb", endpoint_url=aws)
            table = created["GenerationsTable"].physical_name
            store = GenerationStore(ddb, table, due_shards=int(env["DUE_SHARDS"]))
            if label == "history":
                started = time.perf_counter()
                moto.load(table, _history(store, history, time.time()))
                log(f"  {history:,} finished generations written in {time.perf_counter() - started:.1f} s")
            handler = load_handler(ROOT / "functions/poller/app.py", f"_bench_poller_{label}", env)
            service = handler.entry().service  # the cold start's work, before timing
            counter = DynamoCounter()
            service.store._client.get().meta.events.register("after-call.dynamodb.*", counter)
            service.provider.poll(CATALOG[jobs[0][0]], jobs[0][1])  # reads the secret, opens the pool
            stacks[label] = {
                "handler": handler,
                "store": store,
                "ddb": ddb,
                "table": table,
                "counter": counter,
                "concurrency": int(env["POLL_CONCURRENCY"]),
                "times": [],
            }

        configure(url, latency_ms=latency_ms)
        log(f"  sequential baseline: {sample} GETs one after another at {latency_ms} ms")
        sequential = sequential_seconds(url, jobs[:sample]) * due / sample

        runs: list[dict[str, Any]] = []
        # Round 0 warms each handler up (threads, connection pools), as the minute-by-minute
        # schedule keeps a poller warm; rounds 1.. are timed. Cold starts are measured apart.
        for repeat in range(repeats + 1):
            for label in ("fresh", "history"):
                stack = stacks[label]
                moto.load(stack["table"], _active(stack["store"], jobs, time.time()))
                stack["counter"].reset()
                polls_before = sim_state(url)["poll_count"]
                cpu_before, moto_before = time.process_time(), moto.cpu_seconds()
                started = time.perf_counter()
                report = stack["handler"].lambda_handler(
                    EVENT, LambdaContext("bench-poller", timeout_seconds=120)
                )
                seconds = time.perf_counter() - started
                cpu = {
                    "handler_process": time.process_time() - cpu_before,
                    "moto_process": moto.cpu_seconds() - moto_before,
                }
                polls = sim_state(url)["poll_count"] - polls_before
                if report["due"] != due or report["deferred"] or report["delegated"] or polls != due:
                    raise RuntimeError(f"the sweep did not refresh every due generation once: {report}")
                counter = stack["counter"]
                if repeat == 0:
                    log(f"  warm-up sweep ({label}): {seconds:.2f} s")
                    continue
                stack["times"].append(seconds)
                runs.append(
                    {
                        "table": label,
                        "repeat": repeat,
                        "seconds": seconds,
                        "due": report["due"],
                        "outcomes": report["outcomes"],
                        "provider_polls": polls,
                        "dynamodb_calls": dict(counter.calls),
                        "items_read": counter.scanned,
                        "cpu_seconds": cpu,
                    }
                )
                log(
                    f"  sweep {repeat}/{repeats} ({label}): {seconds:.2f} s, items read {counter.scanned}, "
                    f"CPU s: handler {cpu['handler_process']:.1f}, moto {cpu['moto_process']:.1f}"
                )

    os.environ.pop("AWS_ENDPOINT_URL", None)
    fresh = median(stacks["fresh"]["times"])
    with_history = median(stacks["history"]["times"])
    concurrency = stacks["fresh"]["concurrency"]
    limit = due * latency_ms / 1000 / concurrency
    history_reads = [r["items_read"] for r in runs if r["table"] == "history"]
    return {
        "due": due,
        "history": history,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "sequential_seconds_scaled": sequential,
        "sweep_seconds": fresh,
        "sweep_seconds_with_history": with_history,
        "limit_seconds": limit,
        "runs": runs,
        "sweep_speedup_vs_sequential": sequential / fresh,
        "sweep_efficiency_vs_limit": limit / fresh,
        "sweep_read_amplification": max(history_reads) / due,
        "sweep_history_slowdown": with_history / fresh,
        "generations_per_second": due / fresh,
        "rounds_per_second": math.nan if not fresh else due / concurrency / fresh,
    }


if __name__ == "__main__":
    import json

    print(json.dumps({k: v for k, v in bench().items() if k != "runs"}, indent=2))
