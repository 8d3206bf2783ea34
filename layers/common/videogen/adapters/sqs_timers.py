"""Poll timers on SQS: one message per timer, held back by its own DelaySeconds.

Why SQS (see docs/architecture.md, "Poll timers"): a per-message delay is exact to the second,
costs one SendMessage and one receive per poll (about $0.40 per million each), needs no
per-timer cleanup, and a Lambda event source mapping consumes it within a fraction of a second
of it becoming visible. Its one limit, 900 s of delay at most, is covered by re-arming: a
timer due later is delivered after 900 s and armed again for the rest (TimerFiring.fire)."""

from __future__ import annotations

from typing import Any

from videogen.domain.polling import Timer, delay_seconds

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


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
