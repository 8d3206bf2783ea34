"""The Tracer patches botocore when it is made and requests only once something imports it:
a function that never calls out through requests (the notifier) does not load it at its cold
start, and one that does is traced all the same. In a fresh interpreter with Lambda's
environment, where the Tracer is enabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from aws_xray_sdk.core import patcher
from videogen.observability import tracer
made = tracer._get()
state = {"disabled": made.disabled, "requests_loaded": "requests" in sys.modules,
         "patched_at_start": sorted(patcher._PATCHED_MODULES)}
import requests
state["patched_after_import"] = sorted(patcher._PATCHED_MODULES)
state["request_wrapped"] = type(requests.Session.__dict__["request"]).__name__
print(json.dumps(state))
"""


def _probe(code: str = PROBE, *, paths: tuple[Path, ...] = (), **env: str) -> dict:
    """Run `code` in a fresh interpreter with the layer (and `paths`) on its path and `env`;
    its last line of output, as JSON."""
    ours = ("AWS_", "POWERTOOLS_", "LAMBDA_")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    python_path = os.pathsep.join(str(p) for p in (*paths, ROOT / "layers" / "common"))
    environment.update({"PYTHONPATH": python_path, "AWS_REGION": "us-east-1", **env})
    answer = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_in_lambda_requests_is_patched_when_first_imported_not_before() -> None:
    state = _probe(AWS_LAMBDA_FUNCTION_NAME="videogen-notifier", LAMBDA_TASK_ROOT="/var/task")
    assert state["disabled"] is False
    assert state["requests_loaded"] is False
    assert state["patched_at_start"] == ["botocore"]
    assert state["patched_after_import"] == ["botocore", "requests"]
    assert state["request_wrapped"] == "FunctionWrapper"  # X-Ray's wrapper around Session.request


def test_a_disabled_tracer_patches_nothing() -> None:
    state = _probe(POWERTOOLS_TRACE_DISABLED="true")
    assert state["disabled"] is True
    assert state["patched_after_import"] == []
    assert state["request_wrapped"] == "function"


API_PROBE = """
import json, sys
import app
app.entry()
print(json.dumps({"requests_loaded": "requests" in sys.modules, "api_ready": callable(app.lambda_handler)}))
"""


def test_the_api_cold_start_does_not_load_requests() -> None:
    """POST /generations accepts into the submit queue and the dispatcher calls the provider, so
    the API's init (import + the service and resolver built) leaves requests, urllib3 and
    charset_normalizer (about 0.1 s of a cold start) to the first call that needs them."""
    from bench.coldstart import ENV

    state = _probe(API_PROBE, paths=(ROOT / "functions" / "api",), **ENV)
    assert state == {"requests_loaded": False, "api_ready": True}
