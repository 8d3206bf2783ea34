"""CloudWatch Logs, locally: each function's output in its own file, as Lambda sends a function's
stdout to its log group.

While installed, `FunctionLogs` stands in for `sys.stdout` (and for the stream of the Powertools
logger's handler). The local stack runs one invocation at a time (its invocation lock), and
`invocation(logical_id)` marks which function is running: every JSON line written meanwhile
(Powertools Logger lines, Powertools Metrics' EMF lines) is appended to
`<directory>/<LogicalId>.log`, from any thread (a sweep logs from its worker threads). Lines that
are not JSON (the demo's story, a developer's print) are not the function's: they only go to the
terminal. EMF lines are not echoed to the terminal (CloudWatch turns them into metrics; nobody
reads them as text); log lines are, as before.

After each invocation the function's file also gets the line Lambda's platform metrics would
give: an EMF line in namespace `AWS/Lambda` with `Invocations`, `Errors` and `Duration` for
dimension `FunctionName` (the local physical name), so the local dashboard (ops/render.py) draws
the functions' widgets from the same files. `names.json` maps logical ids to those names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

Handler = Callable[[Any, Any], Any]


def is_emf(record: Mapping[str, Any]) -> bool:
    return isinstance(record.get("_aws"), dict) and "CloudWatchMetrics" in record["_aws"]


def lambda_metrics_line(function_name: str, duration_ms: float, errored: bool, now: float) -> str:
    """Lambda's own metrics of one invocation, as an EMF line."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(now * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "AWS/Lambda",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "Invocations", "Unit": "Count"},
                            {"Name": "Errors", "Unit": "Count"},
                            {"Name": "Duration", "Unit": "Milliseconds"},
                        ],
                    }
                ],
            },
            "FunctionName": function_name,
            "Invocations": 1,
            "Errors": 1 if errored else 0,
            "Duration": round(duration_ms, 3),
        },
        separators=(",", ":"),
    )


class FunctionLogs:
    def __init__(
        self, directory: str | Path, names: Mapping[str, str], *, echo_metrics: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.names = dict(names)  # logical id -> function name
        self.echo_metrics = echo_metrics
        self._terminal: TextIO | None = None
        self._current: list[str] = []  # the running invocation (a stack: the shim may nest one)
        self._pending = threading.local()  # a partial line per thread
        self._file_lock = threading.Lock()
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    # ---- lifecycle -----------------------------------------------------------------------------
    def install(self) -> FunctionLogs:
        """Start a fresh set of files (as a new stack's log groups are empty) and take stdout."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for old in self.directory.glob("*.log"):
            old.unlink()
        (self.directory / "names.json").write_text(json.dumps(self.names, indent=2, sort_keys=True) + "\n")
        self._terminal = sys.stdout
        sys.stdout = self  # type: ignore[assignment]
        return self

    def capture_logger(self, name: str) -> None:
        """Point the stream handlers of logger `name` (Powertools' service logger, which may have
        been made before install) that write to the terminal at these files instead."""
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                self._terminal,
                sys.__stdout__,
            ):
                self._handlers.append((handler, handler.stream))
                handler.setStream(self)

    def uninstall(self) -> None:
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers.clear()
        if self._terminal is not None:
            self.flush()
            if sys.stdout is self:
                sys.stdout = self._terminal
            self._terminal = None

    def wrap(self, logical_id: str, handler: Handler) -> Handler:
        def invoke(event: Any, context: Any) -> Any:
            with self.invocation(logical_id):
                return handler(event, context)

        return invoke

    @contextlib.contextmanager
    def invocation(self, logical_id: str) -> Iterator[None]:
        self._current.append(logical_id)
        started = time.perf_counter()
        errored = False
        try:
            yield
        except BaseException:
            errored = True
            raise
        finally:
            duration = (time.perf_counter() - started) * 1000
            self._append(
                logical_id, lambda_metrics_line(self.names[logical_id], duration, errored, time.time())
            )
            self._current.pop()

    def path(self, logical_id: str) -> Path:
        return self.directory / f"{logical_id}.log"

    # ---- the stream ----------------------------------------------------------------------------
    def write(self, text: str) -> int:
        pending = getattr(self._pending, "text", "") + text
        *complete, rest = pending.split("\n")
        self._pending.text = rest
        for line in complete:
            self._route(line)
        return len(text)

    def flush(self) -> None:
        if self._terminal is not None:
            self._terminal.flush()

    def isatty(self) -> bool:
        return bool(self._terminal is not None and self._terminal.isatty())

    @property
    def encoding(self) -> str:
        return getattr(self._terminal, "encoding", "utf-8")

    def _route(self, line: str) -> None:
        record = None
        if self._current and line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
        if isinstance(record, dict):
            self._append(self._current[-1], line)
            if is_emf(record) and not self.echo_metrics:
                return
        if self._terminal is not None:
            self._terminal.write(line + "\n")

    def _append(self, logical_id: str, line: str) -> None:
        with self._file_lock, self.path(logical_id).open("a") as out:
            out.write(line + "\n")
