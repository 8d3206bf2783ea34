"""The template's security properties, on EVERY resource of a kind (a table, bucket, function or policy
added later is held to them too): PITR, private/encrypted/TLS-only buckets, on-failure destinations
for asynchronously invoked functions, no IAM `*` action and `*` resources only where the service
takes no resource-level permission, API access logs and throttling, log retention.
checkov (`make security`) checks the same template with its own rules."""

from __future__ import annotations

import json
from typing import Any

from tests.templates import of_type

# Event sources that invoke a function asynchronously (Lambda queues the event and retries it):
# a failure must land somewhere. Api (synchronous) and SQS/Kinesis/DynamoDB (polled) are not here.
ASYNC_EVENT_TYPES = {
    "S3",
    "Schedule",
    "ScheduleV2",
    "CloudWatchEvent",
    "EventBridgeRule",
    "SNS",
    "IoTRule",
    "CloudWatchLogs",
    "Cognito",
}
# Actions AWS evaluates on no resource at all: a policy granting them must say Resource "*".
# Step Functions' vended log delivery to CloudWatch Logs (no resource-level permission)
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
RESOURCE_STAR_ACTIONS = {
    # X-Ray (Tracing: Active): trace segments, telemetry and sampling rules have no ARN
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    *LOG_DELIVERY_ACTIONS,
}
# AWS-managed policies roles may carry (their `*` resources are AWS's own, see the README).
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # the function's own logs
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # Tracing: Active
    # the notifier's DynamoDB stream event source (SAM attaches it): Lambda reads the stream
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    # the webhook function's SQS event source (SAM attaches it): Lambda polls the queue
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
}


def _ref_name(node: Any) -> str | None:
    if isinstance(node, dict) and "Ref" in node:
        return str(node["Ref"])
    return None


def test_every_table_has_point_in_time_recovery_and_encryption(source: dict) -> None:
    tables = of_type(source, "AWS::DynamoDB::Table")
    assert len(tables) >= 2
    for name, table in tables.items():
        props = table["Properties"]
        pitr = props.get("PointInTimeRecoverySpecification", {})
        assert pitr.get("PointInTimeRecoveryEnabled") is True, name
        assert props.get("SSESpecification", {}).get("SSEEnabled") is True, name


