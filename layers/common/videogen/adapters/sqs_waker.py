"""Wake-ups of the dispatcher: a small message on the dispatch queue (template: DispatchQueue)."""

from __future__ import annotations

from typing import Any

# SQS delays a message by at most 15 minutes.
MAX_DELAY_SECONDS = 900


class SqsWaker:
    def __init__(self, sqs: Any, queue_url: str, log: Any = None) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._log = log

    def wake(self, delay_seconds: int = 0) -> None:
        """Send a wake-up. A failure is logged, not raised: the caller's work stands, and the
        poller's next tick wakes the dispatcher anyway."""
        if not self._queue_url:
            return
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody='{"wake":true}',
                DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY_SECONDS)),
            )
        except Exception as exc:  # noqa: BLE001 (a lost wake-up costs at most one poller tick)
            if self._log is not None:
                self._log.warning("could not wake the dispatcher", extra={"error": type(exc).__name__})
