"""Pieces the benchmarks share: the repo's paths, a simulator in its own process, handler loading."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "common"
SIM_KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator(**config: Any) -> Iterator[str]:
    """The AIML API simulator in a process of its own, as the real provider is remote: its
    request handling does not compete with the code under test for this interpreter's GIL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.simulator", "--port", str(port), "--api-key", SIM_KEY, "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{url}/_sim/state", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        if config:
            configure(url, **config)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MotoServer:
    """moto's server in a process of its own (bench/moto_proc.py), for the same reason: DynamoDB's
    work happens on AWS's machines, not in the Lambda's interpreter, so the fake must not take
    the handler's GIL. `url` is its endpoint (an empty account); `load` bulk-fills a table."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.moto_proc", "--port", str(self.port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the moto server did not start")

    def cpu_seconds(self) -> float:
        """CPU time the moto process has used so far (user + system)."""
        return process_cpu_seconds(self.process.pid)

    def load(self, table: str, items: list[dict[str, Any]]) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(items, file)
        try:
            self.process.stdin.write(json.dumps({"load": file.name, "table": table}) + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline().strip()
        finally:
            os.unlink(file.name)
        if answer != f"loaded {len(items)}":
            raise RuntimeError(f"the moto server did not load the items: {answer!r}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        yield server
    finally:
        server.close()


def configure(url: str, **config: Any) -> None:
    requests.post(f"{url}/_sim/config", json=config, timeout=10).raise_for_status()


def sim_state(url: str) -> dict[str, Any]:
    answer = requests.get(f"{url}/_sim/state", timeout=30)
    answer.raise_for_status()
    return dict(answer.json())


def load_handler(path: Path, name: str, env: Mapping[str, str]) -> ModuleType:
    """Import a function's app.py under its own module name with `env` in os.environ, as a cold
    start in Lambda would (the layer's folder is on sys.path)."""
    os.environ.update(env)
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
