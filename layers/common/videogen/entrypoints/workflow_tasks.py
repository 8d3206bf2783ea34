"""The tasks of the generation workflow (statemachine/generation.asl.json), each one call into
the workflow steps of GenerationService (videogen.logic.workflow_steps). One Lambda function
(WorkflowFunction) serves them all, dispatching on the `action` the state machine writes into
every task's payload (never on the execution's input):

- `submit`: the execution input (a POST /generations body plus `owner`) -> `submit_once`, under a
  generation id derived from the execution. A retried Submit (Lambda service errors) finds the
  record its first attempt wrote and never calls the provider twice; a failure recorded later
  finds the record even when Submit never answered.
- `fetch`: refresh the generation once (`WorkflowSteps.fetch`); the answer's `wait_seconds`
  (from the generation's next poll time) drives the next Wait state. A rate-limited poll raises
  ProviderThrottled, which the definition retries with backoff.
- `record_failure`: the error a step finally failed with (Catch) -> the generation becomes
  `failed` with that reason, unless it already ended.

`submit` and `fetch` answer the workflow's state: `{generation_id, status, wait_seconds, polls}`,
plus, once the generation has ended, `generation` (as GET /generations/{id} shows it, the video
link included) and, unless it completed, `cause` (a JSON string for the Fail state's Cause).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from videogen.domain.errors import RequestValidationError
from videogen.domain.models import OWNER_PATTERN, Generation, Status
from videogen.entrypoints.api_models import GenerationOut
from videogen.logic.service import GenerationService

# Error names of failed steps -> the reason code recorded on the generation.
FAILURE_CODES = {
    "ProviderThrottled": "provider_rate_limited",
    "PollLimitReached": "poll_limit_reached",
    "States.Timeout": "workflow_step_timed_out",
    "Sandbox.Timedout": "workflow_step_timed_out",
}
# What the owner reads for each code (the step's own words are logged, not stored).
FAILURE_MESSAGES = {
    "provider_rate_limited": "the provider kept rate-limiting the generation's polls",
    "poll_limit_reached": "the generation did not finish within the workflow's polls",
    "workflow_step_timed_out": "a workflow step timed out",
    "workflow_lambda_error": "a workflow step's function could not run",
    "workflow_error": "a workflow step failed",
}
_ERROR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,79}")


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    execution: str = Field(min_length=1, description="$$.Execution.Id")
    started_at: str = Field(min_length=1, description="$$.Execution.StartTime")


class SubmitStep(_Step):
    action: Literal["submit"]
    input: dict[str, Any] = Field(description="the execution input: a POST /generations body plus owner")


class FetchStep(_Step):
    action: Literal["fetch"]
    generation_id: str = Field(min_length=1, max_length=64)
    polls: int = Field(ge=0, description="fetches so far in this execution, this one included")


class RecordFailureStep(_Step):
    action: Literal["record_failure"]
    error: str = Field(description="the Error a step failed with")
    cause: str | None = Field(None, description="its Cause")


class WorkflowInput(BaseModel):
    """The execution input: the same body as POST /generations, plus the owner."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    owner: str = Field(
        pattern=OWNER_PATTERN,
        description="who the generation belongs to: the API key id that may read it over the API",
    )


@functools.cache
def _steps() -> TypeAdapter[SubmitStep | FetchStep | RecordFailureStep]:
    """The steps' validator, built at the first step rather than at the cold start."""
    return TypeAdapter(Annotated[SubmitStep | FetchStep | RecordFailureStep, Field(discriminator="action")])


def generation_id_for(execution_id: str, started_at: str) -> str:
    """The generation of one execution: the same for every attempt of every step of it, and
    never another execution's (a name can be reused once the old execution is forgotten, so the
    start time is part of it)."""
    digest = hashlib.sha256(f"{execution_id}|{started_at}".encode()).hexdigest()
    return "gen_" + digest[:32]


class WorkflowTasks:
    """The workflow function's entry point."""

    def __init__(self, service: GenerationService, log: Any = None) -> None:
        self.service = service
        self.log = log

    def handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if self.log is not None:
            self.log.append_keys(action=event.get("action") if isinstance(event, Mapping) else None)
        return handle(event, self.service)


def handle(event: Mapping[str, Any], service: GenerationService) -> dict[str, Any]:
    """Run one step. Domain errors propagate: Lambda reports their class name as the error."""
    step = _parse(_steps(), event, "step")
    generation_id = generation_id_for(step.execution, step.started_at)
    match step:
        case SubmitStep():
            request = _parse(TypeAdapter(WorkflowInput), step.input, "input")
            body = {k: v for k, v in step.input.items() if k != "owner"}
            generation = service.submit_once(generation_id, request.owner, body)
            return state(service, generation, service.wait_seconds(generation), polls=0)
        case FetchStep():
            generation, wait = service.fetch(step.generation_id)
            return state(service, generation, wait, polls=step.polls)
        case RecordFailureStep():
            code, message, detail = failure_reason(step.error, step.cause)
            recorded = service.record_failure(generation_id, code, message, detail=detail)
            return {
                "generation_id": generation_id,
                "recorded": recorded is not None
                and recorded.error is not None
                and recorded.error.code == code,
                "status": recorded.status.value if recorded is not None else None,
            }
    raise AssertionError(f"unhandled step {step!r}")  # pragma: no cover (the union is exhaustive)


def state(service: GenerationService, generation: Generation, wait: int, *, polls: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "generation_id": generation.id,
        "status": generation.status.value,
        "wait_seconds": wait,
        "polls": polls,
    }
    if generation.is_terminal:
        out["generation"] = present(service, generation)
        if generation.status is not Status.COMPLETED:
            error = generation.error.model_dump(mode="json") if generation.error else None
            out["cause"] = json.dumps(
                {"generation_id": generation.id, "status": generation.status.value, "error": error}
            )
    return out


def present(service: GenerationService, generation: Generation) -> dict[str, Any]:
    """The generation as GET /generations/{id} shows it (a fresh video link when completed, inline
    images shortened: Step Functions passes at most 256 KB between states)."""
    return GenerationOut.of(generation, service.video_link(generation)).model_dump(mode="json")


def failure_reason(error: str, cause: str | None) -> tuple[str, str, str]:
    """(code, message, detail) for a step's final error. The message, stored on the generation
    its owner reads, says which step error it was; the detail (a Lambda errorMessage, which may
    name ARNs, the account or the function's internals) goes to the logs only."""
    code = FAILURE_CODES.get(error) or (
        "workflow_lambda_error" if error.startswith("Lambda.") else "workflow_error"
    )
    # An error name is a Step Functions error or an exception class; anything else is not shown.
    name = error if _ERROR_NAME.fullmatch(error) else "unnamed error"
    message = f"{FAILURE_MESSAGES.get(code, 'a workflow step failed')} ({name})"
    detail = cause or ""
    try:
        parsed = json.loads(detail)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorMessage"):  # a Lambda error payload
        detail = str(parsed["errorMessage"])
    return code, message, f"{error}: {detail}" if detail else error


def _parse(adapter: TypeAdapter[Any], value: Any, what: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        details = [{"field": _field(e, what), "message": e["msg"]} for e in exc.errors()]
        problems = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise RequestValidationError(f"invalid workflow {what}: {problems}", details=details) from None


def _field(error: Any, what: str) -> str:
    if error["loc"]:
        return ".".join(map(str, error["loc"]))
    discriminator = (error.get("ctx") or {}).get("discriminator")  # an unknown or missing action
    return str(discriminator).strip("'") if discriminator else what
