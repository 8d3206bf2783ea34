"""`Idempotency-Key` on POST /generations, with Powertools idempotency: a retry with the same key
and body returns the first answer and never submits twice; the same key with another body is
refused; a retry while the first is in flight gets a 409."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from videogen.models import Generation
from videogen.service import GenerationService

KEY_TTL_SECONDS = 24 * 3600


def idempotent_submit(
    service: GenerationService, *, table_name: str, dynamodb_client: Any
) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """Wrap service.submit. The idempotency record is keyed on (owner, key), so two callers
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
        generation: Generation = service.submit(request["owner"], request["body"])
        return generation.model_dump(mode="json")

    return submit_once, config
