"""Powertools idempotency for the entry points that must act once per request:
- `idempotent_submit`: `Idempotency-Key` on POST /generations. A retry with the same key and body
  returns the first answer and never submits twice; the same key with another body is refused; a
  retry while the first is in flight gets a 409.
- `idempotent_once`: the notifier's steps, once per (step, generation, terminal status), so a
  redelivered stream record neither publishes nor enqueues twice.
Both keep their records in the stack's idempotency table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from videogen.domain.models import Generation
from videogen.logic.service import GenerationService

KEY_TTL_SECONDS = 24 * 3600


def idempotent_submit(
    service: GenerationService, *, table_name: str, dynamodb_client: Any
) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """Wrap service.accept. The idempotency record is keyed on (owner, key), so two callers
    can use the same key; the body is checked so a reused key cannot mean another request."""
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
    config = IdempotencyConfig(
        event_key_jmespath="[owner, idempotency_key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=KEY_TTL_SECONDS,
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def submit_once(request: dict[str, Any]) -> dict[str, Any]:
        # Provider failures come back as a failed record (not an exception), so they are
        # remembered too: a retry never resubmits a job whose first outcome is unknown.
        generation: Generation = service.accept(request["owner"], request["body"])
        return generation.model_dump(mode="json")

    return submit_once, config


def idempotent_once(*, table_name: str, dynamodb_client: Any, expires_after_seconds: int = 2 * 86_400) -> Any:
    """`Notifier.once` backed by Powertools idempotency (the stack's idempotency table): the key
    is (step, generation id, status); a record lives longer than the stream keeps records (24 h).
    Returns (once, config): the handler registers its Lambda context on `config`."""
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
    config = IdempotencyConfig(
        event_key_jmespath="[step, generation_id, status]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires_after_seconds,
    )
    actions: dict[tuple[str, str, str], Callable[[], dict[str, Any]]] = {}

    @idempotent_function(data_keyword_argument="step", persistence_store=persistence, config=config)
    def run(step: dict[str, str]) -> dict[str, Any]:
        return actions[(step["step"], step["generation_id"], step["status"])]()

    def once(step: str, generation: Generation, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = (step, generation.id, generation.status.value)
        actions[key] = action
        try:
            return run(step={"step": step, "generation_id": generation.id, "status": generation.status.value})
        finally:
            actions.pop(key, None)

    return once, config
