"""What one generation costs AWS, counted on the local stack (moto server, the simulator, the real
handlers), for both paths: the API + poller, and the Step Functions workflow.

Every AWS call the handlers make in this process goes through botocore's
`BaseClient._make_api_call`, which is wrapped here to count calls per service and operation, and
DynamoDB request units from the items' sizes (a write: 1 unit per KB of the item; a strongly
consistent read: 1 unit per 4 KB; a query: half a unit per 4 KB read, eventually consistent).
Each handler is wrapped to count its invocations and time them (Lambda bills the duration at 1
ms granularity). Step Functions state transitions are the `...StateEntered` events of the
executions' histories on moto.

The local stack polls right away and every second (FIRST_POLL_FACTOR=0) so that a run takes
seconds: the counts are split into what a submit costs, what one poll costs while the job is
running, and what the poll that finds it finished costs (the archive included). Polls per
generation come from the timeliness benchmark (bench/timeliness.py), on the provider's observed
durations; the poller's Lambda time per poll from the sweep benchmark (one sweep refreshes many
generations at once, so its time per generation is the sweep's time / the generations it refreshed).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

# Public prices, us-east-1 (aws.amazon.com pricing pages), as of PRICES_DATE.
PRICES_DATE = "2026-12-01"
PRICES = {
    "lambda_gb_second": 0.0000133334,  # arm64
    "lambda_request": 0.20 / 1_000_000,
    "dynamodb_wru": 0.625 / 1_000_000,  # on-demand, since November 2024
    "dynamodb_rru": 0.125 / 1_000_000,
    "sfn_transition": 0.025 / 1000,  # Standard workflows
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST (multipart parts included)
    "s3_get": 0.0004 / 1000,  # GET, HEAD and all other requests
    "apigw_request": 3.50 / 1_000_000,  # REST API
    "secrets_call": 0.05 / 10_000,
    "sqs_request": 0.40 / 1_000_000,  # standard queues, per 64 KB request
}
S3_PUT_CLASS = {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
# What the handlers send (the dispatcher's wake-ups, poll timers, webhook messages). The requests
# Lambda's SQS pollers make (receive, delete) are counted per SQS-triggered invocation instead:
# the local stack's pollers do not poll like Lambda's, so their own calls are not counted.
_SQS_SENDS = {"SendMessage", "SendMessageBatch"}
SQS_TRIGGERED = {"DispatcherFunction", "PollTimerFunction", "WebhookFunction"}
FINAL = {"completed", "failed", "timed_out", "cancelled"}


def _size(value: Any) -> int:
    """Rough DynamoDB size of an attribute map (names + values as JSON): above the real size."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)  # "service.Operation"
    wru: float = 0.0
    rru: float = 0.0
    lambda_calls: Counter[str] = field(default_factory=Counter)
    lambda_ms: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> Tally:
        return Tally(
            Counter(self.calls), self.wru, self.rru, Counter(self.lambda_calls), Counter(self.lambda_ms)
        )

    def minus(self, other: Tally) -> Tally:
        return Tally(
            self.calls - other.calls,
            self.wru - other.wru,
            self.rru - other.rru,
            self.lambda_calls - other.lambda_calls,
            self.lambda_ms - other.lambda_ms,
        )

    def add(self, other: Tally) -> None:
        self.calls.update(other.calls)
        self.wru += other.wru
        self.rru += other.rru
        self.lambda_calls.update(other.lambda_calls)
        self.lambda_ms.update(other.lambda_ms)

    def scaled(self, factor: float) -> Tally:
        """Every count times `factor` (a sample's work extrapolated to a larger run)."""
        return Tally(
            Counter({k: v * factor for k, v in self.calls.items()}),
            self.wru * factor,
            self.rru * factor,
            Counter({k: v * factor for k, v in self.lambda_calls.items()}),
            Counter({k: v * factor for k, v in self.lambda_ms.items()}),
        )

    def per(self, count: float) -> dict[str, Any]:
        s3_put = sum(
            n for op, n in self.calls.items() if op.split(".")[1] in S3_PUT_CLASS and op[:3] == "s3."
        )
        s3_other = sum(n for op, n in self.calls.items() if op.startswith("s3.")) - s3_put
        return {
            "dynamodb_requests": sum(n for op, n in self.calls.items() if op.startswith("dynamodb.")) / count,
            "dynamodb_wru": self.wru / count,
            "dynamodb_rru": self.rru / count,
            "s3_put_requests": s3_put / count,
            "s3_get_requests": s3_other / count,
            "secrets_calls": sum(n for op, n in self.calls.items() if op.startswith("secretsmanager."))
            / count,
            # sends, plus a receive and a delete per SQS-triggered invocation (Lambda's poller)
            "sqs_requests": (
                sum(n for op, n in self.calls.items() if op.startswith("sqs.") and op[4:] in _SQS_SENDS)
                + 2 * sum(n for k, n in self.lambda_calls.items() if k.split(".")[0] in SQS_TRIGGERED)
            )
            / count,
            "lambda_invocations": {k: v / count for k, v in self.lambda_calls.items()},
            "lambda_ms": {k: v / count for k, v in self.lambda_ms.items()},
        }


