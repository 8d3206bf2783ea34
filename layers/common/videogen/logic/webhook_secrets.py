"""Per-owner webhook signing secrets, derived from the stack's master secret.

A receiver verifies its deliveries with a secret; if every owner held the same one, any of them
could sign a delivery to any other's receiver. So each owner (API key) has its own:

    secret(owner, version) = "whsec_" + base64(HMAC-SHA256(master, "videogen-webhook/v1\\0owner\\0version"))

Nothing secret is stored per owner: only a version counter (`SecretVersions`, one small record
per owner that rotated at least once; an owner with no record is at version 1). Knowing one
owner's secret tells nothing about another's (HMAC is a PRF keyed by the master).

Rotation (`rotate`) bumps the owner's version. For `grace_seconds` after it, deliveries are signed
with both the new and the previous version (two space-separated `v1,` signatures, as Standard
Webhooks allows), so a receiver still holding the old secret keeps verifying while it switches;
after the grace the old secret verifies nothing. A second rotation within the grace drops the
oldest at once (only the last two versions ever sign).

The master itself (Secrets Manager, WebhookSecret) may hold several secrets, newest first
("NEW OLD" while rotating it): every owner's secret is derived from each, so a master rotation
changes every owner's secret, signed with both until the old master is removed. Owners then
fetch theirs again (`GET /webhook-secret`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

from videogen.domain.errors import ConflictError
from videogen.domain.webhook_secrets import SecretVersion, SecretVersions

PREFIX = "whsec_"
_CONTEXT = b"videogen-webhook/v1"


def derive_secret(master: str, owner: str, version: int) -> str:
    """The owner's signing secret at `version`, in the `whsec_<base64>` form Standard Webhooks
    libraries take."""
    message = b"\0".join((_CONTEXT, owner.encode(), str(version).encode()))
    digest = hmac.new(master.encode(), message, hashlib.sha256).digest()
    return PREFIX + base64.b64encode(digest).decode()


class RotationConflict(ConflictError):
    """Two rotations of one owner raced and this one kept losing (409: try again)."""


class OwnerSecrets:
    def __init__(
        self,
        *,
        masters: Callable[[], Sequence[str]],
        versions: SecretVersions,
        grace_seconds: int,
        clock: Callable[[], float],
    ) -> None:
        """`masters()`: the master secrets, newest first (webhook_sender.split_secrets)."""
        self.masters = masters
        self.versions = versions
        self.grace_seconds = grace_seconds
        self.clock = clock

    def _previous_until(self, state: SecretVersion) -> float | None:
        if state.previous is None or state.rotated_at is None:
            return None
        until = state.rotated_at + self.grace_seconds
        return until if self.clock() < until else None

    def signing_secrets(self, owner: str) -> list[str]:
        """Every secret a delivery to `owner` is signed with: the current version, and the
        previous one during its grace, under each master (newest first)."""
        state = self.versions.get(owner)
        active = [state.version]
        if state.previous is not None and self._previous_until(state) is not None:
            active.append(state.previous)
        return [derive_secret(master, owner, version) for master in self.masters() for version in active]

    def describe(self, owner: str) -> dict[str, Any]:
        """What `GET /webhook-secret` answers: the owner's current secret and its version."""
        return self._describe(owner, self.versions.get(owner))

    def _describe(self, owner: str, state: SecretVersion) -> dict[str, Any]:
        until = self._previous_until(state)
        return {
            "secret": derive_secret(self.masters()[0], owner, state.version),
            "version": state.version,
            "previous_version": state.previous if until is not None else None,
            "previous_valid_until": int(until) if until is not None else None,
        }

    def rotate(self, owner: str) -> dict[str, Any]:
        """A new secret for `owner`; the previous one keeps signing for the grace period."""
        for _ in range(5):
            state = self.versions.get(owner)
            new = SecretVersion(version=state.version + 1, previous=state.version, rotated_at=self.clock())
            if self.versions.replace(owner, state, new):
                return self._describe(owner, new)
        raise RotationConflict(f"the webhook secret of {owner} is being rotated concurrently")
