"""Least privilege: every permission of a function's (or the state machine's) role is one that its
code, or the AWS service acting for it, uses, on exactly the resource it is used on.

`USES` is the table: role -> (action, resource) -> the code that needs it. The test reads the
template as CloudFormation deploys it (SAM transformed, so SAM's policy templates and its own
event-source and destination policies are expanded) and fails on a grant that has no row, and on a
row the template no longer grants (the table stays the truth about the template). Resources are
written as the template names them: a logical id for that resource's ARN, `Id/path` for a path
under it, `*` only for the actions AWS evaluates on no resource."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.templates import of_type
from tests.unit.test_template_security import LOG_DELIVERY_ACTIONS, RESOURCE_STAR_ACTIONS

POLLER_ARN = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-poller"
EVENT_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/EventBus"
VIDEOS = "OutputsBucket/videos/*"  # OutputArchive.key_for: every archived video is videos/<id>.mp4
OWNER_INDEX = "GenerationsTable/index/by-owner"
DUE_INDEX = "GenerationsTable/index/due"

# Powertools' DynamoDBPersistenceLayer: get_item (an earlier record), put_item (conditional: the
# in-progress record), update_item (the result), delete_item (a failed call's record is dropped).
IDEMPOTENCY = {
    ("dynamodb:GetItem", "IdempotencyTable"): "DynamoDBPersistenceLayer._get_record",
    ("dynamodb:PutItem", "IdempotencyTable"): "DynamoDBPersistenceLayer._put_record",
    ("dynamodb:UpdateItem", "IdempotencyTable"): "DynamoDBPersistenceLayer._update_record",
    ("dynamodb:DeleteItem", "IdempotencyTable"): "DynamoDBPersistenceLayer._delete_record",
}
# The spend guard's reservation at acceptance (SpendCounters.reserve: TransactWriteItems of
# updates, authorized per item as UpdateItem) and the totals a refusal reports (BatchGetItem).
SPEND_RESERVE = {
    ("dynamodb:UpdateItem", "SpendTable"): "SpendCounters.reserve: conditional ADDs in one transaction",
    ("dynamodb:BatchGetItem", "SpendTable"): "SpendCounters.totals: the spent figures of a refusal",
}
QUEUE_OWNER_INDEX = "QueueTable/index/by-owner"
# The submit queue (videogen.logic.queue, adapters.dynamodb_queue, adapters.sqs_waker).
ACCEPT = {
    ("dynamodb:PutItem", "QueueTable"): "DynamoQueue.add (TransactWriteItems Put): the entry",
    ("dynamodb:UpdateItem", "QueueTable"): "DynamoQueue.add/remove (TransactWriteItems): the counters",
    ("dynamodb:DeleteItem", "QueueTable"): "DynamoQueue.remove: the entry of a refused record",
    ("dynamodb:Query", "QueueTable"): "DynamoQueue.head: the head's rank (fair order)",
    ("dynamodb:Query", QUEUE_OWNER_INDEX): "DynamoQueue.owner_last: the owner's last rank",
    ("sqs:SendMessage", "DispatchQueue"): "SqsWaker.wake: the dispatcher's wake-up",
}
RELEASE = {
    ("dynamodb:GetItem", "QueueTable"): "DynamoSemaphore.read: a job's end frees its slot",
    ("dynamodb:PutItem", "QueueTable"): "DynamoSemaphore.update (conditional put)",
    ("dynamodb:DeleteItem", "QueueTable"): "DynamoQueue.remove: an expired or cancelled entry",
    ("dynamodb:UpdateItem", "QueueTable"): "DynamoQueue.remove (TransactWriteItems): the counters",
    ("sqs:SendMessage", "DispatchQueue"): "SqsWaker.wake: a freed slot wakes the dispatcher",
}
# Submitting to the provider reads its key (bootstrap.secret_reader, Powertools SecretsProvider).
PROVIDER_KEY = {("secretsmanager:GetSecretValue", "AimlApiKeySecret"): "AimlClient's key (secret_reader)"}
# Poll timers (videogen.logic.timers): whoever sets a due time arms the generation's timer.
ARM_TIMER = {
    (
        "sqs:SendMessage",
        "PollTimerQueue",
    ): "SqsPollTimers.arm, arm_many (SendMessageBatch is authorised as SendMessage)"
}
# The shared schedule (videogen.logic.schedule): read by every function that schedules a poll,
# added to by every function that sees a completion.
READ_STATS = {("dynamodb:GetItem", "ModelStatsTable"): "DynamoModelStats.read (PollSchedule's cache)"}
LEARN = {
    **READ_STATS,
    ("dynamodb:UpdateItem", "ModelStatsTable"): "DynamoModelStats.add: one ADD per completion",
}

USES: dict[str, dict[tuple[str, str], str]] = {
    "ApiFunctionRole": {
        ("dynamodb:GetItem", "GenerationsTable"): "GenerationStore.get: GET and DELETE /generations/{id}",
        ("dynamodb:PutItem", "GenerationsTable"): "GenerationStore.create and save: submit, cancel",
        ("dynamodb:Query", OWNER_INDEX): "GenerationStore.list_by_owner: GET /generations",
        ("s3:GetObject", VIDEOS): "OutputArchive.link: the presigned GET is checked against the signer",
        ("dynamodb:Query", "SpendTable"): "SpendCounters.by_model_day: GET /usage",
        **SPEND_RESERVE,
        ("dynamodb:GetItem", "WebhookSecretVersionsTable"): "DynamoSecretVersions.get: GET /webhook-secret",
        ("dynamodb:PutItem", "WebhookSecretVersionsTable"): "DynamoSecretVersions.replace: the rotation",
        ("secretsmanager:GetSecretValue", "WebhookSecret"): "owner_secrets: the caller's master",
        **IDEMPOTENCY,  # idempotent_submit: the Idempotency-Key of POST /generations
        **PROVIDER_KEY,
        **ACCEPT,
        **RELEASE,  # DELETE of a running generation frees its slot; GET reads the limit (estimate)
        ("dynamodb:Query", "QueueTable"): "DynamoQueue.head and ahead_of: rank, queue_position",
    },
    "PollerFunctionRole": {
        ("dynamodb:PutItem", "GenerationsTable"): "GenerationStore.save: every sweep outcome",
        ("dynamodb:Query", DUE_INDEX): "GenerationStore.due: the sweep's reader, one shard at a time",
        # upload_fileobj: PutObject, or CreateMultipartUpload/UploadPart/CompleteMultipartUpload,
        # which IAM authorizes as s3:PutObject; AbortMultipartUpload when a part fails
        ("s3:PutObject", VIDEOS): "OutputArchive.archive (upload_fileobj)",
        ("s3:AbortMultipartUpload", VIDEOS): "OutputArchive.archive (upload_fileobj, on a failed part)",
        ("lambda:InvokeFunction", POLLER_ARN): "LambdaShardInvoker.invoke_shards: the fan-out to itself",
        ("sqs:SendMessage", "PollerFailureQueue"): "Lambda: EventInvokeConfig OnFailure (SAM's policy)",
        **PROVIDER_KEY,
        **ARM_TIMER,
        **LEARN,
        **RELEASE,  # and every tick wakes the dispatcher (the safety net)
    },
    "PollTimerFunctionRole": {
        ("dynamodb:GetItem", "GenerationsTable"): "GenerationStore.get: the timer's generation",
        ("dynamodb:PutItem", "GenerationsTable"): "GenerationStore.save: the refresh's outcome",
        ("s3:PutObject", VIDEOS): "OutputArchive.archive (upload_fileobj)",
        ("s3:AbortMultipartUpload", VIDEOS): "OutputArchive.archive (upload_fileobj, on a failed part)",
        ("sqs:ReceiveMessage", "PollTimerQueue"): "Lambda: the SQS event source mapping polls the queue",
        ("sqs:GetQueueAttributes", "PollTimerQueue"): "Lambda: the SQS event source mapping",
        ("sqs:DeleteMessage", "PollTimerQueue"): "Lambda: deletes what ReportBatchItemFailures does not name",
        **PROVIDER_KEY,
        **ARM_TIMER,  # the next poll's timer, and the next hop of a wait over 900 s
        **LEARN,
        **RELEASE,  # a job's end frees its slot
    },
    "WorkflowFunctionRole": {
        ("dynamodb:GetItem", "GenerationsTable"): "GenerationStore.get: WorkflowSteps.submit_once, fetch",
        ("dynamodb:PutItem", "GenerationsTable"): "GenerationStore.create, save",
        ("s3:PutObject", VIDEOS): "OutputArchive.archive (upload_fileobj): a Fetch archives as the poller",
        ("s3:AbortMultipartUpload", VIDEOS): "OutputArchive.archive (upload_fileobj, on a failed part)",
        ("s3:GetObject", VIDEOS): "OutputArchive.link: a completed generation's state carries its link",
        **SPEND_RESERVE,
        **PROVIDER_KEY,
        **LEARN,  # a Fetch that sees a completion; Wait's delay reads
        **ACCEPT,
        **RELEASE,
    },
    "UploadFunctionRole": {
        ("dynamodb:PutItem", "GenerationsTable"): "GenerationStore.create and save: an upload's submit",
        ("s3:GetObject", "UploadsBucket/*"): "S3Uploads.head (HeadObject), read_start, presign",
        ("s3:GetObjectVersion", "UploadsBucket/*"): "S3Uploads: head, read_start, presign by VersionId",
        ("s3:PutObject", "UploadsBucket/checked/*"): "S3Uploads: the checked copy an unversioned event pins",
        # not called: without it S3 answers a missing key 403, and S3Uploads tells a gone object
        # (ObjectGoneError) from a refused one by the 404
        ("s3:ListBucket", "UploadsBucket"): "S3Uploads._GONE: a missing key answers 404, not 403",
        ("sqs:SendMessage", "UploadDeadLetterQueue"): "Lambda: EventInvokeConfig OnFailure (SAM's policy)",
        **SPEND_RESERVE,
        **PROVIDER_KEY,
        **ACCEPT,
    },
    "SpendFunctionRole": {
        ("dynamodb:GetItem", "SpendTable"): "SpendCounters.settle: the reservation to reconcile",
        ("dynamodb:UpdateItem", "SpendTable"): "SpendCounters.settle: the transaction of ADDs",
        ("sqs:SendMessage", "SpendFailureQueue"): "Lambda: the stream mapping's OnFailure (SAM's policy)",
    },
    "DispatcherFunctionRole": {
        ("dynamodb:GetItem", "GenerationsTable"): "GenerationStore.get: the record of a queue entry",
        ("dynamodb:PutItem", "GenerationsTable"): "GenerationStore.save: claim, accepted, requeue",
        ("dynamodb:GetItem", "QueueTable"): "DynamoSemaphore.read",
        ("dynamodb:PutItem", "QueueTable"): "DynamoSemaphore.update: leases, the learned limit",
        ("dynamodb:DeleteItem", "QueueTable"): "DynamoQueue.remove: claimed, stale or expired entries",
        ("dynamodb:UpdateItem", "QueueTable"): "DynamoQueue.add/remove (TransactWriteItems): counters",
        ("dynamodb:Query", "QueueTable"): "DynamoQueue.head and depth (QueueDepth)",
        ("sqs:SendMessage", "DispatchQueue"): "SqsWaker.wake: a throttled run's delayed wake-up",
        ("sqs:ReceiveMessage", "DispatchQueue"): "Lambda: the SQS event source mapping polls the queue",
        ("sqs:GetQueueAttributes", "DispatchQueue"): "Lambda: the SQS event source mapping",
        ("sqs:DeleteMessage", "DispatchQueue"): "Lambda: deletes the batch once the run returns",
        ("s3:GetObject", "UploadsBucket/*"): "S3Uploads.link: a queued upload's presigned GET",
        ("s3:GetObjectVersion", "UploadsBucket/*"): "S3Uploads.link: by VersionId",
        **PROVIDER_KEY,
        **ARM_TIMER,  # the first poll's timer, once the provider took the job
        **READ_STATS,
    },
    "NotifierFunctionRole": {
        ("events:PutEvents", EVENT_BUS_ARN): "Notifier: one completion event per terminal transition",
        ("sqs:SendMessage", "WebhookQueue"): "Notifier: the webhook message of a callback_url",
        ("sqs:SendMessage", "NotifierFailureQueue"): "Lambda: the stream mapping's OnFailure (SAM's policy)",
        **IDEMPOTENCY,  # idempotent_once: a redelivered stream record notifies nothing twice
    },
    "WebhookFunctionRole": {
        ("sqs:ReceiveMessage", "WebhookQueue"): "Lambda: the SQS event source mapping polls the queue",
        ("sqs:GetQueueAttributes", "WebhookQueue"): "Lambda: the SQS event source mapping",
        ("sqs:DeleteMessage", "WebhookQueue"): "Lambda: deletes what ReportBatchItemFailures does not name",
        ("sqs:ChangeMessageVisibility", "WebhookQueue"): "WebhookDelivery: a failed attempt's backoff",
        ("sqs:SendMessage", "WebhookDeadLetterQueue"): "WebhookDelivery: dead-letters with the reason",
        ("secretsmanager:GetSecretValue", "WebhookSecret"): "build_delivery: the master secret(s)",
        ("sqs:SendMessage", "WebhookQueue"): "WebhookDelivery._defer: a record with no time left goes back",
        ("dynamodb:GetItem", "WebhookSecretVersionsTable"): "DynamoSecretVersions.get: the owner's version",
    },
    "GenerationStateMachineRole": {
        ("lambda:InvokeFunction", "WorkflowFunction"): "generation.asl.json: lambda:invoke of each step",
        **{
            (action, "*"): "Logging: vended log delivery (no resource-level permission)"
            for action in LOG_DELIVERY_ACTIONS
        },
    },
}

BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"  # the function's own logs
XRAY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"  # Tracing: Active / Enabled
# AWS-managed policies each role carries (SAM attaches them; their `*` are AWS's own, see
# docs/reliability-and-security.md). Nothing else: no role gets a broader managed policy.
MANAGED: dict[str, set[str]] = {
    "ApiFunctionRole": {BASIC, XRAY},
    "PollerFunctionRole": {BASIC, XRAY},
    "WorkflowFunctionRole": {BASIC, XRAY},
    "UploadFunctionRole": {BASIC, XRAY},
    # the DynamoDB stream event source: Lambda reads the stream for the function
    "NotifierFunctionRole": {
        BASIC,
        XRAY,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    },
    "SpendFunctionRole": {
        BASIC,
        XRAY,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    },
    "DispatcherFunctionRole": {
        BASIC,
        XRAY,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    },
    # the SQS event source: SAM adds it to every SQS event, beside the queue-scoped statement
    "PollTimerFunctionRole": {
        BASIC,
        XRAY,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    },
    "WebhookFunctionRole": {
        BASIC,
        XRAY,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    },
    "GenerationStateMachineRole": {XRAY},
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(node: Any) -> str:
    """A statement's resource as the template names it: `X` for X's ARN, `X/path` under it."""
    if isinstance(node, str):
        return node
    if "Ref" in node:
        return str(node["Ref"])
    if "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        name, attribute = target.split(".", 1) if isinstance(target, str) else target
        return str(name) if attribute == "Arn" else f"{name}.{attribute}"
    if "Fn::Sub" in node:
        sub = node["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else sub
        for key, value in variables.items():
            text = text.replace("${" + key + "}", resource_name(value))
        return re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)
    raise AssertionError(f"a resource the test cannot name: {node}")


def role_statements(deployed: dict, role: str) -> list[dict[str, Any]]:
    """The role's inline policies and every AWS::IAM::Policy attached to it."""
    resources = deployed["Resources"]
    docs = [p["PolicyDocument"] for p in resources[role]["Properties"].get("Policies", [])]
    for res in of_type(deployed, "AWS::IAM::Policy").values():
        if {"Ref": role} in res["Properties"]["Roles"]:
            docs.append(res["Properties"]["PolicyDocument"])
    return [s for doc in docs for s in doc["Statement"]]


