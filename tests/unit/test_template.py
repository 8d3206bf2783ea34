"""What a deployer relies on in template.yaml, read with cfn-lint's own loader and SAM transform."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from tests.templates import ROOT, TEMPLATE_TEXT, of_type

ROUTES = {
    ("GET", "/webhook-secret"),
    ("POST", "/webhook-secret/rotate"),
    ("POST", "/generations"),
    ("GET", "/generations"),
    ("GET", "/generations/{id}"),
    ("DELETE", "/generations/{id}"),
    ("GET", "/models"),
    ("GET", "/usage"),
    ("POST", "/batches"),
    ("GET", "/batches"),
    ("GET", "/batches/{id}"),
    ("GET", "/batches/{id}/results"),
    ("DELETE", "/batches/{id}"),
    ("POST", "/batches/{id}/resume"),
}

# The environment every function gets (settings.py reads these names).
EXPECTED_ENV: dict[str, Any] = {
    "TABLE_NAME": {"Ref": "GenerationsTable"},
    "IDEMPOTENCY_TABLE_NAME": {"Ref": "IdempotencyTable"},
    "OUTPUTS_BUCKET": {"Ref": "OutputsBucket"},
    "AIML_API_KEY_SECRET_ID": {"Ref": "AimlApiKeySecret"},
    "AIML_BASE_URL": {"Ref": "ProviderBaseUrl"},
    "MAX_GENERATION_AGE_SECONDS": {"Ref": "MaxGenerationAgeSeconds"},
    "POLL_CONCURRENCY": {"Ref": "PollConcurrency"},
    "DUE_SHARDS": {"Ref": "DueShards"},
    "PRESIGN_EXPIRY_SECONDS": {"Ref": "PresignExpirySeconds"},
    "URL_DNS_STRICT": "true",
    "POWERTOOLS_SERVICE_NAME": "videogen",
    "POWERTOOLS_METRICS_NAMESPACE": "Videogen",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    "SPEND_TABLE_NAME": {"Ref": "SpendTable"},
    "BUDGET_DAILY_CREDITS": {"Ref": "BudgetDailyCredits"},
    "BUDGET_MONTHLY_CREDITS": {"Ref": "BudgetMonthlyCredits"},
    "BUDGET_OVERRIDES": {"Ref": "BudgetOverrides"},
    "POLL_TIMER_QUEUE_URL": {"Ref": "PollTimerQueue"},
    "MODEL_STATS_TABLE_NAME": {"Ref": "ModelStatsTable"},
    # the submit queue (videogen.bootstrap.build_queue)
    "QUEUE_TABLE_NAME": {"Ref": "QueueTable"},
    "DISPATCH_QUEUE_URL": {"Ref": "DispatchQueue"},
    "QUEUE_DEADLINE_SECONDS": {"Ref": "QueueDeadlineSeconds"},
    "QUEUE_OWNER_CAP": {"Ref": "QueueOwnerCap"},
    "PROVIDER_LIMIT_FLOOR": {"Ref": "ProviderLimitFloor"},
    "PROVIDER_LIMIT_CEILING": {"Ref": "ProviderLimitCeiling"},
    "PROVIDER_LIMIT_INITIAL": {"Ref": "ProviderLimitInitial"},
    "PROVIDER_LIMIT_INCREASE_AFTER": {"Ref": "ProviderLimitIncreaseAfter"},
}
# Variables a function has on top of the Globals.
# The batches' settings (docs/batches.md): the API starts and reads batches, BatchFunction runs them.
BATCH_ENV: dict[str, Any] = {
    "BATCHES_TABLE_NAME": {"Ref": "BatchesTable"},
    "UPLOADS_BUCKET": {"Ref": "UploadsBucket"},
    "BATCH_QUEUE_SHARE": {"Ref": "BatchQueueShare"},
    "BATCH_MAX_CONCURRENCY": {"Ref": "BatchMaxConcurrency"},
    "BATCH_ITEMS_PER_CHILD": {"Ref": "BatchItemsPerChild"},
    "BATCH_TRACK_SECONDS": {"Ref": "BatchTrackSeconds"},
}
FUNCTION_ENV: dict[str, dict[str, Any]] = {
    "ApiFunction": {
        "ALLOWED_ORIGIN": {"Ref": "AllowedOrigin"},
        "WEBHOOK_SECRET_ID": {"Ref": "WebhookSecret"},
        "WEBHOOK_SECRET_VERSIONS_TABLE": {"Ref": "WebhookSecretVersionsTable"},
        "WEBHOOK_SECRET_GRACE_SECONDS": {"Ref": "WebhookSecretGraceSeconds"},
        **BATCH_ENV,
        "BATCH_STATE_MACHINE_ARN": {"Ref": "BatchStateMachine"},
    },
    "BatchFunction": {
        **BATCH_ENV,
        "EVENT_BUS_NAME": {"Ref": "EventBus"},
        "WEBHOOK_QUEUE_URL": {"Ref": "WebhookQueue"},
    },
    "UploadFunction": {
        "UPLOAD_DEFAULT_MODEL": {"Ref": "UploadDefaultModel"},
        "UPLOAD_DEFAULT_PROMPT": {"Ref": "UploadDefaultPrompt"},
        "UPLOAD_DEFAULT_OWNER": {"Ref": "UploadDefaultOwner"},
        "UPLOAD_MAX_BYTES": {"Ref": "UploadMaxBytes"},
        "UPLOAD_IMAGE_URL_EXPIRY_SECONDS": {"Ref": "UploadImageUrlExpirySeconds"},
        "UPLOAD_PREFIX": {"Ref": "UploadPrefix"},
        "UPLOAD_OWNER_FROM_PREFIX": {"Ref": "UploadOwnerFromPrefix"},
    },
    "NotifierFunction": {
        "EVENT_BUS_NAME": {"Ref": "EventBus"},
        "WEBHOOK_QUEUE_URL": {"Ref": "WebhookQueue"},
    },
    "WebhookFunction": {
        "WEBHOOK_QUEUE_URL": {"Ref": "WebhookQueue"},
        "WEBHOOK_DEAD_LETTER_QUEUE_URL": {"Ref": "WebhookDeadLetterQueue"},
        "WEBHOOK_SECRET_ID": {"Ref": "WebhookSecret"},
        "WEBHOOK_MAX_ATTEMPTS": {"Ref": "WebhookMaxAttempts"},
        "WEBHOOK_BACKOFF_SECONDS": {"Ref": "WebhookBackoffSeconds"},
        "WEBHOOK_TIMEOUT_SECONDS": {"Ref": "WebhookTimeoutSeconds"},
        "WEBHOOK_SECRET_VERSIONS_TABLE": {"Ref": "WebhookSecretVersionsTable"},
        "WEBHOOK_SECRET_GRACE_SECONDS": {"Ref": "WebhookSecretGraceSeconds"},
    },
}
# Secret ids (never values) a function may carry in its environment.
SECRET_ID_VARS = {"AIML_API_KEY_SECRET_ID", "WEBHOOK_SECRET_ID"}
# Names with SECRET in them that hold no secret: a table name (version counters) and a duration.
NOT_SECRETS = {"WEBHOOK_SECRET_VERSIONS_TABLE", "WEBHOOK_SECRET_GRACE_SECONDS"}


def test_cfn_lint_reports_nothing_not_even_informational() -> None:
    # one region keeps this at ~2 s (lint_all's every region doubles it); the CLI run of
    # scripts/check-template.sh covers the default rules again
    config = ManualArgs(regions=["us-east-1"], include_checks=["I"])
    assert [str(m) for m in lint(TEMPLATE_TEXT, config=config)] == []


def test_every_function_runs_python313_on_arm64(source: dict, deployed: dict) -> None:
    functions = of_type(deployed, "AWS::Lambda::Function")
    assert {"ApiFunction", "PollerFunction", "UploadFunction"} <= set(functions)
    for name, fn in functions.items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Handler"] == "app.lambda_handler", name
        assert len(props["Layers"]) == 1, name
    layer = source["Resources"]["CommonLayer"]
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/common"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    # built by layers/common/Makefile (the runtime's boto3/botocore left out, see the README)
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (ROOT / "layers/common/Makefile").read_text()
    assert "build-CommonLayer:" in makefile and "manylinux2014_aarch64" in makefile


def test_function_code_locations_and_timeouts(source: dict, deployed: dict) -> None:
    res = source["Resources"]
    assert res["ApiFunction"]["Properties"]["CodeUri"].rstrip("/") == "functions/api"
    assert res["PollerFunction"]["Properties"]["CodeUri"].rstrip("/") == "functions/poller"
    fns = of_type(deployed, "AWS::Lambda::Function")
    assert fns["ApiFunction"]["Properties"]["Timeout"] <= 29  # API Gateway gives up at 29 s
    assert fns["PollerFunction"]["Properties"]["Timeout"] == 120


def test_environment_holds_every_setting_and_never_the_api_key(deployed: dict) -> None:
    for name, fn in of_type(deployed, "AWS::Lambda::Function").items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env == {**EXPECTED_ENV, **FUNCTION_ENV.get(name, {})}, name
        text = json.dumps(env)
        assert "resolve:secretsmanager" not in text and "resolve:ssm" not in text, name
        assert "SecretString" not in text, name
        keyish = {k for k in env if "KEY" in k or "TOKEN" in k or "SECRET" in k} - NOT_SECRETS
        assert keyish <= SECRET_ID_VARS and "AIML_API_KEY_SECRET_ID" in keyish, name


def test_the_five_routes_need_an_api_key(source: dict, deployed: dict) -> None:
    api = source["Resources"]["VideogenApi"]["Properties"]
    assert api["StageName"] == "v1"
    assert api["Auth"]["ApiKeyRequired"] is True
    events = source["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    routes = set()
    for event in events:
        assert event["Type"] == "Api"
        props = event["Properties"]
        assert props["RestApiId"] == {"Ref": "VideogenApi"}
        assert props.get("Auth", {}).get("ApiKeyRequired", True) is True
        routes.add((props["Method"].upper(), props["Path"]))
    assert routes == ROUTES
    # what API Gateway actually enforces: every generated operation carries the api_key scheme
    body = deployed["Resources"]["VideogenApi"]["Properties"]["Body"]
    generated = {
        (m.upper(), path): op
        for path, ops in body["paths"].items()
        for m, op in ops.items()
        if m != "options"  # CORS preflights: test_cors_preflights_need_no_key
    }
    assert set(generated) == ROUTES
    for route, op in generated.items():
        assert op["security"] == [{"api_key": []}], route
    assert body["components"]["securitySchemes"]["api_key"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }


def test_usage_plan_throttles_and_limits_per_day(source: dict, deployed: dict) -> None:
    plan = source["Resources"]["VideogenApi"]["Properties"]["Auth"]["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert plan["Throttle"] == {
        "RateLimit": {"Ref": "ApiThrottleRateLimit"},
        "BurstLimit": {"Ref": "ApiThrottleBurstLimit"},
    }
    assert plan["Quota"] == {"Limit": {"Ref": "ApiQuotaLimit"}, "Period": "DAY"}
    assert "VideogenApiApiKey" in deployed["Resources"]  # what the ApiKeyId output refers to
    stage = deployed["Resources"]["VideogenApiv1Stage"]["Properties"]
    assert stage["TracingEnabled"] is True
    assert stage["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert '$context.identity.apiKey"' not in stage["AccessLogSetting"]["Format"]  # the key itself
    assert all(s["DataTraceEnabled"] is False for s in stage["MethodSettings"])


def test_generations_table_keys_indexes_and_protection(source: dict) -> None:
    table = source["Resources"]["GenerationsTable"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {"id": "S", "owner": "S", "created_at": "S", "due_shard": "S", "next_poll_at": "N"}
    indexes = {gsi["IndexName"]: gsi for gsi in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by-owner", "due"}
    assert indexes["by-owner"]["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["due"]["KeySchema"] == [
        {"AttributeName": "due_shard", "KeyType": "HASH"},
        {"AttributeName": "next_poll_at", "KeyType": "RANGE"},
    ]
    assert all(gsi["Projection"] == {"ProjectionType": "ALL"} for gsi in indexes.values())


def test_tables_are_encrypted_with_point_in_time_recovery(source: dict) -> None:
    for name in ("GenerationsTable", "IdempotencyTable"):
        props = source["Resources"][name]["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert props["SSESpecification"]["SSEEnabled"] is True, name
    idem = source["Resources"]["IdempotencyTable"]["Properties"]
    assert idem["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert idem["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_outputs_bucket_is_private_encrypted_tls_only_and_retained(source: dict) -> None:
    res = source["Resources"]
    bucket = res["OutputsBucket"]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms", "aws:kms:dsse"}
    (policy,) = [
        p
        for p in of_type(source, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "OutputsBucket"}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and s["Action"] == "s3:*"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and {"Fn::Sub": "${OutputsBucket.Arn}/*"} in s["Resource"]
        for s in statements
    )


def test_functions_use_no_broad_sam_policy_template(source: dict) -> None:
    """What each role may do, action by action, is tests/unit/test_least_privilege.py's table;
    here: none of SAM's templates that grant more than a function calls is back."""
    broad = {"DynamoDBCrudPolicy", "S3CrudPolicy", "S3ReadPolicy", "SQSPollerPolicy", "LambdaInvokePolicy"}
    kinds = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
    for kind in kinds:
        for name, res in of_type(source, kind).items():
            used = {key for p in res["Properties"].get("Policies", []) if isinstance(p, dict) for key in p}
            assert not used & broad, (name, used & broad)


