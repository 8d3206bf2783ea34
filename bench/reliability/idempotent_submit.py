"""One Idempotency-Key, many concurrent requests: the provider is paid once, one record is
written, every caller gets the first answer or a 409 with Retry-After, and the key with another
body is refused. Run twice: in-process through the wrapper the API uses (as many Lambda
containers would call it at once), and over HTTP through the local API adapter and the real
handler, which the stack runs in several worker processes at once (LocalStack(api_workers=N),
as Lambda runs concurrent requests in containers of their own), so the 409s are real."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.reliability.harness import MODEL, Harness, Result, scenario, unique_prompts
from local.aws.moto_dynamodb import slow_writes

IN_FLIGHT = "IdempotencyAlreadyInProgressError"


def _in_process(
    r: Result, h: Harness, prompt_a: str, prompt_b: str, concurrency: int
) -> tuple[list[dict[str, Any]], list[Any], Any]:
    """`concurrency` threads call the idempotent submit at once with one key; recording the
    generation takes 300 ms, so they overlap. Then the key with another body. The first answers, the
    in-flight refusals and what the other body got."""
    # Imported when the scenario runs: after the stack has loaded the layer's modules under its
    # environment, as the API's handler imports it.
    from videogen.entrypoints.idempotency import idempotent_submit as wrap

    service = h.service()
    table = h.settings.idempotency_table_name
    removed = h.removed.get("persistence")  # a negative control's idempotency layer
    persistence = removed({"table_name": table, "dynamodb": h.dynamodb}) if removed else None
    submit_once, config = wrap(service, table_name=table, dynamodb_client=h.dynamodb, persistence=persistence)
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
    with slow_writes(h.settings.table_name, 0.3), ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda _: call(body_a), range(concurrency)))
    firsts = [a for a in answers if isinstance(a, dict)]
    in_flight = [a for a in answers if a == IN_FLIGHT]
    other = [a for a in answers if not isinstance(a, dict) and a != IN_FLIGHT]
    r.check(bool(firsts) and all(a == firsts[0] for a in firsts), "concurrent answers differ")
    r.check(not other, f"unexpected answers: {Counter(map(str, other))}")
    barrier = threading.Barrier(1)
    refused = call({"model": MODEL, "prompt": prompt_b})
    r.check(
        refused == "IdempotencyValidationError",
        "another body with the key was not refused: "
        + (f"a new generation, {refused.get('status')}" if isinstance(refused, dict) else str(refused)),
    )
    return firsts, in_flight, refused


def _over_http(
    r: Result, h: Harness, prompt_c: str, prompt_d: str, concurrency: int
) -> tuple[list[dict[str, Any]], list[requests.Response], requests.Response, Any, int]:
    """The same through the HTTP API (the local adapter: x-api-key, the real handler in the
    stack's API workers, as many at once as the stack runs), recording the generation taking
    500 ms so the calls overlap. The 202 answers, the 409s, the other body's answer and its error code,
    and the provider's jobs for the key's body."""
    key = uuid.uuid4().hex
    body_c = {"model": MODEL, "prompt": prompt_c}
    barrier = threading.Barrier(concurrency)

    def post(body: dict[str, Any], wait: bool = False) -> requests.Response:
        if wait:
            barrier.wait()
        return h.http.post(
            h.stack.api_url + "/generations", json=body, headers={"Idempotency-Key": key}, timeout=60
        )

    h.stack.warm_api()  # cold starts before the burst, so it meets running workers
    # The API only accepts (the provider is called later, by the dispatcher): what holds the key
    # in flight is the accept's own writes. Slowing the generation record's write (in the stack's
    # moto, which serves every worker) makes the first call certain to be in flight when the
    # others arrive, instead of leaving the overlap to the machine's timing.
    with slow_writes(h.settings.table_name, 0.5), ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(lambda _: post(body_c, wait=True), range(concurrency)))
        # The API only records the generation `pending` and wakes the dispatcher (the stack's
        # DispatcherFunction, fed by DispatchQueue), which submits it: wait until it has left
        # the submit queue, then count what the provider was paid.
        h.wait_for_provider({prompt_c})
    paid = h.paid({prompt_c}).get(prompt_c, 0)
    accepted = [x.json() for x in responses if x.status_code == 202]
    busy = [x for x in responses if x.status_code == 409]
    r.check(bool(accepted) and all(a["id"] == accepted[0]["id"] for a in accepted), "HTTP answers differ")
    r.check(all(x.headers.get("Retry-After") for x in busy), "a 409 without Retry-After")
    r.check(
        len(accepted) + len(busy) == concurrency,
        f"HTTP statuses {Counter(x.status_code for x in responses)}",
    )
    r.check(paid == 1, f"{paid} provider submits for {concurrency} concurrent POSTs with one key")
    if h.stack.api_workers > 1:  # calls overlap: the ones that met the first in flight got 409
        r.check(bool(busy), f"no 409 from {h.stack.api_workers} API workers at once")
    reused = post({"model": MODEL, "prompt": prompt_d})
    reused_code = reused.json().get("error", {}).get("code") if reused.status_code < 500 else None
    r.check(
        reused.status_code == 422 and reused_code == "idempotency_key_reused",
        f"another body over HTTP answered {reused.status_code} {reused.text[:200]}",
    )
    return accepted, busy, reused, reused_code, paid


@scenario(
    "idempotent_submit",
    "50 concurrent POSTs with one Idempotency-Key; then the same key with another body",
    "1 provider submit, 1 record, every answer the first one or a 409 with Retry-After; "
    "the other body is refused",
)
def idempotent_submit(r: Result, h: Harness, *, concurrency: int = 50, http: bool = True) -> None:
    """`http`: also over HTTP (the stack's API function); in-process only in the negative control."""
    prompt_a, prompt_b, prompt_c, prompt_d = unique_prompts("idempotent", 4)
    firsts, in_flight, refused = _in_process(r, h, prompt_a, prompt_b, concurrency)
    keyed = [prompt_a, prompt_c] if http else [prompt_a]
    refused_prompts = [prompt_b, prompt_d] if http else [prompt_b]
    if http:
        accepted, busy, reused, reused_code, http_paid = _over_http(r, h, prompt_c, prompt_d, concurrency)

    # Ground truth: the provider's jobs and the table's records, once the submit queue drained.
    h.wait_for_provider({prompt_a, prompt_b, prompt_c, prompt_d})
    paid = h.paid({prompt_a, prompt_b, prompt_c, prompt_d})
    records = Counter(g.request["prompt"] for g in h.records({prompt_a, prompt_b, prompt_c, prompt_d}))
    r.check(all(paid.get(p) == 1 for p in keyed), f"provider submits {paid}")
    r.check(all(records[p] == 1 for p in keyed), f"records {dict(records)}")
    r.check(not any(paid.get(p) for p in refused_prompts), "the refused body reached the provider")
    r.check(not any(records[p] for p in refused_prompts), "the refused body was recorded")
    r.measured = {
        "concurrent_calls": concurrency,
        "in_process": {"first_answer": len(firsts), "409_in_flight": len(in_flight)},
        "provider_submits": sum(paid.get(p, 0) for p in keyed),
        "records": sum(records[p] for p in keyed),
        "other_body": {"in_process": refused},
    }
    if http:
        r.measured["http"] = {
            "api_workers": h.stack.api_workers,
            "202_same_generation": len(accepted),
            "409_retry_after": len(busy),
            "provider_submits_once_dispatched": http_paid,
        }
        r.measured["other_body"]["http"] = f"{reused.status_code} {reused_code}"
        r.summary = (
            f"2x{concurrency} calls: {len(firsts) + len(accepted)} first answer, "
            f"{len(in_flight) + len(busy)} 409; 1 submit + 1 record each; other body refused (422)"
        )
    else:
        r.summary = f"{concurrency} calls in-process: {len(firsts)} answers, {len(in_flight)} 409"
