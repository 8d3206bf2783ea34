"""The spend guard: each API key's spend in provider credits, counted per UTC day, month and
model, and the key's budget enforced before anything is paid.

- `reserve` (ONE call on the acceptance path, Submitter.submit): adds the request's estimate
  (videogen.domain.pricing) to the key's day, month and model counters in one conditional write,
  which fails when a counter would pass its limit. Concurrent requests at the edge cannot overshoot:
  the check and the add are one atomic operation in DynamoDB, not a read then a write.
- `settle` (the SpendFunction, from the generations table's stream, so wherever a record changes:
  submit, poller, workflow): once per generation, replaces the estimate with what the provider
  reported (`meta.usage.credits_used`), or with 0 when the submit certainly took nothing (the
  record ended with no provider id and no unknown outcome). A job with no reported usage keeps
  its estimate (the provider may have charged for it: the less convenient assumption).
- `usage`: GET /usage, a key's spend by model and day and its budgets."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from videogen.domain.budgets import BudgetExceeded, Limits, Reservation, SpendCounters
from videogen.domain.models import Generation, Status
from videogen.domain.pricing import estimate_credits, reported_credits

# Counters and reservations are kept this long (DynamoDB TTL): a year of daily history and more.
RETENTION_SECONDS = 400 * 86_400


def _periods(now: float) -> tuple[str, str, str, str]:
    """(day, month, the next day's start, the next month's start) in UTC, for `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return (
        day_start.strftime("%Y-%m-%d"),
        month_start.strftime("%Y-%m"),
        (day_start + timedelta(days=1)).strftime(stamp),
        next_month.strftime(stamp),
    )


class SpendGuard:
    def __init__(
        self,
        counters: SpendCounters,
        *,
        default_limits: Limits | None = None,
        overrides: Mapping[str, Limits] | None = None,
        clock: Callable[[], float] = time.time,
        estimate: Callable[[str, Mapping[str, Any]], int] = estimate_credits,
        log: Any = None,
    ) -> None:
        self.counters = counters
        self.default_limits = default_limits or Limits()
        self.overrides = dict(overrides or {})
        self.clock = clock
        self.estimate = estimate
        self.log = log

    def limits(self, owner: str) -> Limits:
        return self.overrides.get(owner, self.default_limits)

    def reserve(self, owner: str, model: str, fields: Mapping[str, Any], generation_id: str) -> int:
        """Reserve the request's estimate against the key's budget, or raise BudgetExceeded
        before anything is recorded or paid. Returns the credits reserved."""
        now = self.clock()
        day, month, next_day, next_month = _periods(now)
        credits = self.estimate(model, fields)
        reservation = Reservation(
            owner, generation_id, model, credits, day, month, int(now) + RETENTION_SECONDS
        )
        limits = self.limits(owner)
        refused = self._too_large(credits, limits) or self.counters.reserve(reservation, limits)
        if refused is None:
            return credits
        spent_day, spent_month = self.counters.totals(owner, day, month)
        if refused == "daily":
            raise BudgetExceeded(
                "daily", limit=limits.daily, spent=spent_day, estimate=credits, resets_at=next_day
            )
        raise BudgetExceeded(
            "monthly", limit=limits.monthly, spent=spent_month, estimate=credits, resets_at=next_month
        )

    @staticmethod
    def _too_large(credits: int, limits: Limits) -> str | None:
        """A request dearer than a whole budget (it would pass even an empty counter's limit)."""
        if limits.daily and credits > limits.daily:
            return "daily"
        if limits.monthly and credits > limits.monthly:
            return "monthly"
        return None

    def settle(self, generation: Generation) -> bool:
        """Reconcile the generation's reservation, once, if its record now says what it cost."""
        credits = settled_credits(generation)
        if credits is None:
            return False
        settled = self.counters.settle(generation.owner, generation.id, credits)
        if settled and self.log is not None:
            extra = {"generation_id": generation.id, "credits": credits, "model": generation.model}
            self.log.info("spend settled", extra=extra)
        return settled

    def usage(self, owner: str, days: int) -> dict[str, Any]:
        """The key's budgets with what is spent of them, and its spend by day and model over the
        last `days` UTC days (today included), newest day first."""
        now = self.clock()
        day, month, next_day, next_month = _periods(now)
        first = datetime.fromtimestamp(now, UTC) - timedelta(days=days - 1)
        rows = self.counters.by_model_day(owner, first.strftime("%Y-%m-%d"), day)
        spent_day, spent_month = self.counters.totals(owner, day, month)
        limits = self.limits(owner)

        def budget(period: str, limit: int, spent: int, resets_at: str) -> dict[str, Any]:
            return {
                "period": period,
                "limit": limit or None,
                "spent": spent,
                "remaining": max(0, limit - spent) if limit else None,
                "resets_at": resets_at,
            }

        return {
            "unit": "credits",
            "daily": budget(day, limits.daily, spent_day, next_day),
            "monthly": budget(month, limits.monthly, spent_month, next_month),
            "days": sorted(rows, key=lambda r: (r["day"], r["model"]), reverse=True),
        }


def settled_credits(generation: Generation) -> int | None:
    """What the generation cost, if its record says so: the provider's reported usage, or 0 for
    a submit the provider certainly refused; None while unknown. A record cancelled or timed out
    after it was sent, without a provider id, keeps its estimate: the provider may still take a
    submit in flight (Submitter._record_accepted writes a late id onto an ended record); one
    cancelled while still pending in the submit queue was never sent and costs nothing."""
    reported = reported_credits(generation.usage)
    if reported is not None:
        return reported
    if (
        generation.status is Status.FAILED
        and generation.provider_id is None
        and not generation.submit_outcome_unknown
    ):
        return 0
    if (
        generation.status is Status.CANCELLED
        and generation.provider_id is None
        and generation.submitted_epoch is None
    ):
        return 0  # cancelled while pending in the submit queue: never sent, costs nothing
    return None


class NoSpendGuard:
    """Where no spend is counted (tools, tests of other things): reserves nothing, refuses nothing."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def reserve(self, owner: str, model: str, fields: Mapping[str, Any], generation_id: str) -> int:
        return 0

    def usage(self, owner: str, days: int) -> dict[str, Any]:
        """Nothing counted: empty spend, no limits."""
        return SpendGuard(_NoCounters(), clock=self.clock).usage(owner, days)


class _NoCounters:
    def reserve(self, reservation: Reservation, limits: Limits) -> str | None:
        return None

    def settle(self, owner: str, generation_id: str, credits: int) -> bool:
        return False

    def totals(self, owner: str, day: str, month: str) -> tuple[int, int]:
        return 0, 0

    def by_model_day(self, owner: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        return []