def test_poller_is_scheduled_and_its_failures_are_kept(source: dict) -> None:
    props = source["Resources"]["PollerFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "PollSchedule"}
    on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["PollerFailureQueue", "Arn"]}}


def test_every_function_has_a_log_group_with_retention(source: dict) -> None:
    groups = {
        json.dumps(g["Properties"]["LogGroupName"]): g["Properties"]
        for g in of_type(source, "AWS::Logs::LogGroup").values()
    }
    for fn in ("ApiFunction", "PollerFunction", "UploadFunction"):
        props = groups[json.dumps({"Fn::Sub": f"/aws/lambda/${{{fn}}}"})]
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_secret_and_parameters(source: dict) -> None:
    secret = source["Resources"]["AimlApiKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "put-secret-value" in secret["Properties"]["Description"]
    params = source["Parameters"]
    expected = {
        "ProviderBaseUrl": "https://api.aimlapi.com",
        "PollSchedule": "rate(1 minute)",
        "PollConcurrency": "40",
        "DueShards": "4",
        "MaxGenerationAgeSeconds": "1800",
        "PresignExpirySeconds": "3600",
        "ApiThrottleRateLimit": "10",
        "ApiThrottleBurstLimit": "20",
        "ApiQuotaLimit": "1000",
        "LogLevel": "INFO",
        "LogRetentionDays": "30",
    }
    assert {name: str(params[name].get("Default")) for name in expected} == expected
    assert all(p.get("Description") for p in params.values())


def test_outputs(source: dict) -> None:
    outputs = {name: o["Value"] for name, o in source["Outputs"].items()}
    assert outputs["ApiUrl"] == {
        "Fn::Sub": "https://${VideogenApi}.execute-api.${AWS::Region}.amazonaws.com/v1"
    }
    assert outputs["ApiKeyId"] == {"Ref": "VideogenApiApiKey"}
    assert outputs["AimlApiKeySecretArn"] == {"Ref": "AimlApiKeySecret"}
    assert outputs["GenerationsTableName"] == {"Ref": "GenerationsTable"}
    assert outputs["OutputsBucketName"] == {"Ref": "OutputsBucket"}


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("api_post_generation.json", ("POST", "/generations")),
        ("api_list_generations.json", ("GET", "/generations")),
        ("api_get_generation.json", ("GET", "/generations/{id}")),
        ("api_cancel_generation.json", ("DELETE", "/generations/{id}")),
        ("api_get_models.json", ("GET", "/models")),
    ],
)
def test_sample_api_events_match_a_route(name: str, route: tuple[str, str]) -> None:
    event = json.loads((ROOT / "events" / name).read_text())
    assert (event["httpMethod"], event["resource"]) == route
    assert event["requestContext"]["resourcePath"] == route[1]
    assert event["requestContext"]["stage"] == "v1"
    assert event["headers"]["x-api-key"] and event["requestContext"]["identity"]["apiKeyId"]
    if "{id}" in route[1]:
        assert event["path"] == "/generations/" + event["pathParameters"]["id"]
    if route[0] == "POST":
        assert json.loads(event["body"])["model"] == "video-01"


