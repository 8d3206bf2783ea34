"""Cold starts as Lambda pays them, and the layer's size.

- Cold start (`cold_start_full_vs_boto3`): for each handler, a fresh interpreter of the runtime's
  Python (3.13, from pyenv when the bench's own Python is another) with the BUILT layer
  (.aws-sam/build/CommonLayer/python, from `sam build`) on its path as /opt/python would be, the
  function's folder as /var/task, and Lambda's environment (LAMBDA_TASK_ROOT,
  AWS_LAMBDA_FUNCTION_NAME, ...: the X-Ray SDK and Powertools see they run in Lambda). It times
  `import app` (Lambda's init), then the first invocation's setup: `entry()` (settings, the
  service, the resolver), the Tracer (made at the first invocation, videogen.observability), every
  AWS client the entry point made (each made on first use: made here, one by one) and the Secrets
  Manager readers' providers. Nothing goes on the network: every endpoint is a closed loopback
  port, and nothing is called. The baseline, in the same conditions: a fresh interpreter doing
  `import boto3` and making the same number of clients of the same services.
  The layer is copied to a temporary folder and made read-only, the interpreter runs with
  PYTHONDONTWRITEBYTECODE, and the run checks that no .pyc appeared: as on Lambda, whatever is not
  shipped compiled is compiled at every cold start. Both ways are measured: the layer as built
  (with the python3.13 bytecode layers/common/Makefile compiles) and the same layer without its
  bytecode (every .pyc removed).
  boto3 and botocore come from the runtime (/var/runtime, compiled, as the runtime ships them): a
  folder with the bench's own versions, installed for python3.13 and compiled once.
  The built layer's native code is the runtime's (arm64): packages with native code for another
  machine are swapped for the same versions' wheels for this one (compiled like the rest).
  The time is the probe's process CPU time (user + system): a cold start does no I/O but reading
  files, so it is CPU-bound, and CPU time holds when other work loads the machine, where wall
  time does not (the wall-clock medians are kept in the details). Runs alternate between the
  candidates; medians.
  What carries to AWS: the ratio (the same interpreter, the same files, in the same run); Lambda's
  own init on 512 MB (a fraction of a vCPU) is slower in absolute terms for both alike.
- Layer size: the built common layer unzipped (bytes, as Lambda counts them under /opt).
  boto3 and botocore come with the runtime, not the layer.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, median

HANDLERS = (
    "api",
    "poller",
    "upload",
    "workflow",
    "notifier",
    "webhook",
    "dispatcher",
    "poll_timer",
    "spend",
    "batch",
)
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "CommonLayer" / "python"
CACHE = ROOT / ".aws-sam" / "bench"  # the runtime's boto3 and this machine's wheels (build output)
CLOSED = "http://127.0.0.1:9"  # discard port, nothing listens: any call would fail at once
# The settings every handler reads at its cold start (values as the template gives them), and
# what Lambda sets in every function's environment.
ENV = {
    "TABLE_NAME": "bench-generations",
    "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
    "OUTPUTS_BUCKET": "bench-outputs",
    "AIML_API_KEY_SECRET_ID": "bench-secret",
    "AIML_BASE_URL": CLOSED,
    "WEBHOOK_SECRET_ID": "bench-webhook-secret",
    "WEBHOOK_SECRET_VERSIONS_TABLE": "bench-webhook-secret-versions",
    "SPEND_TABLE_NAME": "bench-spend",
    "POLL_TIMER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-poll-timers",
    "MODEL_STATS_TABLE_NAME": "bench-model-stats",
    "QUEUE_TABLE_NAME": "bench-queue",
    "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dispatch",
    "EVENT_BUS_NAME": "bench-events",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-webhooks",
    "WEBHOOK_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-webhooks-dlq",
    "BATCHES_TABLE_NAME": "bench-batches",
    "BATCH_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bench-batch",
    "UPLOADS_BUCKET": "bench-uploads",
    "POWERTOOLS_SERVICE_NAME": "videogen",
    "POWERTOOLS_METRICS_NAMESPACE": "Videogen",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",  # Lambda hands the role's credentials over in the environment
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_ENDPOINT_URL": CLOSED,
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "_HANDLER": "app.lambda_handler",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "LANG": "en_US.UTF-8",
}

# Run as the function's init and first invocation would; prints the seconds and what was made.
_PROBE = """
import json, sys, time
started, cpu = time.perf_counter(), time.process_time()
from videogen import lazy
# Note each AWS client and each secret reader as it is made (a walk of gc.get_objects() would
# cost the probe tens of milliseconds the baseline does not pay).
made = []
READER = "secret_reader.<locals>.make"  # the Secrets Manager provider a reader makes on first use
_client_init, _once_init = lazy.LazyClient.__init__, lazy.Once.__init__
def _client(self, *args, **kwargs):
    _client_init(self, *args, **kwargs)
    made.append(self)
def _once(self, factory):
    _once_init(self, factory)
    if getattr(factory, "__qualname__", "") == READER:
        made.append(self)
