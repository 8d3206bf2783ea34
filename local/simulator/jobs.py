"""The simulator's job model, apart from HTTP: its settings, a job and the status it reports at a
given time, the prompt directives, the fault rules and how the provider answers per model
(``ANSWER_STYLES``: id format, id field, terminal status...). server.py keeps the jobs and answers
requests with them; the directives and faults are described there."""

from __future__ import annotations

import re
import secrets
import string
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_TARGETS = frozenset({"submit", "poll", "download", "any"})
_DIRECTIVE = re.compile(r"\[sim:(?P<name>[a-z]+)(?:=(?P<value>[^\]]*))?\]")


@dataclass
class SimConfig:
    """Settings that ``configure`` (and ``POST /_sim/config``) may change."""

    api_key: str = "sim-key"
    durations: dict[str, float] = field(default_factory=dict)  # model id -> seconds to completion
    default_duration: float = 3.0
    queued_fraction: float = 0.25  # share of the duration spent "queued" before "generating"
    latency_ms: int = 0  # added to every API answer
    credits: int | None = None  # remaining credits; None = unlimited
    credits_per_job: int = 100
    link_ttl: float = 3600.0  # seconds a video link stays valid (negative: already expired)
    timeout_seconds: float = 35.0  # sleep of a timeout fault without its own "seconds"
    random_faults: list[dict[str, Any]] = field(default_factory=list)  # faults with a "rate" (0..1)
    fault_seed: int | None = None  # seeds the random faults' draws (reproducible chaos)
    # The account limits (limits.py), each per API key; None = none. Changeable mid-run.
    max_concurrent_jobs: int | None = None  # jobs a key may have queued or generating at once
    max_submits_per_minute: int | None = None  # submit requests a key may make in a sliding minute
    extra_api_keys: list[str] = field(default_factory=list)  # keys accepted besides api_key


@dataclass
class Job:
    id: str
    model: str
    family: str  # "unified" or "legacy"
    provider: str | None  # the legacy path's provider
    body: dict[str, Any]
    created: float  # the simulator's clock (time.monotonic() unless it is given one)
    duration: float
    credits_used: int
    directives: dict[str, str]
    polls: int = 0  # poll requests for this job (faulted ones included)
    key_id: str = ""  # the submitting API key's fingerprint (limits.key_id), never the key

    def running(self, now: float) -> bool:
        """Queued or generating at the provider (it holds one of its key's concurrent slots)."""
        return now - self.created < self.duration

    def status(self, config: SimConfig, now: float) -> str:
        elapsed = now - self.created
        if elapsed >= self.duration:
            return "error" if "error" in self.directives else "completed"
        if "status" in self.directives:
            return self.directives["status"]
        return "queued" if elapsed < self.duration * config.queued_fraction else "generating"


def parse_directives(prompt: str) -> dict[str, str]:
    """The ``[sim:name=value]`` directives of a prompt, by name (value "" when not given)."""
    return {m["name"]: m["value"] or "" for m in _DIRECTIVE.finditer(prompt)}


def check_fault(fault: Mapping[str, Any]) -> dict[str, Any]:
    """A fault as ``Simulator.inject`` takes it, checked; with its ``on`` filled in."""
    target = fault.get("on", "any")
    if target not in FAULT_TARGETS:
        raise ValueError(f"fault 'on' must be one of {sorted(FAULT_TARGETS)}, not {target!r}")
    if not {"status", "timeout", "malformed", "drop", "latency_ms"} & fault.keys():
        raise ValueError(f"fault has no effect: {dict(fault)!r}")
    return {**fault, "on": target}


def fault_applies(fault: Mapping[str, Any], kind: str) -> bool:
    target = fault.get("on", "any")
    return bool(target == kind or (target == "any" and kind in ("submit", "poll")))


def fault_kind(fault: Mapping[str, Any]) -> str:
    for name in ("timeout", "malformed", "drop"):
        if fault.get(name):
            return name
    return str(fault["status"]) if "status" in fault else "latency"


@dataclass(frozen=True)
class AnswerStyle:
    """How the provider answers for a model, as the example answers of its page show them."""

    id_format: str  # see new_id
    source: str  # the page of the snapshot (shared/aimlapi-docs) showing it
    id_field: str = "id"  # where the submit's answer puts the generation id
    terminal: str = "completed"  # the status a finished job reports
    submit_status: bool = True  # the submit's answer carries "status": "queued"
    submit_usage: bool = True  # ... and "meta": {"usage": {"credits_used": n}}
    video: str = "object"  # the finished video: {"url"} ("object") or ["https://..."] ("urls")


