"""Spend counters in DynamoDB (template.yaml: SpendTable), for videogen.logic.budget.

One partition per API key id (`owner`), sort key `key`:
- `day#2026-12-01`, `month#2026-12`: the key's credits in that UTC day / month;
- `model-day#2026-12-01#<model>`: credits and requests of one model on one day (GET /usage);
- `gen#<generation id>`: the reservation (estimate, day, month, model) and, once settled, the
  credits the provider reported (`settled`), so a generation is counted once however often its
  record changes.

Every change is an atomic `ADD`; a reservation is one TransactWriteItems whose day and month
updates are conditional on the counter staying within its limit, so two requests at the edge
cannot both pass: DynamoDB serialises the transactions and the second one's condition fails."""

from __future__ import annotations

from typing import Any

from videogen.domain.budgets import Limits, Reservation
from videogen.lazy import client_error

# The order of a reservation's transaction items (TransactionCanceledException's reasons follow it).
_MARKER, _DAY, _MONTH = 0, 1, 2


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class SpendCounters:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, owner: str, key: str) -> dict[str, Any]:
        return {"owner": _s(owner), "key": _s(key)}

    def _add(self, owner: str, key: str, credits: int, expires_at: int, limit: int = 0) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(owner, key),
            "UpdateExpression": "ADD credits :c SET expires_at = :t",
            "ExpressionAttributeValues": {":c": _n(credits), ":t": _n(expires_at)},
        }
        if limit:
            # within the limit after the add: credits + c <= limit
            update["ConditionExpression"] = "attribute_not_exists(credits) OR credits <= :room"
            update["ExpressionAttributeValues"][":room"] = _n(limit - credits)
        return {"Update": update}

    def reserve(self, reservation: Reservation, limits: Limits) -> str | None:
        r = reservation
        marker = {
            "Update": {
                "TableName": self._table,
                "Key": self._key(r.owner, f"gen#{r.generation_id}"),
                "UpdateExpression": (
                    "SET credits = :c, #day = :d, #month = :m, model = :model, expires_at = :t"
                ),
                "ConditionExpression": "attribute_not_exists(credits)",
                "ExpressionAttributeNames": {"#day": "day", "#month": "month"},
                "ExpressionAttributeValues": {
                    ":c": _n(r.credits),
                    ":d": _s(r.day),
                    ":m": _s(r.month),
                    ":model": _s(r.model),
                    ":t": _n(r.expires_at),
                },
            }
        }
        by_model = self._add(r.owner, f"model-day#{r.day}#{r.model}", r.credits, r.expires_at)
        by_model["Update"]["UpdateExpression"] = "ADD credits :c, requests :one SET expires_at = :t"
        by_model["Update"]["ExpressionAttributeValues"][":one"] = _n(1)
        items = [
            marker,
            self._add(r.owner, f"day#{r.day}", r.credits, r.expires_at, limits.daily),
            self._add(r.owner, f"month#{r.month}", r.credits, r.expires_at, limits.monthly),
            by_model,
        ]
        try:
            self._client.transact_write_items(TransactItems=items)
        except client_error() as exc:
            failed = _failed_items(exc)
            if _MARKER in failed:
                return None  # already reserved for this generation (a redelivered request)
            if _DAY in failed:
                return "daily"
            if _MONTH in failed:
                return "monthly"
            raise
        return None

    def settle(self, owner: str, generation_id: str, credits: int) -> bool:
        key = self._key(owner, f"gen#{generation_id}")
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if item is None or "settled" in item:
            return False
        estimate = int(item["credits"]["N"])
        day, month, model = item["day"]["S"], item["month"]["S"], item["model"]["S"]
        expires_at = int(item["expires_at"]["N"])
        delta = credits - estimate
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": key,
                    "UpdateExpression": "SET settled = :s",
                    "ConditionExpression": "attribute_not_exists(settled) AND credits = :e",
                    "ExpressionAttributeValues": {":s": _n(credits), ":e": _n(estimate)},
                }
            }
        ]
        if delta:
            # no limit here: the job is already paid, the counters must say so
            items += [
                self._add(owner, f"day#{day}", delta, expires_at),
                self._add(owner, f"month#{month}", delta, expires_at),
                self._add(owner, f"model-day#{day}#{model}", delta, expires_at),
            ]
        try:
            self._client.transact_write_items(TransactItems=items)
        except client_error() as exc:
            if _MARKER in _failed_items(exc):
                return False  # settled meanwhile by another delivery of the stream record
            raise
        return True

    def totals(self, owner: str, day: str, month: str) -> tuple[int, int]:
        answer = self._client.batch_get_item(
            RequestItems={
                self._table: {
                    "Keys": [self._key(owner, f"day#{day}"), self._key(owner, f"month#{month}")],
                    "ConsistentRead": True,
                }
            }
        )
        found = {
            i["key"]["S"]: int(i.get("credits", {"N": "0"})["N"]) for i in answer["Responses"][self._table]
        }
        return found.get(f"day#{day}", 0), found.get(f"month#{month}", 0)

    def by_model_day(self, owner: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#o = :o AND #k BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#o": "owner", "#k": "key"},
            "ExpressionAttributeValues": {
                ":o": _s(owner),
                ":a": _s(f"model-day#{first_day}#"),
                ":b": _s(f"model-day#{last_day}#\U0010ffff"),
            },
        }
        while True:
            page = self._client.query(**query)
            for item in page["Items"]:
                _, day, model = item["key"]["S"].split("#", 2)
                rows.append(
                    {
                        "day": day,
                        "model": model,
                        "credits": int(item.get("credits", {"N": "0"})["N"]),
                        "requests": int(item.get("requests", {"N": "0"})["N"]),
                    }
                )
            if "LastEvaluatedKey" not in page:
                return rows
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _failed_items(exc: Any) -> set[int]:
    """Indexes of the transaction items whose condition failed."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return set()
    reasons = exc.response.get("CancellationReasons") or []
    return {i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"}
