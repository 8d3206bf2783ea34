"""An owner's webhook secret version (the only thing stored per owner; the secret itself is
derived, see videogen.logic.webhook_secrets) and the port of its store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SecretVersion:
    """An owner's secret version; `previous` signs too until `rotated_at` + the grace. An owner
    that never rotated is at version 1."""

    version: int = 1
    previous: int | None = None
    rotated_at: float | None = None


class SecretVersions(Protocol):
    def get(self, owner: str) -> SecretVersion: ...

    def replace(self, owner: str, expected: SecretVersion, new: SecretVersion) -> bool:
        """Store `new` if the stored version is still `expected`; False when another write won."""
        ...


def split_secrets(value: str) -> list[str]:
    """The secret string holds one or more secrets separated by whitespace; the first is the new
    one. Rotation: put "NEW OLD", move receivers to NEW, then put "NEW"."""
    secrets = value.split()
    if not secrets:
        raise ValueError("the webhook secret is empty")
    return secrets
