"""`make bench`: every benchmark on the local stack, a table of the figures against
their goals, and bench/results.json (the figures at the top level, the measurements under
"details"). Each figure is a ratio against a baseline measured in the same run.

Usage: python -m bench.run [--quick] [--out bench/results.json]
(--quick: 200 due generations and 5,000 finished ones instead of 1,000 and 50,000, for a try.)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import LAYER, ROOT

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

# figure -> (goal, "<=" or ">=", what it is)
GOALS: dict[str, tuple[float, str, str]] = {
    "sweep_read_amplification": (1.05, "<=", "items read / due, 50,000 finished in the table"),
    "sweep_history_slowdown": (1.2, "<=", "sweep time with 50,000 finished / with none"),
    # bench/timeliness.py: the local stack with its poll timers, on a scaled clock, vs fixed 15 s
    "detection_delay_p50_s": (2, "<=", "median s from the provider finishing to `completed`"),
    "detection_delay_p95_s": (10, "<=", "p95 s from the provider finishing to `completed`"),
    "detection_delay_vs_fixed15s": (1.0, "<=", "mean detection delay: timers + schedule / fixed 15 s"),
    "poll_calls_vs_fixed15s": (0.5, "<=", "status calls: timers + schedule / fixed 15 s"),
    "cold_start_full_vs_boto3": (1.5, "<=", "worst handler: import + first setup / boto3 + as many clients"),
    "poll_cpu_vs_floor": (2.0, "<=", "CPU per poll / plain GET + UpdateItem (worse of pending, completing)"),
    "layer_size_mb": (25, "<=", "built common layer, unzipped (MB)"),
    # bench/burst.py: 10x the provider's concurrency cap at once through the local stack
    "burst_lost": (0, "<=", "burst: requests that did not end completed"),
    "burst_duplicate_submits": (0, "<=", "burst: provider jobs beyond one per request"),
    "burst_capacity_utilization": (0.9, ">=", "burst: provider running jobs / cap over the drain"),
    "burst_fairness": (2, "<=", "burst: small caller's wait / its wait alone"),
}
REPORTED = ("limit_settle_s",)  # figures with no goal: bench/burst.py


def met(name: str, value: float | None) -> bool:
    goal, op, _ = GOALS[name]
    if value is None:  # not measured: not met
        return False
    return value >= goal if op == ">=" else value <= goal


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweep tables, for a try")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # moto's own clients' pools
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    from bench import burst, coldstart, cost, pollcpu, sweep, timeliness

    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine, for the record
    details: dict[str, Any] = {}
    log("layer size (the sam build output)")
    details["layer"] = coldstart.layer_size()
    log("cold starts (fresh python3.13 interpreters, the built layer read-only)")
    details["cold_start"] = coldstart.cold_starts(log=log)
    log("timeliness (local stack, poll timers on SQS, scaled clock; then fixed 15 s on the same jobs)")
    details["timeliness"] = timeliness.bench(log=log)
    log("sweep (real poller handler, moto, simulator at 200 ms)")
    sizes = {"due": 200, "history": 5_000} if args.quick else {}
    details["sweep"] = sweep.bench(log=log, **sizes)
    log("CPU per poll (real poller handler against a plain GET + UpdateItem loop)")
    details["poll_cpu"] = pollcpu.bench(log=log, **({"count": 100} if args.quick else {}))
    log("AWS requests per generation (local stack: API + poller, Step Functions workflow)")
    counts = cost.measure()
    sweep_ms_per_poll = 1000 * details["sweep"]["sweep_seconds"] / details["sweep"]["due"]
    details["cost"] = {
        "counts": counts,
        "polls_per_generation": details["timeliness"]["schedule"]["calls_per_job"],
        "sweep_ms_per_poll": sweep_ms_per_poll,
        **cost.cost_per_1000(
            counts,
            polls_per_generation=details["timeliness"]["schedule"]["calls_per_job"],
            sweep_ms_per_poll=sweep_ms_per_poll,
            poller_memory_gb=details["poll_cpu"]["poller_memory_mb"] / 1024,
        ),
    }

    log("burst: 10x the provider's concurrency cap at once (local stack, simulator with a cap)")
    details["burst"] = burst.bench(log=log, **({"cap": 5} if args.quick else {}))

    figures = {
        "sweep_read_amplification": details["sweep"]["sweep_read_amplification"],
        "sweep_history_slowdown": details["sweep"]["sweep_history_slowdown"],
        **{name: details["timeliness"][name] for name in timeliness.FIGURES},
        "cold_start_full_vs_boto3": details["cold_start"]["cold_start_full_vs_boto3"],
        "poll_cpu_vs_floor": details["poll_cpu"]["poll_cpu_vs_floor"],
        "layer_size_mb": details["layer"]["layer_size_mb"],
        **{name: details["burst"][name] for name in GOALS if name.startswith("burst_")},
    }
    reported = {name: details["burst"][name] for name in REPORTED}
    result = {
        **{name: None if v is None else round(v, 3) for name, v in {**figures, **reported}.items()},
        "goals": {name: f"{op} {goal:g}" for name, (goal, op, _) in GOALS.items()},
        "all_goals_met": all(met(name, value) for name, value in figures.items()),
        "command": "make bench" + (" (--quick)" if args.quick else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "details": details,
    }
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")

    print(f"\n{'figure':32} {'value':>9}  {'goal':>7}  ok  what")
    for name, value in figures.items():
        goal, op, what = GOALS[name]
        shown = "-" if value is None else f"{value:.3f}"
        print(f"{name:32} {shown:>9}  {op} {goal:<4g}  {'yes' if met(name, value) else 'NO ':3} {what}")
    for name, value in reported.items():
        print(f"{name:32} {'-' if value is None else f'{value:.3f}':>9}  (reported, no goal)")
    c = details["cost"]
    print(
        f"\nAWS cost per 1,000 generations ({c['region']}, prices of {c['prices_date']}): "
        f"poller path ${c['poller']['dollars_per_1000']:.3f}, "
        f"workflow path ${c['workflow']['dollars_per_1000']:.3f}"
    )
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0 if result["all_goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
