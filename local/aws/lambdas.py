"""The template's Lambda functions inside moto, running the real handlers in-process (no Docker).

Why a shim: AWS services call Lambda functions by themselves (S3 bucket notifications, Step
Functions Task states), and locally those calls happen inside moto. moto 5.2.5 runs a function
either in Docker (not available here: no daemon) or, with `{"lambda": {"use_docker": false}}`,
answers every invocation with a canned payload; it has no supported hook to run local code. All
three invocation paths (the Invoke API, S3 notifications, Step Functions `lambda:invoke` tasks)
end in one private method, `moto.awslambda.models.LambdaFunction._invoke_lambda(self, event)`,
which returns `(payload_json_str, errored, logs)`. `LambdaShim` replaces that method while it is
installed: for a function of the template it imports the configured handler (CodeUri + Handler,
the template's layer folders on sys.path, as Lambda mounts layers on /opt) and calls it with a fake
Lambda context; any other function keeps moto's own behaviour. It also wraps
`LambdaFunction.invoke(self, body, request_headers, response_headers)`, the caller of
`_invoke_lambda`, to tell asynchronous invocations apart (see below).

Because it patches a private method, the shim is pinned: `install()` refuses any moto other than
SUPPORTED_MOTO_VERSION (the pin in requirements-dev.txt; tests/unit/test_lambdas.py checks the two
agree and exercises every path). When moto is upgraded, re-read `_invoke_lambda` and
`LambdaFunction.invoke` in moto/awslambda/models.py, then move the pin.

What the caller of a function sees, as in Lambda:
- the handler's return value, JSON-encoded (`None` -> `null`);
- an exception -> errored (`X-Amz-Function-Error`), payload `{"errorType": <exception class
  name>, "errorMessage", "requestId", "stackTrace"}`: Step Functions matches Retry/Catch
  `ErrorEquals` on `errorType`, e.g. a handler raising `ProviderThrottled` -> error `ProviderThrottled`;
- a result that is not JSON -> errored, `Runtime.MarshalError`;
- no free "container" within `lock_timeout` -> HTTP 429 `TooManyRequestsException`, which Step
  Functions reports as `Lambda.TooManyRequestsException` (what a throttled Lambda answers).

Synchronous and asynchronous, as in AWS: an `Invoke` with `InvocationType=Event`, and the S3 and
SNS notifications moto delivers (AWS invokes those asynchronously; moto would run them inside the
PutObject call), are queued and run by a worker thread: the caller gets 202 at once. A failed
asynchronous invocation is retried up to the function's `EventInvokeConfig.MaximumRetryAttempts`
(default 2, after short delays instead of AWS's minutes), then recorded in `async_failures` and
logged (AWS would send it to the OnFailure destination). `drain()` waits until the queue is empty,
e.g. after an upload in a test. Step Functions tasks are synchronous (`lambda:invoke`).
`async_workers` threads run the queue (default 1; the local stack sets more when functions have
worker processes, so that, e.g., a burst of uploads is handled side by side as in Lambda).

One invocation at a time: handlers share one process, and Powertools keeps per-invocation state
(Logger keys, the Metrics buffer) in module-level singletons, so every call takes `lock` (pass
the local stack's lock so shim calls, API requests and scheduled sweeps are serialised
together). moto calls the shim from its own threads (a Step Functions execution's thread, the
server's request threads), so a thread that holds the lock while it waits for something that
needs a Lambda call (e.g. an execution to finish) would wait forever; `lock_timeout` bounds that
wait and turns it into a throttle, logged with the likely cause (a queued asynchronous
invocation is simply retried later, as Lambda retries throttled events). The lock is reentrant:
a handler whose own AWS call makes moto invoke a function in the same thread (in-process
`mock_aws`) does not deadlock. A function given worker processes (`pools`: logical id ->
local/aws/api_workers.py FunctionWorkers, see local/aws/concurrency.py) runs there instead,
without the lock, as many at once as it has workers; a handler replaced in this process (a
test's spy) still runs in-process. Not emulated: a handler running past its Timeout is not
stopped, reserved concurrency (beyond bounding a function's workers), OnFailure destinations,
versions and aliases, the /opt layer mount (layers are on sys.path instead).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import inspect
import io
import itertools
import json
import logging
import queue
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.core.exceptions import JsonRESTError

from local.aws.apigw import LambdaContext
from local.aws.cfn import FunctionSpec, Template

log = logging.getLogger(__name__)

SUPPORTED_MOTO_VERSION = "5.2.5"
DEFAULT_LOCK_TIMEOUT = 30.0
DEFAULT_ASYNC_RETRY_DELAY = 0.5  # doubled per retry (AWS: about 1 then 2 minutes)
ASYNC_EVENT_SOURCES = frozenset({"aws:s3", "aws:sns"})  # AWS invokes these asynchronously
DEFAULT_ROLE_NAME = "videogen-local-service-role"
# The services that assume the local role: Lambda runs the functions, Step Functions the workflows.
ROLE_SERVICES = ("lambda.amazonaws.com", "states.amazonaws.com")

Handler = Callable[[Any, Any], Any]
_counter = itertools.count(1)
_install_lock = threading.Lock()
_installed: LambdaShim | None = None


class ShimError(RuntimeError):
    """The shim cannot be installed or does not know the function."""


class TooManyRequestsException(JsonRESTError):
    """What Lambda answers when no execution environment is free (HTTP 429)."""

    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", message)


def moto_version() -> str:
    return importlib.metadata.version("moto")


def check_moto_version() -> None:
    """Refuse a moto other than the one this shim was written and tested against."""
    found = moto_version()
    if found != SUPPORTED_MOTO_VERSION:
        raise ShimError(
            f"local/aws/lambdas.py patches a private moto method and was written for moto=="
            f"{SUPPORTED_MOTO_VERSION}, found {found}: re-check LambdaFunction._invoke_lambda in "
            "moto/awslambda/models.py, then update SUPPORTED_MOTO_VERSION and requirements-dev.txt"
        )
    from moto.awslambda.models import LambdaFunction

    params = list(inspect.signature(LambdaFunction._invoke_lambda).parameters)
    if params != ["self", "event"]:
        raise ShimError(f"moto's LambdaFunction._invoke_lambda changed its signature: {params}")


def lambda_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """An unhandled exception as the Python runtime reports it."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class LambdaShim:
    """Routes moto's Lambda invocations of the template's functions to their handlers.

    - template: the local Template (its physical names are the moto function names).
    - functions: the FunctionSpecs to serve, by logical id (default: every function of the template).
    - handlers: already loaded handlers by logical id (the local stack passes its own, so there is
      one "container" per function); missing ones are imported on first use.
    - lock: serialises invocations (default: a new RLock); lock_timeout: seconds to wait for it.
    - pools: worker processes by logical id (read at each call: the mapping may be filled later);
      stats: a local.aws.concurrency.InvocationStats every invocation is counted in.
    Use as a context manager, or install()/uninstall(). One shim is installed at a time.
    """

    def __init__(
        self,
        template: Template,
        functions: Mapping[str, FunctionSpec] | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        lock: Any = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        pools: Mapping[str, Any] | None = None,
        stats: Any = None,
    ) -> None:
        self.template = template
        self.functions = dict(functions if functions is not None else template.functions())
        self.names = {template.resources[lid].physical_name: lid for lid in self.functions}
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._loaded: dict[str, Handler] = dict(self._handlers)  # as given: not replaced since
        self.pools: Mapping[str, Any] = pools if pools is not None else {}
        self.stats = stats
        self.async_workers = 1
        self.lock = lock if lock is not None else threading.RLock()
        self.lock_timeout = lock_timeout
        self.invocations = 0
        self.async_retry_delay = DEFAULT_ASYNC_RETRY_DELAY
        self.async_failures: list[dict[str, Any]] = []  # what AWS would send to OnFailure
        self._original: Callable[..., tuple[str, bool, str]] | None = None
        self._original_invoke: Callable[..., Any] | None = None
        self._queue: queue.Queue[tuple[float, str, Any, int] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._modules: list[str] = []
        self._saved_path: list[str] | None = None
        self._load_lock = threading.Lock()

    # ---- installing ---------------------------------------------------------------------------
    def __enter__(self) -> LambdaShim:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @property
    def installed(self) -> bool:
        return self._original is not None

    def install(self) -> LambdaShim:
        global _installed
        check_moto_version()
        from moto.awslambda.models import LambdaFunction

        with _install_lock:
            if _installed is not None:
                raise ShimError("another LambdaShim is installed (moto's Lambda backend is process-wide)")
            original = LambdaFunction._invoke_lambda
            shim = self

            def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
                if fn.function_name in shim.names:
                    return shim.run(fn.function_name, event)
                return (shim._original or original)(fn, event)  # not ours: moto's own behaviour

            original_invoke = LambdaFunction.invoke

            def invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
                if fn.function_name in shim.names:
                    kind = shim.invocation_type(body, request_headers)
                    if kind == "Event":
                        shim.enqueue(fn.function_name, body)
                        return ""  # moto answers 202 to InvocationType=Event
                    if kind == "DryRun":
                        return ""  # validate only: nothing runs
                return original_invoke(fn, body, request_headers, response_headers)

            _invoke_lambda.__wrapped__ = original  # type: ignore[attr-defined]
            invoke.__wrapped__ = original_invoke  # type: ignore[attr-defined]
            LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign,assignment]
            LambdaFunction.invoke = invoke  # type: ignore[method-assign,assignment]
            self._original, self._original_invoke = original, original_invoke
            _installed = self
        return self

    def uninstall(self) -> None:
        """Put moto's method back and forget the modules this shim imported; safe to call twice."""
        global _installed
        from moto.awslambda.models import LambdaFunction

        with _install_lock:
            if self._original is None:
                return
            LambdaFunction._invoke_lambda = self._original  # type: ignore[method-assign]
            LambdaFunction.invoke = self._original_invoke  # type: ignore[method-assign,assignment]
            self._original = self._original_invoke = None
            _installed = None
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=self.lock_timeout + 5)
        self._workers = []
        for name in self._modules:
            sys.modules.pop(name, None)
        self._modules.clear()
        if self._saved_path is not None:
            sys.path[:] = self._saved_path
            self._saved_path = None

    # ---- asynchronous invocations --------------------------------------------------------------
    @staticmethod
    def invocation_type(body: Any, request_headers: Any) -> str:
        """RequestResponse, Event or DryRun. moto's own deliveries (S3, SNS, streams) pass no
        headers: S3 and SNS notifications are asynchronous in AWS, stream batches synchronous."""
        declared = (request_headers or {}).get("x-amz-invocation-type")
        if declared:
            return str(declared)
        try:
            records = json.loads(body).get("Records") if body else None
        except (ValueError, AttributeError):
            records = None
        if isinstance(records, list) and records and isinstance(records[0], dict):
            source = records[0].get("eventSource") or records[0].get("EventSource")
            if source in ASYNC_EVENT_SOURCES:
                return "Event"
        return "RequestResponse"

    def enqueue(self, function_name: str, body: Any) -> None:
        """Queue one asynchronous invocation (Lambda's internal event queue)."""
        event = json.loads(body) if body else {}
        with self._idle:
            self._pending += 1
            while len(self._workers) < max(1, self.async_workers):
                worker = threading.Thread(target=self._work, name="lambda-async", daemon=True)
                self._workers.append(worker)
                worker.start()
        self._queue.put((0.0, function_name, event, 0))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued asynchronous invocation has run (retries included)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            not_before, name, event, attempt = item
            if (delay := not_before - time.monotonic()) > 0:
                time.sleep(delay)
            done = True
            try:
                payload, errored, _ = self.run(name, event)
            except TooManyRequestsException:  # throttled: Lambda keeps the event and tries later
                self._queue.put((time.monotonic() + self.async_retry_delay, name, event, attempt))
                done = False
            except Exception:  # the shim itself failed: never kill the worker
                log.exception("%s: asynchronous invocation could not run", name)
            else:
                if errored:
                    done = self._after_failure(name, event, attempt, json.loads(payload))
            if done:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _after_failure(self, name: str, event: Any, attempt: int, error: dict[str, Any]) -> bool:
        """Retry a failed asynchronous invocation as Lambda would; True when it is finished."""
        lid = self.names[name]
        config = self.template.properties(lid).get("EventInvokeConfig") or {}
        retries = int(config.get("MaximumRetryAttempts", 2))
        if attempt < retries:
            delay = self.async_retry_delay * 2**attempt
            log.warning(
                "%s: asynchronous invocation failed (%s); retry %d in %.1f s",
                name,
                error.get("errorType"),
                attempt + 1,
                delay,
            )
            self._queue.put((time.monotonic() + delay, name, event, attempt + 1))
            return False
        log.error(
            "%s: asynchronous invocation failed after %d attempt(s): %s: %s",
            name,
            attempt + 1,
            error.get("errorType"),
            error.get("errorMessage"),
        )
        self.async_failures.append(
            {"function": name, "event": event, "error": error, "attempts": attempt + 1}
        )
        return True

    # ---- invoking -----------------------------------------------------------------------------
    def handler(self, logical_id: str) -> Handler:
        """The function's handler, imported on first use (CodeUri/Handler, layers on sys.path)."""
        with self._load_lock:
            if logical_id not in self._handlers:
                self._handlers[logical_id] = self._loaded[logical_id] = self._import(
                    self.functions[logical_id]
                )
            return self._handlers[logical_id]

    def _import(self, spec: FunctionSpec) -> Handler:
        if self._saved_path is None:
            self._saved_path = list(sys.path)
        for layer in spec.layer_dirs:
            if str(layer) not in sys.path:
                sys.path.insert(0, str(layer))
        name = f"_videogen_shim_{spec.logical_id.lower()}_{next(_counter)}"
        module = load_module(name, spec.module_file)
        self._modules.append(name)
        handler = getattr(module, spec.handler_name, None)
        if not callable(handler):
            raise ShimError(f"{spec.module_file} has no callable {spec.handler_name}")
        return handler

    def context(self, logical_id: str) -> LambdaContext:
        spec = self.functions[logical_id]
        return LambdaContext(
            self.template.resources[logical_id].physical_name,
            memory_limit_in_mb=spec.memory_size,
            timeout_seconds=spec.timeout,
            region=self.template.region,
            account_id=self.template.account_id,
        )

    def run(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        """One invocation, in moto's shape: (payload JSON, errored, log tail)."""
        logical_id = self.names.get(function_name)
        if logical_id is None:
            raise ShimError(f"the shim does not serve {function_name!r} (serves {sorted(self.names)})")
        if isinstance(event, (str, bytes)):
            event = json.loads(event or "{}")
        handler = self.handler(logical_id)
        context = self.context(logical_id)
        request_id = context.aws_request_id
        pool = self.pools.get(logical_id)
        if pool is not None and handler is self._loaded.get(logical_id):
            return self._run_in_worker(pool, logical_id, event, request_id)
        if not self.lock.acquire(timeout=self.lock_timeout):
            log.warning(
                "%s: no free execution environment after %.1f s (another invocation holds the local "
                "stack's lock; a thread that holds it while waiting for this call would deadlock): "
                "answering TooManyRequestsException",
                function_name,
                self.lock_timeout,
            )
            raise TooManyRequestsException(f"Rate Exceeded: {function_name} is busy (local stack)")
        started = time.perf_counter()
        try:
            self.invocations += 1
            try:
                with self._timing(logical_id):
                    result = handler(event, context)
            except Exception as exc:  # noqa: BLE001 (any exception is the function's error, as in Lambda)
                payload, errored = json.dumps(lambda_error(exc, request_id)), True
            else:
                try:
                    payload, errored = json.dumps(result), False
                except (TypeError, ValueError) as exc:  # the runtime cannot send it back either
                    error = lambda_error(exc, request_id)
                    error.update(
                        errorType="Runtime.MarshalError", errorMessage=f"Unable to marshal response: {exc}"
                    )
                    payload, errored = json.dumps(error), True
        finally:
            self.lock.release()
        return self._answer(function_name, logical_id, payload, errored, started, request_id)

    def _timing(self, logical_id: str) -> Any:
        return self.stats.timing(logical_id) if self.stats is not None else contextlib.nullcontext()

    def _run_in_worker(
        self, pool: Any, logical_id: str, event: Any, request_id: str
    ) -> tuple[str, bool, str]:
        """One invocation in the function's worker processes (no lock: they are its own)."""
        from local.aws.api_workers import FunctionError, TooManyRequests, WorkerDied

        function_name = self.template.resources[logical_id].physical_name
        started = time.perf_counter()
        self.invocations += 1
        try:
            with self._timing(logical_id):
                result = pool.invoke(event)
        except TooManyRequests as exc:  # every worker busy for the whole wait: Lambda's throttle
            raise TooManyRequestsException(
                f"Rate Exceeded: {function_name} is busy (local stack): {exc}"
            ) from None
        except FunctionError as exc:  # the handler raised, reported by the worker as Lambda does
            payload, errored = json.dumps({**exc.error, "requestId": request_id}), True
        except WorkerDied as exc:  # the runtime process ended mid-invocation
            error = {"errorType": "Runtime.ExitError", "errorMessage": str(exc), "requestId": request_id}
            payload, errored = json.dumps(error), True
        else:
            payload, errored = json.dumps(result), False
        return self._answer(function_name, logical_id, payload, errored, started, request_id)

    def _answer(
        self,
        function_name: str,
        logical_id: str,
        payload: str,
        errored: bool,
        started: float,
        request_id: str,
    ) -> tuple[str, bool, str]:
        duration = (time.perf_counter() - started) * 1000
        if errored:
            log.info("%s: %s", function_name, json.loads(payload)["errorType"])
        logs = (
            f"START RequestId: {request_id} Version: $LATEST\n"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Memory Size: {self.functions[logical_id].memory_size} MB"
        )
        return payload, errored, logs


# ---- creating the functions in moto ---------------------------------------------------------------
def ensure_role(iam: Any, name: str = DEFAULT_ROLE_NAME, services: tuple[str, ...] = ROLE_SERVICES) -> str:
    """An IAM role the given services may assume (moto's Lambda and Step Functions want a role
    ARN that exists); returns its ARN. Not a security boundary locally: moto does not enforce IAM."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description="videogen local stack: role of the moto Lambda functions and state machines",
        )
        return str(role["Role"]["Arn"])


def create_functions(
    template: Template,
    functions: Mapping[str, FunctionSpec],
    *,
    lambda_client: Any,
    role_arn: str,
) -> dict[str, str]:
    """Create each function in moto under the template's local physical name, so that S3
    notifications and state machines can target it by the ARN the template resolves to. The
    code uploaded is the handler's module (for inspection only: the shim runs the repo's file).
    Returns the function ARNs by logical id."""
    arns: dict[str, str] = {}
    glob = template.resolve(
        {k: v for k, v in (template.globals.get("Function") or {}).items() if k != "Environment"}
    )
    for lid, spec in functions.items():
        props = {**glob, **template.properties(lid)}
        name = template.resources[lid].physical_name
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": str(props.get("Runtime", "python3.13")),
            "Role": role_arn,
            "Handler": spec.handler,
            "Code": {"ZipFile": _code_zip(spec)},
            "Timeout": spec.timeout,
            "MemorySize": spec.memory_size,
            "Environment": {"Variables": dict(spec.environment)},
            "Description": f"local stand-in: runs {spec.module_file.name}:{spec.handler_name} in-process",
        }
        if props.get("Architectures"):
            params["Architectures"] = list(props["Architectures"])
        arn = str(lambda_client.create_function(**params)["FunctionArn"])
        expected = template.resources[lid].attributes.get("Arn")
        if expected is not None and expected != arn:
            raise ShimError(f"{lid}: moto named it {arn}, the template resolves {expected}")
        template.resources[lid].created = True
        arns[lid] = arn
    return arns


def _code_zip(spec: FunctionSpec) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(spec.module_file, arcname=spec.module_file.relative_to(spec.code_uri).as_posix())
    return buffer.getvalue()


def load_module(name: str, path: Path) -> ModuleType:
    """Import a handler file under a unique module name (every handler is an `app.py`); the stack's
    in-process handlers load theirs with it too."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ShimError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic and dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
