"""The HTTP API under generated input: schemathesis builds requests from the served OpenAPI
document (openapi.json, the document the routes produce: a test fails when it drifts), valid
and schema-violating alike, and sends them with the caller's key. No request may cause a
server error, and every error must come in the one error shape."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.reliability.harness import Harness, Result, scenario


def _error_shape_ok(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and set(error) <= {"code", "message", "details"}
        and (error.get("details") is None or isinstance(error["details"], list))
    )


@dataclass
class _Sent:
    """What the cases got back."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    bad_shape: list[str] = field(default_factory=list)
    unsatisfiable: set[str] = field(default_factory=set)

    def record(self, case: Any, response: requests.Response) -> None:
        self.statuses[response.status_code] += 1
        label = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            self.server_errors.append(f"{label}: {response.text[:200]}")
        elif response.status_code >= 400 and not _error_shape_ok(response):
            self.bad_shape.append(f"{label}: {response.text[:200]}")


def _send(h: Harness, operations: list[Any], cases: int, seed: int, sent: _Sent) -> None:
    """Positive and negative cases of every operation until at least `cases` were sent."""
    import hypothesis
    from hypothesis import HealthCheck, Phase
    from schemathesis.generation import GenerationMode

    # Some plans give few or no cases (GET /models has no input to break): ask the others for more.
    per_operation = max(1, -(-cases * 13 // (10 * 2 * len(operations))))
    headers = {"x-api-key": h.stack.api_key}
    plans = [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for attempt in range(5):  # small input spaces (GET /models) give fewer cases than asked: go again
        if sum(sent.statuses.values()) >= cases:
            break
        for operation, mode in plans:
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.settings(
                max_examples=per_operation,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.seed(seed + attempt)
            @hypothesis.given(case=strategy)
            def run(case: Any) -> None:
                sent.record(case, case.call(headers=headers, timeout=60))

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                sent.unsatisfiable.add(f"{operation.label} {mode.value}")


@scenario(
    "fuzzed_api",
    "schemathesis against the served OpenAPI document on the local stack, at least 1,000 cases",
    "0 server errors; every error in the one error shape",
)
def fuzzed_api(
    r: Result, h: Harness, *, cases: int = 1000, seed: int = 5, api_url: str | None = None
) -> None:
    """`api_url`: another API to fuzz than the stack's (a negative control's)."""
    import schemathesis

    schema = schemathesis.openapi.from_path(str(h.stack.root / "openapi.json"))
    schema.config.update(base_url=api_url or h.stack.api_url)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    sent = _Sent()
    _send(h, operations, cases, seed, sent)
    total = sum(sent.statuses.values())
    r.check(total >= cases, f"only {total} cases sent")
    r.check(not sent.server_errors, f"server errors: {sent.server_errors[:5]}")
    r.check(not sent.bad_shape, f"errors not in the error shape: {sent.bad_shape[:5]}")
    r.measured = {
        "cases": total,
        "operations": len(operations),
        "statuses": {str(k): v for k, v in sorted(sent.statuses.items())},
        "server_errors": len(sent.server_errors),
        "errors_off_shape": len(sent.bad_shape),
        "no_cases_possible": sorted(sent.unsatisfiable),
        "schemathesis": schemathesis.__version__ if hasattr(schemathesis, "__version__") else "",
    }
    r.summary = (
        f"{total} cases over {len(operations)} operations: "
        f"{len(sent.server_errors)} 5xx, {len(sent.bad_shape)} off-shape errors"
    )