def grants(deployed: dict, role: str) -> set[tuple[str, str]]:
    found = set()
    for statement in role_statements(deployed, role):
        assert statement["Effect"] == "Allow", (role, statement)
        assert "Condition" not in statement, (role, statement)  # the table holds no conditions
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                found.add((action, resource_name(resource)))
    return found


def _principals(source: dict) -> set[str]:
    """The roles SAM makes: one per function and state machine."""
    kinds = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
    return {f"{name}Role" for kind in kinds for name in of_type(source, kind)}


def test_every_function_and_state_machine_has_a_row(source: dict, deployed: dict) -> None:
    assert _principals(source) == set(USES) == set(MANAGED)
    assert set(USES) <= set(of_type(deployed, "AWS::IAM::Role"))


@pytest.mark.parametrize("role", sorted(USES))
def test_a_role_grants_exactly_what_its_code_uses(deployed: dict, role: str) -> None:
    granted = grants(deployed, role)
    assert granted - set(USES[role]) == set(), f"{role} grants what no code of it calls"
    assert set(USES[role]) - granted == set(), f"{role} lacks a row's grant (or the row is stale)"


@pytest.mark.parametrize("role", sorted(MANAGED))
def test_a_role_carries_only_its_managed_policies(deployed: dict, role: str) -> None:
    arns = deployed["Resources"][role]["Properties"].get("ManagedPolicyArns", [])
    assert set(arns) == MANAGED[role]


