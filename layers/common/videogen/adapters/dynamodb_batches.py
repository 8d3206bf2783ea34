"""DynamoDB access for batch records (BatchesTable) and the many-at-once read of a batch's
generation records (BatchGetItem on GenerationsTable). Writes are conditional, as for
generations: creation on the id being new, every later write on the version read."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from videogen.adapters.dynamodb_store import (
    _from_dynamo,
    _to_dynamo,
    decode_page_token,
    encode_page_token,
    generation_from_item,
)
from videogen.domain.batches import Batch
from videogen.domain.models import Generation
from videogen.domain.ports import StaleWriteError
from videogen.lazy import client_error, lazy_import, once

OWNER_INDEX = "by-owner"
_types = lazy_import("boto3.dynamodb.types")
_serializer = once(lambda: _types.TypeSerializer())
_deserializer = once(lambda: _types.TypeDeserializer())


def item_from_batch(batch: Batch) -> dict[str, Any]:
    data = batch.model_dump(mode="json", exclude_none=True)
    serializer = _serializer()
    return {k: serializer.serialize(v) for k, v in _to_dynamo(data).items()}


def batch_from_item(item: Mapping[str, Any]) -> Batch:
    deserializer = _deserializer()
    return Batch.model_validate({k: _from_dynamo(deserializer.deserialize(v)) for k, v in item.items()})


class BatchRecords:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, batch: Batch) -> Batch:
        self._put(batch, {"ConditionExpression": "attribute_not_exists(id)"})
        return batch

    def save(self, current: Batch, **changes: Any) -> Batch:
        updated = Batch.model_validate(
            current.model_copy(update={**changes, "version": current.version + 1}).model_dump()
        )
        self._put(
            updated,
            {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(current.version)}},
            },
        )
        return updated

    def _put(self, batch: Batch, condition: dict[str, Any]) -> None:
        try:
            self._client.put_item(TableName=self._table, Item=item_from_batch(batch), **condition)
        except client_error() as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise StaleWriteError(f"batch {batch.id} changed concurrently") from None

    def get(self, batch_id: str) -> Batch | None:
        item = self._client.get_item(
            TableName=self._table, Key={"id": {"S": batch_id}}, ConsistentRead=True
        ).get("Item")
        return batch_from_item(item) if item else None

    def list_by_owner(
        self, owner: str, *, limit: int, next_token: str | None
    ) -> tuple[list[Batch], str | None]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": owner}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token:
            query["ExclusiveStartKey"] = decode_page_token(next_token, owner)
        answer = self._client.query(**query)
        start = answer.get("LastEvaluatedKey")
        token = encode_page_token(start) if start else None
        return [batch_from_item(item) for item in answer.get("Items", [])], token


class GenerationBatchReader:
    """BatchGetItem of up to 100 generation records (eventually consistent: a batch's counts are
    a progress figure; each line's own record is read consistently where it matters)."""

    def __init__(self, client: Any, table_name: str, *, attempts: int = 8) -> None:
        self._client = client
        self._table = table_name
        self._attempts = attempts

    def get_many(self, ids: list[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        request: dict[str, Any] = {self._table: {"Keys": [{"id": {"S": i}} for i in ids]}}
        for attempt in range(self._attempts):
            if not request.get(self._table, {}).get("Keys"):
                return found
            answer = self._client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self._table, []):
                generation = generation_from_item(item)
                found[generation.id] = generation
            request = answer.get("UnprocessedKeys") or {}
            if request:
                time.sleep(min(0.05 * 2**attempt, 1.0))  # DynamoDB's advice: back off on unprocessed keys
        if request.get(self._table, {}).get("Keys"):
            raise RuntimeError(f"BatchGetItem left {len(request[self._table]['Keys'])} keys unread")
        return found
