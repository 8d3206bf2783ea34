"""GET /usage's answer (videogen.logic.budget.SpendGuard.usage)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetOut(_Model):
    period: str = Field(description="the UTC day (2026-12-01) or month (2026-12)")
    limit: int | None = Field(description="the key's budget in credits; null: no limit")
    spent: int = Field(description="credits counted: reported usage, or the estimate until reported")
    remaining: int | None = Field(description="credits left; null: no limit")
    resets_at: str = Field(description="when the next period starts (UTC)")


class UsageRow(_Model):
    day: str = Field(description="UTC day")
    model: str
    credits: int = Field(description="credits counted for this model on this day")
    requests: int = Field(description="requests accepted for this model on this day")


class UsageReport(_Model):
    unit: str = Field(description="always credits: the provider's AI/ML tokens (meta.usage.credits_used)")
    daily: BudgetOut
    monthly: BudgetOut
    days: list[UsageRow] = Field(description="spend by day and model, newest day first")
