"""The reliability scenarios (bench/reliability/), smaller than `make chaos` runs them, on the
session's local stack: duplicates, overlaps, provider chaos, crashes at every step, AWS faults,
a fuzzed API and a short load. Each asserts what must hold, measured from ground
truth (the simulator's jobs, the table, botocore hooks on the clients). Then each negative
control, small: the same scenario with its guard removed must fail, or the scenario proves
nothing."""

from __future__ import annotations

from typing import Any

import pytest

from bench.reliability import CRASH_STEPS, Harness, Result
from bench.reliability import aws_faults as aws_faults_scenario
from bench.reliability import crash_points as crash_points_scenario
from bench.reliability import duplicate_deliveries as duplicate_deliveries_scenario
from bench.reliability import fuzzed_api as fuzzed_api_scenario
from bench.reliability import idempotent_submit as idempotent_submit_scenario
from bench.reliability import load as load_scenario
from bench.reliability import overlapping_sweeps as overlapping_sweeps_scenario
from bench.reliability import provider_chaos as provider_chaos_scenario
from bench.reliability.controls import CONTROLS, negative_control


def holds(result: Result) -> bool:
    assert not result.failures, f"{result.key}: {result.failures}\n{result.measured}"
    return result.holds


def test_idempotent_submit_one_key_many_concurrent_posts(h: Harness) -> None:
    # Over HTTP the API runs in 4 worker processes at once, as concurrent Lambda invocations do.
    with h.stack.concurrent_api(4) as pools:
        result = idempotent_submit_scenario(h, concurrency=20)
    assert holds(result)
    assert result.measured["provider_submits"] == 2 and result.measured["records"] == 2
    http = result.measured["http"]
    assert http["provider_submits_once_dispatched"] == 1
    # the POSTs overlapped: those that met the first one in flight were answered 409
    assert http["409_retry_after"] > 0 and http["202_same_generation"] > 0
    assert pools["ApiFunction"].busy_peak > 1


def test_duplicate_deliveries_submit_and_complete_once(h: Harness) -> None:
    result = duplicate_deliveries_scenario(h, generations=4)
    assert holds(result)
    assert result.measured["completions"] == result.measured["records"] == result.measured["provider_submits"]


def test_overlapping_sweeps_complete_each_generation_once_and_never_regress(h: Harness) -> None:
    result = overlapping_sweeps_scenario(h, generations=40, sweeps=3)
    assert holds(result)
    assert result.measured["archive_copies_per_generation"] == {"1": 40}
    assert result.measured["status_regressions"] == 0


def test_provider_chaos_ends_every_generation_and_flags_ambiguous_submits(h: Harness) -> None:
    result = provider_chaos_scenario(h, generations=40, seed=11)
    assert holds(result)
    measured = result.measured
    assert measured["lost"] == 0 and measured["paid_submits_repeated"] == 0
    assert measured["ambiguous_submits"] == measured["flagged"] > 0


def test_a_crash_at_every_step_leaves_no_paid_job_unrecorded(h: Harness) -> None:
    result = crash_points_scenario(h)
    assert holds(result)
    # The steps, in order: record write, provider submit, record update, poll, archive claim,
    # archive copy, status change; each crashed before and after its call.
    assert list(result.measured["after_recovery"]) == list(CRASH_STEPS)
    assert result.measured["after_recovery"] == CRASH_STEPS


def test_aws_throttling_and_s3_errors_are_retried_and_nothing_is_lost(h: Harness) -> None:
    result = aws_faults_scenario(h, generations=4, every=3, lose_every=2)
    assert holds(result)
    assert result.measured["botocore_retries"]["mode"] in ("standard", "adaptive")
    assert sum(result.measured["injected"].values()) > 0 and result.measured["errors_escaped"] == 0


def test_fuzzed_api_answers_no_server_error_and_one_error_shape(h: Harness) -> None:
    result = fuzzed_api_scenario(h, cases=100)
    assert holds(result)
    assert result.measured["cases"] >= 100


def test_short_load_has_no_server_error_and_loses_nothing(h: Harness) -> None:
    result = load_scenario(h, clients=4, seconds=3.0, drain_seconds=30.0)
    assert holds(result)
    assert result.measured["accepted"] > 0 and result.measured["lost"] == 0


# Small sizes: enough for the guard's absence to show.
CONTROL_SIZES: dict[str, dict[str, Any]] = {
    "idempotent_submit": {"concurrency": 8},
    "duplicate_deliveries": {"generations": 2},
    "overlapping_sweeps": {"generations": 10, "sweeps": 3},
    "provider_chaos": {"generations": 60, "seed": 11},
    "crash_points": {"steps": {"record_write/after": "flagged", "provider_submit/after": "flagged"}},
    "aws_faults": {"generations": 4, "every": 3, "lose_every": 2},
    "fuzzed_api": {"cases": 40},
    "load": {"clients": 2, "seconds": 2.0, "drain_seconds": 2.0},
    "burst_cap_halved": {"cap": 4, "multiple": 5, "drain_timeout": 60.0},
}


@pytest.mark.parametrize("key", list(CONTROLS))
def test_negative_control_fails_without_its_guard(h: Harness, key: str) -> None:
    control = negative_control(key, h, **CONTROL_SIZES[key])
    assert control["detected"], control
    assert control["guard_removed"] and control["summary"]
    if key == "burst_cap_halved":  # detected by what the queue guards against: lost requests
        assert "requests lost" in control["summary"], control
