"""The tasks of the batch state machine (statemachine/batch.asl.json), one Lambda function
(BatchFunction) dispatching on the `step` the definition writes into each task's payload:

- `prepare`: read and check the manifest; the valid lines go to the item file the Distributed
  Map reads (answer: {bucket, key, valid}).
- `enqueue`: one Map child's items ({line, body} each, an ItemBatcher batch) accepted through the
  submit queue. BatchQueueFull (the owner's batch share of the queue is full) is retried by the
  definition with backoff; a retry skips the lines already recorded.
- `track`: count the generations, write the results manifest; {done, wait}.
- `finish`: the batch ends (completed or cancelled); Batch Completed event and webhook.
- `fail`: the error a step finally failed with (Catch) -> the batch ends failed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from videogen.logic.batches import BatchService

_ID = Field(min_length=1, max_length=64, pattern=r"^bat_[0-9a-f]{24}$")


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_id: Annotated[str, _ID]


class Prepare(_Step):
    step: Literal["prepare"]


class Item(BaseModel):
    line: int = Field(ge=1)
    body: dict[str, Any]


class Enqueue(_Step):
    step: Literal["enqueue"]
    items: list[Item] = Field(max_length=1000)


class Track(_Step):
    step: Literal["track"]


class Finish(_Step):
    step: Literal["finish"]


class Fail(_Step):
    step: Literal["fail"]
    error: str = ""
    cause: str | None = None


_STEPS: TypeAdapter[Prepare | Enqueue | Track | Finish | Fail] = TypeAdapter(
    Annotated[Prepare | Enqueue | Track | Finish | Fail, Field(discriminator="step")]
)


class BatchTasks:
    def __init__(self, batches: BatchService, log: Any = None) -> None:
        self.batches = batches
        self.log = log

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        step = _STEPS.validate_python(event)
        batches = self.batches
        if isinstance(step, Prepare):
            return batches.prepare(step.batch_id)
        if isinstance(step, Enqueue):
            done = batches.enqueue(step.batch_id, [item.model_dump() for item in step.items])
            if self.log is not None:
                self.log.info("batch lines enqueued", extra={"batch_id": step.batch_id, **done})
            return done
        if isinstance(step, Track):
            return batches.track(step.batch_id)
        if isinstance(step, Finish):
            return {"status": batches.finish(step.batch_id).status.value}
        if self.log is not None:
            detail = step.error + (f": {step.cause[:500]}" if step.cause else "")
            self.log.error("batch run failed", extra={"batch_id": step.batch_id, "error": detail})
        return {"status": batches.fail(step.batch_id, owner_message(step.error, step.cause)).status.value}


# Errors whose message is written for the batch's owner (the manifest's problem); any other
# step error is recorded by its name only (its message may hold internals: it is logged).
_OWNER_ERRORS = {"InvalidBatch": "invalid_batch"}


def owner_message(error: str, cause: str | None) -> str:
    """What the batch record says about the step error a run failed with."""
    code = _OWNER_ERRORS.get(error)
    if code and cause:
        try:
            message = json.loads(cause).get("errorMessage")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str):
            return f"{code}: {message[:500]}"
    return error or "the batch run failed"
