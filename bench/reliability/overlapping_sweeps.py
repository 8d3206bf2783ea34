"""Overlapping sweeps: a scheduled sweep still running when the next one starts (or the
schedule delivered more than once). Conditional writes must let each generation complete once:
one archive copy, one completion write and metric, and no status ever written backwards."""

from __future__ import annotations

import time
from collections import Counter

from bench.reliability.harness import (
    CountingMetrics,
    Harness,
    Result,
    scenario,
    submit_many,
    sweep_until_settled,
    unique_prompts,
)
from videogen.adapters.s3_archive import OutputArchive


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
