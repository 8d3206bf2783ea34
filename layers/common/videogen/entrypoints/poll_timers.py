"""The poll timer queue's consumer: each message is one generation's timer (videogen.logic.timers),
processed record by record with Powertools batch. A record whose processing raised (the store or
the queue unreachable) is a batch item failure and comes back after the queue's visibility
timeout; a refresh never raises for provider faults (it schedules a later poll instead)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from videogen.logic.service import GenerationService
from videogen.logic.timers import Timer


class PollTimerEvents:
    def __init__(self, service: GenerationService, log: Any = None) -> None:
        self.service = service
        self.log = log
        self.processor = BatchProcessor(event_type=EventType.SQS)

    def fire(self, body: str) -> str:
        try:
            timer = Timer.from_json(body)
        except (ValueError, KeyError, TypeError):
            if self.log is not None:
                self.log.warning("unreadable poll timer dropped", extra={"body": body[:200]})
            return "unreadable"
        return self.service.fire_timer(timer)

    def handle(self, event: dict[str, Any], context: Any) -> Any:
        with self.service.batched():  # next timers in one SendMessageBatch, freed slots in one write
            return process_partial_response(
                event=event,
                record_handler=lambda record: self.fire(record.body),
                processor=self.processor,
                context=context,
            )
