"""The Docker-free local stack: moto + the AIML API simulator + the real handlers in-process.

    python -m local.stack        (== make local)   runs until Ctrl-C / SIGTERM

What it starts, all on 127.0.0.1:
- a moto server (DynamoDB, S3, Secrets Manager, Lambda, Step Functions) with the tables, buckets
  and secret of template.yaml created by local/aws/cfn.py under local names
  (`videogen-local-<logical id>`), every function of the template created in moto and run
  in-process by the shim of local/aws/lambdas.py (so S3 notifications and state machine tasks reach
  the real handlers), and the state machines created from their definitions with moto executing
  them (local/aws/statemachines.py), and the template's S3 events as notification configurations of
  the local buckets (an upload to the uploads bucket runs the upload function);
- the AIML API simulator (local/simulator/), unless AIML_API_KEY is set: then the real provider
  at https://api.aimlapi.com (or AIML_BASE_URL) is used and AIML_API_KEY is stored in the local
  secret instead of the simulator's key. The key is never printed nor written to endpoints.json;
- the REST API adapter (local/aws/apigw.py) on PORT (default 3000), API key `local-dev-key`
  (LOCAL_API_KEY overrides; comma-separated for several callers);
- a timer playing the EventBridge schedule: every LOCAL_POLL_SECONDS (default 5) the scheduled
  functions (the poller) get `events/poller_schedule.json`; a failing sweep is logged, not fatal;
- Lambda's event source mappings (local/aws/pollers.py): every LOCAL_EVENT_POLL_SECONDS (default 0.2)
  the generations table's stream reaches the notifier and the webhook queue the webhook function;
  a queue subscribed to the event bus (`events_tap_queue_url`) collects the completion events.
It writes `.local/endpoints.json` (api_url, api_key, api_key_ids, aws_endpoint_url, region, table_name,
outputs_bucket, uploads_bucket, state_machine_arn, simulator_url, simulator_api_key (the
simulator's fake key, to point the seed's scripts at it), simulator_control, ...) for
other processes.

The handlers are the repo's own files, loaded with importlib under unique module names (both are
`app.py`), with the template's layer folders (layers/common) on sys.path, and run with a small
fake Lambda context. moto keeps its state in process-wide globals: one LocalStack per process at a
time (start() resets moto's state).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import os
import signal
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import requests

from local.aws.apigw import ApiGatewayAdapter, LambdaContext, Route, api_key_id, console_csp_text
from local.aws.cfn import FunctionSpec, Template
from local.aws.concurrency import InvocationStats, parse_workers, template_bound
from local.aws.lambdas import (
    DEFAULT_LOCK_TIMEOUT,
    LambdaShim,
    TooManyRequestsException,
    create_functions,
    ensure_role,
    load_module,
)
from local.aws.logs import FunctionLogs
from local.aws.pollers import DEFAULT_POLL_SECONDS as DEFAULT_EVENT_POLL_SECONDS
from local.aws.pollers import EventSourcePoller
from local.aws.statemachines import create_state_machines

log = logging.getLogger("local.stack")

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
DEFAULT_API_KEY = "local-dev-key"
DEFAULT_PORT = 3000
DEFAULT_POLL_SECONDS = 5.0
REAL_PROVIDER_URL = "https://api.aimlapi.com"
SIMULATOR_KEY = "sim-key"
PROVIDER_KEY_SECRET = "AimlApiKeySecret"  # noqa: S105 (a logical id)
# Callback URLs the local functions may reach over http on loopback (tests' and your receivers);
# deployed stacks accept public https only.
LOCAL_CALLBACK_HOSTS = "127.0.0.1,localhost,::1"
ENDPOINT_KEYS = (
    "api_url",
    "api_key",
    "api_keys",
    "api_key_ids",
    "aws_endpoint_url",
    "region",
    "table_name",
    "idempotency_table_name",
    "outputs_bucket",
    "uploads_bucket",
    "state_machine_arn",
    "state_machines",
    "secret_id",
    "provider_base_url",
    "simulator_url",
    "simulator_control",
    "event_bus_name",
    "events_tap_queue_url",
    "webhook_queue_url",
    "webhook_dead_letter_queue_url",
    "webhook_secret_id",
    "functions",
    "pid",
    "started_at",
)

# Variables the stack owns while it runs (restored by stop()); AWS_* ones that could send boto3
# elsewhere than moto are removed.
_REMOVED_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_counter = itertools.count(1)
_active_lock = threading.Lock()
_active: LocalStack | None = None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


class LocalStack:
    """Start with `start()` (or `with LocalStack(...) as stack:`), stop with `stop()`.

    Arguments left at None come from the environment: PORT, LOCAL_API_KEY, LOCAL_POLL_SECONDS,
    AIML_API_KEY / AIML_BASE_URL (real provider instead of the simulator).
    - port: 0 picks a free port (tests).
    - api_keys: accepted x-api-key values; the first is `api_key` in endpoints.json.
    - poll_seconds: timer period; `timer=False` (or poll_seconds <= 0) disables it, poll_now() still works.
    - use_simulator: None = unless AIML_API_KEY is set. sim_durations / sim_default_duration: per-model
      job durations of the simulator.
    - parameter_overrides: template parameters. env_overrides: extra function environment (last word).
    - state_dir: where endpoints.json goes (default .local/ in the repo); write_endpoints=False skips it.
    - log_dir: each function's log lines and EMF metric lines go to <log_dir>/<LogicalId>.log, as
      to its log group (local/aws/logs.py); None (the default) leaves the output on stdout.
    - clock: a local.clock.ScaledClock shared by the simulator's jobs, the functions' clock
      (videogen.bootstrap.CLOCK) and moto's SQS (message delays, visibility timeouts): the
      timeliness benchmark plays minutes of production in seconds. None: the wall clock. The
      EventBridge tick is not derived from it: pass poll_seconds = 60 / rate.
    - api_workers: the API's requests in N worker processes at once (LOCAL_API_WORKERS; 0: in-process).
    - function_workers: {logical id: N} (LOCAL_FUNCTION_WORKERS="UploadFunction=4,DispatcherFunction=2"):
      those functions' invocations (asynchronous ones, event source batches, the schedule's,
      synchronous Invoke calls) in up to N worker processes at once, bounded as Lambda bounds
      them (local/aws/concurrency.py); the others run in-process, one invocation at a time.
    """

    def __init__(
        self,
        *,
        root: str | Path = ROOT,
        template: str = "template.yaml",
        port: int | None = None,
        api_keys: Iterable[str] | None = None,
        poll_seconds: float | None = None,
        timer: bool = True,
        use_simulator: bool | None = None,
        sim_durations: Mapping[str, float] | None = None,
        sim_default_duration: float | None = None,
        parameter_overrides: Mapping[str, Any] | None = None,
        env_overrides: Mapping[str, str] | None = None,
        state_dir: str | Path | None = None,
        write_endpoints: bool = True,
        poller_event: str = "events/poller_schedule.json",
        log_dir: str | Path | None = None,
        clock: Any = None,
        api_workers: int | None = None,
        function_workers: Mapping[str, int] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.template_path = self.root / template
        self.port = int(os.environ.get("PORT", DEFAULT_PORT)) if port is None else port
        if api_keys is None:
            api_keys = [k.strip() for k in os.environ.get("LOCAL_API_KEY", DEFAULT_API_KEY).split(",")]
        self.api_keys = [k for k in api_keys if k]
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        self.poll_seconds = (
            _env_float("LOCAL_POLL_SECONDS", DEFAULT_POLL_SECONDS) if poll_seconds is None else poll_seconds
        )
        self.timer_enabled = timer and self.poll_seconds > 0
        # API invocations: 0 = in-process, one at a time with every other invocation (the
        # default); N = up to N at once, each in a worker process (local/aws/api_workers.py).
        self.api_workers = (
            int(os.environ.get("LOCAL_API_WORKERS", "0")) if api_workers is None else api_workers
        )
        self._api_pools: dict[str, Any] = {}  # function logical id -> ApiWorkers
        # Any other function's invocations: in worker processes too when named here.
        self.function_workers = (
            parse_workers(os.environ.get("LOCAL_FUNCTION_WORKERS"))
            if function_workers is None
            else dict(function_workers)
        )
        self._pools: dict[str, Any] = {}  # function logical id -> FunctionWorkers (not the API's)
        self.invocations = InvocationStats()  # per function: calls, seconds, most at once
        self._loaded_handlers: dict[str, Any] = {}
        self._real_key = os.environ.get("AIML_API_KEY") or None
        self.use_simulator = (self._real_key is None) if use_simulator is None else use_simulator
        if not self.use_simulator and not self._real_key:
            raise ValueError("use_simulator=False needs AIML_API_KEY in the environment")
        self.sim_durations = dict(sim_durations or {})
        self.sim_default_duration = sim_default_duration
        self.parameter_overrides = dict(parameter_overrides or {})
        self.env_overrides = {k: str(v) for k, v in (env_overrides or {}).items()}
        self.state_dir = Path(state_dir) if state_dir is not None else self.root / ".local"
        self.write_endpoints = write_endpoints
        self.poller_event_path = self.root / poller_event
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.logs: FunctionLogs | None = None
        self.clock = clock
        self._saved_moto_clock: dict[str, Any] | None = None

        self.region = REGION
        self.moto: Any = None
        self.aws_endpoint_url = ""
        self.simulator: Any = None
        self.provider_base_url = ""
        self.template: Template | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.environment: dict[str, str] = {}
        self.api: ApiGatewayAdapter | None = None
        self.endpoints: dict[str, Any] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        # moto's Lambda functions and state machines (logical id -> ARN), and the shim running them
        self.function_arns: dict[str, str] = {}
        self.state_machines: dict[str, str] = {}
        self.bucket_notifications: dict[str, list[dict[str, Any]]] = {}  # bucket -> Lambda configurations
        self.lambdas: LambdaShim | None = None
        self.lambda_lock_timeout = DEFAULT_LOCK_TIMEOUT
        self._saved_moto_config: dict[str, Any] | None = None
        self._modules: list[str] = []
        self._saved_env: dict[str, str | None] = {}
        self._saved_path: list[str] | None = None
        self._saved_modules: dict[str, ModuleType] | None = None
        # One invocation at a time, across all functions: in Lambda each concurrent request gets
        # its own container, but here both handlers share one process, and Powertools keeps
        # per-invocation state (Logger keys, the Metrics buffer) in module-level singletons that
        # the api and poller handlers share through videogen.observability.
        self._invoke_lock = threading.RLock()
        self._stop_timer = threading.Event()
        self._timer: threading.Thread | None = None
        # Lambda's event source mappings (DynamoDB stream -> notifier, SQS -> webhook delivery)
        # and the queue every completion event of the bus also lands in (local/aws/pollers.py).
        self.event_poll_seconds = _env_float("LOCAL_EVENT_POLL_SECONDS", DEFAULT_EVENT_POLL_SECONDS)
        self.event_sources: EventSourcePoller | None = None
        self.events_tap_queue_url: str | None = None
        self._started = False

    # ---- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError("a LocalStack is already running in this process (moto state is global)")
            _active = self
        self._started = True
        try:
            self._start_moto()
            self._start_provider()
            self._create_resources()
            self._apply_environment()
            self._start_logs()
            self._load_handlers()
            self._start_function_workers()
            self._start_lambdas()
            self._wire_bucket_notifications()
            self._create_state_machines()
            self._start_api()
            self._start_event_sources()
            self._start_timer()
            self.endpoints = self._endpoints()
            if self.write_endpoints:
                self._write_endpoints()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call twice."""
        global _active
        if not self._started:
            return
        self.stop_timer()
        if self.event_sources is not None:
            self.event_sources.stop()
            self.event_sources = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        for pool in self._api_pools.values():
            pool.close()
        self._api_pools.clear()
        if self.lambdas is not None:
            self.lambdas.uninstall()
            self.lambdas = None
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        for name in self._modules:
            sys.modules.pop(name, None)
        self._modules.clear()
        if self._saved_modules is not None:
            for name in self._layer_modules():
                sys.modules.pop(name, None)
            sys.modules.update(self._saved_modules)
            self._saved_modules = None
        self._handlers.clear()
        if self.logs is not None:
            self.logs.uninstall()
            self.logs = None
        self._restore_environment()
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self._saved_moto_clock is not None:
            import moto.sqs.models as sqs_models

            for name, value in self._saved_moto_clock.items():
                setattr(sqs_models, name, value)
            self._saved_moto_clock = None
        if self.moto is not None:
            if self._saved_moto_config is not None:  # moto's config is process-wide
                with contextlib.suppress(requests.RequestException):
                    requests.post(
                        f"{self.aws_endpoint_url}/moto-api/config", json=self._saved_moto_config, timeout=10
                    )
                self._saved_moto_config = None
            self.moto.stop()
            self.moto = None
        self._started = False
        with _active_lock:
            _active = None

    # ---- steps --------------------------------------------------------------------------------
    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        from local.aws.moto_dynamodb import make_dynamodb_writes_atomic

        make_dynamodb_writes_atomic()  # moto's conditional writes race under threads; DynamoDB's don't

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.aws_endpoint_url = f"http://{host}:{port}"
        # moto's backends are process-wide: start from an empty account.
        requests.post(f"{self.aws_endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        # Step Functions: execute the definitions (moto only records executions by default).
        config_url = f"{self.aws_endpoint_url}/moto-api/config"
        previous = requests.get(config_url, timeout=10).json()
        self._saved_moto_config = {"stepfunctions": dict(previous.get("stepfunctions") or {})}
        requests.post(
            config_url, json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        ).raise_for_status()
        # An execution's tasks call Lambda through a boto3 client of moto's own, at
        # http://localhost:$MOTO_PORT (default 5000): point it at this server.
        self._saved_env.setdefault("MOTO_PORT", os.environ.get("MOTO_PORT"))
        os.environ["MOTO_PORT"] = str(port)
        # A Fail state is a normal outcome of a workflow; moto logs each as an ERROR with a dump.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        if self.clock is not None:
            self._scale_moto_sqs()

    def _scale_moto_sqs(self) -> None:
        """moto's SQS holds a message back for its DelaySeconds (and a received one for its
        visibility timeout) on its module's clock: under a scaled clock, that clock is the scaled
        one, so a 15 s delay the service asks for passes in 15 scaled seconds. moto runs in this
        process (ThreadedMotoServer); stop() puts its clock back."""
        import moto.sqs.models as sqs_models

        clock = self.clock
        self._saved_moto_clock = {
            "unix_time": sqs_models.unix_time,
            "unix_time_millis": sqs_models.unix_time_millis,
        }
        sqs_models.unix_time = lambda *_: clock()  # type: ignore[assignment]
        sqs_models.unix_time_millis = lambda *_: clock() * 1000  # type: ignore[assignment]

    def _start_provider(self) -> None:
        if self.use_simulator:
            from local.simulator import Simulator

            kwargs: dict[str, Any] = {"api_key": SIMULATOR_KEY, "durations": self.sim_durations}
            if self.clock is not None:
                kwargs["clock"] = self.clock
            if self.sim_default_duration is not None:
                kwargs["default_duration"] = self.sim_default_duration
            self.simulator = Simulator(host="127.0.0.1", port=0, **kwargs).start()
            self.provider_base_url = self.simulator.url
        else:
            self.provider_base_url = os.environ.get("AIML_BASE_URL", REAL_PROVIDER_URL).rstrip("/")

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's fake credentials)
            region_name=self.region,
        )

    def client(self, service: str) -> Any:
        """A boto3 client talking to this stack's moto server."""
        return self.session().client(service, endpoint_url=self.aws_endpoint_url, region_name=self.region)

    def _create_resources(self) -> None:
        self.template = Template(self.template_path, parameter_overrides=self.parameter_overrides)
        secret_key = SIMULATOR_KEY if self.use_simulator else str(self._real_key)
        # The provider's key goes into its secret; other secrets (the webhook signing secret) get
        # what their template says (GenerateSecretString: a random value, as in AWS).
        secrets = {
            lid: secret_key
            for lid in self.template.of_type("AWS::SecretsManager::Secret")
            if lid == PROVIDER_KEY_SECRET
        }
        self.template.create_resources(self.session(), self.aws_endpoint_url, secret_values=secrets)
        self.functions = self.template.functions()

    def _apply_environment(self) -> None:
        # In AWS each function has its own environment; in-process they share os.environ, so the
        # union is set. The template gives both functions the same Globals, so they agree on
        # every variable; a disagreement is logged (the later function's value would win).
        union: dict[str, str] = {}
        for spec in self.functions.values():
            for key, value in spec.environment.items():
                if key in union and union[key] != value:
                    log.warning("functions disagree on %s; in-process they share one value", key)
                union[key] = value
        local = {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": union.get("POWERTOOLS_SERVICE_NAME", "videogen"),
            "POWERTOOLS_METRICS_NAMESPACE": union.get("POWERTOOLS_METRICS_NAMESPACE", "Videogen"),
            "URL_DNS_STRICT": "false",  # local runs may be offline: an unresolvable image host is accepted
            "CALLBACK_ALLOWED_HOSTS": LOCAL_CALLBACK_HOSTS,
            # a local receiver is retried within seconds, not minutes, and may take 2 s to answer
            # (deliveries share the invocation lock with API requests here)
            "WEBHOOK_BACKOFF_SECONDS": "1",
            "WEBHOOK_BACKOFF_MAX_SECONDS": "10",
            "WEBHOOK_TIMEOUT_SECONDS": "2",
            "AIML_BASE_URL": self.provider_base_url,
        }
        if self.use_simulator:
            # The simulator finishes jobs in seconds: poll right away and often, not after 60% of
            # the model's typical (minutes-long) time.
            # With poll timers on, the sweep also takes what a timer is about to poll (no grace):
            # a sweep run now (poll_now) moves every due generation, as before timers.
            local.update(
                {"FIRST_POLL_FACTOR": "0", "POLL_INTERVAL_SECONDS": "1", "POLL_TIMER_GRACE_SECONDS": "0"}
            )
        self.environment = {**union, **local, **self.env_overrides}
        for key in [
            *self.environment,
            *_REMOVED_VARS,
            *(k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")),
        ]:
            self._saved_env.setdefault(key, os.environ.get(key))
        for key in _REMOVED_VARS:
            os.environ.pop(key, None)
        for key in list(os.environ):
            if key.startswith("AWS_ENDPOINT_URL_"):
                del os.environ[key]
        os.environ.update(self.environment)

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self._saved_path is not None:
            sys.path[:] = self._saved_path
            self._saved_path = None

    def _layer_modules(self) -> dict[str, ModuleType]:
        roots = tuple({str(d) + os.sep for spec in self.functions.values() for d in spec.layer_dirs})
        return {
            name: module
            for name, module in list(sys.modules.items())
            if roots and str(getattr(module, "__file__", None) or "").startswith(roots)
        }

    def _start_logs(self) -> None:
        if self.log_dir is None:
            return
        assert self.template is not None
        names = {lid: self.template.resources[lid].physical_name for lid in self.functions}
        self.logs = FunctionLogs(self.log_dir, names).install()

    def _load_handlers(self) -> None:
        self._saved_path = list(sys.path)
        for spec in self.functions.values():
            for layer in spec.layer_dirs:
                if str(layer) not in sys.path:
                    sys.path.insert(0, str(layer))
        # A cold start: the layer's modules (videogen) are imported afresh under this environment,
        # even if the process imported them before (pytest collecting unit tests does); their
        # module-level singletons (Powertools Metrics namespace, Logger level) read it at import.
        # stop() puts the previous modules back.
        self._saved_modules = self._layer_modules()
        for name in self._saved_modules:
            del sys.modules[name]
        for spec in self.functions.values():
            name = f"_videogen_local_{spec.logical_id.lower()}_{next(_counter)}"
            module = load_module(name, spec.module_file)
            self._modules.append(name)
            handler = getattr(module, spec.handler_name, None)
            if not callable(handler):
                raise RuntimeError(f"{spec.module_file} has no callable {spec.handler_name}")
            self._handlers[spec.logical_id] = (
                handler if self.logs is None else self.logs.wrap(spec.logical_id, handler)
            )
        self._loaded_handlers = dict(self._handlers)
        if self.logs is not None:  # Powertools' logger, if the process made it before
            self.logs.capture_logger(self.environment.get("POWERTOOLS_SERVICE_NAME", "videogen"))
        if self.clock is not None:  # the functions' clock (their entry points are built lazily)
            sys.modules["videogen.bootstrap"].CLOCK = self.clock

    def _start_lambdas(self) -> None:
        """Every function of the template in moto, under the ARN the template resolves to, so AWS
        services (S3 notifications, state machine tasks) can call it; the shim runs the handlers
        loaded above, under the same lock as API requests and sweeps (one invocation at a time)."""
        assert self.template is not None
        role_arn = ensure_role(self.client("iam"))
        self.function_arns = create_functions(
            self.template, self.functions, lambda_client=self.client("lambda"), role_arn=role_arn
        )
        self.lambdas = LambdaShim(
            self.template,
            self.functions,
            handlers=self._handlers,
            lock=self._invoke_lock,
            lock_timeout=self.lambda_lock_timeout,
            pools=self._pools,
            stats=self.invocations,
        )
        # Asynchronous invocations (S3 notifications, the poller's fan-out) run side by side for
        # the functions with workers, as Lambda's event queue feeds concurrent environments.
        self.lambdas.async_workers = max([1, *(pool.size for pool in self._pools.values())])
        self.lambdas.install()

    def _start_function_workers(self) -> None:
        """Worker processes for the functions named in `function_workers`, each bounded by what
        the template lets Lambda run at once (local/aws/concurrency.py)."""
        assert self.template is not None
        for lid, wanted in self.function_workers.items():
            if lid not in self.functions:
                raise ValueError(f"function_workers: no function {lid!r} (have {sorted(self.functions)})")
            bound = template_bound(self.template, lid)
            size = wanted if bound is None else min(wanted, bound)
            if size > 0:
                self._pools[lid] = self._worker_pool(lid, size)

    def _create_state_machines(self) -> None:
        assert self.template is not None
        self.state_machines = create_state_machines(
            self.template, sfn_client=self.client("stepfunctions"), role_arn=ensure_role(self.client("iam"))
        )

    def _wire_bucket_notifications(self) -> None:
        """The template's `Type: S3` function events as the local buckets' notification
        configurations, targeting the functions in moto (what SAM puts in the bucket's
        NotificationConfiguration). moto then invokes the function on a matching upload, filters
        applied as S3 applies them (case-sensitive prefix and suffix), with the key encoded as S3
        encodes it; the shim runs the real handler, asynchronously as AWS does."""
        assert self.template is not None
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for lid in self.functions:
            events = (self.template.resources_doc[lid].get("Properties") or {}).get("Events") or {}
            for name, event in events.items():
                if event.get("Type") != "S3":
                    continue
                props = self.template.resolve(event.get("Properties") or {})
                kinds = props["Events"]
                config: dict[str, Any] = {
                    "Id": f"{lid}-{name}",
                    "LambdaFunctionArn": self.function_arn(lid),
                    "Events": [kinds] if isinstance(kinds, str) else list(kinds),
                }
                rules = ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
                if rules:
                    config["Filter"] = {
                        "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
                    }
                by_bucket.setdefault(str(props["Bucket"]), []).append(config)
        s3 = self.client("s3")
        for bucket, configs in by_bucket.items():
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": configs}
            )
        self.bucket_notifications = by_bucket

    @property
    def uploads_bucket(self) -> str | None:
        """The bucket whose uploads become generations (UploadsBucket), if the template has one."""
        assert self.template is not None
        res = self.template.resources.get("UploadsBucket")
        return res.physical_name if res is not None and res.created else None

    def function_arn(self, function_logical_id: str) -> str:
        """The ARN of a template function in moto (targets for notifications and state machines)."""
        return self.function_arns[function_logical_id]

    @property
    def state_machine_arn(self) -> str | None:
        """The template's state machine (the first one, if it ever has several)."""
        return next(iter(self.state_machines.values()), None)

    def _start_api(self) -> None:
        assert self.template is not None
        routes = [
            Route(r.method, r.path, r.function, r.api_key_required)
            for s in self.functions.values()
            for r in s.routes
        ]
        apis = {r.api for s in self.functions.values() for r in s.routes}
        if len(apis) > 1:
            log.warning("several APIs in the template (%s): all served on one port", sorted(map(str, apis)))
        api_spec = self.template.api(next(iter(apis)) if apis else None)
        if self.api_workers > 0:
            for function in sorted({r.function for r in routes}):
                self._api_pools[function] = self._worker_pool(function)
        self.api = ApiGatewayAdapter(
            routes,
            self._invoke_route,
            api_keys=self.api_keys,
            stage=api_spec.stage_name,
            port=self.port,
            gateway_responses=api_spec.gateway_responses,
            cors=api_spec.cors,
            console_dir=console if (console := self.root / "console").is_dir() else None,
            # the template's console CSP (CloudFront's header in AWS) with the local origins
            console_csp_text=console_csp_text(self.template.resources_doc),
            video_origins=self.aws_endpoint_url,
        ).start()

    def _start_event_sources(self) -> None:
        """A queue subscribed to the event bus(es) (a rule matching source `videogen`), so the
        completion events can be read, then the pollers of the functions' stream and queue events."""
        assert self.template is not None
        buses = [self.template.resources[lid] for lid in self.template.of_type("AWS::Events::EventBus")]
        if buses:
            sqs, events = self.client("sqs"), self.client("events")
            name = f"{self.template.stack_name}-events-tap"
            self.events_tap_queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=self.events_tap_queue_url, AttributeNames=["QueueArn"])
            for bus in buses:
                events.put_rule(
                    Name=name,
                    EventBusName=bus.physical_name,
                    EventPattern=json.dumps({"source": ["videogen"]}),
                )
                events.put_targets(
                    Rule=name,
                    EventBusName=bus.physical_name,
                    Targets=[{"Id": "tap", "Arn": arn["Attributes"]["QueueArn"]}],
                )
        self.event_sources = EventSourcePoller(
            self.template,
            self.functions,
            self.invoke,
            self.client,
            poll_seconds=self.event_poll_seconds,
            # a queue's batches run side by side for a function with workers (up to its
            # MaximumConcurrency), as Lambda's SQS event source mapping scales
            concurrency={lid: pool.size for lid, pool in self._pools.items()},
        ).start()

    def pump_events(self, timeout: float = 10.0) -> None:
        """Deliver what the stream and queues hold now (the background poller does it too)."""
        if self.event_sources is not None:
            self.event_sources.pump(timeout)

    def completion_events(self) -> list[dict[str, Any]]:
        """Take the completion events that reached the tap queue so far (each is returned once)."""
        if self.events_tap_queue_url is None:
            return []
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.events_tap_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return found
            found += [json.loads(m["Body"]) for m in messages]
            sqs.delete_message_batch(
                QueueUrl=self.events_tap_queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def _start_timer(self) -> None:
        if self.timer_enabled:
            self.start_timer()

    def start_timer(self, poll_seconds: float | None = None) -> None:
        """Play the EventBridge schedule: every `poll_seconds` invoke each scheduled function."""
        if poll_seconds is not None:
            self.poll_seconds = poll_seconds
        if self.poll_seconds <= 0 or not self.scheduled_functions or self._timer is not None:
            return
        self._stop_timer.clear()
        self._timer = threading.Thread(target=self._timer_loop, name="local-schedule", daemon=True)
        self._timer.start()

    def stop_timer(self) -> None:
        """Stop the schedule; waits for a sweep in progress to end."""
        self._stop_timer.set()
        if self._timer is not None:
            self._timer.join(timeout=30)
            if self._timer.is_alive():
                log.warning("the poll timer did not finish its sweep within 30 s")
            self._timer = None

    def _timer_loop(self) -> None:
        while not self._stop_timer.wait(self.poll_seconds):
            for function in self.scheduled_functions:
                try:
                    self.invoke(function, self.schedule_event(function))
                except Exception:
                    log.exception("scheduled invocation of %s failed (the next tick retries)", function)

    # ---- invoking -----------------------------------------------------------------------------
    @property
    def scheduled_functions(self) -> list[str]:
        return [lid for lid, spec in self.functions.items() if any(s.enabled for s in spec.schedules)]

    def context_for(self, function_logical_id: str) -> LambdaContext:
        spec = self.functions[function_logical_id]
        assert self.template is not None
        return LambdaContext(
            self.template.resources[function_logical_id].physical_name,
            memory_limit_in_mb=spec.memory_size,
            timeout_seconds=spec.timeout,
            region=self.region,
        )

    def invoke(self, function_logical_id: str, event: dict[str, Any], context: Any = None) -> Any:
        """Call a function's handler, as Lambda would: in one of its worker processes when it has
        some (`function_workers`; a handler replaced in this process, a test's spy, runs here),
        else in-process, one invocation at a time. A handler's error is raised (from a worker:
        local.aws.api_workers.FunctionError); no free worker within the lock timeout:
        TooManyRequestsException."""
        if function_logical_id not in self._handlers:
            raise KeyError(f"no such function: {function_logical_id} (have {sorted(self._handlers)})")
        handler = self._handlers[function_logical_id]
        pool = self._pools.get(function_logical_id)
        if pool is not None and handler is self._loaded_handlers.get(function_logical_id):
            from local.aws.api_workers import TooManyRequests

            try:
                with self.invocations.timing(function_logical_id):
                    return pool.invoke(event)
            except TooManyRequests as exc:
                raise TooManyRequestsException(f"{function_logical_id}: {exc}") from None
        with self._invoke_lock, self.invocations.timing(function_logical_id):
            return handler(event, context or self.context_for(function_logical_id))

    def _worker_pool(self, function_logical_id: str, size: int | None = None) -> Any:
        """Worker processes for a function (see local/aws/api_workers.py): the function's
        handler file, its environment (this process's, as the stack set it), the layers, the
        stack's clock; their output in the function's log file when the stack has a log_dir."""
        from local.aws.api_workers import FunctionWorkers

        spec = self.functions[function_logical_id]
        context = self.context_for(function_logical_id)
        return FunctionWorkers(
            module_file=spec.module_file,
            handler_name=spec.handler_name,
            context={
                "function_name": context.function_name,
                "memory_limit_in_mb": spec.memory_size,
                "timeout_seconds": spec.timeout,
                "region": self.region,
            },
            size=self.api_workers if size is None else size,
            env=dict(os.environ),
            paths=[str(self.root), *(str(d) for d in spec.layer_dirs)],
            cwd=self.root,
            wait_seconds=self.lambda_lock_timeout,
            clock=self.clock,
            log_file=None if self.log_dir is None else self.log_dir / f"{function_logical_id}.log",
        )

    def _invoke_route(self, function_logical_id: str, event: dict[str, Any]) -> Any:
        """An API request: in a worker process when the stack runs API workers (concurrently,
        without the invocation lock), else in-process like every other invocation. A handler
        replaced in this process (a test's spy) runs in this process."""
        pool = self._api_pools.get(function_logical_id)
        replaced = self._handlers.get(function_logical_id) is not self._loaded_handlers.get(
            function_logical_id
        )
        if pool is None or replaced:
            return self.invoke(function_logical_id, event)
        with self.invocations.timing(function_logical_id):
            return pool.invoke(event)

    @contextlib.contextmanager
    def concurrent_api(self, workers: int) -> Iterator[dict[str, Any]]:
        """Serve API requests in `workers` worker processes for the block (a running stack;
        tests use it), then as before. Yields the pools by function."""
        assert self.api is not None, "start() first"
        saved, saved_pools = self.api_workers, self._api_pools
        self.api_workers = workers
        functions = sorted({r.function for r in self.api.table.routes})
        self._api_pools = {function: self._worker_pool(function) for function in functions}
        try:
            yield self._api_pools
        finally:
            pools, self._api_pools, self.api_workers = self._api_pools, saved_pools, saved
            for pool in pools.values():
                pool.close()

    def warm_api(self) -> None:
        """Start every API worker now (their cold starts), so a burst meets running workers."""
        for pool in self._api_pools.values():
            pool.warm()

    @property
    def worker_pools(self) -> dict[str, Any]:
        """The functions run in worker processes (the API's, `function_workers`'): logical id -> pool."""
        return {**self._api_pools, **self._pools}

    def warm_functions(self) -> None:
        """Start every function worker now (their cold starts), as warm_api does for the API's."""
        for pool in self._pools.values():
            pool.warm()

    def schedule_event(self, function_logical_id: str) -> dict[str, Any]:
        """events/poller_schedule.json with a fresh id and time (a generic one if the file is absent)."""
        try:
            event = json.loads(self.poller_event_path.read_text())
        except FileNotFoundError:
            event = {
                "version": "0",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "region": self.region,
                "resources": [],
                "detail": {},
            }
        event = copy.deepcopy(event)
        event["id"] = str(uuid.uuid4())
        event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event["region"] = self.region
        return event

    def poll_now(self, function_logical_id: str | None = None) -> Any:
        """Run one scheduled sweep synchronously and return the handler's answer."""
        if function_logical_id is None:
            scheduled = self.scheduled_functions
            if len(scheduled) != 1:
                raise RuntimeError(f"name the scheduled function: {scheduled}")
            function_logical_id = scheduled[0]
        return self.invoke(function_logical_id, self.schedule_event(function_logical_id))

    # ---- endpoints ----------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        assert self.api is not None, "start() first"
        return self.api.url

    @property
    def api_key(self) -> str:
        return self.api_keys[0]

    @staticmethod
    def key_id(api_key: str) -> str:
        """The apiKeyId handlers see for this key (the caller's identity)."""
        return api_key_id(api_key)

    def _endpoints(self) -> dict[str, Any]:
        env = self.environment
        sim_url = self.simulator.url if self.simulator is not None else None
        return {
            "api_url": self.api_url,
            "api_key": self.api_key,
            "api_keys": list(self.api_keys),
            # {key: the apiKeyId handlers see}: the caller's owner id, e.g. for `videogen upload --wait`
            "api_key_ids": {key: self.key_id(key) for key in self.api_keys},
            "aws_endpoint_url": self.aws_endpoint_url,
            "region": self.region,
            "table_name": env.get("TABLE_NAME"),
            "idempotency_table_name": env.get("IDEMPOTENCY_TABLE_NAME"),
            "outputs_bucket": env.get("OUTPUTS_BUCKET"),
            "uploads_bucket": self.uploads_bucket,
            "state_machine_arn": self.state_machine_arn,
            "state_machines": dict(self.state_machines),
            "secret_id": env.get("AIML_API_KEY_SECRET_ID"),
            "provider_base_url": self.provider_base_url,
            "simulator_url": sim_url,
            # the simulator's own fake key (never a real one): with simulator_url in place of
            # https://api.aimlapi.com, the seed's scripts run against the simulator unchanged
            "simulator_api_key": None if sim_url is None else SIMULATOR_KEY,
            "simulator_control": None
            if sim_url is None
            else {
                "state": f"GET {sim_url}/_sim/state",
                "faults": f'POST {sim_url}/_sim/faults  e.g. {{"status": 429, "retry_after": 1}}',
                "config": f'POST {sim_url}/_sim/config  e.g. {{"default_duration": 5, "latency_ms": 200}}',
                "reset": f"POST {sim_url}/_sim/reset",
            },
            "event_bus_name": env.get("EVENT_BUS_NAME"),
            "events_tap_queue_url": self.events_tap_queue_url,
            "webhook_queue_url": env.get("WEBHOOK_QUEUE_URL"),
            "webhook_dead_letter_queue_url": env.get("WEBHOOK_DEAD_LETTER_QUEUE_URL"),
            "webhook_secret_id": env.get("WEBHOOK_SECRET_ID"),
            "functions": {
                lid: {"handler": str(spec.module_file.relative_to(self.root)) + ":" + spec.handler_name}
                for lid, spec in self.functions.items()
            },
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    @property
    def endpoints_path(self) -> Path:
        return self.state_dir / "endpoints.json"

    def _write_endpoints(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.endpoints_path.with_name(f".endpoints.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.endpoints, indent=2) + "\n")
        os.replace(tmp, self.endpoints_path)  # atomic: readers never see half a file


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Powertools warns on every invocation that emits no metric (GET /models); noise on a console.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = LocalStack(log_dir=ROOT / ".local" / "logs")
    try:
        stack.start()
    except OSError as exc:
        print(f"local stack: cannot start: {exc} (is PORT={stack.port} taken? set PORT=...)", file=sys.stderr)
        return 1
    e = stack.endpoints
    provider = (
        f"simulator {e['simulator_url']}" if e["simulator_url"] else f"real AIML API {e['provider_base_url']}"
    )
    print(
        "\nvideogen local stack is up\n"
        f"  API        {e['api_url']}   (x-api-key: {e['api_key']})\n"
        f"  AWS (moto) {e['aws_endpoint_url']}   region {e['region']}\n"
        f"  provider   {provider}\n"
        f"  poller     every {stack.poll_seconds:g} s\n"
        f"  workflow   {e['state_machine_arn'] or '-'}   (Step Functions on moto)\n"
        f"  events     bus {e['event_bus_name'] or '-'}; each event also in events_tap_queue_url\n"
        f"  logs       {stack.log_dir}/<LogicalId>.log (each function's log and metric lines)\n"
        f"  details    {stack.endpoints_path}\n"
        f"  try: curl -s -H 'x-api-key: {e['api_key']}' {e['api_url']}/models\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            stack.endpoints_path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
