"""Cold starts and the layer's size.

- Cold start: for each handler, a fresh interpreter times the import of its app.py (the module
  load and the settings) and the build of its entry point (`entry()`: the service, the Powertools
  resolver; the first invocation does it, before any AWS client is made), against a
  fresh interpreter timing `import boto3`, which every Python function in Lambda can be expected
  to pay. Runs alternate between the candidates so machine noise hits all alike; medians.
- Layer size: the built common layer (.aws-sam/build/CommonLayer, from `sam build`) unzipped,
  as Lambda unpacks it under /opt. boto3 and botocore come with the runtime, not the layer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import LAYER, ROOT, median

HANDLERS = ("api", "poller", "upload", "workflow", "notifier", "webhook")
# The settings every handler reads at its cold start (values as the template gives them).
ENV = {
    "TABLE_NAME": "bench-generations",
    "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
    "OUTPUTS_BUCKET": "bench-outputs",
    "AIML_API_KEY_SECRET_ID": "bench-secret",
    "WEBHOOK_SECRET_ID": "bench-webhook-secret",
    "EVENT_BUS_NAME": "bench-events",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-webhooks",
    "WEBHOOK_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-webhooks-dlq",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "videogen",
    "POWERTOOLS_METRICS_NAMESPACE": "Videogen",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

_PROBE = """
import sys, time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""
_HANDLER = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.lambda_handler)
module.entry()
"""


def _time(body: str) -> float:
    env = {**os.environ, **ENV, "PYTHONPATH": str(LAYER)}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    answer = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(answer.stdout.strip().splitlines()[-1])


def cold_starts(repeats: int = 9) -> dict[str, Any]:
    probes = {"boto3": "import boto3"}
    for name in HANDLERS:
        probes[name] = _HANDLER.format(path=str(ROOT / "functions" / name / "app.py"))
    for body in probes.values():  # compile every .pyc once, outside the timing
        _time(body)
    times: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(repeats):
        for name, body in probes.items():
            times[name].append(_time(body))
    medians = {name: median(values) for name, values in times.items()}
    ratios = {name: medians[name] / medians["boto3"] for name in HANDLERS}
    worst = max(ratios, key=lambda name: ratios[name])
    return {
        "median_ms": {name: round(seconds * 1000, 1) for name, seconds in medians.items()},
        "vs_boto3": ratios,
        "worst_handler": worst,
        "cold_start_vs_boto3": ratios[worst],
    }


def layer_size(build_dir: Path = ROOT / ".aws-sam" / "build" / "CommonLayer") -> dict[str, Any]:
    if not (build_dir / "python" / "videogen").is_dir():
        raise RuntimeError(f"no built layer at {build_dir}: run `make build` (sam build) first")
    total = 0
    by_package: dict[str, int] = {}
    for path in (build_dir / "python").rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            top = path.relative_to(build_dir / "python").parts[0].split("-")[0].removesuffix(".py")
            by_package[top] = by_package.get(top, 0) + size
    largest = sorted(by_package.items(), key=lambda item: -item[1])[:6]
    return {
        "layer_size_mb": total / 1_000_000,
        "largest_mb": {name: round(size / 1_000_000, 2) for name, size in largest},
        "runtime_packages_in_layer": sorted(
            name for name in ("boto3", "botocore", "s3transfer") if (build_dir / "python" / name).exists()
        ),
    }


if __name__ == "__main__":
    print(json.dumps({**cold_starts(), **layer_size()}, indent=2))
