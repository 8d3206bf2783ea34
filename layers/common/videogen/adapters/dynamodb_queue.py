"""The submit queue's DynamoDB parts, in QueueTable (template.yaml):

- queue entries: `queue` = the provider account's queue name, `rank` = the fair rank
  (logic/queue.py), with the generation id and owner; the `by-owner` index (KEYS_ONLY) answers
  "what is this owner's last rank";
- counters (`queue` = "counters"): each owner's queued entries and the queue's depth, changed in
  the same transaction as the entries, so the per-owner cap is exact;
- the semaphore: one item (`queue` = "semaphore", `rank` = the queue name) holding the learned
  limit and the slot leases (videogen.domain.capacity), rewritten whole with a put conditional on
  the version read.

A separate table, not indexes on GenerationsTable: CloudFormation adds one global secondary index
per table update, this table's indexes exist from its creation, and queue churn stays out of the
generations' stream."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from videogen.domain.capacity import Capacity, CapacityRules
from videogen.domain.ports import QueueEntry
from videogen.lazy import client_error

OWNER_INDEX = "by-owner"
SEMAPHORE_PARTITION = "semaphore"
COUNTER_PARTITION = "counters"  # per owner and per queue: what is queued (no `owner`: not indexed)
# Lost races on the semaphore before giving up for this round (a later wake-up tries again).
SEMAPHORE_ATTEMPTS = 12


def _n(value: float) -> dict[str, str]:
    return {"N": str(Decimal(str(value)))}


class DynamoQueue:
    """QueueIndex over QueueTable's entries of one queue."""

    def __init__(self, client: Any, table_name: str, *, queue: str = "aiml") -> None:
        self._client = client
        self._table = table_name
        self.queue = queue

    def _counter(self, name: str) -> dict[str, Any]:
        return {"queue": {"S": COUNTER_PARTITION}, "rank": {"S": f"{self.queue}#{name}"}}

    def add(self, entry: QueueEntry, cap: int) -> bool:
        """The entry, the owner's count + 1 (conditional on staying within `cap`) and the depth
        + 1, in one transaction. False when the owner is at its cap (nothing written)."""
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "queue": {"S": self.queue},
                                "rank": {"S": entry.rank},
                                "owner": {"S": entry.owner},
                                "generation_id": {"S": entry.generation_id},
                                "added_epoch": _n(entry.added_epoch),
                            },
                            "ConditionExpression": "attribute_not_exists(#r)",
                            "ExpressionAttributeNames": {"#r": "rank"},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._counter(f"owner#{entry.owner}"),
                            "UpdateExpression": "ADD queued :one",
                            "ConditionExpression": "attribute_not_exists(queued) OR queued < :cap",
                            "ExpressionAttributeValues": {":one": _n(1), ":cap": _n(cap)},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._counter("depth"),
                            "UpdateExpression": "ADD queued :one",
                            "ExpressionAttributeValues": {":one": _n(1)},
                        }
                    },
                ]
            )
        except client_error() as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False  # at the cap (or the entry exists: a retried add, already counted)
            raise
        return True

    def remove(self, rank: str, owner: str) -> None:
        """The entry, the owner's count - 1 and the depth - 1, in one transaction, only if the
        entry is there (a second removal changes nothing)."""
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"queue": {"S": self.queue}, "rank": {"S": rank}},
                            "ConditionExpression": "attribute_exists(#r)",
                            "ExpressionAttributeNames": {"#r": "rank"},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._counter(f"owner#{owner}"),
                            "UpdateExpression": "ADD queued :minus",
                            "ExpressionAttributeValues": {":minus": _n(-1)},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._counter("depth"),
                            "UpdateExpression": "ADD queued :minus",
                            "ExpressionAttributeValues": {":minus": _n(-1)},
                        }
                    },
                ]
            )
        except client_error() as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise

    def _counted(self, name: str) -> int:
        item = self._client.get_item(TableName=self._table, Key=self._counter(name), ConsistentRead=True).get(
            "Item"
        )
        return max(0, int(item["queued"]["N"])) if item and "queued" in item else 0

    def head(self, limit: int) -> list[QueueEntry]:
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="#q = :q",
            ExpressionAttributeNames={"#q": "queue"},
            ExpressionAttributeValues={":q": {"S": self.queue}},
            ConsistentRead=True,
            Limit=limit,
        )
        return [
            QueueEntry(
                rank=item["rank"]["S"],
                generation_id=item["generation_id"]["S"],
                owner=item["owner"]["S"],
                added_epoch=float(item.get("added_epoch", {}).get("N", "0")),
            )
            for item in answer.get("Items", [])
        ]

    def _count(self, **query: Any) -> int:
        total = 0
        while True:
            answer = self._client.query(TableName=self._table, Select="COUNT", **query)
            total += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                return total
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def ahead_of(self, rank: str) -> int:
        return self._count(
            KeyConditionExpression="#q = :q AND #r < :r",
            ExpressionAttributeNames={"#q": "queue", "#r": "rank"},
            ExpressionAttributeValues={":q": {"S": self.queue}, ":r": {"S": rank}},
        )

    def depth(self) -> int:
        return self._counted("depth")

    def owner_last(self, owner: str) -> str | None:
        answer = self._client.query(
            TableName=self._table,
            IndexName=OWNER_INDEX,
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": {"S": owner}},
            ScanIndexForward=False,
            Limit=1,
        )
        items = answer.get("Items", [])
        return str(items[0]["rank"]["S"]) if items else None

    def owner_count(self, owner: str) -> int:
        return self._counted(f"owner#{owner}")


