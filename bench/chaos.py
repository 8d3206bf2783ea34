"""`make chaos`: the reliability scenarios at full size on a throwaway local stack.

    python -m bench.chaos [--only KEY ...] [--quick] [--out bench/reliability.json]

Starts a LocalStack (moto, the AIML API simulator, the real handlers; nothing leaves
127.0.0.1), runs each scenario of bench/reliability/, prints a table and writes the results
to bench/reliability.json. Exits 1 when a guarantee did not hold.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FULL: dict[str, dict[str, Any]] = {
    "idempotent_submit": {"concurrency": 50},
    "duplicate_deliveries": {"generations": 20},
    "overlapping_sweeps": {"generations": 500, "sweeps": 3},
    "provider_chaos": {"generations": 500},
    "crash_points": {},
    "aws_faults": {"generations": 20},
    "fuzzed_api": {"cases": 1000},
    "load": {"clients": 20, "seconds": 60.0},
    "burst_cap_halved": {"cap": 8, "multiple": 10},
}
# The negative controls (bench/reliability/controls.py): each scenario again, its guard removed,
# smaller (a control needs to fail once, not to measure).
CONTROL_SIZES: dict[str, dict[str, Any]] = {
    "idempotent_submit": {"concurrency": 20},
    "duplicate_deliveries": {"generations": 3},
    "overlapping_sweeps": {"generations": 30, "sweeps": 3},
    "provider_chaos": {"generations": 100},
    "crash_points": {},
    "aws_faults": {"generations": 6},
    "fuzzed_api": {"cases": 200},
    "load": {"clients": 2, "seconds": 3.0, "drain_seconds": 5.0},
    "burst_cap_halved": {"cap": 4, "multiple": 10},
}
# API requests served at once by the local stack (worker processes, local/aws/api_workers.py).
API_WORKERS = 8
QUICK: dict[str, dict[str, Any]] = {
    "idempotent_submit": {"concurrency": 20},
    "duplicate_deliveries": {"generations": 5},
    "overlapping_sweeps": {"generations": 40, "sweeps": 3},
    "provider_chaos": {"generations": 60},
    "crash_points": {},
    "aws_faults": {"generations": 10},
    "fuzzed_api": {"cases": 100},
    "load": {"clients": 5, "seconds": 5.0},
    "burst_cap_halved": {"cap": 4, "multiple": 10},
}


def _control_cell(control: dict[str, Any] | None) -> str:
    if control is None:
        return "not run"
    return ("detected" if control["detected"] else "NOT DETECTED") + f" without {control['guard_removed']}"


def table(results: list[Any]) -> str:
    rows = [("key", "holds", "s", "measured")]
    rows += [
        (
            r.key,
            "yes" if r.holds else "NO",
            f"{r.seconds:.0f}",
            f"{r.summary} | {_control_cell(r.negative_control)}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 40)
    for r in results:
        for failure in r.failures:
            lines.append(f"  {r.key}: {failure}")
    return "\n".join(lines)


def _pairs(counts: dict[str, Any]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _each(per_generation: dict[str, int]) -> str:
    return ", ".join(f"{k} each for {v}" for k, v in sorted(per_generation.items()))


def _measured(key: str, m: dict[str, Any]) -> str:
    """One README cell: the figures that show the guarantee held."""
    if key == "idempotent_submit":
        n = m["concurrent_calls"]
        return (
            f"{n} at once in-process: {m['in_process']['first_answer']} first answer + "
            f"{m['in_process']['409_in_flight']} x 409 in flight; {n} at once over HTTP "
            f"({m['http'].get('api_workers', 1)} API workers): "
            f"{m['http']['202_same_generation']} x 202 (same id) + {m['http']['409_retry_after']} x 409; "
            f"{m['provider_submits']} provider submits and {m['records']} records for the 2 keys; "
            f"other body: {m['other_body']['http']}"
        )
    if key == "duplicate_deliveries":
        return (
            f"S3 event x{m['s3_event_deliveries']}: {_pairs(m['s3_outcomes'])}; "
            f"schedule x{m['scheduled_deliveries']} "
            f"over {m['swept_generations']} due; workflow Submit x{m['workflow_submits']}, Fetch "
            f"x{m['workflow_fetches']}: {m['records']} generations, {m['provider_submits']} submits, "
            f"{m['completions']} completions, {m['archive_copies']} archive copies"
        )
    if key == "overlapping_sweeps":
        return (
            f"{m['generations']} generations, {m['sweeps_at_once']} sweeps at once (rounds: {m['rounds']}): "
            f"{m['completed']} completed; archive copies: "
            f"{_each(m['archive_copies_per_generation'])}, "
            f"completion writes: {_each(m['completion_writes_per_generation'])}, completion metric "
            f"{m['completion_metric']}; {m['outcomes'].get('conflict', 0)} lost races; "
            f"{m['status_regressions']} regressions in {m['status_writes']} status writes"
        )
    if key == "provider_chaos":
        served = m["faults_served"]
        on = {side: sum(v for k, v in served.items() if k.startswith(side)) for side in ("submit", "poll")}
        return (
            f"{on['submit']} submit + {on['poll']} poll faults served; ends: {_pairs(m['terminal'])} "
            f"(reasons: {_pairs(m['reasons'])}); lost {m['lost']}; paid jobs {m['paid_jobs']}, repeated "
            f"{m['paid_submits_repeated']}, unrecorded {m['paid_jobs_unrecorded']}; ambiguous "
            f"{m['ambiguous_submits']} → flagged {m['flagged']} (API shows {m['flagged_shown_by_api']} "
            f"checked); {m.get('status_regressions', 0)} regressions"
        )
    if key == "crash_points":
        counts: dict[str, int] = {}
        for outcome in m["after_recovery"].values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return (
            f"{m['steps']} crash points (7 steps x before/after the call); after recovery: "
            + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
            + f"; {counts.get('LOST', 0)} paid jobs unrecorded"
        )
    if key == "aws_faults":
        dynamo = sum(v for k, v in m["injected"].items() if k.startswith("dynamodb"))
        s3 = sum(v for k, v in m["injected"].items() if k.startswith("s3"))
        retries = m["botocore_retries"]
        return (
            f"{dynamo} DynamoDB faults (throttles on PutItem/GetItem/Query, "
            f"{m.get('writes_landed_answer_lost', 0)} PutItems landed with their answer lost) + "
            f"{s3} S3 500/SlowDown (PutObject): "
            f"{m['errors_escaped']} escaped botocore's {retries['mode']} retries "
            f"({retries.get('total_max_attempts')} attempts); {m['completed']}/{m['generations']} completed, "
            f"{m['videos_in_bucket']} videos in the bucket"
        )
    if key == "fuzzed_api":
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(m["statuses"].items()))
        return (
            f"{m['cases']} cases over {m['operations']} operations, statuses {statuses}: "
            f"{m['server_errors']} 5xx, {m['errors_off_shape']} errors off the shape"
        )
    if key == "load":
        return (
            f"{m['requests']} requests in {m['seconds']:.0f} s = {m['requests_per_second']} req/s, p50 "
            f"{m['p50_ms']:.0f} ms, p99 {m['p99_ms']:.0f} ms; {m['server_errors']} 5xx; "
            f"{m['accepted']} accepted "
            f"= {m.get('records', '?')} records = {m.get('provider_submits', '?')} provider jobs, "
            f"{m['lost']} lost, {m['not_completed_after_drain']} not completed after the drain"
        )
    if key == "burst_cap_halved":
        return (
            f"{m['requests']} at once, provider cap {m['cap_before']} -> {m['cap_after']} after "
            f"{m['cut_after_s']} s ({m['provider_429_after_cut']} provider 429s after the cut): "
            f"{_pairs(m['statuses'])}; {m['lost']} lost, {m['paid_submits_repeated']} paid submits repeated"
        )
    return ""


def markdown(document: dict[str, Any]) -> str:
    """The README's table of a reliability.json."""
    rows = ["| key | scenario | must hold | measured | negative control |", "|---|---|---|---|---|"]
    for key in FULL:
        if key in document:
            r = document[key]
            verdict = "holds" if r["holds"] else "**does not hold**"
            cell = _measured(key, r["measured"]).replace("|", "\\|")
            control = _control_cell(r.get("negative_control")).replace("|", "\\|")
            rows.append(f"| `{key}` | {r['scenario']} | {r['must_hold']} | {verdict}: {cell} | {control} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(FULL), help="run only these scenarios")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, minutes less)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "reliability.json"))
    parser.add_argument("--no-controls", action="store_true", help="skip the negative controls")
    parser.add_argument(
        "--markdown", metavar="JSON", help="print the README table of a results file; run nothing"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("local.stack").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")  # Powertools: "No application metrics to publish", etc.
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    from bench.reliability import ALL, Harness
    from bench.reliability.controls import negative_control
    from local.stack import LocalStack

    sizes = QUICK if args.quick else FULL
    keys = args.only or list(FULL)
    results = []
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as state,
        LocalStack(
            port=0,
            api_keys=["chaos-key"],
            timer=False,
            use_simulator=True,
            sim_default_duration=0.5,
            env_overrides={
                "FIRST_POLL_FACTOR": "0",
                "POLL_INTERVAL_SECONDS": "0",
                # the handlers' INFO lines and metric documents would drown the table
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # the scenarios drive every sweep themselves: no poll timer in the background
                "POLL_TIMER_QUEUE_URL": "",
            },
            state_dir=state,
            write_endpoints=False,
            api_workers=API_WORKERS,
        ) as stack,
    ):
        harness = Harness(stack)
        for key in keys:
            print(f"-> {key} ...", flush=True)
            result = ALL[key](harness, **sizes[key])
            verdict = "holds" if result.holds else "DOES NOT HOLD"
            print(f"   {verdict} ({result.seconds:.0f} s): {result.summary}")
            if not args.no_controls:
                print(f"   negative control: {key} without its guard ...", flush=True)
                control = negative_control(key, harness, **CONTROL_SIZES[key])
                result.negative_control = control
                print(f"   {'detected' if control['detected'] else 'NOT DETECTED'}: {control['summary']}")
                if not control["detected"]:
                    result.failures.append(f"negative control not detected: {control['summary']}")
                    result.holds = False
            for failure in result.failures:
                print(f"   ! {failure}")
            results.append(result)
    print()
    print(table(results))
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make chaos" + (" (quick)" if args.quick else ""),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "seconds": round(time.perf_counter() - started, 1),
        "all_hold": all(r.holds for r in results),
        "controls_detected": all(r.negative_control and r.negative_control["detected"] for r in results),
        **{r.key: r.as_dict() for r in results},
    }
    if args.only is None or args.out != str(ROOT / "bench" / "reliability.json"):
        Path(args.out).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        print(f"\nwritten: {args.out}")
    return 0 if document["all_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
