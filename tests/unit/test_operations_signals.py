"""What the alarms and the Logs Insights queries read is really written: each failure an alarm
watches is injected (the simulator answers 401/403, a submit dies mid-call) and the metric it
watches is counted; log lines written during a submit or a refresh carry the generation's id,
also the ones that do not pass it (Powertools' thread-safe keys), and the sweep's threads keep
their generations apart."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from local.simulator import Simulator
from tests.unit.conftest import Clock, make_service
from tests.unit.test_service import T2V, RecordingMetrics, sweep_until_terminal
from videogen.adapters.aiml_provider import AimlClient
from videogen.domain.models import Status


def captured_logger() -> tuple[Logger, io.StringIO]:
    stream = io.StringIO()
    return Logger(service=f"ops-test-{uuid.uuid4().hex[:8]}", stream=stream, level="INFO"), stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class LoggingProvider:
    """The real client, with a log line on every call that names no generation (as a library's
    or an adapter's line would)."""

    def __init__(self, client: AimlClient, log: Logger) -> None:
        self.client, self.log = client, log

    def submit(self, model: Any, fields: Any) -> Any:
        self.log.info("provider submit")
        return self.client.submit(model, fields)

    def poll(self, model: Any, provider_id: str) -> Any:
        self.log.info("provider poll", extra={"provider_id": provider_id})
        return self.client.poll(model, provider_id)


@pytest.mark.parametrize(
    ("status", "error_class"), [(401, "auth"), (403, "out_of_credits")], ids=["auth", "out_of_credits"]
)
def test_a_refused_submit_and_a_refused_poll_are_counted_by_class(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator, status: int, error_class: str
) -> None:
    metrics = RecordingMetrics()
    service = make_service(aws, client, clock, metrics=metrics)
    running = service.submit("owner-a", T2V)
    sim.inject({"on": "submit", "status": status})
    refused = service.submit("owner-a", T2V)
    sim.inject({"on": "poll", "status": status})
    service.sweep(lambda: 60_000)

    assert refused.status is Status.FAILED
    assert metrics.counts[f"ProviderErrors_{error_class}"] == 1  # what the alarm adds up
    assert metrics.counts[f"ProviderPollErrors_{error_class}"] == 1
    kept = service.store.get(running.id)
    assert kept is not None and kept.last_poll_error == error_class and not kept.is_terminal


def test_a_submit_that_died_mid_call_is_counted_as_flagged(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    class Crashes:
        def submit(self, model: Any, fields: Any) -> Any:
            raise RuntimeError("the process died mid-submit")

        def poll(self, model: Any, provider_id: str) -> Any:
            raise AssertionError("never polled")

    with pytest.raises(RuntimeError):
        make_service(aws, Crashes(), clock).submit("owner-a", T2V)
    metrics = RecordingMetrics()
    service = make_service(aws, client, clock, metrics=metrics)
    clock.advance(61)  # past the grace period
    service.sweep(lambda: 60_000)

    assert metrics.counts["GenerationsFlagged"] == 1


def test_every_line_of_a_submit_and_its_polls_carries_the_generation_id(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    log, stream = captured_logger()
    service = make_service(aws, LoggingProvider(client, log), clock, log=log)

    generation = service.submit("owner-a", T2V)
    sim.inject({"on": "poll", "status": 503}, {"on": "poll", "status": 503}, {"on": "poll", "status": 503})
    service.sweep(lambda: 60_000)
    done = sweep_until_terminal(service, generation.id)
    log.info("after the sweep")

    written = lines(stream)
    about = [line for line in written if line["message"] != "after the sweep"]
    messages = {line["message"] for line in about}
    assert {"provider submit", "provider poll", "generation submitted", "generation completed"} <= messages
    assert "poll failed; will retry" in messages
    assert all(line.get("generation_id") == generation.id for line in about), about
    # the key goes with the refresh: a later line about nothing has none
    assert "generation_id" not in written[-1]
    completed = next(line for line in about if line["message"] == "generation completed")
    assert completed["model"] == T2V["model"] and completed["seconds"] >= 0
    assert done.status is Status.COMPLETED


def test_the_sweeps_threads_keep_their_generations_apart(
    aws: dict[str, str], client: AimlClient, clock: Clock, sim: Simulator
) -> None:
    sim.configure(default_duration=30, latency_ms=20)  # polls overlap in the sweep's threads
    quiet = make_service(aws, client, clock)
    generations = [quiet.submit("owner-a", {**T2V, "prompt": f"clip {i}"}) for i in range(6)]
    by_provider_id = {g.provider_id: g.id for g in generations}
    log, stream = captured_logger()
    service = make_service(aws, LoggingProvider(client, log), clock, log=log, concurrency=6)

    service.sweep(lambda: 60_000)

    polls = [line for line in lines(stream) if line["message"] == "provider poll"]
    assert len(polls) == 6
    assert all(line["generation_id"] == by_provider_id[line["provider_id"]] for line in polls)