class DynamoSemaphore:
    """Semaphore: the capacity item of one queue, rewritten whole under its version."""

    def __init__(self, client: Any, table_name: str, rules: CapacityRules, *, queue: str = "aiml") -> None:
        self._client = client
        self._table = table_name
        self.rules = rules
        self._key = {"queue": {"S": SEMAPHORE_PARTITION}, "rank": {"S": queue}}

    def read(self) -> Capacity:
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item")
        if not item:
            return Capacity.initial(self.rules)
        leases = {gid: float(v["N"]) for gid, v in item.get("leases", {}).get("M", {}).items()}
        return Capacity(
            limit=self.rules.bound(float(item["limit"]["N"])),
            successes=int(item.get("successes", {}).get("N", "0")),
            decreased_at=float(item.get("decreased_at", {}).get("N", "0")),
            throttles=int(item.get("throttles", {}).get("N", "0")),
            leases=leases,
            waiting=int(item.get("waiting", {}).get("N", "0")),
            version=int(item["version"]["N"]),
        )

    def _write(self, current: Capacity, new: Capacity) -> bool:
        item = {
            **self._key,
            "limit": _n(new.limit),
            "successes": _n(new.successes),
            "decreased_at": _n(new.decreased_at),
            "throttles": _n(new.throttles),
            "waiting": _n(new.waiting),
            "leases": {"M": {gid: _n(until) for gid, until in new.leases.items()}},
            "version": _n(current.version + 1),
        }
        condition: dict[str, Any]
        if current.version == 0:
            condition = {"ConditionExpression": "attribute_not_exists(version)"}
        else:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": _n(current.version)},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except client_error() as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update(self, change: Callable[[Capacity], Capacity | None]) -> Capacity | None:
        for attempt in range(SEMAPHORE_ATTEMPTS):
            if attempt:
                # a lost race: another writer changed the item; spread the retries of many
                # concurrent writers (a sweep's threads releasing slots) apart
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 5)))  # noqa: S311 (jitter)
            current = self.read()
            new = change(current)
            if new is None:
                return None
            if self._write(current, new):
                return replace(new, version=current.version + 1)
        return None
