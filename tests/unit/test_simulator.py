"""The AIML API simulator over plain HTTP: both endpoint families, the provider's error answers,
jobs on the wall clock, signed links, faults and the control interface. Loopback only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.simulator import Simulator

KEY = "sim-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROOT = Path(__file__).resolve().parents[2]
UNIFIED = "/v2/video/generations"
MINIMAX = "/v2/generate/video/minimax/generation"
# A unified-path model whose answers carry "id" (video-models/Kling-AI/v1.6-standard-text-to-video.json)
T2V = "kling-video/v1.6/standard/text-to-video"

# The seed's two code blocks (seed/video-models-overview.md), verbatim but for URL, key and id.
SEED_GENERATE = """
import requests


def main():
    url = "https://api.aimlapi.com/v2/generate/video/minimax/generation"
    payload = {
        "model": "video-01",
        "prompt": "Cheetah turns toward the camera.",
        "first_frame_image": "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg",
    }
    # Insert your AIML API Key instead of <YOUR_API_KEY>:
    headers = {"Authorization": "Bearer <YOUR_API_KEY>", "Content-Type": "application/json"}

    response = requests.post(url, json=payload, headers=headers)
    print("Generation:", response.json())


if __name__ == "__main__":
    main()
"""
SEED_RETRIEVE = """
import requests


def main():
    url = "https://api.aimlapi.com/v2/generate/video/minimax/generation"
    params = {
        # Insert the generation_id (that was returned by the generation part above) in the quotation marks instead of <GENERATION_ID>:
        "generation_id": "<GENERATION_ID>",
    }
    
    # Insert your AIML API Key instead of <YOUR_API_KEY>:
    headers = {"Authorization": "Bearer <YOUR_API_KEY>", "Content-Type": "application/json"}

    response = requests.get(url, params=params, headers=headers)
    print("Generation:", response.json())


if __name__ == "__main__":
    main()
