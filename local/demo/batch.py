"""A 50-line batch end to end (== make demo-batch): a JSONL manifest -> POST /batches -> the
batch state machine's Distributed Map on moto -> the submit queue -> the simulator -> the
results manifest, on a throwaway local stack.

It writes a 50-line JSONL manifest (48 good lines, 2 bad ones: an unknown model, a duration the
model does not take) into the uploads bucket under batches/<the demo key's id>/, posts it as a
batch, prints the progress (counts by status) as it changes, and once the batch has ended reads
the results manifest: every good line completed with a video (one MP4 downloaded and checked),
the bad lines reported by number, each line submitted to the provider exactly once (the
simulator's own count). Exit 0 when all that holds, 1 otherwise.

    python -m local.demo.batch [--timeout 240] [--lines 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import requests

from local.demo.api import TEXT_MODEL, Client
from local.demo.common import DemoError, download_mp4, shown_path
from local.stack import ROOT, LocalStack

BAD_LINES = {
    17: {"model": "no-such-model", "prompt": "x"},
    33: {"model": TEXT_MODEL, "prompt": "x", "duration": 7},
}


def manifest(lines: int) -> str:
    rows = []
    for n in range(1, lines + 1):
        rows.append(
            BAD_LINES.get(n) or {"model": TEXT_MODEL, "prompt": f"Product shot {n}: a red sneaker turning"}
        )
    return "".join(json.dumps(row) + "\n" for row in rows)


def run_batch(stack: LocalStack, *, lines: int, timeout: float, outputs: Path) -> dict[str, Any]:
    client = Client(stack.api_url, stack.api_key)
    key = f"batches/{stack.key_id(stack.api_key)}/demo-{int(time.time())}.jsonl"
    stack.client("s3").put_object(Bucket=stack.uploads_bucket, Key=key, Body=manifest(lines).encode())
    print(f"manifest: s3://{stack.uploads_bucket}/{key} ({lines} lines)", flush=True)
    batch = client.call("POST", "/batches", expect=202, json={"manifest_key": key})
    print(f"batch {batch['id']} {batch['status']}", flush=True)
    started, last = time.monotonic(), ""
    while batch["status"] not in ("completed", "failed", "cancelled"):
        if time.monotonic() - started > timeout:
            raise DemoError(f"batch still {batch['status']} after {timeout:g} s: {batch['counts']}")
        time.sleep(0.5)
        batch = client.call("GET", f"/batches/{batch['id']}", expect=200)
        shown = (
            f"{batch['status']:10} {batch['progress']:6.1%}  {json.dumps(batch['counts'], sort_keys=True)}"
        )
        if shown != last:
            print(f"  {time.monotonic() - started:6.1f}s  {shown}", flush=True)
            last = shown
    if batch["status"] != "completed":
        raise DemoError(f"batch ended {batch['status']}: {batch.get('error')}")
    good = lines - len([n for n in BAD_LINES if n <= lines])
    if batch["counts"] != {"completed": good}:
        raise DemoError(f"expected {good} completed lines, got {batch['counts']}")
    invalid = [(line["line"], line["code"]) for line in batch["invalid_lines"]]
    print(f"bad lines reported: {invalid}", flush=True)
    if [n for n, _ in invalid] != sorted(n for n in BAD_LINES if n <= lines):
        raise DemoError(f"bad lines {invalid}, expected lines {sorted(BAD_LINES)}")
    results: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.call(
            "GET",
            f"/batches/{batch['id']}/results",
            expect=200,
            params={"next_token": token} if token else {},
        )
        results.extend(page["items"])
        token = page["next_token"]
        if not token:
            break
    if [row["line"] for row in results] != list(range(1, lines + 1)):
        raise DemoError("the results manifest does not have one row per manifest line")
    first = next(row for row in results if row["status"] == "completed")
    size = download_mp4(first["video_url"], outputs / f"{first['generation_id']}.mp4")
    manifest_text = requests.get(page["manifest"]["url"], timeout=30).text
    saved = outputs / f"{batch['id']}-results.jsonl"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(manifest_text)
    prompts = [job.body.get("prompt", "") for job in stack.simulator.jobs.values()] if stack.simulator else []
    submits = sum(1 for p in prompts if p.startswith("Product shot "))
    if stack.simulator and submits != good:
        raise DemoError(f"the provider saw {submits} submits for {good} good lines")
    print(
        f"results manifest: {shown_path(saved)} ({len(results)} rows); line {first['line']}'s video "
        f"{size} bytes in {shown_path(outputs / (first['generation_id'] + '.mp4'))}; "
        f"provider submits: {submits} for {good} good lines; credits used: {batch['credits_used']}",
        flush=True,
    )
    return batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="deadline in seconds (default 240)")
    parser.add_argument("--lines", type=int, default=50, help="manifest lines (default 50)")
    parser.add_argument("--outputs", type=Path, default=ROOT / ".local" / "outputs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stack = LocalStack(
        port=0,
        poll_seconds=0.5,
        use_simulator=True,
        sim_durations={TEXT_MODEL: 2.0},
        parameter_overrides={"LogLevel": "WARNING"},
        env_overrides={"BATCH_TRACK_SECONDS": "1"},
        log_dir=ROOT / ".local" / "demo-batch-logs",  # the functions' log and metric lines, not stdout
        write_endpoints=False,
    )
    try:
        with stack:
            print(f"local stack: API {stack.api_url}, moto {stack.aws_endpoint_url}", flush=True)
            run_batch(stack, lines=args.lines, timeout=args.timeout, outputs=args.outputs)
    except DemoError as exc:
        print(f"DEMO FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 (anything unexpected ends in one clear line and exit 1)
        traceback.print_exc()
        print(f"DEMO FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    print("DEMO OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
