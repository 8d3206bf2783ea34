"""The reliability scenarios, measured from ground truth on a running LocalStack.

Each scenario takes a `Harness` (a running local stack: moto, the AIML API simulator, the real
handlers) and sizes, and returns a `Result`: what was measured and whether what must hold held.
`bench/chaos.py` (`make chaos`) runs them at full size; tests/integration/test_reliability.py runs
them smaller, as ordinary tests.

Ground truth, never the service's own word:
- the simulator's jobs: one per accepted (paid) submit, with the request body, so a prompt
  unique to each request counts how often it was paid for (`Simulator.submits_by`);
- the table's records, read back after the run;
- every successful write of a record (id, status, version), captured by a botocore hook on the
  DynamoDB client (`WriteLog`), to prove no status went backwards and no write came after the end;
- every object written to the outputs bucket (PutObject / CompleteMultipartUpload), captured by a
  botocore hook on the S3 client, to count archive copies;
- the completion metric the service emitted (`CountingMetrics`).

The services a scenario runs are built by videogen.bootstrap.build_service, the production
wiring (its botocore retry config, AimlClient, OutputArchive, GenerationStore, URL checks), on
the stack's moto and simulator. A scenario overrides only what it measures or must shorten: the
clock, the metrics sink, polls due at once, a wrapped store, provider or archive, and, where
injected provider timeouts must fire, a provider client with short waits; so the run takes
minutes, not hours.

One module per scenario; `harness` holds what they share and `faults` what they inject.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.reliability.aws_faults import aws_faults
from bench.reliability.burst_cap_halved import burst_cap_halved
from bench.reliability.crash_points import CRASH_STEPS, crash_points
from bench.reliability.duplicate_deliveries import duplicate_deliveries
from bench.reliability.fuzzed_api import fuzzed_api
from bench.reliability.harness import Harness, Result
from bench.reliability.idempotent_submit import idempotent_submit
from bench.reliability.load import load
from bench.reliability.overlapping_sweeps import overlapping_sweeps
from bench.reliability.provider_chaos import provider_chaos

# Every scenario by its key (the keys of bench/reliability.json).
ALL: dict[str, Callable[..., Result]] = {
    "idempotent_submit": idempotent_submit,
    "duplicate_deliveries": duplicate_deliveries,
    "overlapping_sweeps": overlapping_sweeps,
    "provider_chaos": provider_chaos,
    "crash_points": crash_points,
    "aws_faults": aws_faults,
    "fuzzed_api": fuzzed_api,
    "load": load,
    "burst_cap_halved": burst_cap_halved,
}

__all__ = [
    "ALL",
    "CRASH_STEPS",
    "Harness",
    "Result",
    "aws_faults",
    "burst_cap_halved",
    "crash_points",
    "duplicate_deliveries",
    "fuzzed_api",
    "idempotent_submit",
    "load",
    "overlapping_sweeps",
    "provider_chaos",
]
