"""bench/burst.py's arithmetic on ground truth, and how scripts/render_figures.py shows it: lost
requests (refused, failed, never recorded), repeated provider jobs, the provider's occupancy over
the drain, the small caller's waits and the learned limit's settle time, on hand-made jobs whose
answers are worked out in the comments."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from bench.burst import LimitSampler, Outcome, Sent, figures, occupancy, settle_seconds

ROOT = Path(__file__).resolve().parents[2]


def _render_figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_figures", ROOT / "scripts" / "render_figures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def job(prompt: str, created: float, duration: float = 4.0) -> Any:
    return SimpleNamespace(body={"prompt": prompt}, created=created, duration=duration)


def record(status: str, error: str | None = None) -> dict[str, Any]:
    return {"id": "gen_x", "status": status, "owner": "o", "error": error}


def outcome(sent: list[Sent], jobs: list[Any], records: dict[str, dict[str, Any]]) -> Outcome:
    by_prompt: dict[str, list[Any]] = {}
    for j in jobs:
        by_prompt.setdefault(j.body["prompt"], []).append(j)
    return Outcome(sent, by_prompt, records, started=0.0, ended=20.0, drained=True)


def test_occupancy_is_job_seconds_over_the_window() -> None:
    jobs = [job("a", 0, 4), job("b", 2, 4), job("c", 10, 4)]
    # over [0, 8]: a runs 4 s, b 4 s (2..6), c not at all: 8 job-seconds / 8 s
    assert occupancy(jobs, 0, 8) == 1.0
    # over [3, 12]: a 1 s, b 3 s, c 2 s: 6 / 9
    assert abs(occupancy(jobs, 3, 12) - 6 / 9) < 1e-9
    assert occupancy(jobs, 5, 5) == 0.0


def test_settle_is_the_first_sample_within_ten_percent_after_the_start() -> None:
    samples = [(0.5, 10.0), (1.0, 2.0), (2.0, 4.0), (3.0, 9.5), (4.0, 5.0)]
    assert settle_seconds(samples, 10, since=1.0) == 2.0  # 9.5 at 3.0; 10.0 at 0.5 is before the start
    assert settle_seconds(samples, 10, since=3.5) is None
    assert settle_seconds([(1.0, 11.0)], 10, since=0.0) == 1.0  # 11 is within 10% of 10
    assert settle_seconds([(1.0, 11.5)], 10, since=0.0) is None


def test_figures_count_every_loss_repeat_and_wait_from_ground_truth() -> None:
    sent = [
        Sent("big", "api", "p0", at=0.0, status=202),
        Sent("big", "upload", "p1", at=0.0, status=200),
        Sent("big", "api", "p2", at=0.1, status=429),  # refused by our API: lost
        Sent("big", "upload", "p3", at=0.1, status=200),  # failed: lost
        Sent("big", "upload", "p4", at=0.1, status=200),  # no record at all: lost
        Sent("small", "api", "s0", at=1.0, status=202),
        Sent("small", "upload", "s1", at=1.0, status=200),
    ]
    jobs = [
        job("p0", 0.5),
        job("p1", 0.5),
        job("p1", 6.0),  # paid twice
        job("s0", 2.0),
        job("s1", 5.0),  # ready at 9.0: the small caller waited 9.0 - 1.0 = 8.0 s
    ]
    records = {
        "p0": record("completed"),
        "p1": record("completed"),
        "p3": record("failed", "provider_rate_limited"),
        "s0": record("completed"),
        "s1": record("completed"),
    }
    burst = outcome(sent, jobs, records)
    alone = outcome(
        [Sent("small", "api", "a0", at=30.0, status=202), Sent("small", "upload", "a1", at=30.0, status=200)],
        [job("a0", 30.5), job("a1", 31.0)],  # ready at 35.0: 5.0 s alone
        {"a0": record("completed"), "a1": record("completed")},
    )
    sampler = LimitSampler(lambda: None)
    sampler.samples = [(0.2, 1.0), (3.0, 2.8), (4.5, 3.1)]

    result = figures(burst, alone, sampler, cap=3)

    assert result["burst_lost"] == 3
    assert result["details"]["lost_reasons"] == {
        "refused 429": 1,
        "provider_rate_limited": 1,
        "no record": 1,
    }
    assert result["burst_duplicate_submits"] == 1
    # the drain: first provider start 0.5 to last 6.0 (5.5 s); job-seconds in it: p0 4, p1 4 + 0,
    # s0 4 (2.0 to 6.0), s1 1 = 13; 13 / 5.5 running on average, over a cap of 3
    assert abs(result["burst_capacity_utilization"] - (13 / 5.5) / 3) < 1e-9
    assert result["burst_fairness"] == 8.0 / 5.0
    assert result["limit_settle_s"] == 3.0  # 2.8 (within 0.3 of 3) at 3.0 s after the start (0.0)
    assert result["details"]["learned_limit_range_during_drain"] == [2.8, 3.1]
    assert result["details"]["queue_wait_s"]["small"] == {"min": 1.0, "median": 4.0, "max": 4.0}


def test_a_small_caller_that_lost_a_request_has_no_fairness_and_the_docs_say_so(tmp_path: Path) -> None:
    sent = [Sent("small", "api", "s0", at=0.0, status=429), Sent("big", "api", "b0", at=0.0, status=202)]
    burst = outcome(sent, [job("b0", 0.1)], {"b0": record("completed")})
    alone = outcome([Sent("small", "api", "a0", at=9.0, status=202)], [job("a0", 9.1)], {})
    result = figures(burst, alone, LimitSampler(lambda: None), cap=2)
    assert result["burst_fairness"] is None and result["limit_settle_s"] is None
    result["details"].update(job_seconds=4.0, tick_seconds=1.0, throttled_by_provider={"concurrency": 7})

    rf = _render_figures()
    document = json.loads((ROOT / "bench" / "results.json").read_text())
    document["details"]["burst"] = result
    for name in ("burst_lost", "burst_duplicate_submits", "burst_capacity_utilization", "burst_fairness"):
        document[name] = result[name]
        document["goals"][name] = {"burst_capacity_utilization": ">= 0.9", "burst_fairness": "<= 2"}.get(
            name, "<= 0"
        )
    lines = "\n".join(rf.render_bench(document))

    fairness_row = "| `burst_fairness` | burst: the small caller's wait / its wait alone | not measured |"
    assert fairness_row + " <= 2 | **no** |" in lines
    assert "| `burst_lost` |" in lines and "| 1 | <= 0 | **no** |" in lines
    assert "**Burst** (bench/burst.py). 2 requests at once" in lines
    assert "lost: 1 refused 429" in lines and "7 submits refused by the provider" in lines
    assert "videos were never all ready: one of its requests was lost (alone: 4.1 s)" in lines
    assert "`limit_settle_s` not measured" in lines


def test_the_share_of_time_k_jobs_ran_and_the_limits_trace() -> None:
    from bench.burst import limit_trace, running_shares

    # over [0, 20]: one job 0-10, another 5-15: one runs 0-5 and 10-15, two 5-10, none 15-20
    jobs = [job("a", 0.0, 10.0), job("b", 5.0, 10.0)]
    assert running_shares(jobs, 0.0, 20.0) == {0: 0.25, 1: 0.5, 2: 0.25}
    # a window cutting both jobs: 6-12, two run 6-10, one 10-12
    assert running_shares(jobs, 6.0, 12.0) == {1: 0.333, 2: 0.667}
    # only the changes, in seconds since the burst's start
    samples = [(100.0, 4.0), (100.1, 4.0), (101.5, 5.0), (102.0, 5.0), (103.25, 4.0)]
    assert limit_trace(samples, 100.0) == [[0.0, 4.0], [1.5, 5.0], [3.2, 4.0]]
