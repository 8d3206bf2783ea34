"""CPU per poll: the process CPU time (user + system, every thread of the process) the real
poller handler spends per generation it refreshes, against a floor measured in the same run on
the same simulator and moto server: for each generation, one plain `requests` GET of its status
(a keep-alive Session) and one botocore UpdateItem, in a loop, no framework.

Two paths, apart:
- pending: the provider answers "still running"; the poller reads the due-index, GETs the status,
  writes the record back with its next poll time. Floor: GET + UpdateItem.
- completing: the provider answers "completed"; the poller GETs the status, downloads the video
  from the provider, uploads it to S3 (the archive) and writes the record `completed`. Floor: GET
  status + GET the video + PutObject + UpdateItem.

The simulator and moto run in processes of their own (their CPU is not the handler's, as
DynamoDB's and the provider's work is not done in the Lambda); provider latency 0, so only CPU
shows. CPU time is what carries to Lambda: there the function gets a share of a vCPU in
proportion to its memory (1,769 MB = 1 vCPU), so CPU per poll sets how many polls a tick holds
(docs/scaling-and-cost.md turns it into the poller's MemorySize).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import boto3
import requests

from bench.common import ROOT, SIM_KEY, configure, load_handler, median, moto_server, sim_state, simulator
from bench.sweep import EVENT, _active, _seed_provider
from local.aws.apigw import LambdaContext
from local.aws.cfn import Template
from videogen.adapters.aiml_provider import AimlClient
from videogen.adapters.dynamodb_store import GenerationStore
from videogen.domain.catalog import CATALOG

LEGACY = "/v2/generate/video/{provider}/generation"
UNIFIED = "/v2/video/generations"


def _status_url(base: str, model_id: str) -> str:
    model = CATALOG[model_id]
    return base + (LEGACY.format(provider=model.provider) if model.family == "legacy" else UNIFIED)


def _floor(
    url: str,
    jobs: list[tuple[str, str]],
    ddb: Any,
    table: str,
    *,
    s3: Any = None,
    bucket: str = "",
    videos: dict[str, str] | None = None,
) -> float:
    """CPU seconds per generation of the plain loop (GET status [+ GET video + PutObject] +
    UpdateItem)."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {SIM_KEY}"}
    cpu = time.process_time()
    for index, (model_id, provider_id) in enumerate(jobs):
        answer = session.get(
            _status_url(url, model_id), params={"generation_id": provider_id}, headers=headers, timeout=30
        )
        answer.raise_for_status()
        answer.json()
        if videos is not None:
            video = session.get(videos[provider_id], timeout=30)
            video.raise_for_status()
            s3.put_object(
                Bucket=bucket, Key=f"floor/{index}.mp4", Body=video.content, ContentType="video/mp4"
            )
        ddb.update_item(
            TableName=table,
            Key={"id": {"S": f"gen_active_{index:05d}"}},
            UpdateExpression="SET provider_status = :s, poll_count = poll_count + :one",
            ExpressionAttributeValues={":s": {"S": answer.json().get("status", "")}, ":one": {"N": "1"}},
        )
    seconds = time.process_time() - cpu
    session.close()
    return seconds / len(jobs)


