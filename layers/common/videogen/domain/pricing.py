"""What one request is expected to cost, in provider credits (the docs' "AI/ML Tokens", the unit
of `meta.usage.credits_used` in the provider's answers), before it is sent.

The provider's docs snapshot prices only two families (`aimlapi-docs/video-models/kling/overview.md`:
63 000 tokens per second on the standard plan, 262 500 on the pro plan;
`aimlapi-docs/video-models/runway/overview.md`: 525 000 per generation). Every other model gets
`DEFAULT_ESTIMATE_CREDITS`, the dearest documented request (a 10 s kling pro video): an estimate
only decides whether a request fits the budget, and the counter is reconciled to the provider's
reported usage later, so erring high refuses early instead of overshooting. Why: docs/scaling-and-cost.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KLING_STANDARD_PER_SECOND = 63_000
KLING_PRO_PER_SECOND = 262_500
RUNWAY_PER_GENERATION = 525_000
# A kling request without a duration: the longest the family offers (10 s), not the shortest.
DEFAULT_SECONDS = 10
DEFAULT_ESTIMATE_CREDITS = KLING_PRO_PER_SECOND * DEFAULT_SECONDS


def _seconds(fields: Mapping[str, Any]) -> int:
    try:
        return max(1, int(float(fields.get("duration", DEFAULT_SECONDS))))
    except (TypeError, ValueError):
        return DEFAULT_SECONDS


def estimate_credits(model_id: str, fields: Mapping[str, Any]) -> int:
    """The credits a request of `model_id` with `fields` is reserved for at acceptance."""
    if model_id.startswith("kling-video/"):
        per_second = KLING_PRO_PER_SECOND if "/pro/" in model_id else KLING_STANDARD_PER_SECOND
        return per_second * _seconds(fields)
    if model_id == "gen3a_turbo" or model_id.startswith("runway/"):
        return RUNWAY_PER_GENERATION
    return DEFAULT_ESTIMATE_CREDITS


def reported_credits(usage: Mapping[str, Any]) -> int | None:
    """The credits a provider answer's `meta.usage` reports (`credits_used`; older answers say
    `tokens_used`), or None when it reports none."""
    for name in ("credits_used", "tokens_used"):
        value = usage.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return int(value)
    return None
