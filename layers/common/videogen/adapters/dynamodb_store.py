"""DynamoDB access for generation records. Every write is conditional: creation on the id being
new, every later write on the version the writer read. A lost race surfaces as StaleWriteError,
never as a silently overwritten record.

A write whose answer is lost (it landed, then the connection dropped or DynamoDB answered 500)
is retried by botocore, and the retry meets its own write: ConditionalCheckFailed. That is not
a lost race: each write carries a random `write_token`, and the condition failure returns the
stored item (ReturnValuesOnConditionCheckFailure=ALL_OLD, no extra read); when the stored item
holds this write's token, the write landed and succeeds. Without it a landed record creation
would fail the request and a landed completion would be counted as another writer's."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from videogen.domain.errors import RequestValidationError
from videogen.domain.models import Driver, Generation, Status
from videogen.domain.ports import StaleWriteError
from videogen.lazy import client_error, lazy_import, once

OWNER_INDEX = "by-owner"
DUE_INDEX = "due"
# The attribute naming the write that stored an item (see the module's docstring); not a field
# of the generation.
WRITE_TOKEN = "write_token"  # noqa: S105 (an attribute name, no secret)
# A page token's key values are ids, owners (at most 128 characters) and times.
MAX_TOKEN_KEY_BYTES = 256

# boto3's DynamoDB (de)serializer, imported on first use (boto3 costs a cold start about 0.3 s).
_types = lazy_import("boto3.dynamodb.types")
_serializer = once(lambda: _types.TypeSerializer())
_deserializer = once(lambda: _types.TypeDeserializer())


def shard_of(generation_id: str, shards: int) -> str:
    """Stable shard of the due-index for a generation: spreads active jobs over partitions."""
    digest = hashlib.blake2b(generation_id.encode(), digest_size=4).digest()
    return str(int.from_bytes(digest, "big") % shards)


def _to_dynamo(value: Any) -> Any:
    # DynamoDB numbers are Decimals; JSON floats (cfg_scale 0.5) must be converted first.
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def item_from_generation(generation: Generation, *, due_shards: int) -> dict[str, Any]:
    """The DynamoDB item (attribute values) of a generation, with its due-index keys."""
    data = generation.model_dump(mode="json", exclude_none=True)
    if generation.due_for_poller:
        data["due_shard"] = shard_of(generation.id, due_shards)
    elif generation.is_terminal or generation.driver is not Driver.WORKFLOW:
        data.pop("next_poll_at", None)  # sparse index: out of `due` once not poller-driven/active
    # A workflow-driven record keeps its next poll time (without `due_shard` it is in no index):
    # its Fetch reads it back after the dispatcher submitted it, and waits as the schedule says.
    serializer = _serializer()
    return {k: serializer.serialize(v) for k, v in _to_dynamo(data).items()}


def generation_from_item(item: Mapping[str, Any]) -> Generation:
    """The generation of a DynamoDB item, as read from the table or from a stream image."""
    deserializer = _deserializer()
    plain = {k: _from_dynamo(deserializer.deserialize(v)) for k, v in item.items()}
    plain.pop("due_shard", None)
    plain.pop(WRITE_TOKEN, None)
    return Generation.model_validate(plain)


class GenerationStore:
    """Generation records in one DynamoDB table (see template.yaml: GenerationsTable).

    Uses the low-level client (thread-safe, unlike boto3 resources) so one store serves a
    whole concurrent sweep."""

    def __init__(self, client: Any, table_name: str, *, due_shards: int) -> None:
        self._client = client
        self._table = table_name
        self.due_shards = due_shards

    def _item(self, generation: Generation) -> dict[str, Any]:
        return item_from_generation(generation, due_shards=self.due_shards)

    # -- writes ---------------------------------------------------------------------------
    def create(self, generation: Generation) -> Generation:
        self._put(
            generation,
            {"ConditionExpression": "attribute_not_exists(id)"},
            f"generation {generation.id} already exists",
        )
        return generation

    def save(self, current: Generation, **changes: Any) -> Generation:
        """Write `current` with `changes` applied, only if the stored version is still
        `current.version`. Returns the new record (version + 1)."""
        updated = current.model_copy(update={**changes, "version": current.version + 1})
        updated = Generation.model_validate(updated.model_dump())  # re-validate the changed fields
        condition = {
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": str(current.version)}},
        }
        self._put(updated, condition, f"generation {current.id} changed concurrently")
        return updated

    def _put(self, generation: Generation, condition: dict[str, Any], conflict: str) -> None:
        """One conditional PutItem; StaleWriteError(`conflict`) when another write got there
        first, success when the item stored is this very write (its answer was lost, botocore's
        retry met it)."""
        token = secrets.token_hex(8)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**self._item(generation), WRITE_TOKEN: {"S": token}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        except client_error() as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if own_write(exc.response.get("Item"), token):
                return
            raise StaleWriteError(conflict) from None

    # -- reads ----------------------------------------------------------------------------
    def get(self, generation_id: str) -> Generation | None:
        answer = self._client.get_item(
            TableName=self._table, Key={"id": {"S": generation_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return generation_from_item(item) if item else None

    def list_by_owner(
        self, owner: str, *, status: Status | None, limit: int, next_token: str | None
    ) -> tuple[list[Generation], str | None]:
        """A page of the owner's generations, newest first. The token is opaque to callers and
        bound to the owner: another owner's token is refused."""
        start = decode_page_token(next_token, owner) if next_token else None
        found: list[Generation] = []
        for _ in range(20):  # bounded: a sparse status filter can't turn one call into a table walk
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": OWNER_INDEX,
                "KeyConditionExpression": "#o = :o",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":o": {"S": owner}},
                "ScanIndexForward": False,
                "Limit": limit - len(found),
            }
            if status is not None:
                query["FilterExpression"] = "#s = :s"
                query["ExpressionAttributeNames"]["#s"] = "status"
                query["ExpressionAttributeValues"][":s"] = {"S": status.value}
            if start:
                query["ExclusiveStartKey"] = start
            answer = self._client.query(**query)
            found.extend(generation_from_item(item) for item in answer.get("Items", []))
            start = answer.get("LastEvaluatedKey")
            if not start or len(found) >= limit:
                break
        return found, encode_page_token(start) if start else None

    def due(self, shard: str, now: float, *, page_size: int = 1000) -> Iterator[Generation]:
        """Active poller-driven generations of one shard whose next poll time has come. Reads
        only due items (key condition), so the cost follows active jobs, not the table size.
        Pages are large (a shard's due items usually fit one; DynamoDB still stops a page at
        1 MB): each query is a round trip that the sweep's reader waits for."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :s AND next_poll_at <= :now",
            "ExpressionAttributeValues": {":s": {"S": shard}, ":now": {"N": str(int(now))}},
            "Limit": page_size,
        }
        while True:
            answer = self._client.query(**query)
            for item in answer.get("Items", []):
                yield generation_from_item(item)
            if "LastEvaluatedKey" not in answer:
                return
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


# -- pagination tokens (the by-owner index's start keys: generations, batches) ---------------
def encode_page_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_page_token(token: str, owner: str) -> dict[str, Any]:
    """The start key of a token this API gave `owner`. Anything else (another owner's token,
    a key of another shape, a number or an empty string where DynamoDB expects a string
    key) is a RequestValidationError: passed on, DynamoDB would refuse it with a
    ValidationException, or botocore would fail to encode it, and the caller would get a 502."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        valid = (
            isinstance(key, dict)
            and set(key) == {"id", "owner", "created_at"}
            and all(_is_string_key(value) for value in key.values())
            and key["owner"] == {"S": owner}
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise RequestValidationError(
            "next_token is not valid",
            details=[{"field": "next_token", "message": "not a token from this API"}],
        )
    return dict(key)


def own_write(stored: Mapping[str, Any] | None, token: str) -> bool:
    """Whether the item a failed condition returned was written with `token`."""
    return ((stored or {}).get(WRITE_TOKEN) or {}).get("S") == token


def _is_string_key(value: Any) -> bool:
    """`{"S": text}`, text non-empty, encodable as UTF-8 (no lone surrogate) and no longer than
    any id, owner or time this API writes (DynamoDB caps a sort key at 1,024 bytes)."""
    if not (isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)):
        return False
    try:
        size = len(value["S"].encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return 0 < size <= MAX_TOKEN_KEY_BYTES
