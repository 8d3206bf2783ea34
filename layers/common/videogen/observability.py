"""One place for Logger, Tracer and Metrics, shared by every function with the same settings
(service name and namespace come from POWERTOOLS_* variables set in template.yaml)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
