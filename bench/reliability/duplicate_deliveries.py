"""At-least-once delivery, delivered more than once: the same S3 upload event, the same
scheduled sweep event and a repeated workflow step, each at once. Each generation must still be
submitted once, completed once and copied to the archive once, and the completion metric must
count exactly the completion writes."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.reliability.harness import (
    MODEL,
    CountingMetrics,
    Harness,
    Result,
    scenario,
    submit_many,
    sweep_until_settled,
    unique_prompts,
)
from videogen.adapters.s3_archive import OutputArchive
from videogen.domain.models import Status
from videogen.logic.service import GenerationService

COPIES = 3
# The demo's sample image: a size every image model takes (MiniMax's refuse a shorter side of 300 px
# or less).
PNG = (Path(__file__).resolve().parents[2] / "local" / "assets" / "upload-sample.png").read_bytes()


def _s3_event_thrice(h: Harness, service: GenerationService) -> tuple[str, Counter[str]]:
    """One S3 ObjectCreated event delivered 3 times at once (outside the notification's prefix,
    so only these deliveries see it): the upload's prompt and the outcomes."""
    from videogen.bootstrap import build_uploads
    from videogen.entrypoints.s3_events import handle_event  # the service's own load (see harness)

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
    processor = build_uploads(h.settings, service, h.s3)
    with ThreadPoolExecutor(COPIES) as pool:
        reports = list(pool.map(lambda _: handle_event(event, processor).as_dict(), range(COPIES)))
    return upload_prompt, Counter(res["outcome"] for rep in reports for res in rep["results"])


def _workflow_repeated(
    h: Harness, service: GenerationService
) -> tuple[str, dict[str, Any], dict[str, Any], list[Any]]:
    """A workflow: Submit twice (a retried step), then Fetch delivered 3 times at once, twice.
    The prompt, both Submit answers and the Fetch answers."""
    from videogen.entrypoints import workflow_tasks  # the service's own load (see harness)

    (wf_prompt,) = unique_prompts("workflow", 1)
    step = {"execution": f"arn:chaos:{uuid.uuid4().hex}", "started_at": "2026-12-01T00:00:00Z"}
    submit_step = {
        **step,
        "action": "submit",
        "input": {"owner": h.owner, "model": MODEL, "prompt": wf_prompt},
    }
    first = workflow_tasks.handle(submit_step, service)
    again = workflow_tasks.handle(submit_step, service)
    h.wait_for_provider({wf_prompt})
    fetch = {**step, "action": "fetch", "generation_id": first["generation_id"], "polls": 1}
    fetches: list[Any] = []
    for _ in range(2):
        with ThreadPoolExecutor(COPIES) as pool:
            fetches += list(pool.map(lambda _: workflow_tasks.handle(fetch, service), range(COPIES)))
    return wf_prompt, first, again, fetches


@scenario(
    "duplicate_deliveries",
    "the same S3 event 3 times at once; the same scheduled event 3 times at once; a workflow Fetch repeated",
    "no extra submit, no extra completion",
)
def duplicate_deliveries(r: Result, h: Harness, *, generations: int = 20) -> None:
    metrics = CountingMetrics()
    service = h.service(metrics=metrics)

    with h.write_log() as log:
        upload_prompt, upload_outcomes = _s3_event_thrice(h, service)
        # One scheduled event delivered 3 times at once: three sweeps over the same due jobs.
        prompts = unique_prompts("scheduled", generations)
        ids = submit_many(service, h.owner, prompts)
        h.wait_for_provider({*prompts, upload_prompt})
        upload_id = next(iter(g.id for g in h.records({upload_prompt})), None)
        sweep_ids = [*ids, *([upload_id] if upload_id else [])]
        outcomes, _ = sweep_until_settled(service, sweep_ids, sweeps_at_once=COPIES)
        wf_prompt, first, again, fetches = _workflow_repeated(h, service)

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
        all(g.status == Status.COMPLETED for g in records), f"statuses {Counter(g.status for g in records)}"
    )
    extra = [
        g.id for g in records if log.completions(g.id) != 1 or log.objects[OutputArchive.key_for(g.id)] != 1
    ]
    r.check(not extra, f"completed or copied other than once: {extra[:5]}")
    r.check(wf.status == Status.COMPLETED and log.completions(wf.id) == 1, "workflow completion")
    # The sweeps take every due generation of the table: the metric counts those too.
    completed_metric = int(metrics.totals["GenerationsCompleted"])
    r.check(
        completed_metric == log.all_completions(),
        f"completion metric {completed_metric} for {log.all_completions()} completion writes",
    )
    regressions = log.regressions([g.id for g in records])
    r.check(not regressions, f"status went backwards: {regressions[:3]}")
    r.measured = {
        "s3_event_deliveries": COPIES,
        "s3_outcomes": dict(upload_outcomes),
        "scheduled_deliveries": COPIES,
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
