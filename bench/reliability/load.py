"""Sustained load on the local API: concurrent clients submitting, reading and listing while the
poller's schedule ticks. No request may cause a server error and no accepted generation may be
lost: afterwards each is readable and, once the poller has caught up, completed; the table
holds exactly the accepted generations and the provider was paid once for each."""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.reliability.harness import MODEL, Harness, Result, scenario


class _Clients:
    """What the clients sent and got, shared between their threads."""

    def __init__(self, h: Harness, seconds: float) -> None:
        self.url = h.stack.api_url
        self.api_key = h.stack.api_key
        self.run = uuid.uuid4().hex[:8]
        self.stop_at = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.accepted: list[str] = []
        self.asked: set[str] = set()
        self.server_errors: list[str] = []

    def client(self, n: int) -> None:
        """One client until the end: 20% POST /generations, 50% GET /generations/{id} (its own,
        or now and then an unknown id), 30% GET /generations?limit=10."""
        rng = random.Random(n)
        session = requests.Session()
        session.headers["x-api-key"] = self.api_key
        mine: list[str] = []
        i = 0
        while time.monotonic() < self.stop_at:
            i += 1
            draw = rng.random()
            started = time.perf_counter()
            if draw < 0.2 or not mine:
                kind = "submit"
                prompt = f"load {self.run} {n}-{i}"
                with self.lock:
                    self.asked.add(prompt)
                response = session.post(
                    self.url + "/generations", json={"model": MODEL, "prompt": prompt}, timeout=60
                )
                if response.status_code == 202:
                    mine.append(response.json()["id"])
            elif draw < 0.7:
                kind = "get"
                gid = rng.choice(mine) if rng.random() < 0.95 else f"gen_{uuid.uuid4().hex}"
                response = session.get(f"{self.url}/generations/{gid}", timeout=60)
            else:
                kind = "list"
                response = session.get(self.url + "/generations", params={"limit": 10}, timeout=60)
            elapsed = time.perf_counter() - started
            with self.lock:
                self.latencies.append(elapsed)
                self.statuses[f"{kind} {response.status_code}"] += 1
                if response.status_code >= 500:
                    self.server_errors.append(f"{kind} {response.status_code} {response.text[:200]}")
        with self.lock:
            self.accepted.extend(mine)


def _drain(h: Harness, accepted: list[str], drain_seconds: float) -> tuple[list[str], list[str]]:
    """Reads every accepted generation until all are completed or the time is up: those still
    not completed, and those not readable."""
    deadline = time.monotonic() + drain_seconds
    pending = list(accepted)
    unreadable: list[str] = []
    while pending and time.monotonic() < deadline:
        still = []
        for gid in pending:
            answer = h.http.get(f"{h.stack.api_url}/generations/{gid}", timeout=60)
            if answer.status_code != 200:
                unreadable.append(f"{gid}: {answer.status_code}")
            elif answer.json()["status"] not in ("completed",):
                still.append(gid)
        pending = still
        if pending:
            time.sleep(1.0)
    return pending, unreadable


@scenario(
    "load",
    "20 concurrent clients for 60 s, a submit/get/list mix, against the local API",
    "0 server errors, 0 lost generations; report requests/s and p99",
)
def load(
    r: Result,
    h: Harness,
    *,
    clients: int = 20,
    seconds: float = 60.0,
    drain_seconds: float = 120.0,
    schedule: bool = True,
) -> None:
    """`schedule`: play the poller's schedule (off only in the negative control)."""
    sent = _Clients(h, seconds)
    if schedule:
        h.stack.start_timer(5.0)  # the schedule of `make local`
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(sent.client, range(clients)))
        wall = time.perf_counter() - started
        pending, unreadable = _drain(h, sent.accepted, drain_seconds)
    finally:
        h.stack.stop_timer()
    accepted, server_errors = sent.accepted, sent.server_errors
    requests_done = len(sent.latencies)
    ordered = sorted(sent.latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0
    # Ground truth: the table holds exactly the accepted generations of this run, and the
    # provider was paid once for each.
    recorded = {g.id for g in h.records(sent.asked)}
    paid = h.paid(sent.asked)
    r.check(recorded == set(accepted), f"{len(recorded)} records for {len(accepted)} accepted submits")
    r.check(len(paid) == len(accepted) and all(n == 1 for n in paid.values()), "provider submits")
    r.check(requests_done > 0, "no requests")
    r.check(not server_errors, f"server errors: {server_errors[:5]}")
    r.check(not unreadable, f"accepted generations not readable: {unreadable[:5]}")
    r.check(not pending, f"{len(pending)} accepted generations not completed after {drain_seconds:.0f} s")
    r.measured = {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": requests_done,
        "requests_per_second": round(requests_done / wall, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else 0.0,
        "p99_ms": round(p99 * 1000, 1),
        "statuses": dict(sorted(sent.statuses.items())),
        "server_errors": len(server_errors),
        "accepted": len(accepted),
        "records": len(recorded),
        "provider_submits": sum(paid.values()),
        "lost": len(unreadable) + len(set(accepted) - recorded),
        "not_completed_after_drain": len(pending),
    }
    r.summary = (
        f"{requests_done} requests in {wall:.0f} s = {requests_done / wall:.1f} req/s, "
        f"p99 {p99 * 1000:.0f} ms; "
        f"{len(server_errors)} 5xx; {len(accepted)} accepted, {len(unreadable)} lost"
    )