# Model id (exact, or a prefix ending in "/" or "-") -> its answers; the longest match wins. Each row
# cites the page (path in the snapshot) whose example answers show it. Models whose page shows no
# answer take the vendor's row, else DEFAULT_STYLE.
ANSWER_STYLES: dict[str, AnswerStyle] = {
    # {'generation_id': '234954179076239'}, then {'id': '234954179076239', 'status': 'completed'}
    "video-01": AnswerStyle(
        "digits", "video-models/README.md", "generation_id", submit_status=False, submit_usage=False
    ),
    "video-01-live2d": AnswerStyle(
        "digits", "video-models/MiniMax/video-01-live2d.md", "generation_id", submit_usage=False
    ),
    "minimax/hailuo-02": AnswerStyle(
        "digits", "video-models/minimax/hailuo-02.md", "generation_id", submit_usage=False
    ),
    "minimax/": AnswerStyle("digits:model", "video-models/minimax/hailuo-2.3.md", "generation_id"),
    "pixverse/": AnswerStyle("short", "video-models/pixverse/v5-text-to-video.md", terminal="succeeded"),
    "bytedance/seedance-1-0-lite-": AnswerStyle(
        "cgt", "video-models/bytedance/seedance-1.0-lite-text-to-video.md", submit_usage=False
    ),
    "bytedance/seedance-1-0-pro-i2v": AnswerStyle(
        "cgt", "video-models/bytedance/seedance-1.0-pro-image-to-video.md", submit_usage=False
    ),
    "bytedance/seedance-1-0-pro-t2v": AnswerStyle(
        "cgt", "video-models/bytedance/seedance-1.0-pro-text-to-video.md", submit_usage=False
    ),
    "bytedance/omnihuman": AnswerStyle("uuid:model", "video-models/bytedance/omnihuman.md"),
    "bytedance/": AnswerStyle("short", "video-models/bytedance/seedance-2.0.md"),
    "luma/": AnswerStyle("uuid:model", "video-models/luma-ai/luma-ray-2.md"),
    "google/": AnswerStyle("uuid:model", "video-models/google/veo3-text-to-video.md"),
    "google/veo-3-1-lite-": AnswerStyle("short", "video-models/google/veo-3.1-lite-generate-preview.md"),
    "google/veo3-1-": AnswerStyle("short", "video-models/google/veo-3.1-extend-video.md"),
    "veo2": AnswerStyle("uuid:model", "video-models/google/veo2-image-to-video.md"),
    "runway/": AnswerStyle("uuid", "video-models/runway/gen4_turbo.md", submit_usage=False, video="urls"),
    "openai/": AnswerStyle("openai", "video-models/openai/sora-2-t2v.md"),
    "kling-video/": AnswerStyle("short", "video-models/Kling-AI/v1.6-standard-text-to-video.md"),
    "kling-video/v2.1/": AnswerStyle("digits18", "video-models/kling-ai/v2.1-standard-image-to-video.md"),
    "klingai/": AnswerStyle("uuid:model", "video-models/kling-ai/v2.5-turbo-pro-image-to-video.md"),
    "klingai/video-v3-": AnswerStyle("short", "video-models/kling-ai/v3-standard-text-to-video.md"),
    "alibaba/wan2.1-": AnswerStyle(
        "uuid", "video-models/alibaba-cloud/wan-2.1-plus-text-to-video.md", submit_usage=False
    ),
    "alibaba/wan2.2-t2v-plus": AnswerStyle(
        "uuid", "video-models/alibaba-cloud/wan-2.2-plus-text-to-video.md"
    ),
    "alibaba/wan2.": AnswerStyle("uuid:model", "video-models/alibaba-cloud/wan-2.5-preview-text-to-video.md"),
    "alibaba/": AnswerStyle("short", "video-models/alibaba-cloud/wan-2.7-text-to-video.md"),
}
# The newer pages' answers (a short id, "meta.usage" on the submit): assumed where no page shows one.
DEFAULT_STYLE = AnswerStyle("short", "video-models/alibaba-cloud/wan-2.7-text-to-video.md")

_SHORT_ID_ALPHABET = string.ascii_letters + string.digits + "_-"


def answer_style(model: str) -> AnswerStyle:
    """The row of ``ANSWER_STYLES`` for a model id."""
    if model in ANSWER_STYLES:
        return ANSWER_STYLES[model]
    prefixes = [key for key in ANSWER_STYLES if key.endswith(("/", "-", ".")) and model.startswith(key)]
    return ANSWER_STYLES[max(prefixes, key=len)] if prefixes else DEFAULT_STYLE


def new_id(model: str) -> str:
    """An opaque id shaped like the provider's for this model (``answer_style(model).id_format``):
    ``digits`` 15 digits, ``digits18`` 18 digits, ``digits:model``, ``uuid``, ``uuid:model``,
    ``short`` 21 characters of ``[A-Za-z0-9_-]`` (it may begin with ``-``), ``cgt``
    ``cgt-<yyyymmddhhmmss>-<5 chars>``, ``openai`` ``video_<48 hex>:model``."""
    style = answer_style(model).id_format
    if style == "digits":
        return str(secrets.randbelow(9 * 10**14) + 10**14)
    if style == "digits18":
        return str(secrets.randbelow(9 * 10**17) + 10**17)
    if style == "digits:model":
        return f"{secrets.randbelow(9 * 10**14) + 10**14}:{model}"
    if style == "uuid":
        return str(uuid.uuid4())
    if style == "uuid:model":
        return f"{uuid.uuid4()}:{model}"
    if style == "cgt":
        tail = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        return f"cgt-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{tail}"
    if style == "openai":
        return f"video_{secrets.token_hex(24)}:{model}"
    return "".join(secrets.choice(_SHORT_ID_ALPHABET) for _ in range(21))
