"""The AIML API client against the simulator on loopback: request shapes of both endpoint
families, answer parsing, status mapping, and one injected fault per error class (with the
retry rules: polls are retried, submits only where the provider certainly did not take the job)."""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.simulator import Simulator
from videogen.adapters.aiml_provider import AimlClient, map_provider_status
from videogen.domain.catalog import ModelSpec, get_model
from videogen.domain.ports import ErrorClass, PollResult, ProviderError, ProviderStatus

KEY = "sk-aiml-9f8e7d6c5b4a-secret"
SEED_IMAGE = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg"
VIDEO_01 = get_model("video-01")  # unified since the docs moved it; MiniMax answer style
KLING = get_model("kling-video/v1.6/standard/text-to-video")  # unified
LUMA = get_model("luma/ray-2")  # unified, ids like "<uuid>:luma/ray-2"
WAN_LEGACY = get_model("wan/v2.1/1.3b/text-to-video")  # documented on the Alibaba vendor path only


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with Simulator(api_key=KEY, default_duration=0.2) as simulator:
        yield simulator


@pytest.fixture
def sim(server: Simulator) -> Simulator:
    server.reset()
    return server


def make_client(url: str, key: str = KEY, **options: Any) -> AimlClient:
    settings: dict[str, Any] = {
        "connect_timeout": 0.5,
        "submit_read_timeout": 0.3,
        "poll_read_timeout": 0.3,
        "poll_retries": 2,
        "submit_retries": 2,
        "backoff_factor": 0.01,
        **options,
    }
    return AimlClient(url, lambda: key, **settings)


@pytest.fixture
def client(sim: Simulator) -> Iterator[AimlClient]:
    aiml = make_client(sim.url)
    yield aiml
    aiml.close()


def poll_until_done(client: AimlClient, model: ModelSpec, provider_id: str, timeout: float = 3) -> PollResult:
    deadline = time.monotonic() + timeout
    while True:
        result = client.poll(model, provider_id)
        if (
            result.status not in (ProviderStatus.QUEUED, ProviderStatus.GENERATING)
            or time.monotonic() > deadline
        ):
            return result
        time.sleep(0.05)


