"""Owners' webhook secret versions in their own DynamoDB table (template.yaml:
WebhookSecretVersionsTable, key `owner`): no secret is stored, only the counter that
videogen.logic.webhook_secrets derives each owner's secret from. A separate table, not rows of
the generations table: nothing that reads generations (gets, lists, the due index, the stream)
ever meets them, and the table is retained with the stack, since losing it would bring back every
rotated-away secret."""

from __future__ import annotations

from typing import Any

from videogen.domain.webhook_secrets import SecretVersion
from videogen.lazy import client_error


class DynamoSecretVersions:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, owner: str) -> SecretVersion:
        answer = self._client.get_item(
            TableName=self._table, Key={"owner": {"S": owner}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return SecretVersion()
        return SecretVersion(
            version=int(item["version"]["N"]),
            previous=int(item["previous_version"]["N"]) if "previous_version" in item else None,
            rotated_at=float(item["rotated_at"]["N"]) if "rotated_at" in item else None,
        )

    def replace(self, owner: str, expected: SecretVersion, new: SecretVersion) -> bool:
        item: dict[str, Any] = {"owner": {"S": owner}, "version": {"N": str(new.version)}}
        if new.previous is not None:
            item["previous_version"] = {"N": str(new.previous)}
        if new.rotated_at is not None:
            item["rotated_at"] = {"N": repr(new.rotated_at)}
        # an owner without a record is at version 1: the first rotation creates the record
        condition = "attribute_not_exists(#o) OR version = :v"
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":v": {"N": str(expected.version)}},
            )
        except client_error() as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
