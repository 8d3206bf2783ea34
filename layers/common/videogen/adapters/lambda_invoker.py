"""The poller's self-invoke: one asynchronous invocation of the poller per delegated shard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


class LambdaShardInvoker:
    """Hands shards of a sweep to other invocations of a function (`{"shard": "<n>"}`)."""

    def __init__(self, client: Any, log: Any = None) -> None:
        self.client = client  # a boto3 Lambda client (or anything with its `invoke`)
        self.log = log

    def invoke_shards(self, function_arn: str, shards: Sequence[str]) -> list[str]:
        """Start one asynchronous sweep per shard; the shards that could not be handed off."""
        failed = []
        for shard in shards:
            try:
                self.client.invoke(
                    FunctionName=function_arn,
                    InvocationType="Event",
                    Payload=json.dumps({"shard": shard}).encode(),
                )
            except Exception as exc:  # noqa: BLE001 (whatever failed, this invocation sweeps the shard)
                if self.log is not None:
                    self.log.warning(
                        "fan-out invoke failed", extra={"shard": shard, "error": type(exc).__name__}
                    )
                failed.append(shard)
        return failed