def submit_error(client: AimlClient, model: ModelSpec = KLING, **fields: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        client.submit(model, {"prompt": "a red fox in snow", **fields})
    return caught.value


# request shapes and answers


def test_video_01_goes_to_the_unified_endpoint_and_polls_to_a_video(
    client: AimlClient, sim: Simulator
) -> None:
    fields = {"prompt": "Cheetah turns toward the camera.", "image_url": SEED_IMAGE, "enhance_prompt": False}
    submitted = client.submit(VIDEO_01, fields)

    job = sim.jobs[submitted.provider_id]
    assert job.family == "unified"
    assert job.body == {"model": "video-01", **fields}  # the unified names, as its schema has them
    assert submitted.provider_id.isdigit() and submitted.raw_status is None and submitted.usage == {}

    done = poll_until_done(client, VIDEO_01, submitted.provider_id)
    assert done.status is ProviderStatus.COMPLETED and done.raw_status == "completed"
    assert done.video_url and done.video_url.startswith(sim.url + "/files/")
    assert done.error_message is None


def test_a_model_documented_on_a_vendor_path_goes_there_with_its_schemas_names(
    client: AimlClient, sim: Simulator
) -> None:
    assert WAN_LEGACY.family == "legacy" and WAN_LEGACY.provider == "alibaba"
    fields = {"prompt": "p", "aspect_ratio": "16:9", "enable_prompt_expansion": False}
    submitted = client.submit(WAN_LEGACY, fields)
    job = sim.jobs[submitted.provider_id]
    assert (job.family, job.provider) == ("legacy", "alibaba")
    assert job.body == {"model": WAN_LEGACY.id, **fields}
    done = poll_until_done(client, WAN_LEGACY, submitted.provider_id)
    assert done.status is ProviderStatus.COMPLETED


def test_unified_submit_keeps_unified_names_and_reports_usage(client: AimlClient, sim: Simulator) -> None:
    submitted = client.submit(KLING, {"prompt": "p", "aspect_ratio": "16:9", "duration": 5})
    assert submitted.raw_status == "queued" and submitted.usage == {"credits_used": 100}
    job = sim.jobs[submitted.provider_id]
    assert job.family == "unified"
    assert job.body == {"model": KLING.id, "prompt": "p", "aspect_ratio": "16:9", "duration": 5}

    pending = client.poll(KLING, submitted.provider_id)
    assert pending.status is ProviderStatus.QUEUED and pending.video_url is None
    done = poll_until_done(client, KLING, submitted.provider_id)
    assert done.status is ProviderStatus.COMPLETED and done.usage == {"credits_used": 100}


def test_opaque_id_with_colon_and_slash_round_trips(client: AimlClient) -> None:
    submitted = client.submit(LUMA, {"prompt": "p"})
    assert submitted.provider_id.endswith(":luma/ray-2")
    done = poll_until_done(client, LUMA, submitted.provider_id)
    assert done.provider_id == submitted.provider_id and done.status is ProviderStatus.COMPLETED


def test_video_link_downloads_a_real_mp4_then_expires(client: AimlClient, sim: Simulator) -> None:
    sim.configure(default_duration=0)
    provider_id = client.submit(LUMA, {"prompt": "p"}).provider_id
    url = client.poll(LUMA, provider_id).video_url
    assert url is not None and "Expires=" in url and "Signature=" in url
    video = requests.get(url, timeout=2)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"

    sim.configure(link_ttl=-1)
    expired = client.poll(LUMA, provider_id).video_url
    assert expired is not None and requests.get(expired, timeout=2).status_code == 403


@pytest.mark.parametrize(
    ("directive", "message"),
    [
        ("[sim:error]", "GenerationError: simulated generation failure"),
        ("[sim:error=detail]", "body.prompt: simulated failure"),
    ],
)
def test_failed_job_carries_the_error_message(client: AimlClient, directive: str, message: str) -> None:
    provider_id = client.submit(KLING, {"prompt": f"boom {directive}"}).provider_id
    failed = poll_until_done(client, KLING, provider_id)
    assert (failed.raw_status, failed.status, failed.error_message) == (
        "error",
        ProviderStatus.FAILED,
        message,
    )
    assert failed.video_url is None


@pytest.mark.parametrize("shape", ["list", "urls"])
def test_video_as_a_list_is_understood(client: AimlClient, sim: Simulator, shape: str) -> None:
    sim.configure(default_duration=0)
    provider_id = client.submit(KLING, {"prompt": f"p [sim:video={shape}]"}).provider_id
    result = client.poll(KLING, provider_id)
    assert result.video_url is not None and result.video_url.startswith(sim.url + "/files/")


# statuses

ALL_STATUSES = {
    "queued": ProviderStatus.QUEUED,
    "waiting": ProviderStatus.QUEUED,
    "generating": ProviderStatus.GENERATING,
    "active": ProviderStatus.GENERATING,
    "processing": ProviderStatus.GENERATING,
    "dreaming": ProviderStatus.GENERATING,
    "completed": ProviderStatus.COMPLETED,
    "succeeded": ProviderStatus.COMPLETED,
    "error": ProviderStatus.FAILED,
    "failed": ProviderStatus.FAILED,
    "cancelled": ProviderStatus.CANCELLED,
    "expired": ProviderStatus.EXPIRED,
    "paused": ProviderStatus.UNKNOWN,
    "": ProviderStatus.UNKNOWN,
}


@pytest.mark.parametrize(("raw", "expected"), ALL_STATUSES.items())
def test_every_documented_status_maps_as_specified(raw: str, expected: ProviderStatus) -> None:
    assert map_provider_status(raw) is expected


def test_status_mapping_edge_cases() -> None:
    assert map_provider_status(None) is ProviderStatus.UNKNOWN
    assert map_provider_status(" Completed ") is ProviderStatus.COMPLETED
    assert map_provider_status(3) is ProviderStatus.UNKNOWN  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["waiting", "dreaming", "processing", "paused"])
def test_odd_pending_statuses_arrive_raw_through_the_client(
    client: AimlClient, sim: Simulator, raw: str
) -> None:
    sim.configure(default_duration=5)
    provider_id = client.submit(KLING, {"prompt": f"p [sim:status={raw}]"}).provider_id
    result = client.poll(KLING, provider_id)
    assert (result.raw_status, result.status) == (raw, ALL_STATUSES[raw])


# error classes


