"""A process dying at every step between the record write and the status change: the request
or the sweep is cut short there, then a healthy process recovers later (past the submit grace
period and the archive lease) through the poller's scheduled tick: the due-index sweep finds
what the crash left behind, as in production (never a refresh of a record the test knows). No
paid job may be left without its record, and every record must end completed, still
progressing, or flagged as a submit whose outcome is unknown."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping

from bench.reliability.faults import Armed, Crash, CrashingArchive, CrashingProvider, CrashingStore
from bench.reliability.harness import MODEL, Harness, Result, scenario, unique_prompts
from local.clock import Clock
from videogen.domain.models import Generation, Status
from videogen.logic.service import GenerationService

# Every step between the record write and the status change, crashed before and after its call,
# with what recovery (the next sweeps) must make of the generation.
CRASH_STEPS: dict[str, str] = {
    "record_write/before": "unrecorded_unpaid",  # the caller got an error; nothing paid
    "record_write/after": "flagged",  # recorded, never sent: flagged after the grace period
    "provider_submit/before": "flagged",
    "provider_submit/after": "flagged",  # paid, answer lost with the process: flagged, recorded
    "record_update/before": "flagged",
    "record_update/after": "completed",
    "provider_poll/before": "completed",
    "provider_poll/after": "completed",
    "archive_claim/before": "completed",
    "archive_claim/after": "completed",  # the claim lapses after its lease, a later sweep copies
    "archive_copy/before": "completed",
    "archive_copy/after": "completed",
    "status_change/before": "completed",
    "status_change/after": "completed",
}


def _outcome(found: Generation | None, jobs: int) -> str:
    """What recovery made of the generation, given its record and its paid jobs."""
    if found is None:
        return "unrecorded_unpaid" if jobs == 0 else "LOST"
    recorded = found.provider_id is not None or found.submit_outcome_unknown
    if jobs and not recorded:
        return "LOST"
    if found.submit_outcome_unknown and found.status == Status.FAILED:
        return "flagged"
    if found.status == Status.COMPLETED:
        return "completed"
    if not found.is_terminal and found.next_poll_at is not None:
        return "progressing"
    return f"stuck:{found.status.value}"


def _crash_at(r: Result, h: Harness, healthy: GenerationService, clock: Clock, step: str) -> str:
    """One request through a service whose store, provider and archive (the healthy service's
    own, wrapped) crash at `step`, then recovery by the healthy service; the outcome."""
    from videogen.domain.ports import StaleWriteError  # the store's own (see harness)

    armed = Armed(step)
    crashing = h.service(
        clock,
        store=CrashingStore(healthy.store, armed),
        provider=CrashingProvider(healthy.provider, armed),
        archive=CrashingArchive(healthy.archive, armed),
    )
    (prompt,) = unique_prompts(f"crash {step}", 1)
    with contextlib.suppress(Crash):  # the request, then sweeps until the crash was reached
        crashing.submit(h.owner, {"model": MODEL, "prompt": prompt})
    h.wait_for_provider({prompt})
    gid = armed.generation_id or ""
    for _ in range(4):
        if armed.fired or not gid or (gen := healthy.store.get(gid)) is None:
            break
        with contextlib.suppress(Crash, StaleWriteError):
            crashing.refresh(gen)
    r.check(armed.fired, f"{step}: the crash was never reached")
    # Recovery: a healthy poller, later (past the submit grace period and the archive lease),
    # its scheduled ticks sweeping the due-index until the generation is no longer due.
    clock.advance(max(healthy.submit_grace_seconds, healthy.refresher.archive_lease_seconds) + 1)
    for _ in range(4):
        found = healthy.store.get(gid) if gid else None
        if found is None or found.is_terminal:
            break
        h.poller_tick(healthy)
    found = healthy.store.get(gid) if gid else None
    jobs = h.paid({prompt}).get(prompt, 0)
    if found is not None:
        r.check(jobs <= 1, f"{step}: 1 records, {jobs} jobs")
    return _outcome(found, jobs)


@scenario(
    "crash_points",
    "an exception injected at every step between record write, provider submit, record update, "
    "archive copy and status change",
    "after recovery (the poller's next scheduled sweeps of the due-index) no paid job is "
    "unrecorded and every record is progressing or flagged",
)
def crash_points(r: Result, h: Harness, *, steps: Mapping[str, str] | None = None) -> None:
    steps = dict(steps or CRASH_STEPS)
    clock = Clock()
    healthy = h.service(clock)
    outcomes: dict[str, str] = {}
    for step, expected in steps.items():
        outcome = _crash_at(r, h, healthy, clock, step)
        outcomes[step] = outcome
        r.check(outcome == expected, f"{step}: {outcome}, expected {expected}")
    r.measured = {"steps": len(steps), "after_recovery": outcomes}
    r.summary = f"{len(steps)} crash points: " + ", ".join(
        f"{n} {o}" for o, n in sorted(Counter(outcomes.values()).items())
    )
