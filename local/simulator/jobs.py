"""The simulator's job model, apart from HTTP: its settings, a job and the status it reports at a
given time, the prompt directives, the fault rules and the provider-shaped ids. server.py keeps the
jobs and answers requests with them; the directives and faults are described there."""

from __future__ import annotations

import re
import secrets
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


@dataclass
class Job:
    id: str
    model: str
    family: str  # "unified" or "legacy"
    provider: str | None  # the legacy path's provider
    body: dict[str, Any]
    created: float  # time.monotonic()
    duration: float
    credits_used: int
    directives: dict[str, str]
    polls: int = 0  # poll requests for this job (faulted ones included)

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


def new_id(model: str) -> str:
    """Opaque ids shaped like the provider's: digits for MiniMax, ``uuid:model`` for Luma."""
    if model.startswith(("video-01", "minimax/")):
        return str(secrets.randbelow(9 * 10**14) + 10**14)
    if model.startswith("luma"):
        return f"{uuid.uuid4()}:{model}"
    return secrets.token_hex(12)
