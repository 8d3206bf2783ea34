"""The local picture of the dashboard: the local stack's log files get each function's JSON lines
and Lambda's own metrics line, and ops/render.py turns EMF lines (made here by Powertools Metrics
itself) into the dashboard's widgets, with CloudWatch's statistics per period."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools import Logger, Metrics
from matplotlib.image import imread

from local.aws.logs import FunctionLogs
from ops import dashboard, render

NAMES = {"ApiFunction": "videogen-local-ApiFunction", "PollerFunction": "videogen-local-PollerFunction"}


def emf_lines(**counts: list[float]) -> list[str]:
    """What Powertools Metrics prints for these metrics (one flush)."""
    metrics = Metrics(namespace=dashboard.NAMESPACE, service=dashboard.SERVICE)
    for name, values in counts.items():
        for value in values:
            metrics.add_metric(name=name, unit="Count", value=value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        metrics.flush_metrics()
    return out.getvalue().splitlines()


def test_a_function_s_json_lines_and_lambdas_own_line_go_to_its_file(tmp_path: Path) -> None:
    terminal = io.StringIO()
    saved = sys.stdout
    sys.stdout = terminal
    logs = FunctionLogs(tmp_path, NAMES)
    try:
        logs.install()
        log = Logger(service="render-test-logs")  # made after install: writes to sys.stdout

        def handler(event: dict, context: object) -> str:
            log.info("inside", extra={"generation_id": "gen_1"})
            for line in emf_lines(GenerationsSubmitted=[1]):
                print(line)
            print("the demo's story")
            if event.get("fail"):
                raise RuntimeError("boom")
            return "ok"

        wrapped = logs.wrap("ApiFunction", handler)
        assert wrapped({}, None) == "ok"
        with pytest.raises(RuntimeError):
            wrapped({"fail": True}, None)
        print("between invocations")
    finally:
        logs.uninstall()
        sys.stdout = saved

    written = [json.loads(line) for line in (tmp_path / "ApiFunction.log").read_text().splitlines()]
    assert [r.get("message") for r in written if "message" in r] == ["inside", "inside"]
    assert written[0]["generation_id"] == "gen_1"
    lambda_lines = [r for r in written if r.get("FunctionName") == NAMES["ApiFunction"]]
    assert [r["Errors"] for r in lambda_lines] == [0, 1] and all(r["Duration"] >= 0 for r in lambda_lines)
    assert sum(1 for r in written if "GenerationsSubmitted" in r) == 2
    shown = terminal.getvalue()
    assert "the demo's story" in shown and "between invocations" in shown and '"inside"' in shown
    assert "GenerationsSubmitted" not in shown  # metrics go to the file, not the terminal
    assert json.loads((tmp_path / "names.json").read_text()) == NAMES


def test_statistics_are_cloudwatchs() -> None:
    values = [float(v) for v in range(1, 11)]
    assert render.statistic("Sum", values) == 55
    assert render.statistic("Maximum", values) == 10 and render.statistic("Minimum", values) == 1
    assert render.statistic("p50", values) == 5 and render.statistic("p90", values) == 9
    assert render.statistic("p95", values) == 10 and render.statistic("SampleCount", values) == 10


def test_the_picture_has_the_dashboards_widgets_with_the_samples_numbers(tmp_path: Path) -> None:
    from local.aws.logs import lambda_metrics_line

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "names.json").write_text(json.dumps(NAMES))
    api = emf_lines(GenerationsSubmitted=[1, 1, 1], ProviderErrors_auth=[1])
    api += [lambda_metrics_line(NAMES["ApiFunction"], 120.0, False, 1_000.0)]
    api += [lambda_metrics_line(NAMES["ApiFunction"], 80.0, True, 1_001.0)]
    (logs / "ApiFunction.log").write_text("\n".join(api) + "\nnot json\n")
    (logs / "PollerFunction.log").write_text("\n".join(emf_lines(GenerationsCompleted=[1, 1])) + "\n")
    out = tmp_path / "dashboard.png"

    drawn = render.render(logs, out, period=3600)

    assert [p.title for p in drawn] == [w.title for w in dashboard.WIDGETS]
    by_title = {p.title: {s.label: sum(s.values) for s in p.series if s.values} for p in drawn}
    assert by_title["Generations"] == {"submitted": 3, "completed": 2}
    assert by_title["Provider failures by class"] == {"auth": 1}
    assert by_title["Function errors"] == {"Api": 1}
    assert by_title["Function duration (p95)"] == {"Api": 120}
    assert by_title["Dead-letter queues"] == {}  # no local part emits AWS/SQS: "no data"
    image = imread(out)
    assert image.shape[0] > 600 and image.shape[1] > 600


def test_no_metric_lines_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ApiFunction.log").write_text('{"level": "INFO", "message": "no metrics here"}\n')
    with pytest.raises(SystemExit, match="run make demo first"):
        render.render(tmp_path, tmp_path / "out.png")
