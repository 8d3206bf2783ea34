"""The simulator's account limits (local/simulator/limits.py): per API key, a cap on jobs queued or
generating at once and on submits per sliding minute; each refusal the documented 429 with no
Retry-After and no rate-limit header, no job and no charge; caps that change mid-run. Each limit
is injected and hit over plain HTTP, as a client meets it. Loopback only."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local.simulator import Simulator
from local.simulator.limits import RATE_WINDOW_SECONDS, Limits, key_id

KEY, OTHER_KEY = "limits-key-a", "limits-key-b"
ROOT = Path(__file__).resolve().parents[2]
UNIFIED = "/v2/video/generations"
T2V = "kling-video/v1.6/standard/text-to-video"
DURATION = 0.4
ERROR_FIELDS = {"message", "path", "requestId", "statusCode", "timestamp"}


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with Simulator(api_key=KEY, default_duration=DURATION, extra_api_keys=[OTHER_KEY]) as simulator:
        yield simulator


@pytest.fixture
def sim(server: Simulator) -> Simulator:
    server.reset()
    return server


def submit(sim: Simulator, prompt: str = "p", key: str = KEY, body: Any = None) -> requests.Response:
    return requests.post(
        sim.url + UNIFIED,
        json=body if body is not None else {"model": T2V, "prompt": prompt},
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )


def assert_documented_429(answer: requests.Response) -> None:
    """errors-and-messages/: the 4xx table's message, the general page's body (statusCode "429",
    a string, as its one 429 example has it); and nothing that tells when to come back."""
    assert answer.status_code == 429
    body = answer.json()
    assert set(body) == ERROR_FIELDS
    assert body["message"] == "Too Many Requests" and body["statusCode"] == "429"
    assert body["path"] == UNIFIED
    headers = {name.lower() for name in answer.headers}
    assert "retry-after" not in headers
    assert not [h for h in headers if "ratelimit" in h or "rate-limit" in h], headers


def test_no_limits_by_default(sim: Simulator) -> None:
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda i: submit(sim, f"p{i}").status_code, range(30)))
    assert statuses == [200] * 30
    assert sim.throttled == {} and sim.running_jobs() == 30


def test_the_concurrency_cap_refuses_while_the_keys_jobs_run(sim: Simulator) -> None:
    sim.configure(max_concurrent_jobs=2, credits=1000)
    assert [submit(sim, f"p{i}").status_code for i in range(2)] == [200, 200]

    refused = submit(sim, "third")
    assert_documented_429(refused)
    assert sim.submit_count == 2 and len(sim.jobs) == 2  # no job for the refused one
    assert sim.state()["config"]["credits"] == 800  # and no charge
    assert sim.throttled == {"concurrency": 1}

    # another key of the same simulator has its own slots
    assert submit(sim, "b1", key=OTHER_KEY).status_code == 200
    assert submit(sim, "b2", key=OTHER_KEY).status_code == 200
    assert_documented_429(submit(sim, "b3", key=OTHER_KEY))
    assert sim.running_jobs(KEY) == 2 and sim.running_jobs(OTHER_KEY) == 2

    time.sleep(DURATION + 0.1)  # the jobs end at the provider (nobody polled them): slots free
    assert sim.running_jobs() == 0
    assert submit(sim, "later").status_code == 200


def test_the_cap_holds_under_a_concurrent_burst(sim: Simulator) -> None:
    sim.configure(max_concurrent_jobs=5)
    with ThreadPoolExecutor(20) as pool:
        statuses = Counter(pool.map(lambda i: submit(sim, f"p{i}").status_code, range(40)))
    assert statuses == {200: 5, 429: 35}
    assert sim.running_jobs(KEY) == 5 and sim.throttled == {"concurrency": 35}


def test_a_job_counts_until_it_ends_whatever_its_status_says(sim: Simulator) -> None:
    sim.configure(max_concurrent_jobs=1)
    assert submit(sim, "stuck [sim:status=waiting]").status_code == 200
    assert submit(sim, "next").status_code == 429
    time.sleep(DURATION + 0.1)
    assert submit(sim, "next").status_code == 200


def test_the_submit_rate_is_per_key_and_refusals_are_429(sim: Simulator) -> None:
    sim.configure(max_submits_per_minute=3)
    assert [submit(sim, f"p{i}").status_code for i in range(3)] == [200, 200, 200]
    refused = submit(sim, "fourth")
    assert_documented_429(refused)
    assert submit(sim, "b", key=OTHER_KEY).status_code == 200
    assert sim.submit_count == 4 and sim.throttled == {"rate": 1}
    # a request the schema refuses still counts towards the window: it is refused as over rate
    assert submit(sim, body={"model": T2V, "prompt": "p", "unknown": 1}).status_code == 429


def test_the_rate_window_slides_and_counts_refused_requests() -> None:
    limits, key = Limits(), key_id(KEY)
    assert [limits.over_rate(key, t, 3) for t in (0.0, 1.0, 2.0)] == [False, False, False]
    assert limits.over_rate(key, 3.0, 3)  # the fourth within 60 s
    # at 60.5 the request of 0.0 has left the window, but the refused one of 3.0 has not
    assert limits.over_rate(key, RATE_WINDOW_SECONDS + 0.5, 3)
    # once 1.0, 2.0 and 3.0 have left too, there is room again
    assert not limits.over_rate(key, RATE_WINDOW_SECONDS + 3.5, 3)
    assert not limits.over_rate(key_id(OTHER_KEY), 3.0, 3)
    assert limits.throttled == {"rate": 2}


def test_a_cap_lowered_mid_run_stops_no_job_and_refuses_until_below_it(sim: Simulator) -> None:
    sim.configure(max_concurrent_jobs=4, default_duration=0.8)
    assert [submit(sim, f"p{i}").status_code for i in range(4)] == [200] * 4

    # over the control interface, as the bench and the local stack change it
    changed = requests.post(sim.url + "/_sim/config", json={"max_concurrent_jobs": 2}, timeout=5)
    assert changed.status_code == 200 and changed.json()["max_concurrent_jobs"] == 2
    assert sim.running_jobs(KEY) == 4  # nothing stopped
    assert submit(sim, "over").status_code == 429

    requests.post(sim.url + "/_sim/config", json={"max_concurrent_jobs": 6}, timeout=5).raise_for_status()
    assert [submit(sim, f"q{i}").status_code for i in range(3)] == [200, 200, 429]

    sim.configure(max_concurrent_jobs=None)  # no cap again
    assert submit(sim, "free").status_code == 200
    time.sleep(0.9)
    jobs = [
        requests.get(
            sim.url + UNIFIED,
            params={"generation_id": j},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=5,
        ).json()["status"]
        for j in list(sim.jobs)[:4]
    ]
    assert jobs == ["completed"] * 4  # the first four ran to their end


def test_limits_are_checked_settings_and_shown_without_keys(sim: Simulator) -> None:
    for bad in (-1, "3", 2.5, True):
        with pytest.raises(ValueError, match="max_concurrent_jobs"):
            sim.configure(max_concurrent_jobs=bad)
        answer = requests.post(sim.url + "/_sim/config", json={"max_submits_per_minute": bad}, timeout=5)
        assert answer.status_code == 400
    sim.configure(max_concurrent_jobs=1, max_submits_per_minute=10)
    submit(sim, "one")
    submit(sim, "two")
    state = requests.get(sim.url + "/_sim/state", timeout=5).json()
    assert state["config"]["max_concurrent_jobs"] == 1 and state["config"]["max_submits_per_minute"] == 10
    assert state["throttled"] == {"concurrency": 1} and state["running_jobs"] == 1
    assert state["jobs"][0]["key_id"] == key_id(KEY) and state["jobs"][0]["duration"] == DURATION
    text = str(state)
    assert KEY not in text and OTHER_KEY not in text
    sim.reset()  # limits go back to the constructor's (none), counters to zero
    assert sim.state()["config"]["max_concurrent_jobs"] is None and sim.throttled == {}


def test_a_key_the_simulator_does_not_know_is_still_a_401(sim: Simulator) -> None:
    sim.configure(max_submits_per_minute=0)
    assert submit(sim, key="nobody").status_code == 401
    assert sim.throttled == {}


def test_standalone_process_takes_the_limits() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.simulator",
            "--port",
            "0",
            "--api-key",
            KEY,
            "--quiet",
            "--max-concurrent-jobs",
            "1",
            "--max-submits-per-minute",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        assert url is not None
        config = requests.get(url[0] + "/_sim/state", timeout=5).json()["config"]
        assert (config["max_concurrent_jobs"], config["max_submits_per_minute"]) == (1, 5)
        auth = {"Authorization": f"Bearer {KEY}"}
        answers = [
            requests.post(url[0] + UNIFIED, json={"model": T2V, "prompt": "p"}, headers=auth, timeout=5)
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [200, 429]
    finally:
        process.terminate()
        assert process.wait(5) == 0


def test_jobs_and_limits_follow_the_clock_the_simulator_is_given() -> None:
    # A ScaledClock gives epoch seconds; jobs made on another clock (the monotonic one) would be
    # finished (or never finish) the moment they were made. Here the wall clock stands still.
    now = [1_800_000_000.0]
    with Simulator(api_key=KEY, default_duration=100.0, clock=lambda: now[0]) as clocked:
        clocked.configure(max_concurrent_jobs=1, max_submits_per_minute=2)
        job_id = submit(clocked).json()["id"]
        job = clocked.jobs[job_id]
        assert job.created == now[0]
        assert clocked.running_jobs() == 1 and clocked.state()["jobs"][0]["status"] != "completed"
        assert submit(clocked, "second").status_code == 429  # the first still runs on this clock

        now[0] += 100.0  # the job's 100 s pass on its clock, not on the wall clock
        assert clocked.running_jobs() == 0 and clocked.state()["jobs"][0]["status"] == "completed"
        assert submit(clocked, "third").status_code == 200  # its slot is free

        clocked.configure(max_concurrent_jobs=None)
        assert submit(clocked, "fourth").status_code == 200
        assert submit(clocked, "fifth").status_code == 429  # the third request in this minute
        now[0] += RATE_WINDOW_SECONDS  # the minute passes on the given clock only
        assert submit(clocked, "sixth").status_code == 200
