"""A burst of ten times the provider's concurrency cap on the session's local stack (bench/burst.py's
workload, API and uploads, two owners), with the cap halved mid-burst (`make chaos`'s
burst_cap_halved, smaller): nothing lost, nothing paid twice, measured from the simulator's jobs
and the table."""

from __future__ import annotations

from bench.reliability import Harness
from bench.reliability import burst_cap_halved as burst_cap_halved_scenario
from bench.reliability.burst_cap_halved import burst_cap_halved_control


def test_a_burst_whose_provider_cap_halves_loses_nothing(h: Harness) -> None:
    result = burst_cap_halved_scenario(h, cap=4, multiple=10, job_seconds=2.0, tick_seconds=0.5)
    m = result.measured
    assert not result.failures, f"{result.failures}\n{m}"
    assert m["lost"] == 0 and m["statuses"] == {"completed": 40}
    assert m["paid_jobs"] == 40 and m["paid_submits_repeated"] == 0
    assert m["running_at_cut"] > m["cap_after"] == 2 and m["provider_429_after_cut"] > 0
    assert h.sim.state()["config"]["max_concurrent_jobs"] is None  # the cap is put back


def test_the_same_burst_without_the_submit_queue_loses_requests(h: Harness) -> None:
    """The negative control: with the API and upload functions built without the queue, 429s
    that outlast the HTTP client's retries fail generations, and the scenario says so."""
    api_before = h.stack._handlers["ApiFunction"]
    result = burst_cap_halved_control(h, cap=4, multiple=10, job_seconds=2.0, tick_seconds=0.5)
    assert not result.holds
    assert result.measured["lost"] > 0, result.measured
    assert any("requests lost" in failure for failure in result.failures)
    assert h.stack._handlers["ApiFunction"] is api_before  # the real functions are back
