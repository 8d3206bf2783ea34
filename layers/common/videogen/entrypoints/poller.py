"""The poller's tick (EventBridge schedule), or one shard handed to it by another invocation.

A scheduled event sweeps every shard of the due-index, unless the backlog outgrows one
invocation: then the poller invokes itself asynchronously once per other shard with
`{"shard": "<n>"}` and sweeps the first shard itself (videogen.logic.fanout). An event with a
`shard` sweeps that shard only and never fans out again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from videogen.logic import fanout
from videogen.logic.service import GenerationService


class ShardInvoker(Protocol):
    def invoke_shards(self, function_arn: str, shards: Sequence[str]) -> list[str]: ...


class PollerTick:
    def __init__(self, service: GenerationService, invoker: ShardInvoker, log: Any = None) -> None:
        self.service = service
        self.invoker = invoker
        self.log = log

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        shard = fanout.shard_of_event(event, self.service.store.due_shards)
        if shard is None:
            # The schedule is the dispatcher's safety net: a lost wake-up waits one tick at most.
            self.service.wake_dispatcher()
        report = self.service.sweeper.tick(
            context.get_remaining_time_in_millis,
            shard=shard,
            delegate=lambda shards: self.invoker.invoke_shards(context.invoked_function_arn, shards),
        )
        summary = report.summary()
        if self.log is not None:
            fields = {k: v for k, v in summary.items() if k != "outcomes"}
            self.log.info("sweep finished", extra={**fields, **report.outcomes})
        return summary
