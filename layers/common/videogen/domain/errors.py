"""Errors the service reports to a caller. Each carries its code and HTTP status; the HTTP API
turns one into an answer with `to_body` (videogen.entrypoints.http_api), in one place."""

from __future__ import annotations

from typing import Any


class VideogenError(Exception):
    """Base of every error the service reports to a caller."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_body(self) -> dict[str, Any]:
        """The one error shape of the API: {"error": {"code", "message", "details"?}}."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class RequestValidationError(VideogenError):
    code = "validation_error"
    http_status = 422


class UnknownModelError(RequestValidationError):
    code = "unknown_model"


class UnsafeUrlError(RequestValidationError):
    code = "unsafe_url"


class NotFoundError(VideogenError):
    code = "not_found"
    http_status = 404


class ConflictError(VideogenError):
    code = "conflict"
    http_status = 409


class ProviderThrottled(VideogenError):
    """The provider rate-limited a poll even after the client's own retries. Step Functions sees
    the class name as the task's error (Lambda's errorType), so the workflow's Retry matches it."""

    code = "provider_rate_limited"
    http_status = 429


class QueueFull(VideogenError):
    """Our own limit on one caller's queued work (not the provider's): videogen.logic.queue."""

    code = "queue_full"
    http_status = 429
