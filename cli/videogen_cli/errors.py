"""The CLI's failures, each with its exit code. Nothing else reaches the user as a traceback."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug of the CLI (VIDEOGEN_DEBUG=1 shows the traceback)
EXIT_USAGE = 2  # bad arguments, missing configuration, unreadable local files
EXIT_API = 3  # the API answered an error, or could not be reached
EXIT_GENERATION = 4  # the generation failed, timed out, was cancelled, or did not finish in --timeout
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class CliError(Exception):
    """A failure the CLI reports in one line (plus optional detail lines) and an exit code."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hints: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hints = list(hints or [])

    def lines(self) -> list[str]:
        return [f"error: {self.message}", *self.hints]


class UsageError(CliError):
    exit_code = EXIT_USAGE


class ApiError(CliError):
    """The API's one error shape: {"error": {"code", "message", "details"}}."""

    exit_code = EXIT_API

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        retry_after: float | None = None,
        gateway_error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = list(details or [])
        self.retry_after = retry_after
        # API Gateway's x-amzn-ErrorType: set on the gateway's own answers, never on the handlers'
        self.gateway_error_type = gateway_error_type

    def lines(self) -> list[str]:
        out = [f"error: {self.code}: {self.message} (HTTP {self.status})"]
        for detail in self.details:
            if not isinstance(detail, dict):
                continue
            if "field" in detail:
                text = detail.get("message", "")
                if text and text == self.message:
                    out.append(f"  field: {detail['field']}")
                else:
                    out.append(f"  {detail['field']}: {text}".rstrip())
            else:
                out.append("  " + ", ".join(f"{k}={v}" for k, v in detail.items()))
        return out + self.hints


class NetworkError(CliError):
    """The API (or the video's link, or S3) could not be reached or did not answer."""

    exit_code = EXIT_API


class GenerationFailedError(CliError):
    """The generation ended without a video (failed, timed_out, cancelled) or not within --timeout."""

    exit_code = EXIT_GENERATION

    def __init__(
        self, message: str, *, generation: dict[str, Any] | None = None, hints: list[str] | None = None
    ):
        super().__init__(message, hints=hints)
        self.generation = generation
