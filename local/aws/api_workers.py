"""Concurrent invocations for the local stack: each one in a worker process of its own, as
Lambda runs each concurrent request in an execution environment of its own. The API's requests
(LOCAL_API_WORKERS) and any other function's invocations (LOCAL_FUNCTION_WORKERS: uploads, the
dispatcher, the poll timers... see LocalStack) use the same pool, one per function.

Why processes, not threads: the handlers keep per-invocation state in process-wide places that
one resolver per thread does not isolate. Powertools' event handler stores the request being
resolved on the `BaseRouter` class (`BaseRouter.current_event`, `BaseRouter.lambda_context`),
so two resolvers in two threads read each other's event (and with it the caller's API key id:
another tenant's records); the Metrics buffer is a class-level dict flushed by whichever
invocation ends first; the Logger's keys live on one shared formatter. In Lambda none of that is
shared, because no two invocations share an environment; a process per worker gives the same.

`FunctionWorkers(spec, size=N, ...)` (alias `ApiWorkers`) keeps up to N workers, started on
demand (a request that finds no idle worker starts one: a cold start) and kept warm; when N are
busy a request waits for one, up to `wait_seconds`, then gets TooManyRequests (Lambda's
throttle: API Gateway answers 5xx). A worker runs `python -m local.aws.api_workers`: it imports
the function's handler file with the stack's environment (moto's endpoint, the simulator, the
tables: everything it talks to is reachable over 127.0.0.1), then answers one request per line
on stdin with one JSON line on its own copy of stdout; the handler's logs go to stderr (or to
the function's log file: `log_file`). An exception in the handler comes back as Lambda reports
it (errorType, errorMessage) and is raised as FunctionError; a worker that dies is replaced by
the next request.

A scaled clock (local/clock.py) reaches the worker as its rate and origin: the worker sets the
functions' clock (videogen.bootstrap.CLOCK) to the same ScaledClock the stack's process uses."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

READY = "ready"


class FunctionError(RuntimeError):
    """The handler raised: `error` is what Lambda reports (errorType, errorMessage, ...)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = error


class WorkerDied(RuntimeError):
    """The worker process ended or answered something that is not a JSON line."""


class TooManyRequests(RuntimeError):
    """Every worker stayed busy for the whole wait."""


