"""The provider's account limits as the simulator plays them: a cap on the jobs an API key has
running at once (``max_concurrent_jobs``) and on the submits it may make in a minute
(``max_submits_per_minute``). server.py asks ``Limits`` before it accepts a submit; a refusal is
the documented 429.

What the docs say (shared/aimlapi-docs/errors-and-messages/): a 429 "Too Many Requests" means
"You have hit a rate or concurrency limit by sending too many requests in a short period of
time"; the error body is ``{"message", "path", "requestId", "statusCode", "timestamp"}``, and the
one 429 body they show (general-info.md) has ``"statusCode": "429"``, a string. They publish no
numbers, no ``Retry-After`` and no rate-limit headers. Where they are silent the simulator takes
the less convenient reading:

- both limits answer the same 429 with the same message: a client cannot tell which one it hit,
  nor when it may try again (no header, nothing in the body);
- the concurrency cap counts every job of the key that has not finished at the provider (queued
  or generating; a job counts until it ends whether or not anyone polls it), over all models;
- the rate window is a sliding 60 s, not a calendar minute (no burst at a minute's edge), and it
  counts every authenticated submit request of the key with a JSON body, refused ones included
  (by either limit, or by the schema check, which comes after it): a client that retries at once
  keeps itself throttled;
- a cap lowered mid-run stops no running job: submits are refused until the key's running jobs
  fall below the new cap.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict, deque

RATE_WINDOW_SECONDS = 60.0
# errors-with-status-code-4xx.md: the message of a 429
TOO_MANY_REQUESTS = "Too Many Requests"
CONCURRENCY = "concurrency"
RATE = "rate"


def key_id(api_key: str) -> str:
    """A short fingerprint of an API key: what the simulator keeps and shows instead of the key."""
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


class Limits:
    """Per-key submit windows and the count of refusals (``throttled``, by limit). Not
    thread-safe: the simulator calls it under its lock."""

    def __init__(self) -> None:
        self._submits: defaultdict[str, deque[float]] = defaultdict(deque)
        self.throttled: Counter[str] = Counter()

    def over_rate(self, key: str, now: float, per_minute: int | None) -> bool:
        """Count a submit request of ``key`` at ``now`` (the simulator's clock, seconds) and say whether it
        is over ``per_minute`` within the sliding window (None: no limit). The request counts
        whether or not it is refused."""
        window = self._submits[key]
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        window.append(now)
        if per_minute is not None and len(window) > per_minute:
            self.throttled[RATE] += 1
            return True
        return False

    def over_concurrency(self, running: int, cap: int | None) -> bool:
        """Whether a key with ``running`` unfinished jobs may not start one more (None: no cap)."""
        if cap is not None and running >= cap:
            self.throttled[CONCURRENCY] += 1
            return True
        return False
