"""The one home of deferred work: modules imported, AWS clients made and secrets read on first
use, and `once` for whatever a handler builds at its first invocation.

A Lambda cold start pays for every import at module level. boto3 (about 0.3 s), requests,
the URL checks and Powertools' heavier utilities are needed by some invocations only (GET
/models touches none of them), so the core names them through these helpers instead of
importing them at the top of a module."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

T = TypeVar("T")

# Adaptive retries absorb DynamoDB, S3 and Secrets Manager throttling.
AWS_RETRIES: dict[str, Any] = {"mode": "adaptive", "max_attempts": 8}
# boto3's default session is not thread-safe: clients are created one at a time.
_CREATE_LOCK = threading.Lock()


class Once(Generic[T]):
    """`factory()` called on the first call, by whichever thread gets there first; its value
    returned on every call after."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._made = False
        self._value: T | None = None

    def __call__(self) -> T:
        if not self._made:
            with self._lock:
                if not self._made:
                    self._value = self._factory()
                    self._made = True
        return self._value  # type: ignore[return-value]

    @property
    def made(self) -> bool:
        return self._made


def once(factory: Callable[[], T]) -> Once[T]:
    return Once(factory)


class LazyModule:
    """A module imported at the first attribute read."""

    def __init__(self, name: str) -> None:
        self._module = Once(lambda: importlib.import_module(name))

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._module(), attribute)


def lazy_import(name: str) -> Any:
    """`name`, imported when first used: `requests = lazy_import("requests")`."""
    return LazyModule(name)


class LazyClient:
    """A boto3 client made on first use, once, by whichever thread gets there first; it stands
    for the client everywhere (attributes are the real client's)."""

    def __init__(self, service: str, **config: Any) -> None:
        self._service = service
        self._config = config
        self._client: Any = None

    def get(self) -> Any:
        """The real client (made now if it was not yet)."""
        if self._client is None:
            with _CREATE_LOCK:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.client(self._service, config=Config(**self._config))
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __repr__(self) -> str:
        return f"LazyClient({self._service!r}, created={self._client is not None})"


def client_error() -> type[ClientError]:
    """botocore's ClientError, for `except` clauses (evaluated only once something was raised):
    botocore is imported with the first AWS client, not at a cold start."""
    from botocore.exceptions import ClientError

    return ClientError


def secret_reader(secret_id: str, max_age_seconds: int, *, strip: bool = False) -> Callable[[], str]:
    """A secret's string from Secrets Manager, cached by Powertools parameters for
    `max_age_seconds` (a rotated value is picked up without a redeploy). The Powertools provider
    and its client are made on the first read."""

    def make() -> Any:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=LazyClient("secretsmanager", retries=AWS_RETRIES).get())

    secrets = Once(make)

    def read() -> str:
        value = str(secrets().get(secret_id, max_age=max_age_seconds))
        return value.strip() if strip else value

    return read


__all__ = ["AWS_RETRIES", "LazyClient", "Once", "client_error", "lazy_import", "once", "secret_reader"]
