"""The operations side of template.yaml: the dashboard is the one in ops/dashboard.py, names only
metrics that code emits and resources that exist; every alarm has a runbook in
docs/operations.md (and every runbook an alarm), notifies the optional topic, and watches a metric
that is emitted; the saved Logs Insights queries are the ones the docs show."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops import dashboard
from tests.templates import ROOT, of_type

OPERATIONS_DOC = (ROOT / "docs" / "operations.md").read_text()
LAYER = ROOT / "layers" / "common" / "videogen"
# Metrics other branches of issue 15 add in the same namespace (the submit queue, the poll
# timers); once they are merged, every name here must be emitted by code like the others.
PENDING: set[str] = set()  # every metric the dashboard shows is emitted by the code


def emitted_metric_names() -> set[str]:
    """Metric names the layer's code passes to add_metric / count, f-string prefixes expanded
    over videogen.domain.ports.ErrorClass."""
    from videogen.domain.ports import ErrorClass
    from videogen.logic.refresh import OUTCOME_METRICS

    names: set[str] = set(OUTCOME_METRICS.values())
    call = re.compile(r"""(?:add_metric|\.count|\.metric)\(\s*(f?)["']([A-Za-z_{}.]+)["']""")
    for path in LAYER.rglob("*.py"):
        for is_f, name in call.findall(path.read_text()):
            if is_f:
                prefix = name.split("{", 1)[0]
                names |= {prefix + c.value for c in ErrorClass}
            else:
                names.add(name)
    return names


def test_the_templates_dashboard_is_the_definition() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_dashboard.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hand_edit_of_the_dashboard_is_caught(tmp_path: Path) -> None:
    edited = tmp_path / "template.yaml"
    edited.write_text((ROOT / "template.yaml").read_text().replace('"Generations"', '"Videos"', 1))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_dashboard.py"), "--check", "--template", str(edited)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1


def test_dashboard_body_is_json_naming_resources_of_the_template(source: dict[str, Any]) -> None:
    (board,) = of_type(source, "AWS::CloudWatch::Dashboard").values()
    text = board["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", text))
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))
    assert len(body["widgets"]) == len(dashboard.WIDGETS)
    for name in names - {"AWS::Region"}:
        logical_id = name.partition(".")[0]
        assert logical_id in source["Resources"], name
    functions = {w for w in of_type(source, "AWS::Serverless::Function")}
    assert set(dashboard.FUNCTIONS) == functions  # every function has its errors, duration, throttles
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        for row in widget["properties"]["metrics"]:
            assert row[-1]["stat"] and row[-1]["label"]


def test_the_dashboard_names_metrics_code_emits() -> None:
    unknown = dashboard.app_metric_names() - emitted_metric_names() - PENDING
    assert not unknown, f"the dashboard shows metrics nothing emits: {sorted(unknown)}"


def alarms(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return of_type(source, "AWS::CloudWatch::Alarm")


def runbooks() -> set[str]:
    section = OPERATIONS_DOC.split("## Alarms and runbooks", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^### (\w+)$", section, flags=re.MULTILINE))


def test_every_alarm_has_a_runbook_and_every_runbook_an_alarm(source: dict[str, Any]) -> None:
    assert set(alarms(source)) == runbooks()


def test_alarms_cover_what_issue_15_names(source: dict[str, Any]) -> None:
    watched: dict[str, set[str]] = {}
    for name, alarm in alarms(source).items():
        props = alarm["Properties"]
        metrics = {props.get("MetricName")} | {
            m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m
        }
        watched[name] = {m for m in metrics if m}
    queues = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms(source).values()
        if a["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert queues == set(dashboard.DEAD_LETTER_QUEUES)  # every dead-letter queue not empty
    assert watched["PollerErrorsAlarm"] == {"Errors"}
    assert watched["ProviderAuthAlarm"] == {"ProviderErrors_auth", "ProviderPollErrors_auth"}
    assert watched["ProviderOutOfCreditsAlarm"] == {
        "ProviderErrors_out_of_credits",
        "ProviderPollErrors_out_of_credits",
    }
    assert watched["FlaggedSubmitsAlarm"] == {"GenerationsFlagged"}
    assert watched["QueueAgeAlarm"] == {"QueueWaitSeconds"}
    assert alarms(source)["QueueAgeAlarm"]["Properties"]["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
    app_metrics = {
        m for ms in watched.values() for m in ms if m not in {"Errors", "ApproximateNumberOfMessagesVisible"}
    }
    assert not app_metrics - emitted_metric_names() - PENDING


def test_every_alarm_notifies_the_optional_topic(source: dict[str, Any]) -> None:
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in alarms(source).items():
        assert alarm["Properties"].get("AlarmActions") == topic, name
        assert alarm["Properties"].get("OKActions") == topic, name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name
    assert source["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    parameter = source["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("arn:aws:sns:eu-west-1:123456789012:ops-alerts")
    assert not pattern.fullmatch("arn:aws:sqs:eu-west-1:123456789012:not-a-topic")


@pytest.mark.parametrize("resource", ["VideogenApi", "GenerationStateMachine"])
def test_api_and_workflow_are_traced_like_the_functions(source: dict[str, Any], resource: str) -> None:
    assert source["Globals"]["Function"]["Tracing"] == "Active"
    props = source["Resources"][resource]["Properties"]
    traced = props.get("TracingEnabled") if resource == "VideogenApi" else props["Tracing"]["Enabled"]
    assert traced is True


def test_saved_queries_are_the_ones_the_docs_show(source: dict[str, Any]) -> None:
    fenced = re.findall(r"^```logsinsights\n(.*?)^```", OPERATIONS_DOC, re.MULTILINE | re.DOTALL)
    shown = {block.strip() for block in fenced}
    queries = of_type(source, "AWS::Logs::QueryDefinition")
    assert len(queries) >= 3
    log_groups = {f"{fn}LogGroup" for fn in dashboard.FUNCTIONS}
    for name, query in queries.items():
        assert query["Properties"]["QueryString"].strip() in shown, name
        assert {g["Ref"] for g in query["Properties"]["LogGroupNames"]} == log_groups, name
