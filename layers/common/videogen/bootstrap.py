"""Composition root: builds the service and its adapters from Settings, once per cold start.
Handlers call `build_service(settings)`; tests build GenerationService themselves."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from videogen.media import OutputArchive
from videogen.observability import logger, metrics
from videogen.schedule import PollSchedule
from videogen.service import MAX_INLINE_IMAGE_BYTES, GenerationService
from videogen.settings import Settings
from videogen.store import GenerationStore

# Adaptive retries absorb DynamoDB/S3 throttling; the pool fits the sweep's concurrency.
_AWS_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, max_pool_connections=64)


@dataclass(frozen=True)
class Components:
    settings: Settings
    service: GenerationService
    dynamodb: Any


def _api_key_reader(settings: Settings) -> Any:
    """The AIML API key from Secrets Manager, cached by Powertools parameters for
    `secret_max_age_seconds`, so a rotated key is picked up without a redeploy."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager", config=_AWS_CONFIG))

    def read() -> str:
        value = secrets.get(settings.aiml_api_key_secret_id, max_age=settings.secret_max_age_seconds)
        return str(value).strip()

    return read


def build(settings: Settings) -> Components:
    from videogen.provider import AimlClient
    from videogen.urls import check_image_reference

    dynamodb = boto3.client("dynamodb", config=_AWS_CONFIG)
    s3 = boto3.client(
        "s3", config=Config(signature_version="s3v4", retries={"mode": "adaptive", "max_attempts": 8})
    )
    service = GenerationService(
        store=GenerationStore(dynamodb, settings.table_name, due_shards=settings.due_shards),
        # A submit must answer within API Gateway's 29 s: one read of 20 s, short Retry-After
        # waits. A longer throttle during a sweep just reschedules the poll (see PollSchedule).
        provider=AimlClient(
            settings.aiml_base_url,
            _api_key_reader(settings),
            submit_read_timeout=20,
            submit_retries=1,
            retry_after_max=5,
            pool_maxsize=settings.poll_concurrency,
        ),
        archive=OutputArchive(s3, settings.outputs_bucket),
        schedule=PollSchedule(
            first_poll_factor=settings.first_poll_factor, interval_seconds=settings.poll_interval_seconds
        ),
        max_age_seconds=settings.max_generation_age_seconds,
        presign_expiry_seconds=settings.presign_expiry_seconds,
        submit_grace_seconds=settings.submit_grace_seconds,
        concurrency=settings.poll_concurrency,
        check_url=functools.partial(
            check_image_reference, strict_dns=settings.url_dns_strict, max_data_bytes=MAX_INLINE_IMAGE_BYTES
        ),
        metrics=metrics,
        log=logger,
    )
    return Components(settings=settings, service=service, dynamodb=dynamodb)
