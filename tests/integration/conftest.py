"""Integration fixtures: one LocalStack for the whole session (moto + simulator + the real handlers).

Fixtures other integration tests can reuse:
- `local_stack`  the running LocalStack: timer off (call `local_stack.poll_now()`), simulator jobs
                 of 0.3 s, polls due at once, endpoints.json in a temp folder
- `api`          an ApiClient for the first key (`ALICE_KEY`); `other_api` for a second caller (`BOB_KEY`);
                 `api_client(key_or_None, base_url=None)` for any other
- `simulator`    the stack's Simulator; settings a test changes are put back after it, and
                 unconsumed faults cleared (with the simulator's jobs)
- `wait_for`     `wait_for(predicate, timeout=...)`: poll until truthy, fail at the deadline
Every test in this folder is marked `integration` and runs after the other tests of the session:
the stack points the process's AWS_ENDPOINT_URL at its moto server until the session ends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from local.stack import LocalStack

ALICE_KEY = "it-key-alice"
BOB_KEY = "it-key-bob"
SIM_DURATION = 0.3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    mine = [item for item in items if str(item.path).startswith(here + "/")]
    for item in mine:
        item.add_marker(pytest.mark.integration)
    if mine:
        ids = {id(item) for item in mine}
        items[:] = [item for item in items if id(item) not in ids] + mine


class ApiClient:
    """The REST API as a caller sees it: base URL + x-api-key, JSON in and out."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        if api_key is not None:
            self.http.headers["x-api-key"] = api_key

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", (2, 30))
        return self.http.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        port=0,
        api_keys=[ALICE_KEY, BOB_KEY],
        timer=False,
        use_simulator=True,
        sim_default_duration=SIM_DURATION,
        env_overrides={
            "FIRST_POLL_FACTOR": "0",
            "POLL_INTERVAL_SECONDS": "0",
            # nothing polls in the background: the tests drive every sweep (poll_now); the poll
            # timers have a stack of their own (test_poll_timers_local.py)
            "POLL_TIMER_QUEUE_URL": "",
            # webhooks: a failed attempt is retried at once, a slow receiver times out in 1 s
            "WEBHOOK_BACKOFF_SECONDS": "0",
            "WEBHOOK_TIMEOUT_SECONDS": "1",
            # batches: the tracker counts every second, not every 30 (test_batches_local.py)
            "BATCH_TRACK_SECONDS": "1",
        },
        state_dir=tmp_path_factory.mktemp("local-stack"),
    )
    with stack:
        yield stack


@pytest.fixture
def api_client(local_stack: LocalStack) -> Callable[..., ApiClient]:
    """`api_client(key, base_url=None)`: a client with any key (None: no x-api-key header)."""

    def make(api_key: str | None, base_url: str | None = None) -> ApiClient:
        return ApiClient(base_url or local_stack.api_url, api_key)

    return make


@pytest.fixture
def api(api_client: Callable[..., ApiClient]) -> ApiClient:
    return api_client(ALICE_KEY)


@pytest.fixture
def other_api(api_client: Callable[..., ApiClient]) -> ApiClient:
    return api_client(BOB_KEY)


@pytest.fixture
def simulator(local_stack: LocalStack) -> Iterator[Any]:
    sim = local_stack.simulator
    yield sim
    # Faults and settings must not leak into the next test. reset() also forgets the jobs, so it
    # only runs when a test left faults unconsumed; settings are put back either way.
    if sim.pending_faults:
        sim.reset()
    sim.configure(default_duration=SIM_DURATION, latency_ms=0, durations={}, random_faults=[])


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    def wait(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(interval)

    return wait


@pytest.fixture
def poller(local_stack: LocalStack) -> Iterator[None]:
    """The schedule, fast: a sweep every 50 ms while the test runs (the session stack's timer is off)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.05):
            with contextlib.suppress(Exception):  # a failing sweep is the stack's to log
                local_stack.poll_now()

    thread = threading.Thread(target=loop, name="test-poller", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


@pytest.fixture(scope="module")
def harness(local_stack: LocalStack) -> Iterator[Any]:
    """The reliability scenarios' harness over the session's local stack (bench/reliability)."""
    from bench.reliability.harness import Harness

    yield Harness(local_stack)


@pytest.fixture
def h(harness: Any, simulator: Any) -> Any:
    return harness  # `simulator` puts the simulator's settings back after each test
