"""The operations dashboard, defined once: template.yaml's OperationsDashboard body
(scripts/gen_dashboard.py writes it) and the local picture (ops/render.py draws the same widgets
from the local stack's EMF lines) are both made from WIDGETS, so they cannot drift.

A metric names its namespace, name, statistic and dimensions; a dimension value may be a `Ref`
to a template resource (a function, a queue, the state machine), which the template body writes
as `${LogicalId}` (or `${LogicalId.Attribute}`) inside Fn::Sub and the local renderer resolves to
the local stack's names. The application metrics are Powertools' EMF metrics: namespace
`Videogen`, one dimension `service=videogen` (POWERTOOLS_SERVICE_NAME / _METRICS_NAMESPACE).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "Videogen"
SERVICE = "videogen"
PERIOD = 300  # seconds per point on the dashboard (the local picture uses a shorter one)
COLUMNS = 24  # CloudWatch's grid width
WIDTH, HEIGHT = 8, 6  # three widgets a row

# Why a provider call failed (videogen.domain.ports.ErrorClass): submit counts ProviderErrors_<class>.
ERROR_CLASSES = (
    "auth",
    "out_of_credits",
    "validation",
    "not_found",
    "rate_limited",
    "server",
    "timeout",
    "malformed_response",
    "connection",
)
FUNCTIONS = (
    "ApiFunction",
    "PollerFunction",
    "WorkflowFunction",
    "UploadFunction",
    "NotifierFunction",
    "WebhookFunction",
    "DispatcherFunction",
    "PollTimerFunction",
    "SpendFunction",
    "BatchFunction",
)
DEAD_LETTER_QUEUES = (
    "WebhookDeadLetterQueue",
    "PollerFailureQueue",
    "UploadDeadLetterQueue",
    "NotifierFailureQueue",
    "SpendFailureQueue",
)


@dataclass(frozen=True)
class Ref:
    """A template resource: `Ref` (`attribute` None) or `Fn::GetAtt` of it."""

    logical_id: str
    attribute: str | None = None

    def sub(self) -> str:
        return "${" + self.logical_id + (f".{self.attribute}" if self.attribute else "") + "}"


@dataclass(frozen=True)
class Metric:
    name: str
    stat: str = "Sum"
    label: str | None = None
    namespace: str = NAMESPACE
    dimensions: tuple[tuple[str, str | Ref], ...] = (("service", SERVICE),)

    @property
    def shown(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Widget:
    title: str
    metrics: tuple[Metric, ...]
    unit: str = "Count"  # the y axis' label
    stacked: bool = False
    width: int = WIDTH
    height: int = HEIGHT
    notes: str = field(default="", compare=False)  # what an operator reads it for (docs/operations.md)


def app(name: str, stat: str = "Sum", label: str | None = None) -> Metric:
    return Metric(name, stat, label)


def per_function(name: str, stat: str) -> tuple[Metric, ...]:
    return tuple(
        Metric(
            name,
            stat,
            label=fn.removesuffix("Function"),
            namespace="AWS/Lambda",
            dimensions=(("FunctionName", Ref(fn)),),
        )
        for fn in FUNCTIONS
    )


WIDGETS: tuple[Widget, ...] = (
    Widget(
        "Generations",
        (
            app("GenerationsSubmitted", label="submitted"),
            app("GenerationsCompleted", label="completed"),
            app("GenerationsFailed", label="failed"),
            app("GenerationsTimedOut", label="timed out"),
        ),
        notes="Submits against completions; failures and timeouts should stay a thin band.",
    ),
    Widget(
        "Provider failures by class",
        (
            *(app(f"ProviderErrors_{c}", label=c) for c in ERROR_CLASSES),
            app("ProviderPollErrors", label="poll errors"),
            app("UnknownProviderStatus", label="unknown status"),
        ),
        stacked=True,
        notes="Submit failures by ErrorClass, polls that failed, and statuses the provider added.",
    ),
    Widget(
        "Submit queue",
        (
            app("QueueDepth", "Maximum", "depth (max)"),
            app("QueueExpired", label="expired"),
        ),
        notes="Requests waiting for a provider slot; expired ones were failed without a provider call.",
    ),
    Widget(
        "Queue wait",
        (
            app("QueueWaitSeconds", "p50", "p50"),
            app("QueueWaitSeconds", "p90", "p90"),
            app("QueueWaitSeconds", "Maximum", "max"),
        ),
        unit="Seconds",
        notes="Time from accepted to sent to the provider; the QueueAgeAlarm watches the max.",
    ),
    Widget(
        "Learned provider limit",
        (
            app("ProviderLimit", "Minimum", "limit (min)"),
            app("ProviderThrottles", label="429s"),
        ),
        notes="The concurrency the submit queue learned from the provider's 429s, and the 429s themselves.",
    ),
    Widget(
        "Detection delay",
        (
            app("DetectionDelaySeconds", "p50", "p50"),
            app("DetectionDelaySeconds", "p90", "p90"),
            app("DetectionDelaySeconds", "Maximum", "max"),
        ),
        unit="Seconds",
        notes="From the provider finishing a job to the stack noticing it (poll timers).",
    ),
    Widget(
        "Archive errors and flags",
        (
            app("ArchiveErrors", label="archive errors"),
            app("GenerationsFlagged", label="flagged submits"),
        ),
        notes="Videos that could not be copied to S3 (retried), submits whose outcome is unknown.",
    ),
    Widget(
        "Events and webhooks",
        (
            app("EventsPublished", label="events published"),
            app("EventPublishErrors", label="event errors"),
            app("WebhooksQueued", label="queued"),
            app("WebhooksDelivered", label="delivered"),
            app("WebhooksRetried", label="retried"),
            app("WebhooksFailed", label="failed (dead-lettered)"),
        ),
        notes="Completion events on the bus and webhook delivery outcomes.",
    ),
    Widget(
        "Uploads",
        (
            app("UploadsAccepted", label="accepted"),
            app("UploadsRejected", label="rejected"),
            app("UploadsDuplicate", label="duplicate"),
            app("UploadsSkipped", label="skipped"),
        ),
        notes="Images dropped in the uploads bucket and what became of them.",
    ),
    Widget(
        "Poller sweeps",
        (
            app("SweepDue", label="due"),
            app("SweepDeferred", label="deferred"),
            app("SweepFanOut", label="fanned out"),
        ),
        notes="Generations due per sweep; deferred ones did not fit in one invocation.",
    ),
    Widget(
        "Function errors",
        per_function("Errors", "Sum"),
        notes="Invocations that raised, per function.",
    ),
    Widget(
        "Function duration (p95)",
        per_function("Duration", "p95"),
        unit="Milliseconds",
        notes="95th percentile of each function's duration.",
    ),
    Widget(
        "Function throttles",
        per_function("Throttles", "Sum"),
        notes="Invocations Lambda refused for lack of concurrency.",
    ),
    Widget(
        "Workflow executions",
        tuple(
            Metric(name, "Sum", label, "AWS/States", (("StateMachineArn", Ref("GenerationStateMachine")),))
            for name, label in (
                ("ExecutionsSucceeded", "succeeded"),
                ("ExecutionsFailed", "failed"),
                ("ExecutionsTimedOut", "timed out"),
                ("ExecutionsAborted", "aborted"),
            )
        ),
        notes="Step Functions executions of the generation workflow.",
    ),
    Widget(
        "Dead-letter queues",
        tuple(
            Metric(
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                queue,
                "AWS/SQS",
                (("QueueName", Ref(queue, "QueueName")),),
            )
            for queue in DEAD_LETTER_QUEUES
        ),
        notes="Anything above zero has an alarm and a runbook (docs/operations.md).",
    ),
)


def _widget_json(widget: Widget, x: int, y: int) -> dict[str, Any]:
    rows: list[list[Any]] = []
    for metric in widget.metrics:
        row: list[Any] = [metric.namespace, metric.name]
        for key, value in metric.dimensions:
            row += [key, value.sub() if isinstance(value, Ref) else value]
        row.append({"stat": metric.stat, "label": metric.shown})
        rows.append(row)
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": widget.width,
        "height": widget.height,
        "properties": {
            "title": widget.title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stacked": widget.stacked,
            "period": PERIOD,
            "yAxis": {"left": {"label": widget.unit, "min": 0}},
            "metrics": rows,
        },
    }


def layout(widgets: tuple[Widget, ...] = WIDGETS) -> list[tuple[Widget, int, int]]:
    """Each widget with its grid position, left to right, top to bottom."""
    placed: list[tuple[Widget, int, int]] = []
    x = y = row_height = 0
    for widget in widgets:
        if x + widget.width > COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed.append((widget, x, y))
        x += widget.width
        row_height = max(row_height, widget.height)
    return placed


def body_lines(widgets: tuple[Widget, ...] = WIDGETS) -> list[str]:
    """The dashboard body as Fn::Sub text: JSON, one widget a line (a readable diff)."""
    placed = layout(widgets)
    lines = ['{"start": "-PT12H", "periodOverride": "inherit", "widgets": [']
    for i, (widget, x, y) in enumerate(placed):
        comma = "," if i < len(placed) - 1 else ""
        lines.append("  " + json.dumps(_widget_json(widget, x, y), separators=(", ", ": ")) + comma)
    lines.append("]}")
    return lines


def body(widgets: tuple[Widget, ...] = WIDGETS) -> str:
    return "\n".join(body_lines(widgets)) + "\n"


def refs(widgets: tuple[Widget, ...] = WIDGETS) -> set[Ref]:
    return {v for w in widgets for m in w.metrics for _, v in m.dimensions if isinstance(v, Ref)}


def app_metric_names(widgets: tuple[Widget, ...] = WIDGETS) -> set[str]:
    return {m.name for w in widgets for m in w.metrics if m.namespace == NAMESPACE}
