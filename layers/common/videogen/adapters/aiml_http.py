"""The HTTP transport of the AIML API client: requests and urllib3 with the retry policy the
client configures. Imported by videogen.adapters.aiml_provider on its first request (through
videogen.lazy), so a cold start that never calls the provider never loads requests."""

from __future__ import annotations

import random
from typing import Any

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry

# Errors of a request that never left this process: certain the provider did not get it.
NEVER_SENT = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


class BackoffRetry(Retry):
    """urllib3's Retry, except that the first retry also waits (urllib3 retries once at once)."""

    def get_backoff_time(self) -> float:
        errors = len(self.history)  # redirects are not followed, so every entry is an error
        if errors == 0:
            return 0.0
        jitter = random.uniform(0, self.backoff_jitter)  # noqa: S311 (jitter, not a secret)
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1) + jitter))


class ByMethodAdapter(BaseAdapter):
    """Sends POSTs (submits) and everything else (polls) through adapters with their own retries."""

    def __init__(self, submit: HTTPAdapter, poll: HTTPAdapter) -> None:
        super().__init__()
        self._submit, self._poll = submit, poll

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        adapter = self._submit if request.method == "POST" else self._poll
        return adapter.send(request, *args, **kwargs)

    def close(self) -> None:
        self._submit.close()
        self._poll.close()


__all__ = [
    "NEVER_SENT",
    "BackoffRetry",
    "ByMethodAdapter",
    "ConnectTimeoutError",
    "HTTPAdapter",
    "MaxRetryError",
    "ReadTimeoutError",
    "Urllib3SSLError",
    "requests",
]
