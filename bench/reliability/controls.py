"""Negative controls: each scenario run again against a build with its guard deliberately
removed, which must fail. A scenario that passes with its guard and fails without it shows
that it can detect what it claims to check; one that passes either way proves nothing.

A guard is removed from the build, never from the product: a test double that subclasses the
real adapter and drops the condition (a store whose writes are unconditional, an idempotency
layer that keeps no record, ...), handed to videogen.bootstrap.build_service through the
harness's overrides (`Harness.without`), or a part of the stack left out (the poller's
schedule). The product code paths carry no switch for this.

The doubles are made when a control runs, from the classes the service loaded then (see
harness: the stack loads the layer afresh), so the service catches their exceptions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.reliability.burst_cap_halved import CONTROL_GUARD, burst_cap_halved_control
from bench.reliability.harness import Harness, Result

# A scenario's failures, cut to what a table cell can show.
SUMMARY_FAILURES = 2
SUMMARY_CHARS = 160


# -- the doubles ----------------------------------------------------------------------------
def unconditional_store(parts: dict[str, Any]) -> Any:
    """GenerationStore whose writes carry no condition: no `attribute_not_exists(id)` on
    creation, no version check on updates (so no archive claim either: every claimant wins)."""
    from videogen.adapters.dynamodb_store import WRITE_TOKEN, GenerationStore

    class UnconditionalStore(GenerationStore):
        def _put(self, generation: Any, condition: dict[str, Any], conflict: str) -> None:
            item = {**self._item(generation), WRITE_TOKEN: {"S": "-"}}
            self._client.put_item(TableName=self._table, Item=item)

    return _store(UnconditionalStore, parts)


def no_own_write_check_store(parts: dict[str, Any]) -> Any:
    """GenerationStore that reads every ConditionalCheckFailed as a lost race, even when the
    item stored is its own write (its answer lost, botocore's retry meeting it)."""
    from videogen.adapters.dynamodb_store import GenerationStore
    from videogen.domain.ports import StaleWriteError
    from videogen.lazy import client_error

    class NoOwnWriteCheckStore(GenerationStore):
        def _put(self, generation: Any, condition: dict[str, Any], conflict: str) -> None:
            try:
                self._client.put_item(TableName=self._table, Item=self._item(generation), **condition)
            except client_error() as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    raise StaleWriteError(conflict) from None
                raise

    return _store(NoOwnWriteCheckStore, parts)


def not_due_while_submitting_store(parts: dict[str, Any]) -> Any:
    """GenerationStore that keeps a `submitting` record out of the due-index, so no sweep ever
    finds a submit that died before recording the provider's answer."""
    from videogen.adapters.dynamodb_store import GenerationStore
    from videogen.domain.models import Status

    class NotDueWhileSubmittingStore(GenerationStore):
        def _item(self, generation: Any) -> dict[str, Any]:
            item = super()._item(generation)
            if generation.status is Status.SUBMITTING:
                item.pop("due_shard", None)
                item.pop("next_poll_at", None)
            return item

    return _store(NotDueWhileSubmittingStore, parts)


def _store(cls: type, parts: dict[str, Any]) -> Any:
    """The double over the service's DynamoDB client. A store the scenario passes itself is kept:
    it wraps one the scenario built through the harness (crash_points wraps its healthy
    service's store in a crashing one), which is already the double."""
    from videogen.bootstrap import dynamodb_client

    if "store" in parts:
        return parts["store"]
    settings = parts["settings"]
    client = parts.get("dynamodb") or dynamodb_client(settings).get()
    return cls(client, settings.table_name, due_shards=settings.due_shards)


def resubmitting_provider(parts: dict[str, Any]) -> Any:
    """The provider client, but a submit whose outcome is unknown (a read timeout, an
    unreadable answer: the provider may have taken the job) is sent again, up to 3 times."""
    provider = parts["provider"]

    class Resubmitting:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def submit(self, model: Any, fields: Any) -> Any:
            from videogen.domain.ports import ProviderError

            for attempt in range(3):
                try:
                    return self._inner.submit(model, fields)
                except ProviderError as exc:
                    if not exc.outcome_unknown or attempt == 2:
                        raise
            raise AssertionError("unreachable")

    return Resubmitting(provider)


def no_record_persistence(parts: dict[str, Any]) -> Any:
    """Powertools' DynamoDB idempotency layer that keeps no record: no conditional put of the
    in-progress record, so nothing tells a concurrent call that the key is taken."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

    class NoRecord(DynamoDBPersistenceLayer):
        def _put_record(self, data_record: Any) -> None:
            return None

        def _get_record(self, idempotency_key: str) -> Any:
            raise IdempotencyItemNotFoundError

        def _update_record(self, data_record: Any) -> None:
            return None

        def _delete_record(self, data_record: Any) -> None:
            return None

    return NoRecord(table_name=parts["table_name"], boto3_client=parts["dynamodb"])


class BareApi:
    """The API function's entry point built by bootstrap.build_api, with every exception handler
    of its resolver removed (the handlers that turn domain errors, invalid requests and
    undecodable bodies into the one error shape), served by a second local API Gateway adapter
    with the stack's routes and keys."""

    def __init__(self, h: Harness) -> None:
        from local.aws.apigw import ApiGatewayAdapter
        from videogen.bootstrap import build_api

        api = build_api(h.settings)
        api.app.exception_handler_manager.clear_handlers()  # the guard: gone from this one build
        function = "ApiFunction"
        stack = h.stack
        assert stack.api is not None

        def invoke(_: str, event: dict[str, Any]) -> Any:
            return api.handle(event, stack.context_for(function))

        self.adapter = ApiGatewayAdapter(
            stack.api.table.routes,
            invoke,
            api_keys=stack.api_keys,
            stage=stack.api.stage,
            gateway_responses=stack.api.gateway_responses,
        )

    def __enter__(self) -> str:
        return self.adapter.start().url

    def __exit__(self, *exc: object) -> None:
        self.adapter.stop()


# -- the controls ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Control:
    guard_removed: str
    run: Callable[..., Result]  # (harness, **sizes) -> the scenario's result without the guard


def _idempotent_submit(h: Harness, *, concurrency: int = 10) -> Result:
    from bench.reliability.idempotent_submit import idempotent_submit

    return idempotent_submit(
        h.without(persistence=no_record_persistence), concurrency=concurrency, http=False
    )


def _duplicate_deliveries(h: Harness, *, generations: int = 3) -> Result:
    from bench.reliability.duplicate_deliveries import duplicate_deliveries

    return duplicate_deliveries(h.without(store=unconditional_store), generations=generations)


def _overlapping_sweeps(h: Harness, *, generations: int = 20, sweeps: int = 3) -> Result:
    from bench.reliability.overlapping_sweeps import overlapping_sweeps

    return overlapping_sweeps(h.without(store=unconditional_store), generations=generations, sweeps=sweeps)


def _provider_chaos(h: Harness, *, generations: int = 60, seed: int = 5) -> Result:
    from bench.reliability.provider_chaos import provider_chaos

    return provider_chaos(h.without(provider=resubmitting_provider), generations=generations, seed=seed)


def _crash_points(h: Harness, *, steps: dict[str, str] | None = None) -> Result:
    from bench.reliability.crash_points import crash_points

    return crash_points(h.without(store=not_due_while_submitting_store), steps=steps)


def _aws_faults(h: Harness, *, generations: int = 6, every: int = 4, lose_every: int = 3) -> Result:
    from bench.reliability.aws_faults import aws_faults

    return aws_faults(
        h.without(store=no_own_write_check_store), generations=generations, every=every, lose_every=lose_every
    )


def _fuzzed_api(h: Harness, *, cases: int = 100, seed: int = 5) -> Result:
    from bench.reliability.fuzzed_api import fuzzed_api

    with BareApi(h) as url:
        return fuzzed_api(h, cases=cases, seed=seed, api_url=url)


def _load(h: Harness, *, clients: int = 2, seconds: float = 2.0, drain_seconds: float = 3.0) -> Result:
    from bench.reliability.load import load

    return load(h, clients=clients, seconds=seconds, drain_seconds=drain_seconds, schedule=False)


CONTROLS: dict[str, Control] = {
    "idempotent_submit": Control(
        "the idempotency record (Powertools' conditional put of the in-progress record)", _idempotent_submit
    ),
    "duplicate_deliveries": Control(
        "the conditional writes (record creation on a new id, updates on the version read)",
        _duplicate_deliveries,
    ),
    "overlapping_sweeps": Control(
        "the conditional writes (the version check, and with it the archive claim)", _overlapping_sweeps
    ),
    "provider_chaos": Control(
        "never resubmitting a submit whose outcome is unknown (the client sends it again)", _provider_chaos
    ),
    "crash_points": Control(
        "the submitting record's place in the due-index (how the sweep finds a submit that died)",
        _crash_points,
    ),
    "aws_faults": Control(
        "the own-write check (a retry's ConditionalCheckFailed on its own landed write is read as "
        "a lost race)",
        _aws_faults,
    ),
    "fuzzed_api": Control(
        "the API's exception handlers (domain errors, invalid requests, undecodable bodies -> the "
        "error shape)",
        _fuzzed_api,
    ),
    "load": Control(
        "the poller's schedule (the sweep that brings every accepted generation to its end)", _load
    ),
    "burst_cap_halved": Control(CONTROL_GUARD, burst_cap_halved_control),
}


def negative_control(key: str, h: Harness, **sizes: Any) -> dict[str, Any]:
    """Run `key`'s scenario without its guard: `detected` when it failed, as it must."""
    control = CONTROLS[key]
    started = time.perf_counter()
    result = control.run(h, **sizes)
    # A scenario that crashed detected nothing: only its own checks failing count.
    crashed = [f for f in result.failures if f.startswith("scenario raised")]
    detected = not result.holds and not crashed
    if detected:
        summary = "; ".join(_cut(f) for f in result.failures[:SUMMARY_FAILURES])
        if len(result.failures) > SUMMARY_FAILURES:
            summary += f"; and {len(result.failures) - SUMMARY_FAILURES} more"
    elif crashed:
        summary = f"NOT DETECTED: the scenario crashed without its guard: {_cut(crashed[0])}"
    else:
        summary = f"NOT DETECTED: the scenario held without its guard ({result.summary})"
    return {
        "guard_removed": control.guard_removed,
        "detected": detected,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"
