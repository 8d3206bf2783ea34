"""The provider's concurrency cap halves in the middle of a burst. Ten times the cap is sent at
once (API and uploads, two owners, bench/burst.py's workload); the first time the provider runs
its cap, the simulator's cap drops to half, unannounced, as a provider under load might. Jobs
running then finish; the provider refuses submits (429, no Retry-After) until fewer than the new
cap run. Nothing may be lost: every request ends completed, each paid for once.

Its negative control (`burst_cap_halved_control`, `CONTROL_GUARD`): the same burst against a stack
whose accepting functions (API, uploads) are built without the submit queue. It must fail
(requests lost). What it shows is narrower than "the pre-queue service loses requests to 429s":
since the queue landed, `accept` is the only way in and needs the queue, so these functions refuse
every request (the API answers 502, an upload fails); a double that submits straight to the
provider, as the service did before the queue, is not built (an upload's private image would need
the dispatcher's URL minting)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from bench.burst import Burst, LimitSampler, learned_limit, occupancy, settle_seconds
from bench.reliability.harness import Harness, Result, scenario

SMALL_OWNER = "burst-small-uploads"  # the second owner: the small caller's uploads


@scenario(
    "burst_cap_halved",
    "10x the provider's concurrency cap at once (API and uploads, two owners); the cap halves "
    "mid-burst, the service told neither number",
    "0 lost (every request completed); 0 paid submits repeated; the provider did refuse after the cut",
)
def burst_cap_halved(
    r: Result,
    h: Harness,
    *,
    cap: int = 8,
    multiple: int = 10,
    small: int = 2,
    job_seconds: float = 2.0,  # longer than the HTTP client's own retries of a 429: they cannot hide it
    tick_seconds: float = 0.5,
    drain_timeout: float = 300.0,
) -> None:
    key = h.stack.api_key
    burst = Burst(h.stack, {"big": key, "small": key}, {"big": h.owner, "small": SMALL_OWNER})
    sent = burst.requests_for("big", multiple * cap - small, "halved") + burst.requests_for(
        "small", small, "halved"
    )
    half = max(1, cap // 2)
    sampler = LimitSampler(lambda: learned_limit(h.stack), now=burst.now)
    with h.sim_settings(max_concurrent_jobs=cap, default_duration=job_seconds), sampler.running():
        throttled_at_start = h.sim.throttled.get("concurrency", 0)
        h.stack.start_timer(tick_seconds)
        cut: dict[str, float] = {}

        def halve_when_full() -> None:
            """The cut: the first time the provider is full, so that it bites (jobs over the new
            cap are running); at the deadline otherwise (then the check below fails)."""
            deadline = time.monotonic() + drain_timeout
            while h.sim.running_jobs() < cap and time.monotonic() < deadline:
                time.sleep(0.02)
            cut["running"] = h.sim.running_jobs()
            cut["throttled"] = h.sim.throttled.get("concurrency", 0)
            h.sim.configure(max_concurrent_jobs=half)
            cut["at"] = burst.now()

        watcher = threading.Thread(target=halve_when_full, name="halve-the-cap", daemon=True)
        try:
            started = burst.now()
            watcher.start()
            burst.send(sent)
            watcher.join(drain_timeout)
            outcome = burst.drain(sent, started, drain_timeout)
        finally:
            h.stack.stop_timer()
        running_at_cut, cut_at = int(cut["running"]), cut["at"]
        throttled_before_cut = int(cut["throttled"])
        throttled_after_cut = h.sim.throttled.get("concurrency", 0) - throttled_before_cut
    jobs = [j for js in outcome.jobs.values() for j in js]
    # After the jobs running at the cut have ended, the provider runs at most `half`: how full
    # the service kept it from then until its last submit.
    after = cut_at + job_seconds
    later_starts = sorted(j.created for j in jobs if j.created >= after)
    utilization_after = occupancy(jobs, after, later_starts[-1]) / half if len(later_starts) > 1 else None
    lost = outcome.lost()
    duplicates = outcome.duplicate_submits()
    statuses = Counter(rec["status"] for rec in outcome.records.values())
    r.check(not lost, f"{len(lost)} requests lost: {[(s.via, s.status) for s in lost[:5]]}")
    r.check(outcome.drained, f"not drained in {drain_timeout:.0f} s: {dict(statuses)}")
    r.check(duplicates == 0, f"{duplicates} paid submits repeated")
    r.check(running_at_cut > half, f"only {running_at_cut} jobs ran at the cut: the halving bit nothing")
    r.check(throttled_after_cut > 0, "the provider refused nothing after the cut: the scenario did not run")
    r.measured = {
        "requests": len(sent),
        "answers": dict(sorted(Counter(f"{s.via} {s.status}" for s in sent).items())),
        "cap_before": cap,
        "cap_after": half,
        "cut_after_s": round(cut_at - started, 2),
        "running_at_cut": running_at_cut,
        "provider_429_before_cut": throttled_before_cut - throttled_at_start,
        "provider_429_after_cut": throttled_after_cut,
        "statuses": dict(statuses),
        "lost": len(lost),
        "paid_jobs": len(jobs),
        "paid_submits_repeated": duplicates,
        "drain_s": round(outcome.ended - started, 1),
        "utilization_of_new_cap": None if utilization_after is None else round(utilization_after, 3),
        "limit_settle_to_new_cap_s": None
        if (s := settle_seconds(sampler.samples, half, cut_at)) is None
        else round(s, 2),
    }
    r.summary = (
        f"{len(sent)} at once, cap {cap} -> {half} after {cut_at - started:.1f} s "
        f"({throttled_after_cut} provider 429s after the cut): {dict(statuses)}; "
        f"{len(lost)} lost, {duplicates} repeated"
    )


CONTROL_GUARD = (
    "the submit queue (accept first; a 429 puts the generation back in the queue): the API and "
    "upload functions built without it, which cannot accept (502, failed uploads)"
)


@contextlib.contextmanager
def without_the_queue(h: Harness) -> Iterator[None]:
    """The stack's API and upload functions rebuilt by videogen.bootstrap with no queue table in
    their settings (bootstrap.build_queue then gives none, and `accept` refuses without one),
    swapped into the stack's handler tables (the one the API adapter calls, the Lambda shim's for
    S3 notifications) and put back afterwards."""
    from videogen.bootstrap import build_api, build_service, build_uploads
    from videogen.entrypoints.s3_events import UploadEvents

    bare = h.settings.model_copy(update={"queue_table_name": "", "dispatch_queue_url": ""})
    api = build_api(bare)
    uploads = UploadEvents(build_uploads(bare, service=build_service(bare)))
    doubles: dict[str, Any] = {
        "ApiFunction": lambda event, context: api.handle(event, context),
        "UploadFunction": lambda event, context: uploads.handle(event, context),
    }
    tables = [h.stack._handlers] + ([h.stack.lambdas._handlers] if h.stack.lambdas is not None else [])
    saved = [{name: table[name] for name in doubles if name in table} for table in tables]
    for table in tables:
        table.update({name: double for name, double in doubles.items() if name in table})
    try:
        yield
    finally:
        for table, originals in zip(tables, saved, strict=True):
            table.update(originals)


def burst_cap_halved_control(h: Harness, **sizes: Any) -> Result:
    """The scenario without its guard (CONTROL_GUARD): it must not hold."""
    with without_the_queue(h):
        return burst_cap_halved(h, **sizes)