def bench(*, count: int = 300, repeats: int = 3, log: Callable[[str], None] = print) -> dict[str, Any]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE"]:
        os.environ.pop(name, None)
    with simulator(default_duration=86_400) as url, moto_server() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.url
        template = Template(ROOT / "template.yaml", stack_name="bench-cpu")
        created = template.create_resources(
            boto3.Session(), moto.url, secret_values={"AimlApiKeySecret": SIM_KEY}
        )
        poller = template.functions()["PollerFunction"]
        env = dict(poller.environment)
        env.update(
            {
                "AIML_BASE_URL": url,
                "URL_DNS_STRICT": "false",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                # the production path as deployed (each refresh arms the next poll timer, a job's
                # end frees its queue slot), but every due generation taken by this sweep at once
                "POLL_TIMER_GRACE_SECONDS": "0",
            }
        )
        table = created["GenerationsTable"].physical_name
        bucket = created["OutputsBucket"].physical_name
        ddb = boto3.client("dynamodb", endpoint_url=moto.url)
        s3 = boto3.client("s3", endpoint_url=moto.url)
        store = GenerationStore(ddb, table, due_shards=int(env["DUE_SHARDS"]))
        log(f"  seeding {count} running and {count} finished jobs at the simulator")
        pending = _seed_provider(url, count)
        configure(url, default_duration=0.0)
        completing = _seed_provider(url, count)
        time.sleep(0.5)
        client = AimlClient(url, lambda: SIM_KEY, pool_maxsize=4)
        videos = {}
        for model_id, provider_id in completing:
            result = client.poll(CATALOG[model_id], provider_id)
            assert result.video_url, result
            videos[provider_id] = result.video_url
        client.close()
        video_bytes = len(requests.get(next(iter(videos.values())), timeout=30).content)

        handler = load_handler(ROOT / "functions/poller/app.py", "_bench_poller_cpu", env)
        handler.entry()

        def sweep(jobs: list[tuple[str, str]], outcome: str) -> float:
            moto.load(table, _active(store, jobs, time.time()))
            polls_before = sim_state(url)["poll_count"]
            cpu = time.process_time()
            report = handler.lambda_handler(EVENT, LambdaContext("bench-poller", timeout_seconds=120))
            seconds = time.process_time() - cpu
            polls = sim_state(url)["poll_count"] - polls_before
            if report["due"] != len(jobs) or report["outcomes"] != {outcome: len(jobs)} or polls != len(jobs):
                raise RuntimeError(f"the sweep did not {outcome} every due generation once: {report}")
            return seconds / len(jobs)

        sweep(pending[: count // 4], "waiting")  # warm-up: threads, pools, the secret, as a warm poller
        sweep(completing[: count // 4], "completed")
        _floor(url, pending[:20], ddb, table)
        times: dict[str, list[float]] = {
            "pending": [],
            "completing": [],
            "floor_pending": [],
            "floor_completing": [],
        }
        for repeat in range(repeats):
            times["pending"].append(sweep(pending, "waiting"))
            times["floor_pending"].append(_floor(url, pending, ddb, table))
            times["completing"].append(sweep(completing, "completed"))
            times["floor_completing"].append(
                _floor(url, completing, ddb, table, s3=s3, bucket=bucket, videos=videos)
            )
            log(
                "  round {}/{}: CPU ms per generation: pending {:.2f} (floor {:.2f}), "
                "completing {:.2f} (floor {:.2f})".format(
                    repeat + 1,
                    repeats,
                    *(
                        1000 * times[k][-1]
                        for k in ("pending", "floor_pending", "completing", "floor_completing")
                    ),
                )
            )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    ms = {key: 1000 * median(values) for key, values in times.items()}
    ratios = {
        "pending": ms["pending"] / ms["floor_pending"],
        "completing": ms["completing"] / ms["floor_completing"],
    }
    return {
        "generations": count,
        "poller_memory_mb": poller.memory_size,  # template.yaml, as deployed
        "poller_timeout_s": poller.timeout,
        "poll_concurrency": int(env["POLL_CONCURRENCY"]),
        "repeats": repeats,
        "video_bytes": video_bytes,
        "poll_cpu_ms": {"pending": ms["pending"], "completing": ms["completing"]},
        "floor_cpu_ms": {"pending": ms["floor_pending"], "completing": ms["floor_completing"]},
        "runs_ms": {key: [round(1000 * v, 3) for v in values] for key, values in times.items()},
        "vs_floor": ratios,
        "poll_cpu_vs_floor": max(ratios.values()),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench(count=int(sys.argv[1]) if len(sys.argv) > 1 else 300), indent=2))
