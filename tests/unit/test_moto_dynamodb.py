"""The local stack's and the tests' DynamoDB (moto) must refuse a second conditional create of
one item, as DynamoDB does, however many threads race for it (local/aws/moto_dynamodb.py)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.aws.moto_dynamodb import make_dynamodb_writes_atomic


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "t"


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
