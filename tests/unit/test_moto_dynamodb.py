"""The local stack's and the tests' DynamoDB (moto) must refuse a second conditional create of
one item, as DynamoDB does, however many threads race for it (local/aws/moto_dynamodb.py)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.aws.moto_dynamodb import make_dynamodb_writes_atomic


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process moto account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def create_table(name: str, **options: object) -> str:
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )
    return name


@pytest.fixture
def table(mocked: None) -> str:
    return create_table("t")


def race(table: str, rounds: int, threads: int) -> int:
    """Rounds in which more than one thread created the same item."""
    client = boto3.client("dynamodb")
    doubled = 0
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        for n in range(rounds):
            created: list[int] = []
            start = threading.Barrier(threads)

            def create(
                i: int, key: str = f"k{n}", created: list[int] = created, start: threading.Barrier = start
            ) -> None:
                start.wait()
                try:
                    client.put_item(
                        TableName=table,
                        Item={"id": {"S": key}, "by": {"N": str(i)}},
                        ConditionExpression="attribute_not_exists(id)",
                    )
                    created.append(i)
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

            workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            doubled += len(created) > 1
    finally:
        sys.setswitchinterval(previous)
    return doubled


def test_racing_conditional_creates_make_one_item(table: str) -> None:
    make_dynamodb_writes_atomic()
    assert race(table, rounds=30, threads=8) == 0


@pytest.fixture
def streamed(mocked: None) -> str:
    """A table with a stream, holding k1 (v=1)."""
    name = create_table(
        "s", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    boto3.client("dynamodb").put_item(TableName=name, Item={"id": {"S": "k1"}, "v": {"N": "1"}})
    return name


def stream_records(table: str) -> int:
    streams = boto3.client("dynamodbstreams")
    arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return len(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def test_a_cancelled_transaction_leaves_every_item_and_the_stream_as_they_were(streamed: str) -> None:
    make_dynamodb_writes_atomic()
    client = boto3.client("dynamodb")
    before = stream_records(streamed)
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(
            TransactItems=[
                {  # applied by moto before the next one fails: must be undone
                    "Update": {
                        "TableName": streamed,
                        "Key": {"id": {"S": "k1"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": streamed, "Item": {"id": {"S": "k2"}, "v": {"N": "1"}}}},
                {
                    "Put": {
                        "TableName": streamed,
                        "Item": {"id": {"S": "k3"}},
                        "ConditionExpression": "attribute_exists(id)",
                    }
                },
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert client.get_item(TableName=streamed, Key={"id": {"S": "k1"}})["Item"]["v"] == {"N": "1"}
    assert "Item" not in client.get_item(TableName=streamed, Key={"id": {"S": "k2"}})
    assert "Item" not in client.get_item(TableName=streamed, Key={"id": {"S": "k3"}})
    assert stream_records(streamed) == before  # a cancelled transaction emits nothing
    # and one that goes through writes all of it, with its records
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": streamed, "Item": {"id": {"S": "k2"}, "v": {"N": "5"}}}},
            {"Delete": {"TableName": streamed, "Key": {"id": {"S": "k1"}}}},
        ]
    )
    assert client.get_item(TableName=streamed, Key={"id": {"S": "k2"}})["Item"]["v"] == {"N": "5"}
    assert "Item" not in client.get_item(TableName=streamed, Key={"id": {"S": "k1"}})
    assert stream_records(streamed) == before + 2


def test_a_transaction_does_not_copy_the_whole_table(streamed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto backs up every table a transaction names with a deepcopy of the whole table: a cost
    that grows with the table (a big batch's queue), which DynamoDB's does not."""
    import copy

    from moto.dynamodb.models.table import Table

    make_dynamodb_writes_atomic()
    client = boto3.client("dynamodb")
    copied: list[str] = []
    deepcopy = copy.deepcopy

    def spy(value: object, memo: Any = None) -> object:
        if isinstance(value, Table):
            copied.append(value.name)
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", spy)
    for ok in (True, False):  # one that goes through, one cancelled
        condition = {} if ok else {"ConditionExpression": "attribute_exists(id)"}
        try:
            client.transact_write_items(
                TransactItems=[{"Put": {"TableName": streamed, "Item": {"id": {"S": f"n{ok}"}}, **condition}}]
            )
        except ClientError:
            assert not ok
    assert copied == []
    assert "Item" in client.get_item(TableName=streamed, Key={"id": {"S": "nTrue"}})
    assert "Item" not in client.get_item(TableName=streamed, Key={"id": {"S": "nFalse"}})
