"""Draw the operations dashboard (ops/dashboard.py) offline, from EMF lines: what an operator sees
on CloudWatch, made from the local stack's own metric lines.

    python -m ops.render [--logs .local/demo-logs] [--out docs/img/dashboard.png] [--period 2]

It reads every `*.log` in the logs directory (the local stack writes one per function, see
local/aws/logs.py; `names.json` maps logical ids to the function names the `AWS/Lambda` lines
carry), takes each EMF line's metrics for each of its dimension sets, as CloudWatch does, and for
each widget aggregates each metric per period with the widget's statistic (Sum, Maximum, Minimum,
Average, SampleCount, pNN). A widget whose metrics have no datapoint says "no data", as on
CloudWatch. The grid is the dashboard's own (widget positions and sizes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.dashboard import COLUMNS, WIDGETS, Metric, Ref, Widget, layout

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOGS = ROOT / ".local" / "demo-logs"
DEFAULT_OUT = ROOT / "docs" / "img" / "dashboard.png"

Key = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, metric name, dimensions


@dataclass(frozen=True)
class Point:
    at: float  # epoch seconds
    value: float


@dataclass
class Series:
    label: str
    times: list[float]
    values: list[float]


@dataclass
class Panel:
    title: str
    series: list[Series]

    @property
    def has_data(self) -> bool:
        return any(s.values for s in self.series)


def read_emf(lines: Iterable[str]) -> dict[Key, list[Point]]:
    """The datapoints of EMF lines (other lines are skipped), by metric and dimension set."""
    points: dict[Key, list[Point]] = defaultdict(list)
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        meta = record.get("_aws") if isinstance(record, dict) else None
        if not isinstance(meta, dict) or "CloudWatchMetrics" not in meta:
            continue
        at = float(meta.get("Timestamp", 0)) / 1000
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive.get("Dimensions") or [[]]:
                dims = frozenset((name, str(record[name])) for name in dimension_set if name in record)
                for metric in directive.get("Metrics", []):
                    raw = record.get(metric["Name"])
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float) and not isinstance(value, bool):
                            points[(directive["Namespace"], metric["Name"], dims)].append(
                                Point(at, float(value))
                            )
    return points


def read_logs(directory: Path) -> tuple[dict[Key, list[Point]], dict[str, str]]:
    names_file = directory / "names.json"
    names = json.loads(names_file.read_text()) if names_file.exists() else {}
    lines: list[str] = []
    for path in sorted(directory.glob("*.log")):
        lines += path.read_text().splitlines()
    return read_emf(lines), names


def statistic(stat: str, values: Sequence[float]) -> float:
    """CloudWatch's statistic of one period's values."""
    if stat == "Sum":
        return sum(values)
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):  # nearest rank
        ordered = sorted(values)
        rank = math.ceil(float(stat[1:]) / 100 * len(ordered))
        return ordered[min(max(rank, 1), len(ordered)) - 1]
    raise ValueError(f"unknown statistic {stat!r}")


def metric_key(metric: Metric, names: Mapping[str, str]) -> Key:
    dims = frozenset(
        (name, names.get(value.logical_id, value.logical_id) if isinstance(value, Ref) else value)
        for name, value in metric.dimensions
    )
    return metric.namespace, metric.name, dims


def series(metric: Metric, points: Sequence[Point], period: float, start: float) -> Series:
    buckets: dict[int, list[float]] = defaultdict(list)
    for point in points:
        buckets[int((point.at - start) // period)].append(point.value)
    slots = sorted(buckets)
    return Series(
        metric.shown,
        [start + (slot + 0.5) * period for slot in slots],
        [statistic(metric.stat, buckets[slot]) for slot in slots],
    )


def panels(
    points: Mapping[Key, list[Point]],
    names: Mapping[str, str],
    *,
    period: float,
    widgets: Sequence[Widget] = WIDGETS,
) -> list[Panel]:
    every = [p.at for ps in points.values() for p in ps]
    start = min(every) if every else 0.0
    return [
        Panel(
            widget.title,
            [series(m, points.get(metric_key(m, names), []), period, start) for m in widget.metrics],
        )
        for widget in widgets
    ]


def draw(panels_: Sequence[Panel], out: Path, *, period: float, widgets: Sequence[Widget] = WIDGETS) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    placed = layout(tuple(widgets))
    rows = max(y + w.height for w, _, y in placed)
    cell = 0.62  # inches per grid unit
    figure = plt.figure(figsize=(COLUMNS * cell, rows * cell + 0.9), dpi=80)
    figure.suptitle(
        f"videogen operations (local run, {period:g} s periods; deployed: 5 min)",
        fontsize=14,
        x=0.01,
        ha="left",
    )
    top = 1 - 0.9 / (rows * cell + 0.9)
    starts = [t for p in panels_ for s in p.series for t in s.times]
    origin = min(starts) if starts else 0.0
    span = (max(starts) - origin if starts else 0.0) + period / 2  # one time axis for every widget
    for (widget, x, y), panel in zip(placed, panels_, strict=True):
        left, width = (x + 0.7) / COLUMNS, (widget.width - 1.0) / COLUMNS
        height = (widget.height - 2.2) / rows * top
        bottom = top - (y + widget.height - 1.2) / rows * top
        axes = figure.add_axes((left, bottom, width, height))
        axes.set_title(panel.title, fontsize=10, loc="left")
        axes.set_ylabel(widget.unit, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
        if not panel.has_data:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", color="grey", transform=axes.transAxes)
            axes.set_xticks([])
            axes.set_yticks([])
            continue
        for s in panel.series:
            if s.values:
                axes.plot([t - origin for t in s.times], s.values, marker="o", markersize=3, label=s.label)
        axes.set_ylim(bottom=0)
        axes.set_xlim(-period / 2, span)
        axes.set_xlabel("seconds into the run", fontsize=7)
        axes.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.28), ncol=3, frameon=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return figure


def render(logs: Path, out: Path, *, period: float = 2.0) -> list[Panel]:
    points, names = read_logs(logs)
    if not points:
        raise SystemExit(f"no EMF lines in {logs}/*.log: run make demo first")
    drawn = panels(points, names, period=period)
    draw(drawn, out, period=period)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS, help="the local stack's log directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--period", type=float, default=2.0, help="seconds per point (default 2)")
    args = parser.parse_args(argv)
    drawn = render(args.logs, args.out, period=args.period)
    with_data = sum(p.has_data for p in drawn)
    print(f"wrote {args.out}: {len(drawn)} widgets, {with_data} with data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
