"""Spend budgets of an API key, in provider credits: the limits and the refusal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from videogen.domain.errors import VideogenError


@dataclass(frozen=True)
class Limits:
    """A key's budget per UTC day and per UTC month; 0 = no limit."""

    daily: int = 0
    monthly: int = 0


class BudgetExceeded(VideogenError):
    """A request whose estimate does not fit the key's remaining budget: refused before anything
    is recorded or paid. 402 (not 429): waiting a few seconds does not help, only the next period
    or a larger budget does."""

    code = "budget_exceeded"
    http_status = 402

    def __init__(self, period: str, *, limit: int, spent: int, estimate: int, resets_at: str) -> None:
        super().__init__(
            f"this request (about {estimate} credits) would exceed your {period} budget "
            f"({spent} of {limit} credits spent); it resets at {resets_at}",
            details=[
                {
                    "period": period,
                    "limit": limit,
                    "spent": spent,
                    "estimate": estimate,
                    "resets_at": resets_at,
                }
            ],
        )


def parse_overrides(text: str) -> dict[str, Limits]:
    """`BUDGET_OVERRIDES`: a JSON object {api key id: {"daily": n, "monthly": n}}; a key left out
    of an entry takes 0 (no limit). Raises ValueError on anything else."""
    if not text.strip():
        return {}
    value: Any = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object of api key id -> {daily, monthly}")
    limits: dict[str, Limits] = {}
    for key_id, entry in value.items():
        if not isinstance(entry, dict) or set(entry) - {"daily", "monthly"}:
            raise ValueError(f"{key_id}: must be an object with daily and/or monthly")
        numbers = {name: entry.get(name, 0) for name in ("daily", "monthly")}
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in numbers.values()):
            raise ValueError(f"{key_id}: daily and monthly are whole numbers of credits, 0 or more")
        limits[key_id] = Limits(**numbers)
    return limits


@dataclass(frozen=True)
class Reservation:
    owner: str
    generation_id: str
    model: str
    credits: int
    day: str  # 2026-12-01 (UTC)
    month: str  # 2026-12
    expires_at: int


class SpendCounters(Protocol):
    """The counters (videogen.adapters.spend_counters over DynamoDB)."""

    def reserve(self, reservation: Reservation, limits: Limits) -> str | None:
        """Add the reservation to the day, month and model counters unless a limit (0 = none)
        would be passed; the name of the refusing period ("daily", "monthly") or None. A second
        reservation for the same generation adds nothing and returns None."""
        ...

    def settle(self, owner: str, generation_id: str, credits: int) -> bool:
        """Replace the generation's reserved estimate by `credits`, once: False when it was
        already settled or never reserved."""
        ...

    def totals(self, owner: str, day: str, month: str) -> tuple[int, int]:
        """Credits counted for the key on `day` and in `month`."""
        ...

    def by_model_day(self, owner: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        """[{day, model, credits, requests}] for the key's days in [first_day, last_day]."""
        ...
