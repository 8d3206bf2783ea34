"""Starting a batch's run: one Step Functions execution per run, named after the batch and the
run's number, so a retried start finds its own execution instead of starting a second one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from videogen.lazy import client_error


class ExecutionStarter:
    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        try:
            answer = self._sfn.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(dict(payload))
            )
        except client_error() as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            # the same name and input: this run was started already (an answer lost on the way)
            prefix, machine = self._arn.split(":stateMachine:", 1)
            return f"{prefix}:execution:{machine}:{name}"
        return str(answer["executionArn"])