def test_sample_schedule_event() -> None:
    event = json.loads((ROOT / "events" / "poller_schedule.json").read_text())
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"


# ---------------------------------------------------------------- S3 uploads
UPLOAD_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".JPG", ".JPEG", ".PNG", ".WEBP"}


def test_uploads_bucket_is_private_encrypted_tls_only_and_expiring(source: dict) -> None:
    bucket = source["Resources"]["UploadsBucket"]
    props = bucket["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms", "aws:kms:dsse"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "UploadRetentionDays"}
    # versioned, so the provider's URL names the checked version; old versions expire too
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1
    assert source["Parameters"]["UploadRetentionDays"]["Default"] == 7
    (policy,) = [
        p
        for p in of_type(source, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "UploadsBucket"}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and {"Fn::Sub": "${UploadsBucket.Arn}/*"} in s["Resource"]
        for s in statements
    )


def test_upload_function_is_notified_once_per_image_suffix_under_the_prefix(
    source: dict, deployed: dict
) -> None:
    props = source["Resources"]["UploadFunction"]["Properties"]
    assert props["CodeUri"].rstrip("/") == "functions/upload" and props["Handler"] == "app.lambda_handler"
    suffixes = []
    for event in props["Events"].values():
        assert event["Type"] == "S3"
        assert event["Properties"]["Bucket"] == {"Ref": "UploadsBucket"}
        assert event["Properties"]["Events"] == "s3:ObjectCreated:*"
        rules = {r["Name"]: r["Value"] for r in event["Properties"]["Filter"]["S3Key"]["Rules"]}
        assert rules["prefix"] == {"Ref": "UploadPrefix"}
        suffixes.append(rules["suffix"])
    assert sorted(suffixes) == sorted(UPLOAD_SUFFIXES)  # each once: S3 refuses overlapping filters
    assert source["Parameters"]["UploadPrefix"]["Default"] == "uploads/"
    # what CloudFormation gets: the notification on the bucket, S3 allowed to invoke
    bucket = deployed["Resources"]["UploadsBucket"]["Properties"]
    configs = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert len(configs) == len(UPLOAD_SUFFIXES)
    assert all(c["Function"] == {"Fn::GetAtt": ["UploadFunction", "Arn"]} for c in configs)
    permissions = [
        r["Properties"]
        for r in of_type(deployed, "AWS::Lambda::Permission").values()
        if r["Properties"]["FunctionName"] == {"Ref": "UploadFunction"}
    ]
    assert len(permissions) == len(UPLOAD_SUFFIXES)
    assert all(p["Principal"] == "s3.amazonaws.com" and p["SourceAccount"] for p in permissions)


