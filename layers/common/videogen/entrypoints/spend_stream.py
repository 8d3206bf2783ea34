"""SpendFunction: the generations table's stream -> each generation's reserved spend settled once
(videogen.logic.budget.SpendGuard.settle), record by record with Powertools batch. Settling is
conditional on the reservation not being settled yet, so a retried batch counts nothing twice."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from videogen.domain.models import Generation
from videogen.domain.pricing import reported_credits
from videogen.logic.budget import SpendGuard, settled_credits


class SpendSettlement:
    def __init__(
        self, guard: SpendGuard, *, decode: Callable[[Mapping[str, Any]], Generation], log: Any = None
    ) -> None:
        self.guard = guard
        self.decode = decode
        self.log = log
        self.processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def record(self, raw: Mapping[str, Any]) -> bool:
        """Settle the generation of one stream record, when this change is the one that says
        what it cost (the old image did not say it yet)."""
        images = raw.get("dynamodb") or {}
        new = images.get("NewImage")
        if not new:
            return False
        generation = self.decode(new)
        if settled_credits(generation) is None:
            return False
        old = images.get("OldImage")
        if old:
            before = self.decode(old)
            if reported_credits(before.usage) is not None or settled_credits(before) is not None:
                return False  # settled (or attempted) at that earlier change
        return self.guard.settle(generation)

    def handle(self, event: dict[str, Any], context: Any) -> Any:
        return process_partial_response(
            event=event,
            record_handler=lambda record: self.record(record.raw_event),
            processor=self.processor,
            context=context,
        )
