"""The dispatch queue's consumer. Every message is only a wake-up: however many a batch holds,
one run of the dispatcher (videogen.logic.dispatch) submits what the provider has room for, and
the batch is done. A run that fails raises: the messages come back after their visibility
timeout, which retries the run."""

from __future__ import annotations

from typing import Any

from videogen.logic.service import GenerationService


class DispatchWakeups:
    def __init__(self, service: GenerationService, log: Any = None) -> None:
        if service.dispatcher is None:
            raise ValueError("the dispatcher needs a service with a submit queue")
        self.dispatcher = service.dispatcher
        self.log = log

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        wakeups = len((event or {}).get("Records", []))
        report = self.dispatcher.run(context.get_remaining_time_in_millis)
        summary = report.summary()
        if self.log is not None:
            self.log.info("dispatch finished", extra={"wakeups": wakeups, **summary})
        return {"batchItemFailures": [], **summary}