class _Worker:
    """One worker process and its pipes (one request at a time)."""

    def __init__(
        self, config: dict[str, Any], env: Mapping[str, str], cwd: Path, log_file: Path | None = None
    ) -> None:
        self._log: IO[str] | None = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = log_file.open("a", encoding="utf-8")
        self.process = subprocess.Popen(  # this interpreter, this module
            [sys.executable, "-m", "local.aws.api_workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=dict(env),
            cwd=cwd,
            text=True,
            bufsize=1,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in: IO[str] = self.process.stdin
        self._out: IO[str] = self.process.stdout
        self._send(config)
        if self._receive() != READY:
            self.stop()
            raise WorkerDied("the worker did not start")

    def _send(self, message: Any) -> None:
        try:
            self._in.write(json.dumps(message) + "\n")
            self._in.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"the worker is gone: {exc}") from None

    def _receive(self) -> Any:
        line = self._out.readline()
        if not line:
            raise WorkerDied(f"the worker ended (exit code {self.process.poll()})")
        try:
            return json.loads(line)
        except ValueError:
            raise WorkerDied(f"the worker answered {line[:200]!r}") from None

    def call(self, event: Any) -> Any:
        self._send({"event": event})
        answer = self._receive()
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer["result"]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            self._out.close()
        if self._log is not None:
            self._log.close()


class FunctionWorkers:
    """Up to `size` worker processes running one function's handler, one request each at a time.

    - module_file, handler_name: the handler (the template's CodeUri + Handler);
    - context: the LambdaContext arguments (function_name, memory_limit_in_mb, timeout_seconds,
      region); each invocation gets a fresh context, its deadline counted in the worker;
    - env: the function's environment; paths: prepended to PYTHONPATH (the repository, so
      `local` imports, and the layers, as Lambda mounts them on /opt/python);
    - clock: a local.clock.ScaledClock the workers play too (None: the wall clock);
    - log_file: where the workers' output goes (None: this process's stderr).
    """

    def __init__(
        self,
        *,
        module_file: Path,
        handler_name: str,
        context: Mapping[str, Any],
        size: int,
        env: Mapping[str, str],
        paths: list[str],
        cwd: Path,
        wait_seconds: float = 30.0,
        clock: Any = None,
        log_file: Path | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("at least one worker")
        self.size = size
        self.wait_seconds = wait_seconds
        self._config: dict[str, Any] = {
            "module_file": str(module_file),
            "handler": handler_name,
            "context": dict(context),
        }
        if clock is not None:
            self._config["clock"] = {"rate": clock.rate, "origin": clock.origin}
        self._log_file = log_file
        pythonpath = [*paths, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        self._env = {**env, "PYTHONPATH": os.pathsep.join(pythonpath)}
        self._cwd = cwd
        self._idle: list[_Worker] = []
        self._count = 0  # started and not stopped (idle or busy)
        self._busy_peak = 0
        self._busy = 0
        self._cond = threading.Condition()
        self._closed = False
        self.started = 0  # cold starts

    @property
    def busy_peak(self) -> int:
        """The most invocations that ran at once."""
        return self._busy_peak

    def _take(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerDied("the workers are stopped")
                while self._idle and self._idle[-1].process.poll() is not None:
                    self._idle.pop().stop()  # ended while idle (killed): never given a request
                    self._count -= 1
                if self._idle:
                    worker = self._idle.pop()
                    break
                if self._count < self.size:
                    self._count += 1
                    worker = None
                    break
                if not self._cond.wait(timeout=self.wait_seconds):
                    raise TooManyRequests(f"{self.size} workers busy for {self.wait_seconds:.0f} s")
            self._busy += 1
            self._busy_peak = max(self._busy_peak, self._busy)
        if worker is not None:
            return worker
        try:
            worker = _Worker(
                self._config, self._env, self._cwd, self._log_file
            )  # a cold start, outside the lock
        except BaseException:
            with self._cond:
                self._count -= 1
                self._busy -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.started += 1
        return worker

    @property
    def busy(self) -> int:
        """Invocations running now."""
        return self._busy

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            self._busy -= 1
            if healthy and not self._closed:
                self._idle.append(worker)
                worker = None  # type: ignore[assignment]
            else:
                self._count -= 1
            self._cond.notify()
        if worker is not None:
            worker.stop()

    def invoke(self, event: Any) -> Any:
        """Run the handler on `event` in an idle worker (started if none is idle)."""
        worker = self._take()
        healthy = False
        try:
            result = worker.call(event)
            healthy = True
            return result
        except FunctionError:
            healthy = True  # the handler raised; its process is fine
            raise
        finally:
            self._give_back(worker, healthy)

    def warm(self) -> None:
        """Start every worker not started yet, at once (their cold starts before a burst)."""
        with self._cond:
            missing = self.size - self._count
            self._count += missing
        if missing <= 0:
            return

        def start(_: int) -> _Worker | None:
            try:
                return _Worker(self._config, self._env, self._cwd, self._log_file)
            except WorkerDied:
                return None

        with ThreadPoolExecutor(missing) as pool:
            started = list(pool.map(start, range(missing)))
        with self._cond:
            for worker in started:
                if worker is None:
                    self._count -= 1
                else:
                    self.started += 1
                    self._idle.append(worker)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the idle workers now; busy ones stop when their request ends."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()


ApiWorkers = FunctionWorkers  # the name it had when only the API used it


# ---- the worker process ---------------------------------------------------------------------------
def _load(path: Path) -> Any:
    name = f"_videogen_api_worker_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic and dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _serve() -> int:
    # Answers go to a copy of stdout; anything the handler prints or logs goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    from local.aws.apigw import LambdaContext

    config = json.loads(sys.stdin.readline())
    handler = getattr(_load(Path(config["module_file"])), config["handler"])
    bootstrap = sys.modules.get("videogen.bootstrap")
    if config.get("clock") and bootstrap is not None:  # the stack's scaled clock, for the functions
        from local.clock import ScaledClock

        setattr(bootstrap, "CLOCK", ScaledClock(**config["clock"]))  # noqa: B010 (a module attribute)
    context_args = config["context"]
    function_name = context_args.pop("function_name")
    answers.write(json.dumps(READY) + "\n")
    for line in sys.stdin:
        event = json.loads(line)["event"]
        context = LambdaContext(function_name, **context_args)
        try:
            answer = {"result": handler(event, context)}
        except Exception as exc:  # noqa: BLE001 (any exception is the function's error, as in Lambda)
            answer = {
                "error": {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            }
        try:
            text = json.dumps(answer)
        except (TypeError, ValueError) as exc:
            text = json.dumps(
                {"error": {"errorType": "Runtime.MarshalError", "errorMessage": f"Unable to marshal: {exc}"}}
            )
        answers.write(text + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_serve())
    except Exception:  # noqa: BLE001 (a cold start that failed: say why on stderr, then end)
        traceback.print_exc()
        sys.exit(1)