def test_wildcards_only_where_aws_requires_them(source: dict, deployed: dict) -> None:
    """`*` alone only for the actions AWS evaluates on no resource; inside an ARN only as the
    object key pattern of an S3 bucket (objects under a prefix), never as a name prefix (which
    would also match every other function or table named alike)."""
    for role in _principals(source):
        for action, resource in grants(deployed, role):
            if resource == "*":
                assert action in RESOURCE_STAR_ACTIONS, (role, action)
            elif "*" in resource:
                bucket, _, key = resource.partition("/")
                assert action.startswith("s3:") and bucket.endswith("Bucket"), (role, action, resource)
                assert key.endswith("/*") or key == "*", (role, resource)
                assert "*" not in key[:-1], (role, resource)


def test_the_poller_may_invoke_only_itself(source: dict, deployed: dict) -> None:
    poller = source["Resources"]["PollerFunction"]["Properties"]
    name = poller["FunctionName"]["Fn::Sub"]
    invocable = {r for a, r in grants(deployed, "PollerFunctionRole") if a == "lambda:InvokeFunction"}
    assert invocable == {
        f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{name}"
    }
    # built from the fixed name, not from the function itself: a Ref would be a circular dependency
    statements = source["Resources"]["PollerFunction"]["Properties"]["Policies"]
    assert "PollerFunction" not in str(statements)


def test_the_table_follows_the_code() -> None:
    """The names the rows are scoped to are the ones the adapters use."""
    from videogen.adapters import dynamodb_store
    from videogen.adapters.s3_archive import OutputArchive

    assert OWNER_INDEX.endswith("/" + dynamodb_store.OWNER_INDEX)
    assert DUE_INDEX.endswith("/" + dynamodb_store.DUE_INDEX)
    assert f"OutputsBucket/{OutputArchive.key_for('g1')}".startswith(VIDEOS[:-1])