lazy.LazyClient.__init__, lazy.Once.__init__ = _client, _once
import app
assert callable(app.lambda_handler)
app.entry()
from videogen.observability import tracer
tracer._get()  # the Tracer the first invocation makes (capture_lambda_handler)
services = []
for thing in list(made):  # a reader makes its own client: counted once, as the reader
    if isinstance(thing, lazy.LazyClient):
        thing.get()
        services.append(thing._service)
    else:
        thing()
        services.append("secretsmanager")
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "services": sorted(services), "modules": len(sys.modules)}))
"""
_BASELINE = """
import json, sys, time
started, cpu = time.perf_counter(), time.process_time()
import boto3
clients = [boto3.client(name) for name in {services!r}]
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({{"seconds": seconds, "cpu": cpu, "services": {services!r}, "modules": len(sys.modules)}}))
"""


def python313() -> str:
    """The runtime's interpreter: python3.13 from pyenv, else on PATH, else this one."""
    if sys.version_info[:2] == (3, 13):
        return sys.executable
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    found = candidates[-1] if candidates else shutil.which("python3.13")
    return found or sys.executable


PIP_FLAGS = ["--quiet", "--disable-pip-version-check", "--no-compile", "--no-deps", "--only-binary=:all:"]


def _pip(python: str, target: Path, *requirements: str) -> None:
    command = [python, "-m", "pip", "install", *PIP_FLAGS, "--target", str(target), *requirements]
    subprocess.run(command, check=True, capture_output=True)


def _compile(python: str, folder: Path) -> None:
    """As layers/common/Makefile compiles the layer (and as the runtime ships its boto3)."""
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)],
        check=True,
        capture_output=True,
    )


def runtime_folder(python: str) -> Path:
    """boto3 and botocore as /var/runtime has them: this bench's versions, for python3.13,
    compiled. Made once, kept under .aws-sam/bench."""
    pins = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore", "s3transfer", "jmespath")]
    pins += [f"python-dateutil=={metadata.version('python-dateutil')}", f"six=={metadata.version('six')}"]
    pins.append(f"urllib3=={metadata.version('urllib3')}")
    folder = CACHE / ("runtime-" + "-".join(p.split("==")[1] for p in pins[:2]))
    if not (folder / ".done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        _pip(python, folder, *pins)
        _compile(python, folder)
        (folder / ".done").write_text("\n".join(pins) + "\n")
    return folder


def _foreign_native(layer: Path) -> list[tuple[str, str, Path]]:
    """(distribution, version, dist-info) of the packages whose native code is for another
    machine than this one."""
    machine = platform.machine()
    found = []
    for info in sorted(layer.glob("*.dist-info")):
        record = (info / "RECORD").read_text() if (info / "RECORD").exists() else ""
        native = [line.split(",")[0] for line in record.splitlines() if line.split(",")[0].endswith(".so")]
        if any(machine not in name and "-linux-gnu" in name for name in native):
            dist, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
            found.append((dist, version, info))
    return found


def _record_paths(info: Path) -> set[str]:
    return {line.split(",")[0] for line in (info / "RECORD").read_text().splitlines() if line}


def host_layer(python: str, dest: Path, *, compiled: bool) -> dict[str, Any]:
    """The built layer copied to `dest`, its foreign native packages swapped for this machine's
    wheels, with or without bytecode, then read-only."""
    if not (BUILT_LAYER / "videogen").is_dir():
        raise RuntimeError(f"no built layer at {BUILT_LAYER}: run `make build` (sam build) first")
    shipped_pyc = sum(1 for _ in BUILT_LAYER.rglob("*.pyc"))
    shutil.copytree(BUILT_LAYER, dest, symlinks=True)
    swapped = []
    for dist, version, info in _foreign_native(dest):
        for relative in _record_paths(info):
            (dest / relative).unlink(missing_ok=True)
        shutil.rmtree(info, ignore_errors=True)
        wheels = CACHE / f"host-{platform.machine()}-{dist}-{version}"
        if not (wheels / ".done").exists():
            shutil.rmtree(wheels, ignore_errors=True)
            _pip(python, wheels, f"{dist}=={version}")
            (wheels / ".done").write_text(version)
        shutil.copytree(
            wheels, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".done", "__pycache__")
        )
        if compiled:
            for top in {p.split("/")[0] for p in _record_paths(next(wheels.glob("*.dist-info")))}:
                if (dest / top).is_dir():
                    _compile(python, dest / top)
        swapped.append(f"{dist}=={version}")
    if not compiled:
        for cache in list(dest.rglob("__pycache__")):
            shutil.rmtree(cache)
    pycs = sum(1 for _ in dest.rglob("*.pyc"))
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return {"pyc_files": pycs, "pyc_files_as_built": shipped_pyc, "swapped_for_this_machine": swapped}


