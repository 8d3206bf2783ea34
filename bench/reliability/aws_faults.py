"""AWS failing underneath the service: DynamoDB throttling on record reads and writes, S3 5xx on
the archive copy, and record writes that land but whose answer is lost (botocore's retry then
meets its own write: a ConditionalCheckFailed that is no lost race). The service runs exactly as
bootstrap builds it for the Lambda functions (its clients, its botocore retry config, its
provider client); every fault must be absorbed, so every generation completes with its video in
the bucket, paid for once, counted once, and no caller sees an error."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.reliability.faults import AwsFaults
from bench.reliability.harness import MODEL, CountingMetrics, Harness, Result, scenario, unique_prompts
from videogen.bootstrap import dynamodb_client, s3_client
from videogen.logic.service import GenerationService


def _run(
    h: Harness, service: GenerationService, faults: AwsFaults, prompts: list[str], errors: list[str]
) -> tuple[float, float, int]:
    """Submits, then sweeps until every generation ended, faults injected throughout; what
    escaped the retries goes to `errors`. The submit and sweep seconds, and the rounds."""

    def submit(prompt: str) -> str | None:
        try:
            return service.submit(h.owner, {"model": MODEL, "prompt": prompt}).id
        except Exception as exc:  # noqa: BLE001 (an error escaping the retries is what is counted)
            errors.append(type(exc).__name__)
            return None

    with faults:
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
    return submit_seconds, sweep_seconds, rounds


def _missing_objects(h: Harness, records: list[Any]) -> list[str]:
    """Records whose video is not in the outputs bucket."""
    missing = []
    for g in records:
        try:
            h.s3.head_object(Bucket=h.settings.outputs_bucket, Key=g.video_key or "-")
        except Exception:  # noqa: BLE001
            missing.append(g.id)
    return missing


@scenario(
    "aws_faults",
    "DynamoDB throttling and S3 errors during writes and the archive copy",
    "retried; a retry meeting its own write is no lost race; nothing lost, nothing counted twice",
)
def aws_faults(r: Result, h: Harness, *, generations: int = 60, every: int = 4, lose_every: int = 5) -> None:
    # The production wiring on clients of its own, so the faults hooked on them reach this
    # service only; its INFO lines and metric documents are not what is measured.
    dynamodb, s3 = dynamodb_client(h.settings).get(), s3_client(h.settings).get()
    metrics = CountingMetrics()
    service = h.build({"dynamodb": dynamodb, "s3": s3, "log": None, "metrics": metrics})
    prompts = unique_prompts("aws faults", generations)
    errors: list[str] = []
    faults = AwsFaults(dynamodb, s3, every=every, lose_every=lose_every)
    submit_seconds, sweep_seconds, rounds = _run(h, service, faults, prompts, errors)
    records = h.records(set(prompts))
    statuses = Counter(g.status.value for g in records)
    missing_objects = _missing_objects(h, records)
    paid = h.paid(set(prompts))
    retries = dynamodb.meta.config.retries
    lost_answers = sum(v for k, v in faults.injected.items() if "answer lost" in k)
    completed_metric = int(metrics.totals["GenerationsCompleted"])
    r.check(sum(faults.injected.values()) > 0, "no fault injected")
    r.check(any(k.startswith("s3.") for k in faults.injected), "no S3 fault injected")
    r.check(lost_answers > 0, "no write whose answer was lost")
    # The sweeps take every due record of the table (other runs' leftovers too): at least these.
    r.check(
        completed_metric >= statuses.get("completed", 0),
        f"completion metric {completed_metric} for {statuses.get('completed', 0)} completions",
    )
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
        "writes_landed_answer_lost": lost_answers,
        "errors_escaped": len(errors),
        "completion_metric": completed_metric,
        "completed": statuses.get("completed", 0),
        "videos_in_bucket": len(records) - len(missing_objects),
        "rounds": rounds,
    }
    r.summary = (
        f"{sum(faults.injected.values())} faults injected, {lost_answers} of them writes that landed "
        f"with their answer lost ({retries['mode']} retries, "
        f"{retries.get('total_max_attempts', retries.get('max_attempts'))} attempts): "
        f"{len(errors)} escaped, {statuses.get('completed', 0)}/{generations} completed, archived"
    )
