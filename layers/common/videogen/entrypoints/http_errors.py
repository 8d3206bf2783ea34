"""The API's error answers: one shape, {"error": {"code", "message", "details"?}}, built by
VideogenError.to_body for every error a route raises."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from videogen.domain.errors import VideogenError
from videogen.domain.models import Generation
from videogen.domain.ports import ErrorClass

# HTTP status a caller sees when the provider refused or failed a submit (others: 502).
SUBMIT_FAILURE_HTTP_STATUS = {
    ErrorClass.VALIDATION: 422,
    ErrorClass.RATE_LIMITED: 429,
    ErrorClass.TIMEOUT: 504,
}


def error_response(error: VideogenError, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=error.http_status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
        headers=headers,
    )


class ErrorAnswer(VideogenError):
    """An error answer with a code and status of its own (a failed submit, a bad body)."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.http_status, self.code = status, code


class IdempotencyKeyReused(VideogenError):
    code = "idempotency_key_reused"
    http_status = 422

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with another body",
            details=[{"field": "Idempotency-Key", "message": "use a new key for a new request"}],
        )


class IdempotencyKeyInFlight(VideogenError):
    code = "request_in_progress"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is in progress")


def submit_failure(generation: Generation) -> ErrorAnswer:
    """The error answer of a submit the provider refused or failed."""
    assert generation.error is not None
    provider_class = generation.error.provider_class
    status = SUBMIT_FAILURE_HTTP_STATUS.get(ErrorClass(provider_class), 502) if provider_class else 502
    if generation.submit_outcome_unknown:
        status = 502
    details = [{"generation_id": generation.id, "provider_class": provider_class}]
    return ErrorAnswer(status, generation.error.code, generation.error.message, details)