def test_wrong_key_is_auth_on_submit_and_poll(sim: Simulator) -> None:
    wrong = make_client(sim.url, key="sk-wrong")
    error = submit_error(wrong)
    assert (error.error_class, error.status_code, error.outcome_unknown) == (ErrorClass.AUTH, 401, False)
    with pytest.raises(ProviderError) as caught:
        wrong.poll(KLING, "whatever")
    assert caught.value.error_class is ErrorClass.AUTH
    assert sim.submit_count == 0


def test_out_of_credits_is_403(client: AimlClient, sim: Simulator) -> None:
    sim.configure(credits=0)
    error = submit_error(client)
    assert (error.error_class, error.status_code, error.outcome_unknown) == (
        ErrorClass.OUT_OF_CREDITS,
        403,
        False,
    )


def test_missing_prompt_is_validation(client: AimlClient, sim: Simulator) -> None:
    with pytest.raises(ProviderError) as caught:
        client.submit(KLING, {})
    assert (caught.value.error_class, caught.value.status_code) == (ErrorClass.VALIDATION, 400)
    # the documented 400 (errors-and-messages/errors-with-status-code-4xx.md), its detail kept
    assert caught.value.message == "Body validation error!\nbody: 'prompt' is a required property"
    assert sim.submit_attempts == 1


def test_unknown_generation_is_not_found(client: AimlClient) -> None:
    with pytest.raises(ProviderError) as caught:
        client.poll(LUMA, "nope:luma/ray-2")
    assert (caught.value.error_class, caught.value.status_code) == (ErrorClass.NOT_FOUND, 404)


def test_429_on_submit_is_retried_after_retry_after(client: AimlClient, sim: Simulator) -> None:
    sim.inject({"on": "submit", "status": 429, "retry_after": 1})
    started = time.monotonic()
    submitted = client.submit(KLING, {"prompt": "p"})
    assert time.monotonic() - started >= 1.0
    assert submitted.provider_id in sim.jobs
    assert (sim.submit_attempts, sim.submit_count) == (2, 1)


def test_429_that_persists_is_rate_limited_with_retry_after(client: AimlClient, sim: Simulator) -> None:
    sim.inject(*[{"on": "submit", "status": 429, "retry_after": 0}] * 3)
    error = submit_error(client)
    assert (error.error_class, error.status_code, error.retry_after) == (ErrorClass.RATE_LIMITED, 429, 0.0)
    assert not error.outcome_unknown
    assert (sim.submit_attempts, sim.submit_count) == (3, 0)  # submit_retries=2


def test_503_on_submit_is_ambiguous_and_not_resent(client: AimlClient, sim: Simulator) -> None:
    """The provider's 5xx page does not say a 503 took no work ("could not complete your
    request"): it is treated like any other 5xx (docs/reliability-and-security.md)."""
    sim.inject({"on": "submit", "status": 503})
    error = submit_error(client)
    assert (error.error_class, error.status_code, error.outcome_unknown) == (ErrorClass.SERVER, 503, True)
    assert sim.submit_attempts == 1


def test_the_queues_client_retries_no_429_so_the_limit_sees_each(sim: Simulator) -> None:
    client = make_client(sim.url, submit_retry_statuses=())
    sim.inject({"on": "submit", "status": 429})
    error = submit_error(client)
    assert (error.error_class, error.outcome_unknown) == (ErrorClass.RATE_LIMITED, False)
    assert sim.submit_attempts == 1


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(500, ErrorClass.SERVER), (502, ErrorClass.SERVER), (504, ErrorClass.TIMEOUT)],
)
def test_ambiguous_5xx_on_submit_is_outcome_unknown_and_not_resent(
    client: AimlClient, sim: Simulator, status: int, error_class: ErrorClass
) -> None:
    sim.inject({"on": "submit", "status": status})
    error = submit_error(client)
    assert (error.error_class, error.status_code, error.outcome_unknown) == (error_class, status, True)
    assert (sim.submit_attempts, sim.submit_count) == (1, 1)  # the provider took it once, we never resent


def test_read_timeout_on_submit_is_outcome_unknown_and_not_resent(client: AimlClient, sim: Simulator) -> None:
    sim.inject({"on": "submit", "timeout": True, "seconds": 1})
    error = submit_error(client)
    assert (error.error_class, error.status_code, error.outcome_unknown) == (ErrorClass.TIMEOUT, None, True)
    assert (sim.submit_attempts, sim.submit_count) == (1, 1)


