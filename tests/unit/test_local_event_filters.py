"""The local stack's event source mappings apply the template's FilterCriteria as Lambda does: a
record no filter matches never reaches the function (so the local stack invokes, and the cost
benchmark counts, only what AWS would invoke), and an SQS message filtered out is deleted."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local.aws.pollers import _QueueSource, _StreamSource
from tests.templates import source_template


def stream_event(function: str) -> dict[str, Any]:
    (event,) = source_template()["Resources"][function]["Properties"]["Events"].values()
    return dict(event["Properties"])


def collect(source: Any) -> list[dict[str, Any]]:
    delivered: list[dict[str, Any]] = []

    def invoke(_: str, event: dict[str, Any]) -> None:
        delivered.extend(event["Records"])

    for _ in range(20):
        if not source.poll(invoke, []):
            break
    return delivered


def test_a_stream_consumer_gets_only_the_records_its_template_filters_match(aws: dict[str, str]) -> None:
    dynamodb = boto3.client("dynamodb")
    table = aws["GenerationsTable"]
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]

    def source(function: str) -> _StreamSource:
        props = {**stream_event(function), "Stream": stream_arn, "StartingPosition": "TRIM_HORIZON"}
        return _StreamSource(function, props, boto3.client("dynamodbstreams"), "us-east-1")

    notifier, spend = source("NotifierFunction"), source("SpendFunction")
    for n, status in enumerate(["pending", "queued", "generating", "completed", "cancelled"]):
        item: dict[str, Any] = {"id": {"S": f"g{n}"}, "status": {"S": status}}
        if status == "completed":
            item["usage"] = {"M": {"credits_used": {"N": "120"}}}
        dynamodb.put_item(TableName=table, Item=item)
    for generation_id in ("g1", "g3"):  # a later write (a poll, the archive): nobody is invoked
        dynamodb.update_item(
            TableName=table,
            Key={"id": {"S": generation_id}},
            UpdateExpression="SET polls = :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    to_notifier = [r["dynamodb"]["NewImage"]["id"]["S"] for r in collect(notifier)]
    to_spend = [r["dynamodb"]["NewImage"]["id"]["S"] for r in collect(spend)]
    # records of ended generations (the notifier itself tells a transition from a later write)
    assert to_notifier == ["g3", "g4", "g3"]
    # the change that reported usage, and the cancel (never sent: it settles to nothing)
    assert to_spend == ["g3", "g4"]


def test_an_sqs_message_no_filter_matches_is_deleted_undelivered(aws: dict[str, str]) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="filtered", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    wake_only = {"Filters": [{"Pattern": json.dumps({"body": {"kind": ["wake"]}})}]}
    props = {"Queue": arn, "FilterCriteria": wake_only}
    for body in ({"kind": "wake"}, {"kind": "other"}, "not json"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body) if isinstance(body, dict) else body)

    delivered = collect(_QueueSource("F", props, url, sqs, "us-east-1"))

    assert [json.loads(r["body"]) for r in delivered] == [{"kind": "wake"}]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def test_without_filters_every_record_is_delivered(aws: dict[str, str]) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="plain", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))

    delivered = collect(_QueueSource("F", {"Queue": arn}, url, sqs, "us-east-1"))

    assert sorted(r["body"] for r in delivered) == ["0", "1", "2"]
