"""template.yaml as the template tests read it: with cfn-lint's own loader, before and after the
SAM transform, as plain dicts (read once per test session)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str
from cfnlint.template import Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()


def plain(node: Any) -> Any:
    """cfn-lint's node classes -> plain dicts/lists/str, for equality checks."""
    return json.loads(json.dumps(node, default=str))


def of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_}


@functools.cache
def source_template() -> dict[str, Any]:
    """The template as written (cfn-lint finds nothing to report while loading it)."""
    template, matches = decode_str(TEMPLATE_TEXT)
    assert not matches, matches
    return dict(plain(template))


@functools.cache
def deployed_template() -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation receives it."""
    template, _ = decode_str(TEMPLATE_TEXT)
    cfn = Template(str(ROOT / "template.yaml"), template, ["us-east-1"])
    assert cfn.transform() == []
    return dict(plain(cfn.template))


def event_filter(function: str) -> Any:
    """The FilterCriteria of `function`'s one stream/queue event, as Lambda applies them: a
    callable telling whether a record reaches the function (the local stack's own matcher)."""
    from local.aws.pollers import EventFilters

    (event,) = source_template()["Resources"][function]["Properties"]["Events"].values()
    return EventFilters(event["Properties"])
