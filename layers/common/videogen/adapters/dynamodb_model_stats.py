"""Per-model duration statistics in DynamoDB (ModelStatsTable): one item per model, with the
count, sum and sum of squares of its completions' log-durations. Each completion is one
UpdateItem ADD (atomic, no read, no condition: concurrent completions never conflict); a read is
one GetItem, cached by PollSchedule. Eventually consistent reads: a completion a second old
missing from a first poll's estimate changes nothing that matters."""

from __future__ import annotations

from typing import Any

from videogen.domain.polling import DurationSums


class DynamoModelStats:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, model: str, log_seconds: float) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"model": {"S": model}},
            UpdateExpression="ADD #n :one, #s :x, #q :xx",
            ExpressionAttributeNames={"#n": "count", "#s": "sum_log", "#q": "sum_log_sq"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":x": {"N": f"{log_seconds:.9g}"},
                ":xx": {"N": f"{log_seconds * log_seconds:.9g}"},
            },
        )

    def read(self, model: str) -> DurationSums | None:
        item = self._client.get_item(TableName=self._table, Key={"model": {"S": model}}).get("Item")
        if not item:
            return None
        return DurationSums(
            count=float(item["count"]["N"]),
            total=float(item["sum_log"]["N"]),
            squares=float(item["sum_log_sq"]["N"]),
        )
