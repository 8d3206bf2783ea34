"""Typed settings, read once per cold start. The only module of the package that knows about
environment variables: everything else receives a Settings instance."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from videogen.domain.budgets import parse_overrides
from videogen.domain.errors import VideogenError
from videogen.domain.models import OWNER_PATTERN


class ConfigurationError(VideogenError):
    code = "configuration_error"


class Settings(BaseModel):
    """Everything a handler needs to build the service. Field names match the environment
    variables of template.yaml (upper-cased)."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=1, description="DynamoDB table of generations")
    idempotency_table_name: str = Field(min_length=1, description="Powertools idempotency table")
    outputs_bucket: str = Field(min_length=1, description="S3 bucket where finished videos are archived")
    aiml_api_key_secret_id: str = Field(min_length=1, description="Secrets Manager id of the AIML API key")
    aiml_base_url: str = Field("https://api.aimlapi.com", pattern=r"^https?://[^/\s]+(/[^\s]*)?$")
    max_generation_age_seconds: int = Field(1800, ge=60, le=86_400)
    poll_concurrency: int = Field(40, ge=1, le=256)
    due_shards: int = Field(4, ge=1, le=64)
    presign_expiry_seconds: int = Field(3600, ge=60, le=604_800)
    url_dns_strict: bool = True
    allowed_origin: str = Field(
        "*",
        pattern=r"^(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)$",
        description="browser origin the API's CORS headers allow (AllowedOrigin)",
    )
    first_poll_factor: float = Field(
        0.6, ge=0, le=2, description="first poll after this x the model's typical time"
    )
    poll_interval_seconds: int = Field(
        60, ge=0, le=600, description="longest wait between two polls of a running job (see PollSchedule)"
    )
    submit_grace_seconds: int = Field(
        120, ge=0, le=3600, description="a record still 'submitting' after this is flagged"
    )
    # Poll timers (PollTimerQueue, PollTimerFunction) and the shared schedule (ModelStatsTable).
    poll_timer_queue_url: str = Field(
        "", description="SQS queue of the per-generation poll timers; empty: the sweep alone polls"
    )
    poll_timer_grace_seconds: int = Field(
        30, ge=0, le=900, description="with timers on, the sweep takes what is overdue by more than this"
    )
    model_stats_table_name: str = Field(
        "", description="DynamoDB table of per-model duration statistics; empty: each process learns alone"
    )
    model_stats_ttl_seconds: int = Field(
        60, ge=0, le=3600, description="how long a function keeps a model's statistics before reading again"
    )
    poll_fixed_interval_seconds: int = Field(
        0, ge=0, le=600, description="0: the learning schedule; N: poll every N s (the benchmark's baseline)"
    )
    secret_max_age_seconds: int = Field(300, ge=0, le=86_400, description="how long the API key is cached")
    # S3 uploads (UploadFunction): what an uploaded image's user metadata does not say.
    upload_default_model: str = Field(
        "video-01", min_length=1, description="model when x-amz-meta-model is absent"
    )
    upload_default_prompt: str = Field(
        "Bring this picture to life with gentle, natural motion.",
        min_length=1,
        max_length=2000,
        description="prompt when x-amz-meta-prompt is absent",
    )
    upload_default_owner: str = Field(
        "s3-uploads",
        pattern=OWNER_PATTERN,
        description="owner when x-amz-meta-owner is absent",
    )
    upload_prefix: str = Field("uploads/", description="where uploads become generations (UploadPrefix)")
    upload_owner_from_prefix: bool = Field(
        False,
        description="owner = the key's first segment after upload_prefix; x-amz-meta-owner is ignored",
    )
    upload_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1, le=100 * 1024 * 1024, description="largest image accepted"
    )
    upload_image_url_expiry_seconds: int = Field(
        3600,
        ge=300,
        le=43_200,
        description="lifetime of the presigned GET URL the provider fetches the image from",
    )

    # Completion events and webhooks (NotifierFunction, WebhookFunction).
    event_bus_name: str = Field("", description="EventBridge bus of the completion events")
    webhook_queue_url: str = Field("", description="SQS queue of pending webhook deliveries")
    webhook_dead_letter_queue_url: str = Field(
        "", description="where failed deliveries land, with the reason"
    )
    webhook_secret_id: str = Field(
        "", description="Secrets Manager id of the webhook master secret(s): each owner's is derived from it"
    )
    webhook_max_attempts: int = Field(10, ge=1, le=50, description="delivery attempts before the DLQ")
    webhook_backoff_seconds: int = Field(
        30, ge=0, le=3600, description="wait after the first failed attempt, doubled after each"
    )
    webhook_backoff_max_seconds: int = Field(
        7200, ge=0, le=43_200, description="longest wait between two attempts (SQS caps it at 12 h)"
    )
    webhook_timeout_seconds: float = Field(
        10, gt=0, le=60, description="deadline of one attempt: connect, send, answer and body, in total"
    )
    webhook_secret_versions_table: str = Field(
        "", description="DynamoDB table of each owner's webhook secret version (per-owner secrets)"
    )
    webhook_secret_grace_seconds: int = Field(
        86_400,
        ge=0,
        le=30 * 86_400,
        description="after a rotation, the previous secret of the owner keeps signing this long",
    )
    callback_allowed_hosts: str = Field(
        "",
        description="comma-separated host or host:port a callback_url may name over http or on a private "
        "address (the local stack's loopback receivers); empty in AWS",
    )

    # Spend guard (videogen.logic.budget; docs/scaling-and-cost.md): counters in SpendTable.
    spend_table_name: str = Field("", description="DynamoDB table of spend counters; empty: nothing counted")
    budget_daily_credits: int = Field(
        0, ge=0, description="each API key's credits per UTC day; 0 = no limit (BudgetDailyCredits)"
    )
    budget_monthly_credits: int = Field(
        0, ge=0, description="each API key's credits per UTC month; 0 = no limit (BudgetMonthlyCredits)"
    )
    budget_overrides: str = Field(
        "", description='JSON {"<api key id>": {"daily": n, "monthly": n}}: per-key budgets (BudgetOverrides)'
    )

    @field_validator("budget_overrides")
    @classmethod
    def _overrides_parse(cls, value: str) -> str:
        try:
            parse_overrides(value)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"invalid budget overrides: {exc}") from None
        return value

    # The submit queue (QueueTable, DispatchQueue, DispatcherFunction; docs/architecture.md).
    queue_table_name: str = Field("", description="DynamoDB table of the submit queue and the capacity")
    dispatch_queue_url: str = Field("", description="SQS queue of the dispatcher's wake-ups")
    queue_deadline_seconds: int = Field(
        10_800, ge=60, le=86_400, description="a generation pending this long ends failed (queue_expired)"
    )
    queue_owner_cap: int = Field(
        1000, ge=1, le=100_000, description="queued generations one owner may have; beyond: 429 queue_full"
    )
    provider_limit_floor: int = Field(1, ge=1, le=1000, description="the learned limit's lowest value")
    provider_limit_ceiling: int = Field(
        50, ge=1, le=1000, description="the learned provider limit's highest value"
    )
    provider_limit_initial: int = Field(4, ge=1, le=1000, description="the limit before anything was learned")
    provider_limit_increase_after: int = Field(
        3, ge=1, le=1000, description="accepted submits at a full window before the limit grows by one"
    )

    # Batches (BatchesTable, BatchStateMachine, BatchFunction; docs/batches.md).
    batches_table_name: str = Field("", description="DynamoDB table of batches; empty: no /batches routes")
    batch_state_machine_arn: str = Field("", description="the batch state machine (Distributed Map)")
    uploads_bucket: str = Field("", description="where batch manifests are read (batches/<owner>/...)")
    batch_queue_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="share of an owner's queue cap a batch may fill; the rest stays for single requests",
    )
    batch_max_concurrency: int = Field(10, ge=1, le=1000, description="the Map's child executions at once")
    batch_items_per_child: int = Field(50, ge=1, le=1000, description="manifest lines per child execution")
    batch_track_seconds: int = Field(30, ge=1, le=3600, description="the tracker's pause between counts")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; a missing or bad value fails loudly at cold
        start with the variable's name, not later inside a request."""
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid configuration: {problems}") from None
