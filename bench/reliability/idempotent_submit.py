"""One Idempotency-Key, many concurrent requests: the provider is paid once, one record is
written, every caller gets the first answer or a 409 with Retry-After, and the key with another
body is refused. Run twice: in-process through the wrapper the API uses (as many Lambda
containers would call it at once), and over HTTP through the local API adapter and the real
handler."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.reliability.harness import MODEL, Harness, Result, scenario, unique_prompts

IN_FLIGHT = "IdempotencyAlreadyInProgressError"


def _in_process(
    r: Result, h: Harness, prompt_a: str, prompt_b: str, concurrency: int
) -> tuple[list[dict[str, Any]], list[Any], Any]:
    """`concurrency` threads call the idempotent submit at once with one key; the provider
    answers slowly, so they overlap. Then the key with another body. The first answers, the
    in-flight refusals and what the other body got."""
    # Imported when the scenario runs: after the stack has loaded the layer's modules under its
    # environment, as the API's handler imports it.
    from videogen.entrypoints.idempotency import idempotent_submit as wrap

    service = h.service()
    submit_once, config = wrap(
        service, table_name=h.settings.idempotency_table_name, dynamodb_client=h.dynamodb
    )
    config.register_lambda_context(h.stack.context_for(next(iter(h.stack.functions))))  # type: ignore[arg-type]  # as the handler does
    key = uuid.uuid4().hex
    barrier = threading.Barrier(concurrency)

    def call(body: dict[str, Any]) -> Any:
        barrier.wait()
        try:
            return submit_once(request={"owner": h.owner, "idempotency_key": key, "body": body})
        except Exception as exc:  # noqa: BLE001 (the answer is what is measured)
            return type(exc).__name__

    body_a = {"model": MODEL, "prompt": prompt_a}
    with h.sim_settings(latency_ms=300), ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda _: call(body_a), range(concurrency)))
    firsts = [a for a in answers if isinstance(a, dict)]
    in_flight = [a for a in answers if a == IN_FLIGHT]
    other = [a for a in answers if not isinstance(a, dict) and a != IN_FLIGHT]
    r.check(bool(firsts) and all(a == firsts[0] for a in firsts), "concurrent answers differ")
    r.check(not other, f"unexpected answers: {Counter(map(str, other))}")
    barrier = threading.Barrier(1)
    refused = call({"model": MODEL, "prompt": prompt_b})
    r.check(refused == "IdempotencyValidationError", f"another body with the key was not refused: {refused}")
    return firsts, in_flight, refused


def _over_http(
    r: Result, h: Harness, prompt_c: str, prompt_d: str, concurrency: int
) -> tuple[list[dict[str, Any]], list[requests.Response], requests.Response, Any]:
    """The same through the HTTP API (the local adapter: x-api-key, the real handler). The
    202 answers, the 409s, the other body's answer and its error code."""
    key = uuid.uuid4().hex
    body_c = {"model": MODEL, "prompt": prompt_c}

    def post(body: dict[str, Any]) -> requests.Response:
        return h.http.post(
            h.stack.api_url + "/generations", json=body, headers={"Idempotency-Key": key}, timeout=60
        )

    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(lambda _: post(body_c), range(concurrency)))
    accepted = [x.json() for x in responses if x.status_code == 202]
    busy = [x for x in responses if x.status_code == 409]
    r.check(bool(accepted) and all(a["id"] == accepted[0]["id"] for a in accepted), "HTTP answers differ")
    r.check(all(x.headers.get("Retry-After") for x in busy), "a 409 without Retry-After")
    r.check(
        len(accepted) + len(busy) == concurrency,
        f"HTTP statuses {Counter(x.status_code for x in responses)}",
    )
    reused = post({"model": MODEL, "prompt": prompt_d})
    reused_code = reused.json().get("error", {}).get("code") if reused.status_code < 500 else None
    r.check(
        reused.status_code == 422 and reused_code == "idempotency_key_reused",
        f"another body over HTTP answered {reused.status_code} {reused.text[:200]}",
    )
    return accepted, busy, reused, reused_code


@scenario(
    "idempotent_submit",
    "50 concurrent POSTs with one Idempotency-Key; then the same key with another body",
    "1 provider submit, 1 record, every answer the first one or a 409 with Retry-After; "
    "the other body is refused",
)
def idempotent_submit(r: Result, h: Harness, *, concurrency: int = 50) -> None:
    prompt_a, prompt_b, prompt_c, prompt_d = unique_prompts("idempotent", 4)
    firsts, in_flight, refused = _in_process(r, h, prompt_a, prompt_b, concurrency)
    accepted, busy, reused, reused_code = _over_http(r, h, prompt_c, prompt_d, concurrency)

    # Ground truth: the provider's jobs and the table's records, once the submit queue drained.
    h.wait_for_provider({prompt_a, prompt_b, prompt_c, prompt_d})
    paid = h.paid({prompt_a, prompt_b, prompt_c, prompt_d})
    records = Counter(g.request["prompt"] for g in h.records({prompt_a, prompt_b, prompt_c, prompt_d}))
    r.check(paid.get(prompt_a) == 1 and paid.get(prompt_c) == 1, f"provider submits {paid}")
    r.check(records[prompt_a] == 1 and records[prompt_c] == 1, f"records {dict(records)}")
    r.check(not paid.get(prompt_b) and not paid.get(prompt_d), "the refused body reached the provider")
    r.check(not records[prompt_b] and not records[prompt_d], "the refused body was recorded")
    r.measured = {
        "concurrent_calls": concurrency,
        "in_process": {"first_answer": len(firsts), "409_in_flight": len(in_flight)},
        "http": {"202_same_generation": len(accepted), "409_retry_after": len(busy)},
        "provider_submits": paid.get(prompt_a, 0) + paid.get(prompt_c, 0),
        "records": records[prompt_a] + records[prompt_c],
        "other_body": {"in_process": refused, "http": f"{reused.status_code} {reused_code}"},
    }
    r.summary = (
        f"2x{concurrency} calls: {len(firsts) + len(accepted)} first answer, "
        f"{len(in_flight) + len(busy)} 409; 1 submit + 1 record each; other body refused (422)"
    )