class Meter:
    """Counts AWS calls made through botocore in this process, and handler invocations."""

    SERVICES = ("dynamodb", "s3", "secretsmanager", "sqs")

    def __init__(self) -> None:
        self.tally = Tally()
        self.by_label: dict[str, Tally] = {}
        self._lock = threading.Lock()
        self._original: Any = None

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        meter = self

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            answer = original(client, operation, params)
            service = client.meta.service_model.service_name
            if service in meter.SERVICES:
                meter._count(service, operation, params, answer)
            return answer

        BaseClient._make_api_call = counted
        try:
            yield self
        finally:
            BaseClient._make_api_call = original

    def _count(self, service: str, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        wru = rru = 0.0
        if service == "dynamodb":
            if operation in _WRITES:
                wru = max(1, math.ceil(_size(params.get("Item") or params.get("Key") or {}) / 1024))
            elif operation == "BatchWriteItem":
                for requests_ in params.get("RequestItems", {}).values():
                    for request in requests_:
                        item = (request.get("PutRequest") or {}).get("Item") or {}
                        wru += max(1, math.ceil(_size(item) / 1024))
            elif operation == "GetItem":
                unit = 1.0 if params.get("ConsistentRead") else 0.5
                rru = unit * max(1, math.ceil(_size(answer.get("Item") or {}) / 4096))
            elif operation in ("Query", "Scan"):
                unit = 1.0 if params.get("ConsistentRead") else 0.5
                read = sum(_size(item) for item in answer.get("Items", []))
                rru = unit * max(1, math.ceil(read / 4096))
        with self._lock:
            self.tally.calls[f"{service}.{operation}"] += 1
            self.tally.wru += wru
            self.tally.rru += rru

    def wrap(self, name: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """Time each invocation and attribute its AWS calls to `name.action.status` (the local
        stack runs one invocation at a time, so the calls between its start and end are its own)."""
        meter = self

        def timed(event: Any, context: Any) -> Any:
            before = meter.tally.snapshot()
            started = time.perf_counter()
            result: Any = None
            try:
                result = handler(event, context)
                return result
            finally:
                billed = math.ceil((time.perf_counter() - started) * 1000)
                label = name
                if isinstance(event, dict) and event.get("step"):  # the batch state machine's tasks
                    label = f"{name}.{event['step']}"
                if isinstance(event, dict) and event.get("action"):
                    label = f"{name}.{event['action']}"
                    if event["action"] == "fetch" and isinstance(result, dict) and result.get("status"):
                        label += "." + ("final" if result["status"] in FINAL else "pending")
                with meter._lock:
                    meter.tally.lambda_calls[label] += 1
                    meter.tally.lambda_ms[label] += billed
                    delta = meter.tally.snapshot().minus(before)
                    meter.by_label.setdefault(label, Tally()).add(delta)

        return timed


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure(*, generations: int = 12, executions: int = 4, latency_ms: int = 200) -> dict[str, Any]:
    """Counts per generation, per phase, of both paths."""
    from local.stack import LocalStack

    model = "kling-video/v1.6/standard/text-to-video"
    meter = Meter()
    stack = LocalStack(
        port=0,
        timer=False,
        use_simulator=True,
        sim_default_duration=3.0,
        parameter_overrides={"LogLevel": "WARNING"},
        # The sweep's path (poll_now drives every poll): the timers would poll in the background
        # and blur the counts per step. What a timer adds per poll is in docs/scaling-and-cost.md.
        env_overrides={
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POLL_TIMER_QUEUE_URL": "",
            # every job submitted at once (the counts are per generation; how the learned limit
            # paces a burst is the burst benchmark's)
            "PROVIDER_LIMIT_INITIAL": str(max(generations, executions)),
        },
        write_endpoints=False,
    )
    with meter.installed(), stack:
        for table in (stack._handlers, stack.lambdas._handlers if stack.lambdas else {}):
            for name in list(table):
                table[name] = meter.wrap(name, table[name])
        simulator = stack.simulator
        simulator.configure(latency_ms=latency_ms, durations={model: 4.0})
        headers = {"x-api-key": stack.api_key}
        api = stack.api_url.rstrip("/")

        # -- poller path: POST, a sweep while the jobs run, sweeps until they have finished
        before = meter.tally.snapshot()
        ids = []
        for index in range(generations):
            answer = requests.post(
                f"{api}/generations",
                json={"model": model, "prompt": f"A red fox runs through fresh snow, take {index}"},
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                timeout=60,
            )
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        submit = meter.tally.snapshot().minus(before)

        before, polls_before = meter.tally.snapshot(), simulator.poll_count
        report = stack.poll_now()
        pending_polls = simulator.poll_count - polls_before
        if report["outcomes"].get("completed"):
            raise RuntimeError(f"jobs finished before the pending sweep: {report}")
        pending = meter.tally.snapshot().minus(before)

        # Every job finished at the provider (ground truth: the simulator's jobs) before the
        # completing sweep, so each of its polls is a completing one: since the submit queue, a
        # job starts when the dispatcher submits it, a little after its POST.
        def all_finished() -> bool:
            jobs = list(simulator.jobs.values())
            return len(jobs) >= generations and not any(job.running(simulator.clock()) for job in jobs)

        _wait_for(all_finished, 60, "the provider to finish every job")
        before, polls_before = meter.tally.snapshot(), simulator.poll_count
        finished = 0
        for _ in range(10):
            report = stack.poll_now()
            finished += report["outcomes"].get("completed", 0)
            if finished >= generations:
                break
            time.sleep(1)
        if finished != generations:
            raise RuntimeError(f"only {finished} of {generations} completed")
        completing_polls = simulator.poll_count - polls_before
        completing = meter.tally.snapshot().minus(before)

        before = meter.tally.snapshot()
        idle_report = stack.poll_now()
        idle = meter.tally.snapshot().minus(before)
        if idle_report["due"]:
            raise RuntimeError(f"an idle tick found work: {idle_report}")

        # -- workflow path: executions of the state machine, each submit, wait/fetch loop, video.
        # The schedule has learned 4 s from the poller's jobs above; these take three times that,
        # so the loop meets a running job (a pending Fetch) before the final one, as a job whose
        # time varies does in production.
        simulator.configure(durations={model: 12.0})
        sfn = stack.client("stepfunctions")
        arn = stack.state_machine_arn
        assert arn is not None
        before, polls_before = meter.tally.snapshot(), simulator.poll_count
        started = [
            sfn.start_execution(
                stateMachineArn=arn,
                name=f"bench-{uuid.uuid4().hex[:12]}",
                input=json.dumps(
                    {"owner": stack.key_id(stack.api_key), "model": model, "prompt": f"A cheetah, take {n}"}
                ),
            )["executionArn"]
            for n in range(executions)
        ]

        def all_done() -> bool:
            return all(sfn.describe_execution(executionArn=e)["status"] != "RUNNING" for e in started)

        _wait_for(all_done, 180, "the workflow executions")
        workflow = meter.tally.snapshot().minus(before)
        workflow_polls = simulator.poll_count - polls_before
        transitions = 0
        states: Counter[str] = Counter()
        if "WorkflowFunction.fetch.pending" not in meter.by_label:
            raise RuntimeError("no workflow Fetch met a running job: nothing to price a pending Fetch by")
        for execution in started:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "SUCCEEDED":
                raise RuntimeError(f"workflow {execution} ended {described['status']}")
            events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
            for event in events:
                if event["type"].endswith("StateEntered"):
                    transitions += 1
                    states[event["stateEnteredEventDetails"]["name"]] += 1

    return {
        "latency_ms": latency_ms,
        "poller": {
            "generations": generations,
            "submit": submit.per(generations),
            "pending_poll": pending.per(pending_polls),
            "completing_poll": completing.per(completing_polls),
            "pending_polls": pending_polls,
            "completing_polls": completing_polls,
            "idle_tick": idle.per(1),
        },
        "workflow": {
            "executions": executions,
            "provider_polls": workflow_polls,
            "fetches": states["Fetch"],
            "transitions": transitions,
            "states_entered": dict(states),
            "all": workflow.per(executions),
            "steps": {
                label: tally.per(tally.lambda_calls[label])
                for label, tally in meter.by_label.items()
                if label.startswith("WorkflowFunction.")
            },
        },
    }


_UNITS = (
    ("dynamodb_wru", "dynamodb_wru"),
    ("dynamodb_rru", "dynamodb_rru"),
    ("s3_put_requests", "s3_put"),
    ("s3_get_requests", "s3_get"),
    ("sqs_requests", "sqs_request"),
)


def _dollars(per_generation: dict[str, float]) -> float:
    return sum(PRICES[k] * v for k, v in per_generation.items())


def cost_per_1000(
    counts: dict[str, Any],
    *,
    polls_per_generation: float,
    sweep_ms_per_poll: float,
    memory_gb: float = 0.5,
    poller_memory_gb: float | None = None,
) -> dict[str, Any]:
    """AWS dollars per 1,000 generations for both paths, from the counts above (`memory_gb`: the
    functions' memory; `poller_memory_gb`: the poller's, when it has its own)."""
    p = counts["poller"]
    poller_gb = memory_gb if poller_memory_gb is None else poller_memory_gb
    extra = polls_per_generation - 1  # polls that find the job still running

    def others(phase: dict[str, Any], field_: str) -> float:
        """Invocations (or ms) of the functions a phase sets off besides the poller's sweep (the
        dispatcher, the stream consumers): the sweep's own time comes from the sweep benchmark."""
        return float(sum(v for k, v in phase[field_].items() if k != "PollerFunction"))

    def per_generation(field_: str) -> float:
        return (
            others(p["submit"], field_)
            + extra * others(p["pending_poll"], field_)
            + others(p["completing_poll"], field_)
        )

    units: dict[str, float] = {
        "apigw_request": 1.0,
        # the API call, the dispatcher's submit and the stream consumers; the poller's and the
        # dispatcher's ticks run whether or not work is due (below, fixed)
        "lambda_request": per_generation("lambda_invocations"),
        "lambda_gb_second": (
            memory_gb * per_generation("lambda_ms") + poller_gb * polls_per_generation * sweep_ms_per_poll
        )
        / 1000,
    }
    for key, unit in _UNITS:
        units[unit] = p["submit"][key] + extra * p["pending_poll"][key] + p["completing_poll"][key]
    # The key is cached for SECRET_MAX_AGE_SECONDS per container: the run's reads / its generations
    # (an upper bound: a short run is mostly first reads).
    units["secrets_call"] = (
        p["submit"]["secrets_calls"] * p["generations"]
        + p["pending_poll"]["secrets_calls"] * p["pending_polls"]
        + p["completing_poll"]["secrets_calls"] * p["completing_polls"]
    ) / p["generations"]
    poller = {"units_per_generation": units, "dollars_per_1000": 1000 * _dollars(units)}
    # What runs whether or not anything is due: the poller's tick, once a minute.
    idle = p["idle_tick"]
    ticks = 60 * 24 * 30
    idle_units = {
        "lambda_request": ticks * sum(idle["lambda_invocations"].values()),
        "lambda_gb_second": ticks * poller_gb * sum(idle["lambda_ms"].values()) / 1000,
        "dynamodb_rru": ticks * idle["dynamodb_rru"],
    }
    fixed = {
        "poller_ticks_per_month": ticks,
        "units_per_month": idle_units,
        "dollars_per_month": _dollars(idle_units),
        "secret_storage_dollars_per_month": 0.40,
    }

    w = counts["workflow"]
    n = w["executions"]
    fixed_transitions = w["transitions"] / n - 3 * w["fetches"] / n  # Wait, Fetch, Check per poll
    steps = w["steps"]
    submit = steps["WorkflowFunction.submit"]
    pending = steps["WorkflowFunction.fetch.pending"]
    final = steps["WorkflowFunction.fetch.final"]

    def step_ms(step: dict[str, Any]) -> float:
        return float(sum(step["lambda_ms"].values()))

    # What an execution sets off besides its own steps (the dispatcher's submit, the stream
    # consumers), per execution: the run's totals less the steps'.
    def besides(field_: str) -> float:
        return float(sum(v for k, v in w["all"][field_].items() if not k.startswith("WorkflowFunction.")))

    wunits: dict[str, float] = {
        "sfn_transition": fixed_transitions + 3 * polls_per_generation,
        "lambda_request": 1 + polls_per_generation + besides("lambda_invocations"),
        "lambda_gb_second": memory_gb
        * (step_ms(submit) + extra * step_ms(pending) + step_ms(final) + besides("lambda_ms"))
        / 1000,
    }
    step_units = [(k, u) for k, u in _UNITS if k != "sqs_requests"]
    for key, unit in step_units:
        wunits[unit] = submit[key] + extra * pending[key] + final[key]
    wunits["sqs_request"] = w["all"]["sqs_requests"]
    wunits["secrets_call"] = w["all"]["secrets_calls"]  # the run's reads / its executions
    workflow = {
        "units_per_generation": wunits,
        "fixed_transitions": fixed_transitions,
        "dollars_per_1000": 1000 * _dollars(wunits),
    }
    return {
        "prices": PRICES,
        "prices_date": PRICES_DATE,
        "region": "us-east-1",
        "poller": poller,
        "workflow": workflow,
        "fixed": fixed,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
