"""A local stand-in for the AIML API video endpoints, for tests, the local stack and the demo.

It speaks both endpoint families of the provider (see aimlapi.md): the unified
``/v2/video/generations`` and the legacy per-provider ``/v2/generate/video/{provider}/generation``,
with Bearer auth, the provider's error body, jobs that advance on the wall clock, signed and
expiring video links served by itself, prompt directives and one-shot fault injection.

It is as strict as the provider's docs (the snapshot in ``shared/aimlapi-docs``; contract.py):
every submit body is validated against its model's request schema at the path it was posted to,
unknown fields included (the docs are silent on those: refused, the less convenient reading), and
refused with the documented 400 "Body validation error" before any job exists. The answers follow
the model's page (jobs.ANSWER_STYLES): the id format, ``id`` or ``generation_id``, ``completed`` or
``succeeded``, ``meta.usage`` on the submit where shown and on every finished poll (both families).

Prompt directives (anywhere in the prompt):
  ``[sim:error]``            the job ends in ``"status": "error"`` with ``{"name", "message"}``
  ``[sim:error=detail]``     ... with the ``{"detail": [{"loc", "msg", "type"}]}`` error shape
  ``[sim:status=XYZ]``       polls report the raw status XYZ while the job is pending
  ``[sim:duration=S]``       the job takes S seconds (the benchmark's per-job ground truth)
  ``[sim:video=list]``       the finished video as ``[{"url": ...}]``; ``=urls`` as ``["..."]``

Faults (``inject``, ``POST /_sim/faults``) form a queue; each applies once, to the next request
that matches its ``on`` (``submit``, ``poll``, ``download`` or ``any`` = submit or poll, the default):
  ``{"status": 429, "retry_after": 1}``  an error answer (any status; Retry-After when given)
  ``{"timeout": true, "seconds": 2}``    sleep (bounded), then answer normally: the client gave up
  ``{"malformed": true}``                a 2xx answer whose body is broken JSON
  ``{"drop": true}``                     close the connection without an answer
  ``{"latency_ms": 300}``                answer normally, late
A submit hit by a timeout, a malformed answer or a 500/502/504 is accepted (the job exists, as it
may at a real provider); a 429, 503, other error status or a drop leaves no job.

Random faults (``configure(random_faults=[...], fault_seed=n)``, or ``POST /_sim/config``): when no
queued fault matches, each request draws from these; each entry is a fault as above plus its
``rate`` (0..1), e.g. ``{"rate": 0.1, "status": 429, "retry_after": 1, "on": "any"}``. The draw is
seeded (``fault_seed``), and ``state()["faults_served"]`` counts what was served, per kind.

Account limits (limits.py; ``configure(max_concurrent_jobs=n, max_submits_per_minute=m)``, or
``POST /_sim/config``, at any time; None, the default, is no limit): per API key (``api_key`` and
any ``extra_api_keys``), a submit while the key has ``max_concurrent_jobs`` jobs queued or
generating, or its ``max_submits_per_minute + 1``-th submit request within 60 s, is the documented
429 "Too Many Requests" with no Retry-After and no rate-limit header, and no job.
``state()["throttled"]`` counts them per limit.

Control over HTTP (no auth; loopback only): ``GET /_sim/state``, ``POST /_sim/faults`` (a fault,
a list, or ``{"faults": [...]}``), ``POST /_sim/config`` (settings, see ``configure``),
``POST /_sim/reset``.

Standalone: ``python -m local.simulator --port 8090 --api-key sim-key``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import random
import re
import secrets
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from local.simulator import contract, limits
from local.simulator.jobs import (
    Job,
    SimConfig,
    answer_style,
    check_fault,
    fault_applies,
    fault_kind,
    new_id,
    parse_directives,
)

# local/assets is shared with the demo and the tests (upload-sample.png)
SAMPLE_MP4 = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"
UNIFIED_PATH = contract.UNIFIED_PATH
LEGACY_PATH = re.compile(r"^/v2/generate/video/(?P<provider>[a-z0-9-]+)/generation$")
# The vendors whose legacy path the snapshot documents a request body for; others are a 404.
LEGACY_PROVIDERS = frozenset(contract.LEGACY_DTOS)
AMBIGUOUS_SUBMIT_STATUSES = frozenset({500, 502, 504})
MAX_FAULT_SLEEP_SECONDS = 120.0
MAX_BODY_BYTES = 20 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a burst of concurrent clients overflows it and
    # connections are reset; the real provider takes them.
    request_queue_size = 128


class _FaultAnswered(Exception):
    """Raised inside the handler when a fault has already answered (or dropped) the request."""


class Simulator:
    """The AIML API simulator; ``start()`` it (or use it as a context manager) and read ``url``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sim-key",
        durations: Mapping[str, float] | None = None,
        default_duration: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        """`clock`: what jobs advance on (a scaled clock shared with the service and the local
        SQS, for the timeliness benchmark: local/clock.py ScaledClock)."""
        self._host, self._port = host, port
        self.clock = clock
        self.contract = contract.load()  # the docs snapshot's request schemas (read once per process)
        self._initial = SimConfig(
            api_key=api_key, durations=dict(durations or {}), default_duration=default_duration
        )
        self._apply(self._initial, settings)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._signing_key = secrets.token_bytes(32)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.verbose = False
        self._reset_locked()

    # lifecycle
    def start(self) -> Simulator:
        server = _Server((self._host, self._port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        wildcard = self._host in ("", "0.0.0.0")  # nosec B104  # a comparison, not a bind
        host = "127.0.0.1" if wildcard else self._host
        self.url = f"http://{host}:{server.server_port}"
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="aiml-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # control
    def inject(self, *faults: Mapping[str, Any]) -> None:
        """Queue one-shot faults; each applies to the next request matching its ``on``."""
        checked = [self.inject_check(fault) for fault in faults]
        with self._lock:
            self._faults.extend(checked)

    def configure(self, **settings: Any) -> None:
        """Change settings (see ``SimConfig``: latency_ms, durations, default_duration, credits,
        random_faults, max_concurrent_jobs, max_submits_per_minute...)."""
        for fault in settings.get("random_faults") or []:
            rate = fault.get("rate")
            if not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError(f"a random fault needs a rate in 0..1: {dict(fault)!r}")
            self.inject_check({k: v for k, v in fault.items() if k != "rate"})
        with self._lock:
            self._apply(self._config, settings)
            if "fault_seed" in settings or "random_faults" in settings:
                self._random = random.Random(self._config.fault_seed)  # noqa: S311 (not crypto)

    @staticmethod
    def inject_check(fault: Mapping[str, Any]) -> dict[str, Any]:
        """A fault as ``inject`` takes it, checked; with its ``on`` filled in."""
        return check_fault(fault)

    def reset(self) -> None:
        """Forget jobs, counters and faults; settings go back to those given to the constructor."""
        with self._lock:
            self._reset_locked()

    @property
    def jobs(self) -> dict[str, Job]:
        with self._lock:
            return dict(self._jobs)

    @property
    def submit_count(self) -> int:
        """Submits the simulator accepted (a job exists for each), faulted ambiguous ones included."""
        with self._lock:
            return self._submit_count

    @property
    def submit_attempts(self) -> int:
        """Submit requests received, accepted or not."""
        with self._lock:
            return self._submit_attempts

    @property
    def poll_count(self) -> int:
        """Poll requests received, faulted ones included."""
        with self._lock:
            return self._poll_count

    @property
    def faults_served(self) -> dict[str, int]:
        """Faults served so far (queued and random), counted per ``<on>:<kind>``, e.g. ``poll:429``."""
        with self._lock:
            return dict(self._faults_served)

    def submits_by(self, field_name: str = "prompt") -> dict[Any, int]:
        """Accepted submits (jobs) per value of a body field: more than one for a value means a
        request was paid for twice (the caller puts a unique value in each request)."""
        counts: dict[Any, int] = {}
        for job in self.jobs.values():
            value = job.body.get(field_name)
            counts[value] = counts.get(value, 0) + 1
        return counts

    @property
    def throttled(self) -> dict[str, int]:
        """Submits refused with a 429 by the account limits, per limit (``concurrency``, ``rate``);
        injected 429 faults are counted in ``faults_served`` instead."""
        with self._lock:
            return dict(self._limits.throttled)

    def running_jobs(self, api_key: str | None = None) -> int:
        """Jobs queued or generating now (of one API key, or of all)."""
        now = self.clock()
        wanted = None if api_key is None else limits.key_id(api_key)
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.running(now) and wanted in (None, j.key_id))

    @property
    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._faults)

    def state(self) -> dict[str, Any]:
        """What ``GET /_sim/state`` answers."""
        now = self.clock()
        with self._lock:
            return {
                "url": self.url,
                "submit_count": self._submit_count,
                "submit_attempts": self._submit_attempts,
                "poll_count": self._poll_count,
                "faults": list(self._faults),
                "faults_served": dict(self._faults_served),
                "throttled": dict(self._limits.throttled),
                "running_jobs": sum(1 for job in self._jobs.values() if job.running(now)),
                "config": {
                    k: v for k, v in asdict(self._config).items() if k not in ("api_key", "extra_api_keys")
                },
                "jobs": [
                    {
                        "id": job.id,
                        "model": job.model,
                        "family": job.family,
                        "provider": job.provider,
                        "status": job.status(self._config, now),
                        "age_seconds": round(now - job.created, 3),
                        "duration": job.duration,
                        "key_id": job.key_id,
                        "polls": job.polls,
                        "body": job.body,
                    }
                    for job in self._jobs.values()
                ],
            }

    # internals (the handler calls these)
    @staticmethod
    def _apply(config: SimConfig, settings: Mapping[str, Any]) -> None:
        known = SimConfig.__dataclass_fields__
        unknown = set(settings) - set(known)
        if unknown:
            raise ValueError(f"unknown simulator settings: {sorted(unknown)}")
        for name in ("max_concurrent_jobs", "max_submits_per_minute"):
            value = settings.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0, or null for no limit: {value!r}")
        for name, value in settings.items():
            if name == "durations":
                value = dict(value)
            elif name == "random_faults":
                value = [dict(fault) for fault in value]
            elif name == "extra_api_keys":
                value = [str(key) for key in value]
            setattr(config, name, value)

    def _reset_locked(self) -> None:
        self._config = SimConfig(**{**asdict(self._initial), "durations": dict(self._initial.durations)})
        self._jobs: dict[str, Job] = {}
        self._faults: deque[dict[str, Any]] = deque()
        self._submit_count = 0
        self._submit_attempts = 0
        self._poll_count = 0
        self._faults_served: dict[str, int] = {}
        self._limits = limits.Limits()
        self._random = random.Random(self._config.fault_seed)  # noqa: S311 (not crypto)

    def _take_fault(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            chosen = None
            for fault in self._faults:
                if fault_applies(fault, kind):
                    self._faults.remove(fault)
                    chosen = fault
                    break
            else:
                candidates = [f for f in self._config.random_faults if fault_applies(f, kind)]
                if candidates:
                    draw, edge = self._random.random(), 0.0
                    for fault in candidates:
                        edge += float(fault["rate"])
                        if draw < edge:
                            chosen = {k: v for k, v in fault.items() if k != "rate"}
                            break
            if chosen is not None:
                name = f"{kind}:{fault_kind(chosen)}"
                self._faults_served[name] = self._faults_served.get(name, 0) + 1
            return chosen

    def _over_rate(self, key: str) -> bool:
        """Count a submit request of this key; whether it is over max_submits_per_minute."""
        with self._lock:
            per_minute = self._config.max_submits_per_minute
            return self._limits.over_rate(limits.key_id(key), self.clock(), per_minute)

    def _accept(
        self, body: dict[str, Any], family: str, provider: str | None, key: str = ""
    ) -> tuple[Job | None, int, str | None]:
        """Record a job, or say why not: (None, 429, ...) at the key's concurrency cap, (None,
        403, ...) out of credits."""
        model = body["model"]
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else ""
        directives = parse_directives(text)
        owner = limits.key_id(key)
        with self._lock:
            cfg = self._config
            now = self.clock()  # the clock jobs advance on (a scaled one, under a ScaledClock)
            if cfg.max_concurrent_jobs is not None:
                running = sum(1 for j in self._jobs.values() if j.key_id == owner and j.running(now))
                if self._limits.over_concurrency(running, cfg.max_concurrent_jobs):
                    return None, 429, limits.TOO_MANY_REQUESTS
            cost = cfg.credits_per_job
            if cfg.credits is not None:
                if cfg.credits < cost:
                    return None, 403, "Insufficient credits"
                cfg.credits -= cost
            job = Job(
                id=new_id(model),
                model=model,
                family=family,
                provider=provider,
                body=body,
                created=now,
                duration=_duration(directives, cfg.durations.get(model, cfg.default_duration)),
                credits_used=cost,
                directives=directives,
                key_id=owner,
            )
            self._jobs[job.id] = job
            self._submit_count += 1
            return job, 200, None

    def _poll_answer(self, job: Job, base_url: str) -> dict[str, Any]:
        with self._lock:
            status = job.status(self._config, self.clock())
            ttl = self._config.link_ttl
        style = answer_style(job.model)
        answer: dict[str, Any] = {"id": job.id, "status": status, "video": None}
        if status == "completed":
            answer["status"] = style.terminal
            url = self._signed_url(base_url, job.id, int(time.time() + ttl))
            shape = job.directives.get("video") or ("urls" if style.video == "urls" else None)
            answer["video"] = (
                [{"url": url}] if shape == "list" else [url] if shape == "urls" else {"url": url}
            )
        elif status == "error":
            if job.directives.get("error") == "detail":
                detail = [{"loc": ["body", "prompt"], "msg": "simulated failure", "type": "value_error"}]
                answer["error"] = {"detail": detail}
            else:
                answer["error"] = {"name": "GenerationError", "message": "simulated generation failure"}
        if status in ("completed", "error"):
            # universal-video-fetch.json documents meta.usage on the poll answer; the legacy family
            # answers with the shared Video.v2.PollVideoResponseDTO (embedded in the big documents,
            # e.g. video-models/Google/veo2-text-to-video.json), which has it too.
            answer["meta"] = {"usage": {"credits_used": job.credits_used}}
        return answer

    def _signed_url(self, base_url: str, job_id: str, expires: int) -> str:
        signature = self._sign(job_id, expires)
        return f"{base_url}/files/{quote(job_id, safe='')}.mp4?Expires={expires}&Signature={signature}"

    def _sign(self, job_id: str, expires: int) -> str:
        digest = hmac.new(self._signing_key, f"{job_id}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _link_valid(self, job_id: str, expires: str, signature: str) -> bool:
        if not expires.isdigit() or int(expires) < time.time():
            return False
        with self._lock:
            known = job_id in self._jobs
        return known and hmac.compare_digest(signature, self._sign(job_id, int(expires)))


def _make_handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        simulator = sim

    return Handler


class _Handler(BaseHTTPRequestHandler):
    simulator: Simulator
    server_version = "aiml-simulator/1"

    # routing
    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        try:
            if path.startswith("/_sim/"):
                self._control(method, path)
            elif path.startswith("/files/") and method in ("GET", "HEAD"):
                self._download(method, path, query)
            elif path == UNIFIED_PATH or LEGACY_PATH.match(path):
                match = LEGACY_PATH.match(path)
                provider = match["provider"] if match else None
                if provider is not None and provider not in LEGACY_PROVIDERS:
                    self._error(404, f"Unknown provider {provider!r}")
                elif method == "POST":
                    self._submit(provider)
                elif method == "GET":
                    self._poll(query)
                else:
                    self._error(405, "Method not allowed")
            else:
                self._error(404, "Not found")
        except _FaultAnswered:
            pass
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (it timed out): nothing to answer

    # API
    def _submit(self, provider: str | None) -> None:
        sim = self.simulator
        with sim._lock:
            sim._submit_attempts += 1
        self._latency()
        key = self._authorized()
        if key is None:
            return
        body = self._json_body()  # read first: an unread body would make the answer a reset
        if body is None:
            return
        if sim._over_rate(key):
            return self._too_many_requests()
        refusal = sim.contract.check(urlsplit(self.path).path, body)
        if refusal is not None:
            return self._error(400, refusal)
        fault = self._take_fault("submit")
        if fault and not self._accepts_submit(fault):
            return self._apply_fault(fault)  # the provider refused: no job
        job, status, refusal = sim._accept(body, "legacy" if provider else "unified", provider, key)
        if job is None:
            return self._too_many_requests() if status == 429 else self._error(status, refusal or "Forbidden")
        if fault:
            self._apply_fault(fault)
        style = answer_style(job.model)
        answer: dict[str, Any] = {style.id_field: job.id}
        if style.submit_status:
            answer["status"] = "queued"
        if style.submit_usage:
            answer["meta"] = {"usage": {"credits_used": job.credits_used}}
        self._json(200, answer)

    def _poll(self, query: dict[str, list[str]]) -> None:
        sim = self.simulator
        with sim._lock:
            sim._poll_count += 1
        self._latency()
        if self._authorized() is None:
            return
        ids = query.get("generation_id")
        if not ids or not ids[0]:
            return self._error(400, "generation_id is required")
        fault = self._take_fault("poll")
        job = sim.jobs.get(ids[0])
        if job is not None:
            with sim._lock:
                job.polls += 1
        if fault:
            self._apply_fault(fault)
        if job is None:
            return self._error(404, "Generation not found")
        self._json(200, sim._poll_answer(job, self._base_url()))

    def _download(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        self._latency()
        fault = self._take_fault("download")
        if fault:
            self._apply_fault(fault)
        name = unquote(path.removeprefix("/files/"))
        if not name.endswith(".mp4"):
            return self._error(404, "Not found")
        expires, signature = query.get("Expires", [""])[0], query.get("Signature", [""])[0]
        if not self.simulator._link_valid(name.removesuffix(".mp4"), expires, signature):
            return self._error(403, "Request has expired or the signature does not match")
        data = SAMPLE_MP4.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method == "GET":
            self.wfile.write(data)

    # control
    def _control(self, method: str, path: str) -> None:
        sim = self.simulator
        if method == "GET" and path == "/_sim/state":
            return self._json(200, sim.state())
        if method != "POST":
            return self._error(405, "Method not allowed")
        body: Any = {} if path == "/_sim/reset" else self._json_body(any_json=True)
        if body is None:
            return
        try:
            if path == "/_sim/faults":
                faults = body.get("faults", body) if isinstance(body, dict) else body
                faults = faults if isinstance(faults, list) else [faults]
                sim.inject(*faults)
                return self._json(200, {"queued": len(sim.pending_faults)})
            if path == "/_sim/config":
                sim.configure(**body)
                return self._json(200, sim.state()["config"])
            if path == "/_sim/reset":
                sim.reset()
                return self._json(200, {"reset": True})
        except (ValueError, TypeError, AttributeError) as exc:
            return self._error(400, str(exc))
        self._error(404, "Not found")

    # faults
    def _latency(self) -> None:
        with self.simulator._lock:
            latency = self.simulator._config.latency_ms
        self._sleep(latency / 1000)

    def _take_fault(self, kind: str) -> dict[str, Any] | None:
        """The next fault for this kind of request; a pure latency fault is served here."""
        fault = self.simulator._take_fault(kind)
        if fault and set(fault) <= {"on", "latency_ms"}:
            self._sleep(fault["latency_ms"] / 1000)
            return None
        return fault

    @staticmethod
    def _accepts_submit(fault: Mapping[str, Any]) -> bool:
        """Whether a real provider may have taken a job despite this failed answer."""
        return bool(
            fault.get("timeout") or fault.get("malformed") or fault.get("status") in AMBIGUOUS_SUBMIT_STATUSES
        )

    def _apply_fault(self, fault: Mapping[str, Any]) -> None:
        """Answer (or not) as the fault says, then stop the normal handling; latency just waits."""
        self._sleep(fault.get("latency_ms", 0) / 1000)
        if fault.get("timeout"):
            with self.simulator._lock:
                default = self.simulator._config.timeout_seconds
            self._sleep(float(fault.get("seconds", default)))
            return  # then answer normally: the client has given up by now
        if fault.get("drop"):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            raise _FaultAnswered
        if fault.get("malformed"):
            self._raw(200, b'{"id": "broken', "application/json")
            raise _FaultAnswered
        if "status" in fault:
            status = int(fault["status"])
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            self._error(status, fault.get("message", "Simulated failure"), headers)
            raise _FaultAnswered

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.simulator._stopping.wait(min(seconds, MAX_FAULT_SLEEP_SECONDS))

    # helpers
    def _authorized(self) -> str | None:
        """The request's API key if it is one the simulator accepts; else a 401 is answered."""
        with self.simulator._lock:
            keys = [self.simulator._config.api_key, *self.simulator._config.extra_api_keys]
        given = self.headers.get("Authorization", "")
        found = None
        for key in keys:  # every key compared, in constant time each
            if hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
                found = key
        if found is None:
            self._error(401, "Unauthorized: invalid or missing API key")
        return found

    def _too_many_requests(self) -> None:
        """The account limits' 429, as errors-and-messages/ shows it: the message of the 4xx
        table and the error body of general-info.md, whose one 429 example has the statusCode as
        a string; no Retry-After, no rate-limit header (see limits.py)."""
        self._error(429, limits.TOO_MANY_REQUESTS, status_code="429")

    def _json_body(self, *, any_json: bool = False) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, "Payload too large")
            return None
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "Body must be JSON")
            return None
        if not any_json and not isinstance(body, dict):
            self._error(400, "Body must be a JSON object")
            return None
        return body

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.simulator.url

    def _error(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        status_code: int | str | None = None,
    ) -> None:
        body = {
            "message": message,
            "path": urlsplit(self.path).path,
            "requestId": str(uuid.uuid4()),
            "statusCode": status if status_code is None else status_code,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        self._json(status, body, headers)

    def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json", headers)

    def _raw(
        self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.simulator.verbose:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--default-duration", type=float, default=3.0, help="seconds until a job completes")
    parser.add_argument(
        "--duration", action="append", default=[], metavar="MODEL=SECONDS", help="per-model duration"
    )
    parser.add_argument("--credits", type=int, default=None, help="credits before 403 (default unlimited)")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--max-concurrent-jobs", type=int, default=None, help="jobs a key may run at once (default no cap)"
    )
    parser.add_argument(
        "--max-submits-per-minute",
        type=int,
        default=None,
        help="submits a key may make in 60 s (default no cap)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    durations = {model: float(seconds) for model, _, seconds in (d.partition("=") for d in args.duration)}
    sim = Simulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        durations=durations,
        default_duration=args.default_duration,
        credits=args.credits,
        latency_ms=args.latency_ms,
        max_concurrent_jobs=args.max_concurrent_jobs,
        max_submits_per_minute=args.max_submits_per_minute,
    )
    sim.verbose = not args.quiet
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with sim:
        print(f"AIML API simulator on {sim.url} (control: {sim.url}/_sim/state)", flush=True)
        done.wait()
    print("simulator stopped", flush=True)


if __name__ == "__main__":
    main()


def _duration(directives: Mapping[str, str], default: float) -> float:
    """A job's duration: its prompt's ``[sim:duration=S]``, else the model's (or default) one."""
    try:
        return max(float(directives["duration"]), 0.0)
    except (KeyError, ValueError):
        return float(default)