def test_every_bucket_is_private_encrypted_and_refuses_plain_http(source: dict) -> None:
    buckets = of_type(source, "AWS::S3::Bucket")
    assert len(buckets) >= 2
    policies: dict[str, list[dict[str, Any]]] = {}
    for policy in of_type(source, "AWS::S3::BucketPolicy").values():
        bucket = _ref_name(policy["Properties"]["Bucket"])
        assert bucket, policy
        policies.setdefault(bucket, []).extend(policy["Properties"]["PolicyDocument"]["Statement"])
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
        ), name
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, name
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms", "aws:kms:dsse"}
        deny_http = [
            s
            for s in policies.get(name, [])
            if s["Effect"] == "Deny"
            and s["Principal"] == "*"
            and s["Action"] in ("s3:*", ["s3:*"])
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert deny_http, f"{name} has no bucket policy denying aws:SecureTransport false"
        resources = json.dumps(deny_http[0]["Resource"])
        assert f'"{name}", "Arn"' in resources and f"${{{name}.Arn}}/*" in resources, name


def _async_functions(source: dict) -> dict[str, set[str]]:
    """Functions invoked asynchronously -> by what: async event sources, and the functions any
    Lambda role may invoke by name (an InvocationType=Event fan-out, e.g. the poller's)."""
    functions = of_type(source, "AWS::Serverless::Function")
    found: dict[str, set[str]] = {}
    for name, fn in functions.items():
        for event in (fn["Properties"].get("Events") or {}).values():
            if event["Type"] in ASYNC_EVENT_TYPES:
                found.setdefault(name, set()).add(event["Type"])
    for name, fn in functions.items():
        for target in _invoke_targets(fn["Properties"].get("Policies") or []):
            for other, other_fn in functions.items():
                fixed = (other_fn["Properties"].get("FunctionName") or {}).get("Fn::Sub")
                if target in (json.dumps({"Ref": other}), json.dumps({"Fn::GetAtt": [other, "Arn"]})) or (
                    fixed and target.endswith(json.dumps(f":function:{fixed}")[1:])
                ):
                    found.setdefault(other, set()).add(f"invoked by {name}")
    return found


def _invoke_targets(policies: list[Any]) -> list[str]:
    """What a function's policies let it invoke (JSON text of each FunctionName or resource):
    SAM's LambdaInvokePolicy and explicit lambda:InvokeFunction statements."""
    targets = []
    for policy in policies:
        if not isinstance(policy, dict):
            continue
        if "LambdaInvokePolicy" in policy:
            targets.append(json.dumps(policy["LambdaInvokePolicy"]["FunctionName"]))
        for statement in policy.get("Statement", []):
            if "lambda:InvokeFunction" in _as_list(statement["Action"]):
                targets += [
                    json.dumps(r.get("Fn::Sub", r)) if isinstance(r, dict) else json.dumps(r)
                    for r in _as_list(statement["Resource"])
                ]
    return targets


def test_every_asynchronously_invoked_function_keeps_its_failures(source: dict) -> None:
    invoked = _async_functions(source)
    assert {"PollerFunction", "UploadFunction"} <= set(invoked)
    assert "invoked by PollerFunction" in invoked["PollerFunction"]  # the fan-out
    for name in invoked:
        props = source["Resources"][name]["Properties"]
        config = props.get("EventInvokeConfig") or {}
        on_failure = config.get("DestinationConfig", {}).get("OnFailure")
        assert on_failure or props.get("DeadLetterQueue"), f"{name} loses failed async invocations"
        assert "MaximumRetryAttempts" in config and "MaximumEventAgeInSeconds" in config, name
        if on_failure:
            assert on_failure["Type"] == "SQS", name
            queue = on_failure["Destination"]["Fn::GetAtt"][0]
            assert source["Resources"][queue]["Type"] == "AWS::SQS::Queue", name
            assert source["Resources"][queue]["Properties"]["SqsManagedSseEnabled"] is True, name
            alarms = [
                a
                for a in of_type(source, "AWS::CloudWatch::Alarm").values()
                if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
                in a["Properties"].get("Dimensions", [])
            ]
            assert alarms, f"nobody hears of messages in {queue}"


def _statements(deployed: dict) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, res in deployed["Resources"].items():
        props = res["Properties"]
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props["PolicyDocument"]]
        else:
            continue
        found += [(name, s) for doc in docs for s in doc["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_action_is_a_wildcard(deployed: dict) -> None:
    statements = _statements(deployed)
    assert len(statements) > 10
    for name, statement in statements:
        assert "NotAction" not in statement and "NotResource" not in statement, name
        for action in _as_list(statement["Action"]):
            assert "*" not in action, (name, action)


def test_resource_star_only_for_actions_without_resource_permissions(deployed: dict) -> None:
    for name, statement in _statements(deployed):
        if "*" in _as_list(statement["Resource"]):
            actions = set(_as_list(statement["Action"]))
            assert statement["Effect"] == "Allow" and actions <= RESOURCE_STAR_ACTIONS, (name, actions)


def test_roles_carry_only_known_managed_policies(deployed: dict) -> None:
    for name, role in of_type(deployed, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = arn if isinstance(arn, str) else arn.get("Fn::Sub")
            assert text in MANAGED_POLICIES, (name, arn)


def test_the_api_logs_access_and_throttles(source: dict) -> None:
    (api,) = of_type(source, "AWS::Serverless::Api").values()
    props = api["Properties"]
    destination = props["AccessLogSetting"]["DestinationArn"]
    group = source["Resources"][destination["Fn::GetAtt"][0]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    (settings,) = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert settings["DataTraceEnabled"] is False  # full request logs would hold the x-api-key
    assert props["Auth"]["ApiKeyRequired"] is True


def test_every_function_and_state_machine_logs_with_retention(source: dict) -> None:
    groups = {
        json.dumps(g["Properties"].get("LogGroupName")): g["Properties"]
        for g in of_type(source, "AWS::Logs::LogGroup").values()
    }
    assert all("RetentionInDays" in g for g in groups.values())
    for fn in of_type(source, "AWS::Serverless::Function"):
        props = groups.get(json.dumps({"Fn::Sub": f"/aws/lambda/${{{fn}}}"}))
        assert props, f"{fn} has no log group of its own (Lambda would create one kept forever)"
    for name, machine in of_type(source, "AWS::Serverless::StateMachine").items():
        (destination,) = machine["Properties"]["Logging"]["Destinations"]
        assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0], name


def test_every_checkov_suppression_gives_its_reason(source: dict) -> None:
    skipped = 0
    for name, res in source["Resources"].items():
        for skip in (res.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith(("CKV_AWS_", "CKV2_AWS_")), (name, skip)
            assert len(skip.get("comment", "")) > 30, (name, skip)
            skipped += 1
    assert skipped > 0