def _run(python: str, code: str, path: list[Path]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
    env.update(ENV)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    env["LAMBDA_TASK_ROOT"] = str(path[0])
    env["AWS_LAMBDA_FUNCTION_NAME"] = f"bench-{path[0].name}"
    answer = subprocess.run(
        [python, "-c", code], cwd=path[0], env=env, capture_output=True, text=True, check=False
    )
    if answer.returncode:
        raise RuntimeError(f"cold start probe failed in {path[0]}:\n{answer.stderr[-3000:]}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def _read_only_copy(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [dest, *dest.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return dest


def paired_ratio(candidate: list[float], baseline: list[float]) -> float:
    """The median of the rounds' ratios (round i's candidate / round i's baseline)."""
    return median([c / b for c, b in zip(candidate, baseline, strict=True)])


def _pyc_count(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.pyc"))


def cold_starts(repeats: int = 7, log: Any = print) -> dict[str, Any]:
    python = python313()
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    runtime = runtime_folder(python)
    with tempfile.TemporaryDirectory(prefix="videogen-coldstart-") as tmp:
        root = Path(tmp)
        layers = {
            "compiled": host_layer(python, root / "compiled" / "python", compiled=True),
            "source": host_layer(python, root / "source" / "python", compiled=False),
        }
        empty = root / "task" / "boto3"
        empty.mkdir(parents=True)
        tasks = {name: _read_only_copy(ROOT / "functions" / name, root / "task" / name) for name in HANDLERS}
        before = {variant: _pyc_count(root / variant) for variant in layers}
        # one untimed run each: the services every handler makes, and the disk cache warm for all
        services = {}
        for name in HANDLERS:
            for variant in layers:
                made = _run(python, _PROBE, [tasks[name], root / variant / "python", runtime])
            services[name] = made["services"]
        # Each round runs, handler by handler, its baseline and then both variants back to back:
        # a ratio is taken within the round (the three runs a second apart), and the figure is
        # the median of the rounds' ratios. Medians of separately timed runs drifted with the
        # machine's load (the same baseline differed by 15% between client sets in one run).
        probes: dict[str, tuple[str, list[Path]]] = {}
        for name in HANDLERS:
            probes[f"boto3:{name}"] = (_BASELINE.format(services=services[name]), [empty, runtime])
            for variant in layers:
                probes[f"{variant}:{name}"] = (_PROBE, [tasks[name], root / variant / "python", runtime])
        times: dict[str, list[float]] = {key: [] for key in probes}
        walls: dict[str, list[float]] = {key: [] for key in probes}
        modules: dict[str, int] = {}
        for repeat in range(repeats):
            for key, (code, path) in probes.items():
                answer = _run(python, code, path)
                times[key].append(answer["cpu"])
                walls[key].append(answer["seconds"])
                modules[key] = answer["modules"]
            log(f"  round {repeat + 1}/{repeats}")
        after = {variant: _pyc_count(root / variant) for variant in layers}
        if after != before or any(_pyc_count(task) for task in tasks.values()):
            raise RuntimeError(f"bytecode was written under the read-only layer: {before} -> {after}")

    medians = {key: median(values) for key, values in times.items()}
    result: dict[str, Any] = {
        "python": version,
        "repeats": repeats,
        "layer": layers,
        "services": services,
        "median_ms": {key: round(seconds * 1000, 1) for key, seconds in medians.items()},
        "median_wall_ms": {key: round(median(values) * 1000, 1) for key, values in walls.items()},
        "modules_loaded": modules,
    }
    for variant in layers:
        ratios = {name: paired_ratio(times[f"{variant}:{name}"], times[f"boto3:{name}"]) for name in HANDLERS}
        worst = max(ratios, key=lambda name: ratios[name])
        result[variant] = {"vs_boto3": ratios, "worst_handler": worst, "worst": ratios[worst]}
    result["compiled_vs_source"] = {
        name: paired_ratio(times[f"compiled:{name}"], times[f"source:{name}"]) for name in HANDLERS
    }
    result["cold_start_full_vs_boto3"] = result["compiled"]["worst"]
    return result


def layer_size(build_dir: Path = ROOT / ".aws-sam" / "build" / "CommonLayer") -> dict[str, Any]:
    if not (build_dir / "python" / "videogen").is_dir():
        raise RuntimeError(f"no built layer at {build_dir}: run `make build` (sam build) first")
    total = 0
    bytecode = 0
    by_package: dict[str, int] = {}
    for path in (build_dir / "python").rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            if path.suffix == ".pyc":
                bytecode += size
            top = path.relative_to(build_dir / "python").parts[0].split("-")[0].removesuffix(".py")
            by_package[top] = by_package.get(top, 0) + size
    largest = sorted(by_package.items(), key=lambda item: -item[1])[:6]
    return {
        "layer_size_mb": total / 1_000_000,
        "bytecode_mb": round(bytecode / 1_000_000, 2),
        "largest_mb": {name: round(size / 1_000_000, 2) for name, size in largest},
        "runtime_packages_in_layer": sorted(
            name for name in ("boto3", "botocore", "s3transfer") if (build_dir / "python" / name).exists()
        ),
    }


if __name__ == "__main__":
    print(
        json.dumps(
            {**cold_starts(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 7), **layer_size()}, indent=2
        )
    )
