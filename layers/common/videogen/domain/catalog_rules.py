"""Rules between fields that a request schema cannot express, written by hand from the
provider's reference pages: each states a sentence of a field's description as a rule, and cites
the pages that carry it, in the snapshot of aimlapi/api-docs the catalog is generated from. The
simulator reads the same sentences from the pages (local/simulator/contract.py, _PROSE_RULES);
tests/unit/test_contract_agreement.py shows the two agree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from videogen.domain.catalog import ModelSpec


@dataclass(frozen=True)
class Excludes:
    """`field` = `value` rules out `other` = `other_value` (each at its default when not sent)."""

    models: frozenset[str]
    pages: tuple[str, ...]
    field: str
    value: Any
    other: str
    other_value: Any

    def broken_by(self, model: ModelSpec, fields: Mapping[str, Any]) -> bool:
        if model.id not in self.models:
            return False
        return _value(model, fields, self.field) == self.value and (
            _value(model, fields, self.other) == self.other_value
        )

    @property
    def field_name(self) -> str:
        return self.other

    @property
    def message(self) -> str:
        return f"{self.other} {self.other_value!r} is not available with {self.field} {self.value!r}"


@dataclass(frozen=True)
class Requires:
    """Sending `field` requires `other` to be sent as `other_value`."""

    models: frozenset[str]
    pages: tuple[str, ...]
    field: str
    other: str
    other_value: Any

    def broken_by(self, model: ModelSpec, fields: Mapping[str, Any]) -> bool:
        return (
            model.id in self.models
            and self.field in fields
            and fields.get(self.other, _ABSENT) != self.other_value
        )

    @property
    def field_name(self) -> str:
        return self.field

    @property
    def message(self) -> str:
        return f"needs {self.other} set to {self.other_value!r}"


_ABSENT = object()
# A rule: which models it binds, the pages that state it, whether fields break it, and what to say.
Rule = Excludes | Requires


def _value(model: ModelSpec, fields: Mapping[str, Any], name: str) -> Any:
    if name in fields:
        return fields[name]
    spec = model.field(name)
    return spec.default if spec is not None else None


RULES: tuple[Rule, ...] = (
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
    # tail_image_url's description: not supported when generate_audio is enabled (it defaults to true).
    Requires(
        models=frozenset(
            {"klingai/video-v3-omni-1080p-image-to-video", "klingai/video-v3-omni-720p-image-to-video"}
        ),
        field="tail_image_url",
        other="generate_audio",
        other_value=False,
        pages=(
            "video-models/Kling-AI/v3-omni-1080p-image-to-video.json",
            "video-models/Kling-AI/v3-omni-720p-image-to-video.json",
        ),
    ),
)


def check_rules(model: ModelSpec, fields: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, message) for every rule the request breaks."""
    for rule in RULES:
        if rule.broken_by(model, fields):
            yield rule.field_name, rule.message
