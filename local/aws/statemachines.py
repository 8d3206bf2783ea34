"""template.yaml's state machines on moto, and waiting for their executions.

Each AWS::Serverless::StateMachine (or AWS::StepFunctions::StateMachine) is created from its own
definition: `DefinitionUri` (a file next to the template) or an inline `Definition`, with its
`DefinitionSubstitutions` resolved by local/aws/cfn.py (`!GetAtt WorkflowFunction.Arn` -> the ARN of
the function local/aws/lambdas.py created in moto) and applied to every `${name}` as CloudFormation
does; a placeholder without a substitution is an error here rather than a broken ARN at run time.
moto executes the definition when the server's `stepfunctions.execute_state_machine` config is on
(local/stack.py turns it on); its Lambda tasks reach the real handlers through local/aws/lambdas.py.

Not applied locally: the state machine's role policies (moto does not enforce IAM) and its
execution logging (moto writes no execution logs); the tracing flag is passed on.

Distributed Map (statemachine/batch.asl.json) on moto 5.2.5, read from its source
(moto/stepfunctions/parser/asl/component/state/exec/state_map/):
- ItemReader: executed. `arn:aws:states:::s3:getObject` with ReaderConfig InputType JSON (an
  array) or CSV, and listObjectsV2, read through moto's own S3. No JSONL, no MANIFEST input type:
  the batch definition reads a JSON item file that its Prepare step writes, so this does not show.
- MaxConcurrency / MaxConcurrencyPath: executed (that many worker threads in the execution).
- ItemProcessor (Mode DISTRIBUTED): executed, but each child runs inside the parent execution
  (worker threads with a map run record), not as a child execution of its own: there is no
  child execution to list or describe, and a child's Retry/Catch run in the worker.
- ItemBatcher: NOT parsed (moto's ASL grammar has no ItemBatcher; CreateStateMachine refuses the
  definition). `for_moto` below rewrites it into an ItemSelector that hands each child the shape an
  ItemBatcher batch has, `{"Items": [item], "BatchInput": {...}}`, one item per child: the child
  code is the same, only the batch size differs (1 locally, MaxItemsPerBatch in AWS).
- ResultWriter: executed only in part: moto puts a manifest.json with empty ResultFiles under the
  prefix, never the SUCCEEDED/FAILED result files. The batch does not read them (its results
  manifest is written by its Track step), so nothing local depends on them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.aws.cfn import LocalResource, Template, TemplateError

STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    name: str
    type: str  # STANDARD or EXPRESS
    definition: dict[str, Any]  # substitutions applied
    tracing: bool


def substitute(text: str, values: Mapping[str, Any]) -> str:
    """Replace every ${name} of a definition by its substitution."""
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise TemplateError(f"definition placeholders without a DefinitionSubstitution: {missing}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def state_machine_specs(template: Template) -> dict[str, StateMachineSpec]:
    specs = {}
    for lid in template.of_type(*STATE_MACHINE_TYPES):
        props = template.properties(lid)
        if "DefinitionUri" in props:
            uri = props["DefinitionUri"]
            if not isinstance(uri, str):
                raise TemplateError(f"{lid}: only a local DefinitionUri file is supported locally")
            text = (template.root / uri).read_text()
        elif "Definition" in props:
            text = json.dumps(props["Definition"])
        elif "DefinitionString" in props:
            text = str(props["DefinitionString"])
        else:
            raise TemplateError(f"{lid}: no Definition, DefinitionString or DefinitionUri")
        definition = json.loads(substitute(text, props.get("DefinitionSubstitutions") or {}))
        tracing = props.get("Tracing") or props.get("TracingConfiguration") or {}
        specs[lid] = StateMachineSpec(
            logical_id=lid,
            name=str(props.get("Name") or props.get("StateMachineName") or template.physical_name(lid)),
            type=str(props.get("Type") or props.get("StateMachineType") or "STANDARD"),
            definition=definition,
            tracing=str(tracing.get("Enabled", False)).lower() == "true",
        )
    return specs


def for_moto(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition moto can execute: each Map's ItemBatcher (which moto's grammar lacks)
    becomes an ItemSelector giving each child `{"Items": [its item], "BatchInput": ...}`, the shape
    of a one-item batch. Everything else is unchanged (see the module's docstring)."""

    def adapt(states: dict[str, Any]) -> dict[str, Any]:
        adapted = {}
        for name, state in states.items():
            state = dict(state)
            batcher = state.pop("ItemBatcher", None)
            if batcher is not None:
                if "ItemSelector" in state:
                    raise TemplateError(f"{name}: ItemBatcher with an ItemSelector is not emulated locally")
                state["ItemSelector"] = {
                    "Items.$": "States.Array($$.Map.Item.Value)",
                    "BatchInput": batcher.get("BatchInput", {}),
                }
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    state[key] = {**state[key], "States": adapt(state[key]["States"])}
            if "Branches" in state:
                state["Branches"] = [{**b, "States": adapt(b["States"])} for b in state["Branches"]]
            adapted[name] = state
        return adapted

    return {**definition, "States": adapt(definition["States"])}


def create_state_machines(template: Template, *, sfn_client: Any, role_arn: str) -> dict[str, str]:
    """Create the template's state machines in moto; `Ref` to them then resolves to their ARN, as
    in CloudFormation. Call after the functions they invoke exist. Returns the ARNs by logical id."""
    arns = {}
    for lid, spec in state_machine_specs(template).items():
        arn = sfn_client.create_state_machine(
            name=spec.name,
            definition=json.dumps(for_moto(spec.definition)),
            roleArn=role_arn,
            type=spec.type,
            tracingConfiguration={"enabled": spec.tracing},
        )["stateMachineArn"]
        type_ = template.resources_doc[lid]["Type"]
        template.resources[lid] = LocalResource(
            lid, type_, spec.name, arn, {"Arn": arn, "Name": spec.name}, created=True
        )
        arns[lid] = str(arn)
    return arns


def wait_for_execution(
    sfn_client: Any, execution_arn: str, *, timeout: float = 60.0, interval: float = 0.1
) -> dict[str, Any]:
    """describe_execution once the execution has left RUNNING; TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn_client.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout:g} s")
        time.sleep(interval)
