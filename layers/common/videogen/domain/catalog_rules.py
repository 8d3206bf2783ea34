"""Rules between fields that a request schema cannot express, written by hand from the
provider's reference pages (each rule cites the pages that state it, in the snapshot of
aimlapi/api-docs the catalog is generated from). The simulator applies the same rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from videogen.domain.catalog import ModelSpec


@dataclass(frozen=True)
class Excludes:
    """`field` = `value` rules out `other` = `other_value` (each at its default when not sent)."""

    models: frozenset[str]
    field: str
    value: Any
    other: str
    other_value: Any
    pages: tuple[str, ...]

    def broken_by(self, model: ModelSpec, fields: Mapping[str, Any]) -> bool:
        if model.id not in self.models:
            return False
        return _value(model, fields, self.field) == self.value and (
            _value(model, fields, self.other) == self.other_value
        )

    @property
    def message(self) -> str:
        return f"{self.other} {self.other_value!r} is not available with {self.field} {self.value!r}"


def _value(model: ModelSpec, fields: Mapping[str, Any], name: str) -> Any:
    if name in fields:
        return fields[name]
    spec = model.field(name)
    return spec.default if spec is not None else None


RULES: tuple[Excludes, ...] = (
    # The duration field's description: the 1080p quality option does not support 8-second videos.
    Excludes(
        models=frozenset(
            {
                "pixverse/v5/text-to-video",
                "pixverse/v5/image-to-video",
                "pixverse/v5/transition",
                "pixverse/v5.5/text-to-video",
                "pixverse/v5.5/image-to-video",
            }
        ),
        field="resolution",
        value="1080p",
        other="duration",
        other_value=8,
        pages=(
            "video-models/PixVerse/v5-text-to-video.json",
            "video-models/PixVerse/v5-image-to-video.json",
            "video-models/PixVerse/v5-transition.json",
            "video-models/PixVerse/v5.5-text-to-video.json",
            "video-models/PixVerse/v5.5-image-to-video.json",
        ),
    ),
)


def check_rules(model: ModelSpec, fields: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, message) for every rule the request breaks."""
    for rule in RULES:
        if rule.broken_by(model, fields):
            yield rule.other, rule.message
