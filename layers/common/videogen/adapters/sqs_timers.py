"""Poll timers on SQS: one message per timer, held back by its own DelaySeconds.

Why SQS (see docs/architecture.md, "Poll timers"): a per-message delay is exact to the second,
costs one SendMessage and one receive per poll (about $0.40 per million each), needs no
per-timer cleanup, and a Lambda event source mapping consumes it within a fraction of a second
of it becoming visible. Its one limit, 900 s of delay at most, is covered by re-arming: a
timer due later is delivered after 900 s and armed again for the rest (TimerFiring.fire)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from videogen.domain.polling import Timer, delay_seconds

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
BATCH_SIZE = 10  # SQS's limit of entries per SendMessageBatch


class SqsPollTimers:
    enabled = True

    def __init__(self, sqs: Any, queue_url: str, *, max_delay: int = MAX_DELAY_SECONDS) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.max_delay = max_delay

    def arm(self, timer: Timer, *, now: float) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=timer.to_json(),
            DelaySeconds=delay_seconds(timer.due, now, max_delay=self.max_delay),
        )

    def arm_many(self, timers: Sequence[Timer], *, now: float) -> list[Timer]:
        """SendMessageBatch, ten timers a call (each keeps its own DelaySeconds); the timers of
        the entries SQS reports failed, or of a call that raised, are returned."""
        failed: list[Timer] = []
        for start in range(0, len(timers), BATCH_SIZE):
            chunk = timers[start : start + BATCH_SIZE]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": timer.to_json(),
                    "DelaySeconds": delay_seconds(timer.due, now, max_delay=self.max_delay),
                }
                for i, timer in enumerate(chunk)
            ]
            try:
                answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception:  # noqa: BLE001 (the caller counts and logs what was not armed)
                failed.extend(chunk)
                continue
            failed.extend(chunk[int(entry["Id"])] for entry in answer.get("Failed", []))
        return failed
