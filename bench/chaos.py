"""`make chaos`: the reliability scenarios of issue 5 at full size on a throwaway local stack.

    python -m bench.chaos [--only KEY ...] [--quick] [--out bench/reliability.json]

Starts a LocalStack (moto, the AIML API simulator, the real handlers; nothing leaves
127.0.0.1), runs each scenario of bench/reliability.py, prints a table and writes the results
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
}
QUICK: dict[str, dict[str, Any]] = {
    "idempotent_submit": {"concurrency": 20},
    "duplicate_deliveries": {"generations": 5},
    "overlapping_sweeps": {"generations": 40, "sweeps": 3},
    "provider_chaos": {"generations": 60},
    "crash_points": {},
    "aws_faults": {"generations": 10},
    "fuzzed_api": {"cases": 100},
    "load": {"clients": 5, "seconds": 5.0},
}


def table(results: list[Any]) -> str:
    rows = [("key", "holds", "s", "measured")]
    rows += [(r.key, "yes" if r.holds else "NO", f"{r.seconds:.0f}", r.summary) for r in results]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(FULL), help="run only these scenarios")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, minutes less)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "reliability.json"))
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("local.stack").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")  # Powertools: "No application metrics to publish", etc.
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    from bench.reliability import ALL, Harness
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
            },
            state_dir=state,
            write_endpoints=False,
        ) as stack,
    ):
        harness = Harness(stack)
        for key in keys:
            print(f"-> {key} ...", flush=True)
            result = ALL[key](harness, **sizes[key])
            verdict = "holds" if result.holds else "DOES NOT HOLD"
            print(f"   {verdict} ({result.seconds:.0f} s): {result.summary}")
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
        **{r.key: r.as_dict() for r in results},
    }
    if args.only is None or args.out != str(ROOT / "bench" / "reliability.json"):
        Path(args.out).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        print(f"\nwritten: {args.out}")
    return 0 if document["all_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
