"""The composition root, and the only module that imports both the logic and the adapters: it
builds each function's entry point from Settings.

Handlers call `from_env(build_X)` at import: the settings are read then (a bad value fails the
cold start loudly) and the entry point is built at the first invocation, once. Nothing slow
happens at a cold start: each AWS client is made on its first use (videogen.lazy.LazyClient), the
Secrets Manager reader on the first provider call, and the URL checks load at the first URL
checked, so a request that needs none of them (GET /models) never pays for them.

`build_service(settings, **overrides)` is the production wiring; tests, the benchmarks and the
reliability scenarios replace single parts (a clock, a provider client, a store) through
`overrides` and keep the rest."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from videogen.lazy import AWS_RETRIES, LazyClient, Once, lazy_import, secret_reader
from videogen.observability import logger, metrics
from videogen.settings import Settings

T = TypeVar("T")

# The stack's clock: time.time in AWS. The local stack's timeliness benchmark sets a scaled clock
# here (local/clock.py ScaledClock), shared with the simulator and the local SQS's delays.
CLOCK: Callable[[], float] = time.time

# The URL checks bring ipaddress and socket: loaded at the first URL checked.
_url_safety = lazy_import("videogen.adapters.url_safety")


def from_env(build: Callable[[Settings], T]) -> Once[T]:
    """Settings read now, from the environment; `build(settings)` at the first call."""
    settings = Settings.from_env(os.environ)
    return Once(lambda: build(settings))


@dataclass(frozen=True)
class Components:
    settings: Settings
    service: Any  # videogen.logic.service.GenerationService
    dynamodb: Any
    webhook_secrets: Any = None  # videogen.logic.webhook_secrets.OwnerSecrets, when configured

    @property
    def idempotency_table_name(self) -> str:
        return self.settings.idempotency_table_name


def _pool_size(settings: Settings) -> int:
    """Connection pools fit the sweep: every refresh may write to DynamoDB at once, and an
    archive streams to S3 in two parts at a time (botocore's default pool is 10)."""
    return max(64, 2 * settings.poll_concurrency + 8)


def dynamodb_client(settings: Settings) -> LazyClient:
    # The store builds every DynamoDB request itself: botocore's client-side check of each
    # parameter against the API model (node by node, per write) is skipped; DynamoDB still
    # refuses a malformed request.
    return LazyClient(
        "dynamodb", retries=AWS_RETRIES, max_pool_connections=_pool_size(settings), parameter_validation=False
    )


def s3_client(settings: Settings) -> LazyClient:
    """SigV4, so presigned URLs are v4 (the uploads' presigned image URLs must be)."""
    return LazyClient(
        "s3", signature_version="s3v4", retries=AWS_RETRIES, max_pool_connections=_pool_size(settings)
    )


def check_image_url(settings: Settings) -> Callable[[str], None]:
    """Image references the provider will fetch: public https, or a small data URL."""
    from videogen.domain.limits import MAX_INLINE_IMAGE_BYTES

    def check(value: str) -> None:
        _url_safety.check_image_reference(
            value, strict_dns=settings.url_dns_strict, max_data_bytes=MAX_INLINE_IMAGE_BYTES
        )

    return check


def check_callback_url(settings: Settings) -> Callable[[str], None]:
    def check(url: str) -> None:
        _url_safety.check_callback_url(
            url,
            strict_dns=settings.url_dns_strict,
            allowed_hosts=_url_safety.allowed_host_set(settings.callback_allowed_hosts),
        )

    return check


def check_download_url(settings: Settings) -> Callable[[str], None]:
    """The provider's video links: public https, or the provider's own origin."""
    checker = Once(
        lambda: _url_safety.download_url_checker(settings.aiml_base_url, strict_dns=settings.url_dns_strict)
    )
    return lambda url: checker()(url)


def owner_secrets(settings: Settings, dynamodb: Any = None, **overrides: Any) -> Any:
    """Each owner's webhook signing secrets, derived from the master secret (WebhookSecret) and
    the owner's version (WebhookSecretVersionsTable); None when the stack has no webhooks."""
    if not (settings.webhook_secret_id and settings.webhook_secret_versions_table):
        return None
    import time

    from videogen.adapters.webhook_secret_store import DynamoSecretVersions
    from videogen.domain.webhook_secrets import split_secrets
    from videogen.logic.webhook_secrets import OwnerSecrets

    read = secret_reader(settings.webhook_secret_id, settings.secret_max_age_seconds)
    parts: dict[str, Any] = {
        "masters": lambda: split_secrets(read()),
        "versions": DynamoSecretVersions(
            dynamodb or LazyClient("dynamodb", retries=AWS_RETRIES), settings.webhook_secret_versions_table
        ),
        "grace_seconds": settings.webhook_secret_grace_seconds,
        "clock": time.time,
        **overrides,
    }
    return OwnerSecrets(**parts)


def download_session(settings: Settings, pool_maxsize: int) -> Callable[[], Any]:
    """The video downloads' HTTP session, made at the first download: every host is resolved
    once, checked and connected to by address (pinned_http); the provider's own origin needs no
    check (locally the simulator on 127.0.0.1)."""

    def make() -> Any:
        from videogen.adapters.pinned_http import pinned_session, trusted_origin

        return pinned_session(trusted=trusted_origin(settings.aiml_base_url), pool_maxsize=pool_maxsize)

    return make


def build_queue(settings: Settings, dynamodb: Any, sqs: Any = None, **overrides: Any) -> Any:
    """The submit queue over QueueTable and DispatchQueue; None when the stack has no queue table
    (then requests go straight to the provider, as before the queue)."""
    if not settings.queue_table_name:
        return None
    from videogen.adapters.dynamodb_queue import DynamoQueue, DynamoSemaphore
    from videogen.adapters.sqs_waker import SqsWaker
    from videogen.domain.capacity import CapacityRules
    from videogen.logic.queue import QueueSettings, SlotKeeper, SubmitQueue

    rules = CapacityRules(
        floor=settings.provider_limit_floor,
        ceiling=max(settings.provider_limit_ceiling, settings.provider_limit_floor),
        initial=settings.provider_limit_initial,
        increase_after=settings.provider_limit_increase_after,
    )
    queue_settings = QueueSettings(
        owner_cap=settings.queue_owner_cap,
        deadline_seconds=settings.queue_deadline_seconds,
        claim_seconds=max(60, settings.submit_grace_seconds),
        job_lease_seconds=settings.max_generation_age_seconds,
    )
    clock = overrides.get("clock") or time.time
    semaphore = DynamoSemaphore(dynamodb, settings.queue_table_name, rules)
    sqs = sqs if sqs is not None else LazyClient("sqs", retries=AWS_RETRIES)
    waker = overrides.get("waker") or SqsWaker(sqs, settings.dispatch_queue_url, logger)
    return SubmitQueue(
        DynamoQueue(dynamodb, settings.queue_table_name),
        SlotKeeper(semaphore, rules, queue_settings, clock),
        waker,
        settings=queue_settings,
        metrics=overrides.get("metrics") or metrics,
    )


def upload_links(settings: Settings, s3: Any = None) -> Callable[[Any], str]:
    """The dispatcher's minting of an upload's provider-side URL (a presigned GET, made at submit)."""
    from videogen.adapters.s3_uploads import S3Uploads

    uploads = S3Uploads(s3 if s3 is not None else s3_client(settings))
    return lambda pinned: uploads.link(pinned, expires_in=settings.upload_image_url_expiry_seconds)


def build_service(settings: Settings, **overrides: Any) -> Any:
    """The GenerationService of this stack. `overrides` replace any of its constructor's
    arguments (store, provider, archive, clock, metrics, log, concurrency, ...)."""
    from videogen.adapters.aiml_provider import AimlClient
    from videogen.adapters.dynamodb_store import GenerationStore
    from videogen.adapters.s3_archive import OutputArchive
    from videogen.logic.service import GenerationService

    parts: dict[str, Any] = {
        "max_age_seconds": settings.max_generation_age_seconds,
        "presign_expiry_seconds": settings.presign_expiry_seconds,
        "submit_grace_seconds": settings.submit_grace_seconds,
        "concurrency": settings.poll_concurrency,
        "metrics": metrics,
        "log": logger,
        **overrides,
    }
    client = parts.pop("dynamodb", None) or dynamodb_client(settings)
    if "store" not in parts:
        parts["store"] = GenerationStore(client, settings.table_name, due_shards=settings.due_shards)
    parts["dynamodb_stats"] = client
    if "queue" not in parts:
        parts["queue"] = build_queue(
            settings,
            client,
            parts.pop("sqs", None),
            clock=parts.get("clock"),
            metrics=parts.get("metrics"),
            waker=parts.pop("waker", None),
        )
    parts.pop("sqs", None)
    parts.pop("waker", None)
    if parts["queue"] is not None and "mint" not in parts:
        parts["mint"] = upload_links(settings, parts.get("s3"))
    if "provider" not in parts:
        # A submit must answer within API Gateway's 29 s: one read of 20 s, short Retry-After
        # waits. A longer throttle during a sweep just reschedules the poll (see PollSchedule).
        parts["provider"] = AimlClient(
            settings.aiml_base_url,
            secret_reader(settings.aiml_api_key_secret_id, settings.secret_max_age_seconds, strip=True),
            submit_read_timeout=20,
            submit_retries=1,
            # With the submit queue, a 429 goes back to the queue at once and shrinks the learned
            # limit; a retry here would hide it from the limit.
            submit_retry_statuses=() if settings.queue_table_name else (429,),
            retry_after_max=5,
            pool_maxsize=parts["concurrency"],
        )
    if "archive" not in parts:
        parts["archive"] = OutputArchive(
            parts.pop("s3", None) or s3_client(settings),
            settings.outputs_bucket,
            check_download_url=check_download_url(settings),
            http_factory=download_session(settings, parts["concurrency"]),
        )
    parts.pop("s3", None)
    parts.setdefault("clock", CLOCK)
    stats_client = parts.pop("dynamodb_stats", None)
    if "schedule" not in parts:
        parts["schedule"] = build_schedule(settings, stats_client)
    if "timers" not in parts and settings.poll_timer_queue_url:
        from videogen.adapters.sqs_timers import SqsPollTimers

        parts["timers"] = SqsPollTimers(LazyClient("sqs", retries=AWS_RETRIES), settings.poll_timer_queue_url)
    parts.setdefault("timer_grace_seconds", settings.poll_timer_grace_seconds)
    if "spend" not in parts and settings.spend_table_name:
        parts["spend"] = spend_guard(settings, parts.get("clock"))
    parts.setdefault("check_image_url", check_image_url(settings))
    parts.setdefault("check_callback_url", check_callback_url(settings))
    return GenerationService(**parts)


def spend_guard(settings: Settings, clock: Callable[[], float] | None = None, dynamodb: Any = None) -> Any:
    """The spend guard over SpendTable, with the settings' budgets."""
    import time

    from videogen.adapters.spend_counters import SpendCounters
    from videogen.domain.budgets import Limits, parse_overrides
    from videogen.logic.budget import SpendGuard

    return SpendGuard(
        SpendCounters(dynamodb or dynamodb_client(settings), settings.spend_table_name),
        default_limits=Limits(daily=settings.budget_daily_credits, monthly=settings.budget_monthly_credits),
        overrides=parse_overrides(settings.budget_overrides),
        clock=clock or time.time,
        log=logger,
    )


def build_schedule(settings: Settings, dynamodb: Any = None) -> Any:
    """The poll schedule: learning (with the fleet's shared statistics when ModelStatsTable is
    set), or fixed (PollFixedIntervalSeconds, the benchmark's baseline)."""
    from videogen.logic.schedule import FixedSchedule, PollSchedule

    if settings.poll_fixed_interval_seconds:
        return FixedSchedule(interval_seconds=settings.poll_fixed_interval_seconds)
    shared = None
    if settings.model_stats_table_name:
        from videogen.adapters.dynamodb_model_stats import DynamoModelStats

        shared = DynamoModelStats(dynamodb or dynamodb_client(settings), settings.model_stats_table_name)
    return PollSchedule(
        first_poll_factor=settings.first_poll_factor,
        interval_seconds=settings.poll_interval_seconds,
        shared=shared,
        shared_ttl_seconds=settings.model_stats_ttl_seconds,
    )


def build(settings: Settings, **overrides: Any) -> Components:
    """The service and the DynamoDB client it shares with the API's idempotency records."""
    dynamodb = overrides.pop("dynamodb", None) or dynamodb_client(settings)
    secrets = overrides.pop("webhook_secrets", None) or owner_secrets(settings, dynamodb)
    service = build_service(settings, dynamodb=dynamodb, **overrides)
    return Components(settings=settings, service=service, dynamodb=dynamodb, webhook_secrets=secrets)


# -- entry points, one per function ---------------------------------------------------------
def build_api(settings: Settings, **overrides: Any) -> Any:
    from videogen.entrypoints.http_api import HttpApi

    return HttpApi(build(settings, **overrides), allowed_origin=settings.allowed_origin)


def build_uploads(settings: Settings, service: Any = None, s3: Any = None) -> Any:
    """The upload use case over the uploads bucket."""
    from videogen.adapters.s3_uploads import S3Uploads
    from videogen.domain.uploads import UploadDefaults
    from videogen.logic.uploads import UploadProcessor

    return UploadProcessor(
        service=service if service is not None else build_service(settings),
        objects=S3Uploads(s3 if s3 is not None else s3_client(settings)),
        defaults=UploadDefaults(
            model=settings.upload_default_model,
            prompt=settings.upload_default_prompt,
            owner=settings.upload_default_owner,
            max_bytes=settings.upload_max_bytes,
            image_url_expiry_seconds=settings.upload_image_url_expiry_seconds,
            prefix=settings.upload_prefix,
            owner_from_prefix=settings.upload_owner_from_prefix,
        ),
    )


def build_upload_events(settings: Settings) -> Any:
    from videogen.entrypoints.s3_events import UploadEvents

    return UploadEvents(build_uploads(settings))


def build_workflow(settings: Settings, **overrides: Any) -> Any:
    from videogen.entrypoints.workflow_tasks import WorkflowTasks

    return WorkflowTasks(build_service(settings, **overrides), log=logger)


def build_poller(settings: Settings, **overrides: Any) -> Any:
    from videogen.adapters.lambda_invoker import LambdaShardInvoker
    from videogen.entrypoints.poller import PollerTick

    invoker = LambdaShardInvoker(
        LazyClient("lambda", retries={"mode": "standard", "max_attempts": 3}), logger
    )
    return PollerTick(build_service(settings, **overrides), invoker, log=logger)


def build_poll_timers(settings: Settings, **overrides: Any) -> Any:
    """The poll timer queue's consumer: one generation refreshed per timer, at its second."""
    from videogen.entrypoints.poll_timers import PollTimerEvents

    return PollTimerEvents(build_service(settings, **overrides), log=logger)


def build_dispatcher(settings: Settings, **overrides: Any) -> Any:
    """One run of the dispatcher per batch of wake-ups (the dispatch queue)."""
    from videogen.entrypoints.dispatcher import DispatchWakeups

    return DispatchWakeups(build_service(settings, **overrides), log=logger)


def build_notifier(settings: Settings) -> Any:
    """The table's stream -> completion events and webhook messages, once per transition."""
    from videogen.adapters.dynamodb_store import generation_from_item
    from videogen.entrypoints.batches import StreamNotifications
    from videogen.entrypoints.idempotency import idempotent_once
    from videogen.logic.notify import Notifier

    dynamodb = LazyClient("dynamodb", retries=AWS_RETRIES)
    once, config = idempotent_once(table_name=settings.idempotency_table_name, dynamodb_client=dynamodb)
    notifier = Notifier(
        events=LazyClient("events", retries=AWS_RETRIES),
        sqs=LazyClient("sqs", retries=AWS_RETRIES),
        event_bus_name=settings.event_bus_name,
        webhook_queue_url=settings.webhook_queue_url,
        outputs_bucket=settings.outputs_bucket,
        once=once,
        decode=generation_from_item,
        metrics=metrics,
        log=logger,
    )
    return StreamNotifications(notifier, config)


def build_delivery(settings: Settings) -> Any:
    """One webhook queue message -> one signed attempt, then delete, retry later or dead-letter."""
    from videogen.adapters.pinned_http import pinned_session, trusted_hosts
    from videogen.adapters.webhook_sender import WebhookSender
    from videogen.logic.webhook_delivery import RECORD_MARGIN_SECONDS, WebhookDelivery

    secrets = owner_secrets(settings)
    if secrets is None:
        raise ValueError("webhook delivery needs WEBHOOK_SECRET_ID and WEBHOOK_SECRET_VERSIONS_TABLE")
    sender = WebhookSender(
        secrets=secrets.signing_secrets,
        check_callback_url=check_callback_url(settings),
        timeout_seconds=settings.webhook_timeout_seconds,
        # the local stack's loopback receivers (CALLBACK_ALLOWED_HOSTS) skip the address check;
        # every other host is resolved once, checked and connected to by address
        session=pinned_session(
            trusted=trusted_hosts(_url_safety.allowed_host_set(settings.callback_allowed_hosts))
        ),
    )
    return WebhookDelivery(
        sender=sender,
        sqs=LazyClient("sqs", retries=AWS_RETRIES),
        queue_url=settings.webhook_queue_url,
        dead_letter_queue_url=settings.webhook_dead_letter_queue_url,
        max_attempts=settings.webhook_max_attempts,
        backoff_seconds=settings.webhook_backoff_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        metrics=metrics,
        log=logger,
        record_budget_seconds=settings.webhook_timeout_seconds + RECORD_MARGIN_SECONDS,
    )


def build_webhook_deliveries(settings: Settings) -> Any:
    from videogen.entrypoints.batches import WebhookDeliveries

    return WebhookDeliveries(build_delivery(settings))


def build_spend_settlement(settings: Settings) -> Any:
    """The table's stream -> each generation's reserved spend reconciled once (SpendFunction)."""
    from videogen.adapters.dynamodb_store import generation_from_item
    from videogen.entrypoints.spend_stream import SpendSettlement

    return SpendSettlement(spend_guard(settings), decode=generation_from_item, log=logger)