def test_dropped_connection_on_submit_is_outcome_unknown_and_not_resent(
    client: AimlClient, sim: Simulator
) -> None:
    sim.inject({"on": "submit", "drop": True})
    error = submit_error(client)
    assert (error.error_class, error.outcome_unknown) == (ErrorClass.SERVER, True)
    assert sim.submit_attempts == 1


def test_malformed_submit_answer_is_outcome_unknown(client: AimlClient, sim: Simulator) -> None:
    sim.inject({"on": "submit", "malformed": True})
    error = submit_error(client)
    assert (error.error_class, error.status_code, error.outcome_unknown) == (
        ErrorClass.MALFORMED_RESPONSE,
        200,
        True,
    )
    assert (sim.submit_attempts, sim.submit_count) == (1, 1)


def test_refused_connection_is_connection_and_certainly_not_taken() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    error = submit_error(make_client(f"http://127.0.0.1:{port}"))
    assert (error.error_class, error.status_code, error.outcome_unknown) == (
        ErrorClass.CONNECTION,
        None,
        False,
    )


@pytest.mark.parametrize(
    "fault",
    [
        {"timeout": True, "seconds": 1},
        {"status": 429, "retry_after": 0},
        {"status": 500},
        {"status": 502},
        {"status": 503},
        {"status": 504},
        {"drop": True},
    ],
)
def test_poll_failures_are_retried(client: AimlClient, sim: Simulator, fault: dict[str, Any]) -> None:
    sim.configure(default_duration=5)
    provider_id = client.submit(KLING, {"prompt": "p"}).provider_id
    sim.inject({"on": "poll", **fault})
    assert client.poll(KLING, provider_id).status is ProviderStatus.QUEUED
    assert sim.poll_count == 2


def test_poll_failure_that_persists_is_classified(client: AimlClient, sim: Simulator) -> None:
    provider_id = client.submit(KLING, {"prompt": "p"}).provider_id
    sim.inject(*[{"on": "poll", "status": 503}] * 3)
    with pytest.raises(ProviderError) as caught:
        client.poll(KLING, provider_id)
    assert (caught.value.error_class, caught.value.status_code) == (ErrorClass.SERVER, 503)
    assert not caught.value.outcome_unknown  # only submits have an outcome to be unsure of
    assert sim.poll_count == 3  # poll_retries=2

    sim.inject({"on": "poll", "timeout": True, "seconds": 1})
    with pytest.raises(ProviderError) as caught:
        make_client(sim.url, poll_retries=0).poll(KLING, provider_id)
    assert (caught.value.error_class, caught.value.outcome_unknown) == (ErrorClass.TIMEOUT, False)


def test_malformed_poll_answer(client: AimlClient, sim: Simulator) -> None:
    provider_id = client.submit(KLING, {"prompt": "p"}).provider_id
    sim.inject({"on": "poll", "malformed": True})
    with pytest.raises(ProviderError) as caught:
        client.poll(KLING, provider_id)
    assert (caught.value.error_class, caught.value.outcome_unknown) == (ErrorClass.MALFORMED_RESPONSE, False)


# secrets


def test_the_key_never_appears_in_errors_or_reprs(sim: Simulator) -> None:
    client = make_client(sim.url, poll_retries=0)
    sim.inject({"on": "submit", "status": 400, "message": f"invalid key {KEY} for this model"})
    errors = [submit_error(client)]
    sim.inject({"on": "submit", "status": 500})
    errors.append(submit_error(client))
    sim.inject({"on": "poll", "timeout": True, "seconds": 1})
    with pytest.raises(ProviderError) as caught:
        client.poll(KLING, "x")
    errors.append(caught.value)
    errors.append(submit_error(make_client("http://127.0.0.1:1", connect_timeout=0.2)))

    assert "***" in errors[0].message
    texts = [repr(client)]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        cause = error.__cause__ or error.__context__
        texts += [str(cause), repr(cause)]
    assert all(KEY not in text for text in texts)


def test_environment_proxy_settings_are_read_once_not_at_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = AimlClient("https://api.aimlapi.com", lambda: "key")
    session = client._session
    assert session.trust_env is False  # no walk over os.environ per request
    assert session.proxies["https"] == "http://proxy.internal:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:3128")
    assert session.proxies["https"] == "http://proxy.internal:3128"