def test_upload_failures_are_retried_a_little_then_kept(source: dict) -> None:
    props = source["Resources"]["UploadFunction"]["Properties"]
    config = props["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    assert config["MaximumEventAgeInSeconds"] <= 6 * 3600
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"]},
    }
    queue = source["Resources"]["UploadDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    alarm = source["Resources"]["UploadDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["UploadDeadLetterQueue", "QueueName"]}


def test_upload_function_reads_uploads_writes_generations_and_spend(source: dict, deployed: dict) -> None:
    props = source["Resources"]["UploadFunction"]["Properties"]
    policies = [next(iter(p.items())) for p in props["Policies"]]
    assert policies == [
        (
            "Statement",
            [
                {
                    "Sid": "WriteGenerations",
                    "Effect": "Allow",
                    "Action": "dynamodb:PutItem",
                    "Resource": {"Fn::GetAtt": ["GenerationsTable", "Arn"]},
                },
                {  # the spend guard's reservation of an upload's submit
                    "Sid": "SpendCounters",
                    "Effect": "Allow",
                    "Action": ["dynamodb:UpdateItem", "dynamodb:BatchGetItem"],
                    "Resource": {"Fn::GetAtt": ["SpendTable", "Arn"]},
                },
                # accept into the submit queue (no read of the semaphore: an upload frees no slot)
                {
                    "Sid": "SubmitQueue",
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:Query",
                    ],
                    "Resource": {"Fn::GetAtt": ["QueueTable", "Arn"]},
                },
                {
                    "Sid": "SubmitQueueByOwner",
                    "Effect": "Allow",
                    "Action": "dynamodb:Query",
                    "Resource": {"Fn::Sub": "${QueueTable.Arn}/index/by-owner"},
                },
                {
                    "Sid": "WakeDispatcher",
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": {"Fn::GetAtt": ["DispatchQueue", "Arn"]},
                },
            ],
        ),
        ("AWSSecretsManagerGetSecretValuePolicy", {"SecretArn": {"Ref": "AimlApiKeySecret"}}),
    ]
    # S3 read lives in its own policy: in the function's, the bucket's notification makes a cycle
    (read,) = [
        r["Properties"]
        for r in of_type(source, "AWS::IAM::Policy").values()
        if r["Properties"]["Roles"] == [{"Ref": "UploadFunctionRole"}]
    ]
    actions = {
        a
        for s in read["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:PutObject"}
    assert {json.dumps(s["Resource"]) for s in read["PolicyDocument"]["Statement"]} == {
        json.dumps({"Fn::Sub": "${UploadsBucket.Arn}/*"}),
        json.dumps({"Fn::GetAtt": ["UploadsBucket", "Arn"]}),
        json.dumps({"Fn::Sub": "${UploadsBucket.Arn}/checked/*"}),
    }
    # writes only the pinned copies, never an uploader's key
    (put,) = [s for s in read["PolicyDocument"]["Statement"] if s["Action"] == "s3:PutObject"]
    assert put["Resource"] == {"Fn::Sub": "${UploadsBucket.Arn}/checked/*"}
    assert "UploadFunctionRole" in deployed["Resources"]


def test_upload_parameters_and_outputs(source: dict) -> None:
    from videogen.domain.catalog import CATALOG

    params = source["Parameters"]
    image_models = sorted(m.id for m in CATALOG.values() if m.field("image_url") is not None)
    assert sorted(params["UploadDefaultModel"]["AllowedValues"]) == image_models
    assert params["UploadDefaultModel"]["Default"] == "video-01"
    assert params["UploadMaxBytes"]["Default"] == 10 * 1024 * 1024
    assert params["UploadImageUrlExpirySeconds"]["Default"] == 3600
    assert params["UploadDefaultOwner"]["Default"] == "s3-uploads"
    assert params["UploadOwnerFromPrefix"]["Default"] == "false"
    assert params["UploadDefaultPrompt"]["Default"]
    outputs = {name: o["Value"] for name, o in source["Outputs"].items()}
    assert outputs["UploadsBucketName"] == {"Ref": "UploadsBucket"}
    assert outputs["UploadDeadLetterQueueUrl"] == {"Ref": "UploadDeadLetterQueue"}


@pytest.mark.parametrize(
    "name",
    ["s3_put_image.json", "s3_put_encoded_key.json", "s3_put_not_an_image.json", "s3_put_oversized.json"],
)
def test_sample_s3_events_match_the_notification(name: str) -> None:
    from urllib.parse import unquote_plus

    event = json.loads((ROOT / "events" / name).read_text())
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    key = unquote_plus(record["s3"]["object"]["key"])
    assert key.startswith("uploads/") and any(key.endswith(s) for s in UPLOAD_SUFFIXES)
    assert record["s3"]["object"]["sequencer"] and record["s3"]["object"]["eTag"]


# ---- the generation workflow (Step Functions) ----------------------------------------------------
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture(scope="module")
def workflow_definition(source: dict) -> dict[str, Any]:
    uri = source["Resources"]["GenerationStateMachine"]["Properties"]["DefinitionUri"]
    return json.loads((ROOT / uri).read_text())


def test_workflow_is_a_standard_state_machine_logged_and_traced(source: dict, deployed: dict) -> None:
    props = source["Resources"]["GenerationStateMachine"]["Properties"]
    assert props["Type"] == "STANDARD"
    assert props["DefinitionUri"] == "statemachine/generation.asl.json"
    assert props["DefinitionSubstitutions"] == {
        "WorkflowFunctionArn": {"Fn::GetAtt": ["WorkflowFunction", "Arn"]}
    }
    invoke = {
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": {"Fn::GetAtt": ["WorkflowFunction", "Arn"]},  # exactly it, no name-prefix wildcard
    }
    assert {"Statement": [invoke]} in props["Policies"]
    assert props["Tracing"] == {"Enabled": True}
    logging = props["Logging"]
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["GenerationStateMachineLogGroup", "Arn"]}}}
    ]
    group = source["Resources"]["GenerationStateMachineLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert source["Outputs"]["GenerationStateMachineArn"]["Value"] == {"Ref": "GenerationStateMachine"}
    # what the role ends up allowing: invoking the workflow function, writing traces
    role = deployed["Resources"]["GenerationStateMachineRole"]["Properties"]
    assert "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess" in role["ManagedPolicyArns"]
    actions = {
        a
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"lambda:InvokeFunction", "logs:CreateLogDelivery"} <= actions


def test_workflow_function(source: dict, deployed: dict) -> None:
    props = source["Resources"]["WorkflowFunction"]["Properties"]
    assert props["CodeUri"].rstrip("/") == "functions/workflow"
    assert (ROOT / "functions/workflow/app.py").is_file()
    assert of_type(deployed, "AWS::Lambda::Function")["WorkflowFunction"]["Properties"]["Timeout"] == 120
    groups = [g["Properties"]["LogGroupName"] for g in of_type(source, "AWS::Logs::LogGroup").values()]
    assert {"Fn::Sub": "/aws/lambda/${WorkflowFunction}"} in groups


def test_definition_placeholders_are_the_substitutions(source: dict) -> None:
    props = source["Resources"]["GenerationStateMachine"]["Properties"]
    text = (ROOT / props["DefinitionUri"]).read_text()
    assert set(re.findall(r"\$\{([^}]+)\}", text)) == set(props["DefinitionSubstitutions"])


def test_definition_retries_catches_and_cannot_loop_forever(workflow_definition: dict) -> None:
    states = workflow_definition["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {"Submit", "Fetch", "RecordFailure"}
    for name, task in tasks.items():
        assert task["Resource"] == "arn:aws:states:::lambda:invoke", name
        assert task["Parameters"]["FunctionName"] == "${WorkflowFunctionArn}", name
        retries = {frozenset(r["ErrorEquals"]): r for r in task["Retry"]}
        service_retry = retries[frozenset(LAMBDA_SERVICE_ERRORS)]
        assert service_retry["BackoffRate"] > 1 and service_retry["MaxAttempts"] >= 3, name
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
    assert tasks["Submit"]["Catch"][0]["Next"] == tasks["Fetch"]["Catch"][0]["Next"] == "RecordFailure"
    throttled = next(r for r in tasks["Fetch"]["Retry"] if r["ErrorEquals"] == ["ProviderThrottled"])
    assert throttled["BackoffRate"] > 1 and throttled["MaxAttempts"] >= 3
    assert states["Wait"] == {
        **states["Wait"],
        "Type": "Wait",
        "SecondsPath": "$.wait_seconds",
        "Next": "Fetch",
    }
    # every final status ends the run; the poll count is bounded
    check = states["Check"]
    ends = {c.get("StringEquals"): c["Next"] for c in check["Choices"] if "StringEquals" in c}
    assert ends == {
        "completed": "Completed",
        "failed": "GenerationFailed",
        "timed_out": "GenerationTimedOut",
        "cancelled": "GenerationCancelled",
    }
    assert states["Completed"] == {**states["Completed"], "Type": "Succeed", "OutputPath": "$.generation"}
    for name in ("GenerationFailed", "GenerationTimedOut", "GenerationCancelled"):
        assert states[name]["Type"] == "Fail" and states[name]["Error"] == name and states[name]["CausePath"]
    (cap,) = [c for c in check["Choices"] if c.get("Variable") == "$.polls"]
    assert cap["Next"] == "PollLimitReached" and cap["NumericGreaterThanEquals"] * 9 < 25_000
    assert check["Default"] == "Wait"
    assert states["RecordFailure"]["Next"] == "StepFailed"


def test_cors_preflights_need_no_key_and_errors_are_readable_cross_origin(
    source: dict, deployed: dict
) -> None:
    """A browser (the console) sends OPTIONS without x-api-key before every call with a key."""
    api = source["Resources"]["VideogenApi"]["Properties"]
    origin = {"Fn::Sub": "'${AllowedOrigin}'"}
    assert api["Cors"]["AllowOrigin"] == origin
    headers = {h.lower() for h in api["Cors"]["AllowHeaders"].strip("'").split(",")}
    assert {"x-api-key", "idempotency-key", "content-type"} <= headers
    assert api["Auth"]["AddApiKeyRequiredToCorsPreflight"] is False
    assert source["Parameters"]["AllowedOrigin"]["Default"] == "*"
    body = deployed["Resources"]["VideogenApi"]["Properties"]["Body"]
    preflights = {path: ops["options"] for path, ops in body["paths"].items() if "options" in ops}
    assert set(preflights) == {path for _, path in ROUTES}
    for path, op in preflights.items():
        assert not op.get("security"), path  # no API key on a preflight
        assert op["x-amazon-apigateway-integration"]["type"] == "mock", path
    # API Gateway's own errors (bad key, unknown route, throttling) carry the origin too
    for name, response in api["GatewayResponses"].items():
        assert response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == origin, name


def test_api_gateways_own_errors_have_codes_no_handler_answers(source: dict) -> None:
    """A client retries a POST after API Gateway's throttle, timeout or failure (with the same
    Idempotency-Key) but not after an answer of the handlers: the code must tell them apart."""
    responses = source["Resources"]["VideogenApi"]["Properties"]["GatewayResponses"]

    def code(response_type: str) -> str:
        template = responses[response_type]["ResponseTemplates"]["application/json"]
        body = json.loads(template.replace("$context.error.messageString", '"m"'))
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, response_type
        return str(body["error"]["code"])

    gateway_codes = {
        "INTEGRATION_TIMEOUT": "gateway_timeout",
        "THROTTLED": "gateway_throttled",
        "DEFAULT_5XX": "gateway_error",
    }
    assert {name: code(name) for name in gateway_codes} == gateway_codes
    assert code("QUOTA_EXCEEDED") == "quota_exceeded"
    handler_sources = [
        path.read_text()
        for folder in ("layers/common", "functions")
        for path in (ROOT / folder).rglob("*.py")
    ]
    assert handler_sources
    for value in gateway_codes.values():
        assert not any(f'"{value}"' in text for text in handler_sources), value


def test_terminal_transitions_reach_the_notifier_through_the_table_stream(
    source: dict, deployed: dict
) -> None:
    res = source["Resources"]
    assert res["GenerationsTable"]["Properties"]["StreamSpecification"] == {
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    }
    assert res["EventBus"]["Type"] == "AWS::Events::EventBus"
    props = res["NotifierFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "DynamoDB"
    stream = event["Properties"]
    assert stream["Stream"] == {"Fn::GetAtt": ["GenerationsTable", "StreamArn"]}
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["NotifierFailureQueue", "Arn"]
    }
    (pattern,) = stream["FilterCriteria"]["Filters"]
    statuses = json.loads(pattern["Pattern"])["dynamodb"]["NewImage"]["status"]["S"]
    assert sorted(statuses) == ["cancelled", "completed", "failed", "timed_out"]
    policies = [next(iter(p.items())) for p in props["Policies"]]
    assert ("EventBridgePutEventsPolicy", {"EventBusName": {"Ref": "EventBus"}}) in policies
    statements = [s for p in policies if p[0] == "Statement" for s in p[1]]
    assert {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
    } in statements
    # idempotency records only: the notifier never reads or writes the generations table itself
    resources = json.dumps([s["Resource"] for s in statements])
    assert "IdempotencyTable" in resources and "GenerationsTable" not in resources


def test_webhooks_are_queued_signed_with_a_generated_secret_and_dead_lettered(source: dict) -> None:
    res = source["Resources"]
    secret = res["WebhookSecret"]["Properties"]
    assert secret["GenerateSecretString"]["ExcludePunctuation"] is True
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert "put-secret-value" in secret["Description"]
    queue = res["WebhookQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] > 50  # above WebhookMaxAttempts' MaxValue
    assert queue["VisibilityTimeout"] >= res["WebhookFunction"]["Properties"]["Timeout"]
    for name in ("WebhookQueue", "WebhookDeadLetterQueue", "NotifierFailureQueue"):
        assert res[name]["Properties"]["SqsManagedSseEnabled"] is True, name
    props = res["WebhookFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # a whole batch of attempts fits the function's timeout
    params = source["Parameters"]
    assert event["Properties"]["BatchSize"] * params["WebhookTimeoutSeconds"]["MaxValue"] < props["Timeout"]
    policies = [next(iter(p.items())) for p in props["Policies"]]
    assert ("AWSSecretsManagerGetSecretValuePolicy", {"SecretArn": {"Ref": "WebhookSecret"}}) in policies
    assert (
        "Statement",
        [
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
            }
        ],
    ) in policies
    assert (
        "Statement",
        [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]},
            }
        ],
    ) in policies
    outputs = {name: o["Value"] for name, o in source["Outputs"].items()}
    assert outputs["EventBusName"] == {"Ref": "EventBus"}
    assert outputs["WebhookSecretArn"] == {"Ref": "WebhookSecret"}
    assert outputs["WebhookDeadLetterQueueUrl"] == {"Ref": "WebhookDeadLetterQueue"}
