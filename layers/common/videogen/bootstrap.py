"""Composition root: builds the service and its adapters from Settings, once per cold start.
Handlers call `build(settings)`; tests build GenerationService themselves.

Nothing slow happens here at a cold start: boto3 is imported and each AWS client created on its
first use (`LazyClient`), and the Secrets Manager reader on the first provider call, so a
request that needs none of them (GET /models) never pays for them."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from videogen.media import OutputArchive
from videogen.observability import logger, metrics
from videogen.schedule import PollSchedule
from videogen.service import MAX_INLINE_IMAGE_BYTES, GenerationService
from videogen.settings import Settings
from videogen.store import GenerationStore

# Adaptive retries absorb DynamoDB/S3 throttling.
_RETRIES = {"mode": "adaptive", "max_attempts": 8}
# boto3's default session is not thread-safe: clients are created one at a time.
_CREATE_LOCK = threading.Lock()


class LazyClient:
    """A boto3 client made on first use, once, by whichever thread gets there first; it stands
    for the client everywhere (attributes are the real client's)."""

    def __init__(self, service: str, **config: Any) -> None:
        self._service = service
        self._config = config
        self._client: Any = None

    def _get(self) -> Any:
        if self._client is None:
            with _CREATE_LOCK:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.client(self._service, config=Config(**self._config))
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __repr__(self) -> str:
        return f"LazyClient({self._service!r}, created={self._client is not None})"


@dataclass(frozen=True)
class Components:
    settings: Settings
    service: GenerationService
    dynamodb: Any


def _api_key_reader(settings: Settings) -> Any:
    """The AIML API key from Secrets Manager, cached by Powertools parameters for
    `secret_max_age_seconds`, so a rotated key is picked up without a redeploy. The reader (and
    its client) is made on the first call."""

    @functools.cache
    def provider() -> Any:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        client = LazyClient("secretsmanager", retries=_RETRIES)._get()
        return SecretsProvider(boto3_client=client)

    lock = threading.Lock()

    def read() -> str:
        with lock:  # the first call of a sweep's threads builds the provider once
            secrets = provider()
        value = secrets.get(settings.aiml_api_key_secret_id, max_age=settings.secret_max_age_seconds)
        return str(value).strip()

    return read


def _download_url_checker(settings: Settings) -> Callable[[str], None]:
    """urls.download_url_checker for the provider's video links, made at the first download (the
    URL checks bring ipaddress and socket; an API cold start never downloads)."""
    made: list[Callable[[str], None]] = []

    def check(url: str) -> None:
        if not made:
            from videogen.urls import download_url_checker

            made.append(download_url_checker(settings.aiml_base_url, strict_dns=settings.url_dns_strict))
        made[0](url)

    return check


def _callback_url_checker(settings: Settings) -> Callable[[str], None]:
    """urls.check_callback_url with this stack's settings, imported at the first callback checked."""

    def check(url: str) -> None:
        from videogen.urls import allowed_host_set, check_callback_url

        check_callback_url(
            url,
            strict_dns=settings.url_dns_strict,
            allowed_hosts=allowed_host_set(settings.callback_allowed_hosts),
        )

    return check


def build(settings: Settings) -> Components:
    from videogen.provider import AimlClient
    from videogen.service import check_image_reference  # videogen.urls loads on first use

    # Connection pools fit the sweep: every refresh may write to DynamoDB at once, and an
    # archive streams to S3 in two parts at a time (botocore's default pool is 10).
    pool = max(64, 2 * settings.poll_concurrency + 8)
    # The store builds every DynamoDB request itself: botocore's client-side check of each
    # parameter against the API model (node by node, per write) is skipped; DynamoDB still
    # refuses a malformed request.
    dynamodb = LazyClient("dynamodb", retries=_RETRIES, max_pool_connections=pool, parameter_validation=False)
    s3 = LazyClient("s3", signature_version="s3v4", retries=_RETRIES, max_pool_connections=pool)
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
        archive=OutputArchive(
            s3,
            settings.outputs_bucket,
            check_url=_download_url_checker(settings),
        ),
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
        check_callback=_callback_url_checker(settings),
        metrics=metrics,
        log=logger,
    )
    return Components(settings=settings, service=service, dynamodb=dynamodb)


def secret_reader(secret_id: str, max_age_seconds: int) -> Any:
    """A secret's string from Secrets Manager, cached by Powertools parameters for
    `max_age_seconds` (a rotated value is picked up without a redeploy); made on first call."""

    @functools.cache
    def provider() -> Any:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=LazyClient("secretsmanager", retries=_RETRIES)._get())

    lock = threading.Lock()

    def read() -> str:
        with lock:
            secrets = provider()
        return str(secrets.get(secret_id, max_age=max_age_seconds))

    return read


def build_notifier(settings: Settings) -> tuple[Any, Any]:
    """The notifier (DynamoDB stream -> EventBridge event + webhook message) and the idempotency
    config its handler registers the Lambda context on."""
    from videogen.notify import Notifier, idempotent_once

    dynamodb = LazyClient("dynamodb", retries=_RETRIES)
    once, config = idempotent_once(table_name=settings.idempotency_table_name, dynamodb_client=dynamodb)
    notifier = Notifier(
        events=LazyClient("events", retries=_RETRIES),
        sqs=LazyClient("sqs", retries=_RETRIES),
        event_bus_name=settings.event_bus_name,
        webhook_queue_url=settings.webhook_queue_url,
        outputs_bucket=settings.outputs_bucket,
        once=once,
        metrics=metrics,
        log=logger,
    )
    return notifier, config


def build_delivery(settings: Settings) -> Any:
    """The webhook delivery of one SQS message (videogen.webhooks)."""
    from videogen.webhooks import WebhookDelivery, WebhookSender, split_secrets

    read = secret_reader(settings.webhook_secret_id, settings.secret_max_age_seconds)
    sender = WebhookSender(
        secrets=lambda: split_secrets(read()),
        check_url=_callback_url_checker(settings),
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    return WebhookDelivery(
        sender=sender,
        sqs=LazyClient("sqs", retries=_RETRIES),
        queue_url=settings.webhook_queue_url,
        dead_letter_queue_url=settings.webhook_dead_letter_queue_url,
        max_attempts=settings.webhook_max_attempts,
        backoff_seconds=settings.webhook_backoff_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        metrics=metrics,
        log=logger,
    )