"""  # noqa: E501, W293 (verbatim)


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with Simulator(api_key=KEY, default_duration=0.3) as simulator:
        yield simulator


@pytest.fixture
def sim(server: Simulator) -> Simulator:
    server.reset()
    return server


def run_seed(source: str, sim: Simulator, capsys: pytest.CaptureFixture[str], **replace: str) -> Any:
    for old, new in {"https://api.aimlapi.com": sim.url, "<YOUR_API_KEY>": KEY, **replace}.items():
        source = source.replace(old, new)
    namespace: dict[str, Any] = {"__name__": "seed"}
    exec(compile(source, "seed", "exec"), namespace)
    namespace["main"]()
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("Generation: ")
    return ast.literal_eval(printed.removeprefix("Generation: "))


def submit(sim: Simulator, body: Any, path: str = UNIFIED, **kwargs: Any) -> requests.Response:
    return requests.post(sim.url + path, json=body, headers=AUTH, **{"timeout": 5, **kwargs})


def poll(sim: Simulator, generation_id: str, path: str = UNIFIED) -> requests.Response:
    return requests.get(sim.url + path, params={"generation_id": generation_id}, headers=AUTH, timeout=5)


def test_seed_blocks_run_unchanged_but_for_url_and_key(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    queued = run_seed(SEED_GENERATE, sim, capsys)
    assert set(queued) == {"generation_id"} and queued["generation_id"].isdigit()
    job = sim.jobs[queued["generation_id"]]
    assert (job.family, job.provider, job.body["first_frame_image"][:8]) == ("legacy", "minimax", "https://")

    pending = run_seed(SEED_RETRIEVE, sim, capsys, **{"<GENERATION_ID>": queued["generation_id"]})
    assert pending == {"id": queued["generation_id"], "status": "queued", "video": None}

    time.sleep(0.35)
    done = run_seed(SEED_RETRIEVE, sim, capsys, **{"<GENERATION_ID>": queued["generation_id"]})
    # the seed's example answer, plus the meta.usage a finished poll carries on both families
    assert done["status"] == "completed" and set(done) == {"id", "status", "video", "meta"}
    assert re.fullmatch(rf"{sim.url}/files/\d+\.mp4\?Expires=\d+&Signature=[\w-]+", done["video"]["url"])


def test_unified_answers_and_status_progression(sim: Simulator) -> None:
    sim.configure(durations={"luma/ray-2": 0.4})
    answer = submit(sim, {"model": "luma/ray-2", "prompt": "a lighthouse"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "queued" and body["meta"] == {"usage": {"credits_used": 100}}
    assert re.fullmatch(r"[0-9a-f-]{36}:luma/ray-2", body["id"])  # needs URL-encoding

    assert poll(sim, body["id"]).json()["status"] == "queued"
    time.sleep(0.15)
    assert poll(sim, body["id"]).json()["status"] == "generating"
    time.sleep(0.3)
    done = poll(sim, body["id"]).json()
    assert done["status"] == "completed" and done["meta"]["usage"]["credits_used"] == 100
    assert sim.submit_count == 1 and sim.poll_count == 3


def test_error_answers_have_the_provider_shape(sim: Simulator) -> None:
    bad_key = requests.post(sim.url + UNIFIED, json={"model": "x", "prompt": "p"}, timeout=5)
    assert bad_key.status_code == 401
    assert set(bad_key.json()) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert bad_key.json()["statusCode"] == 401 and bad_key.json()["path"] == UNIFIED

    not_json = requests.post(sim.url + UNIFIED, data=b"{nope", headers=AUTH, timeout=5)
    assert not_json.status_code == 400
    assert submit(sim, ["a list"]).status_code == 400
    assert submit(sim, {"prompt": "no model"}).status_code == 400
    assert submit(sim, {"model": "kling-video/v1.6/standard/text-to-video"}).status_code == 400
    assert submit(sim, {"model": "gen3a_turbo", "image_url": "https://x.test/a.png"}).status_code == 200
    assert (
        submit(sim, {"model": "x", "prompt": "p"}, path="/v2/generate/video/nobody/generation").status_code
        == 404
    )
    assert poll(sim, "no-such-id").status_code == 404
    assert requests.get(sim.url + UNIFIED, headers=AUTH, timeout=5).status_code == 400
    assert sim.submit_count == 1


def test_credits_run_out_with_403(sim: Simulator) -> None:
    sim.configure(credits=150, credits_per_job=100)
    assert submit(sim, {"model": "video-01", "prompt": "p"}, path=MINIMAX).status_code == 200
    refused = submit(sim, {"model": "video-01", "prompt": "p"}, path=MINIMAX)
    assert refused.status_code == 403 and refused.json()["statusCode"] == 403
    assert sim.submit_count == 1 and sim.submit_attempts == 2


def test_prompt_directives(sim: Simulator) -> None:
    sim.configure(default_duration=0.1)
    odd = submit(sim, {"model": T2V, "prompt": "x [sim:status=dreaming]"}).json()["id"]
    failing = submit(sim, {"model": T2V, "prompt": "x [sim:error]"}).json()["id"]
    detailed = submit(sim, {"model": T2V, "prompt": "x [sim:error=detail]"}).json()["id"]
    listed = submit(sim, {"model": T2V, "prompt": "x [sim:video=list]"}).json()["id"]
    urls = submit(sim, {"model": T2V, "prompt": "x [sim:video=urls]"}).json()["id"]
    assert poll(sim, odd).json()["status"] == "dreaming"
    time.sleep(0.15)
    assert poll(sim, odd).json()["status"] == "completed"
    assert poll(sim, failing).json()["error"] == {
        "name": "GenerationError",
        "message": "simulated generation failure",
    }
    assert poll(sim, failing).json()["status"] == "error"
    assert poll(sim, detailed).json()["error"]["detail"][0]["msg"] == "simulated failure"
    assert isinstance(poll(sim, listed).json()["video"][0]["url"], str)
    assert poll(sim, urls).json()["video"][0].startswith(sim.url + "/files/")


def test_video_link_is_a_real_mp4_until_it_expires(sim: Simulator) -> None:
    sim.configure(default_duration=0)
    job = submit(sim, {"model": "luma/ray-2", "prompt": "p"}).json()["id"]
    url = poll(sim, job).json()["video"]["url"]
    video = requests.get(url, timeout=5)  # no key needed
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp" and len(video.content) < 20_000
    assert requests.get(url.replace("Signature=", "Signature=x"), timeout=5).status_code == 403

    sim.configure(link_ttl=-1)
    expired = poll(sim, job).json()["video"]["url"]
    assert requests.get(expired, timeout=5).status_code == 403


def test_ambiguous_submit_faults_record_the_job_and_refusals_do_not(sim: Simulator) -> None:
    body = {"model": "video-01", "prompt": "p"}
    sim.inject(
        {"on": "submit", "status": 500},
        {"on": "submit", "status": 502},
        {"on": "submit", "status": 504},
        {"on": "submit", "malformed": True},
    )
    answers = [submit(sim, body) for _ in range(4)]
    assert [a.status_code for a in answers] == [500, 502, 504, 200]
    with pytest.raises(ValueError):
        answers[3].json()
    assert sim.submit_count == 4

    sim.reset()
    sim.inject(
        {"on": "submit", "status": 429, "retry_after": 2}, {"status": 503}, {"on": "submit", "drop": True}
    )
    limited = submit(sim, body)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert submit(sim, body).status_code == 503
    with pytest.raises(requests.ConnectionError):
        submit(sim, body)
    assert sim.submit_count == 0 and sim.submit_attempts == 3
    assert submit(sim, body).status_code == 200  # the queue is spent


def test_timeout_fault_accepts_the_submit_then_stalls(sim: Simulator) -> None:
    sim.inject({"on": "submit", "timeout": True, "seconds": 1})
    with pytest.raises(requests.ReadTimeout):
        submit(sim, {"model": "video-01", "prompt": "p"}, path=MINIMAX, timeout=0.3)
    assert sim.submit_count == 1


def test_faults_match_their_target_in_order(sim: Simulator) -> None:
    job = submit(sim, {"model": T2V, "prompt": "p"}).json()["id"]
    sim.inject({"on": "poll", "status": 502}, {"on": "any", "status": 500}, {"on": "download", "status": 404})
    assert submit(sim, {"model": T2V, "prompt": "p"}).status_code == 500  # the poll fault waits its turn
    assert poll(sim, job).status_code == 502
    assert poll(sim, job).status_code == 200
    assert len(sim.pending_faults) == 1
    with pytest.raises(ValueError):
        sim.inject({"on": "everything", "status": 500})
    with pytest.raises(ValueError):
        sim.inject({"on": "poll"})


def test_latency_global_and_per_fault(sim: Simulator) -> None:
    sim.configure(latency_ms=150)
    started = time.monotonic()
    submit(sim, {"model": T2V, "prompt": "p"})
    assert time.monotonic() - started >= 0.15
    sim.configure(latency_ms=0)
    sim.inject({"on": "submit", "latency_ms": 200})
    started = time.monotonic()
    assert submit(sim, {"model": T2V, "prompt": "p"}).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_http_control_interface(sim: Simulator) -> None:
    control = sim.url + "/_sim"
    assert requests.post(control + "/faults", json={"on": "submit", "status": 503}, timeout=5).json() == {
        "queued": 1
    }
    assert requests.post(control + "/faults", json={"faults": [{"status": 500}]}, timeout=5).json() == {
        "queued": 2
    }
    assert requests.post(control + "/faults", json=[{"status": 429}], timeout=5).json() == {"queued": 3}
    assert requests.post(control + "/faults", json={"on": "x", "status": 1}, timeout=5).status_code == 400
    config = requests.post(control + "/config", json={"default_duration": 9, "credits": 5}, timeout=5).json()
    assert config["default_duration"] == 9 and config["credits"] == 5 and "api_key" not in config
    assert requests.post(control + "/config", json={"nonsense": 1}, timeout=5).status_code == 400
    assert submit(sim, {"model": T2V, "prompt": "p"}).status_code == 503

    state = requests.get(control + "/state", timeout=5).json()
    assert state["submit_attempts"] == 1 and len(state["faults"]) == 2 and state["url"] == sim.url
    assert requests.post(control + "/reset", timeout=5).json() == {"reset": True}
    state = requests.get(control + "/state", timeout=5).json()
    assert (
        state["faults"] == [] and state["submit_attempts"] == 0 and state["config"]["default_duration"] == 0.3
    )


def test_stop_is_prompt_and_leaves_no_threads_even_mid_fault() -> None:
    before = set(threading.enumerate())
    sim = Simulator(api_key=KEY).start()
    sim.inject({"on": "submit", "timeout": True, "seconds": 30})
    answers: list[int] = []
    stalled = threading.Thread(
        target=lambda: answers.append(submit(sim, {"model": T2V, "prompt": "p"}).status_code)
    )
    stalled.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    stalled.join(5)
    assert time.monotonic() - started < 1
    assert answers == [200]  # the stalled handler was woken and finished its answer
    time.sleep(0.1)
    assert {t for t in threading.enumerate() if t.is_alive()} <= before


def test_standalone_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.simulator", "--port", "0", "--api-key", KEY, "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        assert url is not None
        assert requests.get(url[0] + "/_sim/state", timeout=5).json()["submit_count"] == 0
        assert requests.post(url[0] + UNIFIED, json={"model": T2V, "prompt": "p"}, headers=AUTH, timeout=5).ok
    finally:
        process.terminate()
        assert process.wait(5) == 0


def test_random_faults_are_drawn_at_their_rates_seeded_and_counted(sim: Simulator) -> None:
    faults = [{"rate": 0.3, "status": 503, "on": "submit"}, {"rate": 0.2, "malformed": True, "on": "poll"}]
    sim.configure(random_faults=faults, fault_seed=1)
    submits = [submit(sim, {"model": "video-01", "prompt": f"p{i}"}).status_code for i in range(100)]
    job = next(iter(sim.jobs))
    polls = [poll(sim, job).status_code for _ in range(50)]  # a malformed answer is a 200

    served = sim.faults_served
    assert served["submit:503"] == submits.count(503) and 15 <= served["submit:503"] <= 45
    assert 3 <= served["poll:malformed"] <= 20 and polls.count(200) == 50
    assert sim.state()["jobs"][0]["polls"] == 50
    # Only accepted submits are jobs: one per prompt, none for a refused one.
    assert sim.submits_by("prompt") == {f"p{i}": 1 for i, s in enumerate(submits) if s == 200}

    sim.reset()
    sim.configure(random_faults=faults, fault_seed=1)
    again = [submit(sim, {"model": "video-01", "prompt": f"p{i}"}).status_code for i in range(100)]
    assert again == submits  # the same seed, the same faults


def test_a_random_fault_needs_a_rate_and_an_effect(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="rate"):
        sim.configure(random_faults=[{"status": 500}])
    with pytest.raises(ValueError, match="no effect"):
        sim.configure(random_faults=[{"rate": 0.5}])


# Strictness: every submit is checked against the docs snapshot (local/simulator/contract.py).
VALIDATION_SHAPE = {"message", "path", "requestId", "statusCode", "timestamp"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"model": T2V, "prompt": "p", "aspect_ratio": "2:1"}, "aspect_ratio: '2:1' is not one of"),  # enum
        (
            {"model": T2V, "prompt": "p", "cfg_scale": 1.5},
            "cfg_scale: 1.5 is greater than the maximum",
        ),  # range
        ({"model": T2V, "prompt": "p", "duration": "5"}, "duration: '5' is not one of"),  # type (and enum)
        ({"model": T2V, "prompt": 7}, "prompt: 7 is not of type 'string'"),  # type
        ({"model": T2V}, "body: 'prompt' is a required property"),  # missing required
        ({"model": T2V, "prompt": "p", "fps": 24}, "Additional properties are not allowed ('fps'"),  # unknown
        (
            {"model": "video-01", "prompt": "p", "image_url": "not a uri"},
            "image_url: 'not a uri' is not a 'uri'",
        ),
        (  # written only in the field's description: 1080p does not come in 8 seconds
            {"model": "pixverse/v5/text-to-video", "prompt": "p", "resolution": "1080p", "duration": 8},
            "duration: 8 should not be valid",
        ),
        ({"model": "no/such-model", "prompt": "p"}, "model: Invalid enum value. Expected"),
    ],
)
def test_a_schema_invalid_body_is_the_documented_400_and_no_job(
    sim: Simulator, body: dict[str, Any], detail: str
) -> None:
    answer = submit(sim, body)
    assert answer.status_code == 400
    error = answer.json()
    assert set(error) == VALIDATION_SHAPE and error["statusCode"] == 400 and error["path"] == UNIFIED
    assert error["message"].startswith("Body validation error!\n") and detail in error["message"]
    assert sim.submit_count == 0 and sim.jobs == {} and sim.submit_attempts == 1


def test_a_model_on_a_path_that_does_not_document_it_is_a_400(sim: Simulator) -> None:
    # luma/ray-2 is documented on the unified path only; the legacy MiniMax path knows other models
    refused = submit(sim, {"model": "luma/ray-2", "prompt": "p"}, path=MINIMAX)
    assert refused.status_code == 400 and "received 'luma/ray-2'" in refused.json()["message"]
    assert "'video-01'" in refused.json()["message"]
    # a vendor without a documented legacy path is no endpoint at all
    assert (
        submit(sim, {"model": T2V, "prompt": "p"}, path="/v2/generate/video/openai/generation").status_code
        == 404
    )
    assert sim.submit_count == 0


@pytest.mark.parametrize(
    ("body", "id_field", "id_pattern", "terminal", "video_is_list"),
    [
        ({"model": "video-01", "prompt": "p"}, "generation_id", r"\d{15}", "completed", False),
        ({"model": "minimax/hailuo-02", "prompt": "p"}, "generation_id", r"\d{15}", "completed", False),
        ({"model": "pixverse/v5/text-to-video", "prompt": "p"}, "id", r"[\w-]{21}", "succeeded", False),
        ({"model": T2V, "prompt": "p"}, "id", r"[\w-]{21}", "completed", False),
        (
            {"model": "bytedance/seedance-1-0-lite-t2v", "prompt": "p"},
            "id",
            r"cgt-\d{14}-[a-z0-9]{5}",
            "completed",
            False,
        ),
        ({"model": "luma/ray-2", "prompt": "p"}, "id", r"[0-9a-f-]{36}:luma/ray-2", "completed", False),
        (
            {"model": "runway/gen4_turbo", "image_url": "https://x.test/a.png"},
            "id",
            r"[0-9a-f-]{36}",
            "completed",
            True,
        ),
        (
            {"model": "openai/sora-2-t2v", "prompt": "p"},
            "id",
            r"video_[0-9a-f]{48}:openai/sora-2-t2v",
            "completed",
            False,
        ),
    ],
)
def test_answers_follow_the_models_page(
    sim: Simulator,
    body: dict[str, Any],
    id_field: str,
    id_pattern: str,
    terminal: str,
    video_is_list: bool,
) -> None:
    sim.configure(default_duration=0)
    answer = submit(sim, body)
    assert answer.status_code == 200, answer.text
    queued = answer.json()
    other = "id" if id_field == "generation_id" else "generation_id"
    assert re.fullmatch(id_pattern, queued[id_field]) and other not in queued
    done = poll(sim, queued[id_field]).json()
    assert done["id"] == queued[id_field] and done["status"] == terminal
    assert isinstance(done["video"], list) is video_is_list
    assert done["meta"] == {"usage": {"credits_used": 100}}


def test_video_01_on_both_paths_with_each_paths_field_names(sim: Simulator) -> None:
    image = "https://x.test/first.png"
    legacy = {"model": "video-01", "prompt": "p", "first_frame_image": image, "prompt_optimizer": False}
    unified = {"model": "video-01", "prompt": "p", "image_url": image, "enhance_prompt": False}
    assert submit(sim, legacy, path=MINIMAX).status_code == 200
    assert submit(sim, unified).status_code == 200
    # each path knows only its own names
    assert submit(sim, unified, path=MINIMAX).status_code == 400
    assert submit(sim, legacy).status_code == 400
    live2d = {"model": "video-01-live2d", "prompt": "p", "image_url": image}
    assert submit(sim, live2d).status_code == 200
    assert (
        submit(sim, {"model": "video-01-live2d", "prompt": "p"}).status_code == 400
    )  # its image is required
    families = sorted(job.family for job in sim.jobs.values())
    assert families == ["legacy", "unified", "unified"] and sim.submit_count == 3
    for job_id, job in sim.jobs.items():
        path = MINIMAX if job.family == "legacy" else UNIFIED
        assert poll(sim, job_id, path).status_code == 200
