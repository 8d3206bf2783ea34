"""The `videogen` CLI against the real local stack (the session's LocalStack: moto, simulator,
real handlers). The CLI runs in-process (`main([...])`) with the endpoint given by flags; the
scheduled poller is played by a background thread calling `local_stack.poll_now()`, since the
session stack's timer is off."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack
from tests.images import png
from videogen.domain.catalog import get_model
from videogen_cli.main import main

Run = Callable[..., tuple[int, str, str]]
WAIT = ["--wait", "--interval", "0.05", "--timeout", "30"]


def cli(argv: list[str], *, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """main() with its own stdout/stderr: the handlers run in this process and log to sys.stdout."""
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, env=env, cwd=cwd)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def key(api: Any) -> str:
    """The API key of the `api` fixture's caller: the CLI acts as that caller."""
    return str(api.http.headers["x-api-key"])


@pytest.fixture
def run(local_stack: LocalStack, tmp_path: Path, key: str) -> Run:
    """`run(*argv, key=...)` -> (exit code, stdout, stderr), endpoint and key by flag."""
    default_key = key

    def call(*argv: str, key: str | None = default_key, cwd: Path | None = None) -> tuple[int, str, str]:
        args = [*argv, "--api-url", local_stack.api_url]
        if key is not None:
            args += ["--api-key", key]
        return cli(args, env={}, cwd=cwd or tmp_path)

    return call


def api_get(api: Any, generation_id: str) -> dict[str, Any]:
    answer = api.get(f"/generations/{generation_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_models(run: Run) -> None:
    code, out, err = run("models")
    assert code == 0, err
    assert out.splitlines()[0].startswith("MODEL")
    assert "video-01 " in out and "kling-video/v1.6/standard/text-to-video" in out

    code, out, _ = run("models", "--json")
    ids = [m["id"] for m in json.loads(out)["models"]]
    assert code == 0 and "google/veo3" in ids

    code, out, _ = run("models", "google/veo3")
    assert code == 0 and "duration" in out and "one of 4, 6, 8" in out


def test_generate_wait_downloads_the_mp4(run: Run, poller: None, tmp_path: Path, api: Any) -> None:
    target = tmp_path / "videos" / "fox.mp4"
    code, out, err = run(
        "generate", "A red fox runs through snow", "-p", "duration=5", *WAIT, "-o", str(target)
    )
    assert code == 0, err
    assert out.strip() == str(target)
    data = target.read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 100
    # the estimate, from GET /models' typical_seconds (the time the model's page states)
    minutes, seconds = divmod(get_model("kling-video/v1.6/standard/text-to-video").typical_seconds, 60)
    assert f"typically ~{minutes}:{seconds:02d}" in err
    assert "completed" in err and "saved" in err
    generation_id = err.split("submitted ", 1)[1].split()[0]
    record = api_get(api, generation_id)
    assert record["status"] == "completed"
    assert record["request"] == {"prompt": "A red fox runs through snow", "duration": 5}


def test_json_output_and_the_default_file_name(run: Run, poller: None, tmp_path: Path) -> None:
    code, out, err = run("generate", "A heron lands", "--json", *WAIT)
    assert code == 0, err
    final = json.loads(out)
    assert final["status"] == "completed"
    assert final["output_file"] == f"{final['id']}.mp4"
    assert (tmp_path / final["output_file"]).read_bytes()[4:8] == b"ftyp"  # relative to the cwd


def test_status_list_cancel(run: Run, api: Any) -> None:
    # no poller: the generation stays queued
    code, out, err = run("generate", "A slow sunrise", "-m", "luma/ray-2")
    assert code == 0, err
    generation_id = out.strip()
    assert generation_id.startswith("gen_") and f"videogen wait {generation_id}" in err
    # accepted `pending`; the dispatcher (woken through the dispatch queue) submits it
    deadline = time.monotonic() + 15
    while api_get(api, generation_id)["status"] != "queued" and time.monotonic() < deadline:
        time.sleep(0.1)

    code, out, _ = run("status", generation_id)
    assert code == 0
    assert f"id:           {generation_id}" in out and "status:       queued" in out
    assert "prompt:       A slow sunrise" in out

    code, out, _ = run("status", generation_id, "--json")
    assert code == 0 and json.loads(out)["model"] == "luma/ray-2"

    code, out, _ = run("list", "--status", "queued", "--limit", "100")
    assert code == 0 and generation_id in out

    code, out, _ = run("list", "--json", "--limit", "1")
    page = json.loads(out)
    assert code == 0 and len(page["items"]) == 1 and page["next_token"]

    code, out, err = run("cancel", generation_id)
    assert code == 0, err
    assert out.strip() == f"{generation_id} cancelled"
    assert api_get(api, generation_id)["status"] == "cancelled"

    code, _, err = run("cancel", generation_id)  # already finished
    assert code == 3 and "conflict" in err

    code, _, err = run("wait", generation_id)
    assert code == 4 and "cancelled" in err

    code, _, err = run("status", "gen_doesnotexist")
    assert code == 3 and "not_found" in err


def test_a_bad_key_exits_3_with_the_apis_message(run: Run) -> None:
    code, out, err = run("models", key="not-a-key")
    assert code == 3 and out == ""
    assert "invalid_api_key" in err and "a valid x-api-key header is required" in err
    assert "Traceback" not in err


def test_an_unknown_model_exits_3_naming_the_field(run: Run) -> None:
    code, _, err = run("generate", "A fox", "-m", "acme/does-not-exist")
    assert code == 3
    assert "unknown_model" in err and "acme/does-not-exist" in err
    assert "field: model" in err


def test_a_bad_field_value_exits_3_naming_the_field(run: Run) -> None:
    code, _, err = run("generate", "A fox", "-p", "duration=7")
    assert code == 3
    assert "validation_error" in err and "  duration: must be one of 5, 10" in err


def test_a_failed_generation_exits_4(run: Run, poller: None) -> None:
    code, out, err = run("generate", "A fox [sim:error]", *WAIT)
    assert code == 4, err
    assert " failed: " in err and "simulated" in err
    assert out == ""


def test_params_are_typed_by_the_models_fields(run: Run, api: Any) -> None:
    code, out, err = run(
        "generate",
        "A lighthouse at dusk",
        "-m",
        "google/veo3",
        "-p",
        "duration=8",
        "-p",
        "seed=42",
        "-p",
        "enhance_prompt=no",
        "-p",
        "generate_audio=true",
        "-p",
        "aspect_ratio=9:16",
        "-p",
        "resolution=720P",
    )
    assert code == 0, err
    request = api_get(api, out.strip())["request"]
    assert request == {
        "prompt": "A lighthouse at dusk",
        "duration": 8,
        "seed": 42,
        "enhance_prompt": False,
        "generate_audio": True,
        "aspect_ratio": "9:16",
        "resolution": "720P",
    }


def test_the_same_idempotency_key_gives_the_same_generation(run: Run) -> None:
    key = f"cli-{uuid.uuid4()}"
    first = run("generate", "An owl blinks", "--idempotency-key", key)
    second = run("generate", "An owl blinks", "--idempotency-key", key)
    assert first[0] == second[0] == 0
    assert first[1] == second[1]
    code, _, err = run("generate", "Another owl", "--idempotency-key", key)
    assert code == 3 and "idempotency_key_reused" in err


def test_wait_resumes_and_downloads(run: Run, poller: None, tmp_path: Path) -> None:
    code, out, _ = run("generate", "A kite in the wind")
    assert code == 0
    generation_id = out.strip()
    code, out, err = run("wait", generation_id, "--interval", "0.05", "--timeout", "30", "-o", "kite.mp4")
    assert code == 0, err
    assert (tmp_path / "kite.mp4").read_bytes()[4:8] == b"ftyp"
    code, out, _ = run("wait", generation_id, "--no-download")  # already done: the link, at once
    assert code == 0 and out.startswith("http://127.0.0.1:")


def test_a_small_local_image_goes_inline(run: Run, api: Any, tmp_path: Path) -> None:
    (tmp_path / "frame.png").write_bytes(png())
    code, out, err = run("generate", "The frame comes alive", "--image", "frame.png", cwd=tmp_path)
    assert code == 0, err
    record = api_get(api, out.strip())
    assert record["model"] == "video-01"
    assert record["request"]["image_url"].startswith("data:image/png;base64,")


def test_endpoints_json_is_found_in_a_parent_folder(
    local_stack: LocalStack, tmp_path: Path, key: str
) -> None:
    (tmp_path / ".local").mkdir()
    endpoints = {"api_url": local_stack.api_url, "api_key": key}
    (tmp_path / ".local" / "endpoints.json").write_text(json.dumps(endpoints))
    deep = tmp_path / "project" / "src"
    deep.mkdir(parents=True)

    code, out, err = cli(["list", "--limit", "1"], env={}, cwd=deep)
    assert code == 0, err

    # environment beats the file, flags beat the environment
    code, _, err = cli(["models"], env={"VIDEOGEN_API_KEY": "wrong"}, cwd=deep)
    assert code == 3 and "invalid_api_key" in err
    code, _, err = cli(["models", "--api-key", key], env={"VIDEOGEN_API_KEY": "wrong"}, cwd=deep)
    assert code == 0, err

    code, out, _ = cli(["config", "--json"], env={}, cwd=deep)
    view = json.loads(out)
    assert code == 0 and view["api_url"] == local_stack.api_url
    assert view["endpoints_file"] == str((tmp_path / ".local" / "endpoints.json").resolve())

    # an API URL that is not the file's: the file's key is not used with it
    code, _, err = cli(["models"], env={"VIDEOGEN_API_URL": local_stack.api_url + "/other"}, cwd=deep)
    assert code == 2 and "no API key" in err


# ---------------------------------------------------------------------------------------------
# uploads (the uploads bucket and its notification come from the template)


@pytest.fixture
def upload_flags(local_stack: LocalStack, key: str) -> list[str]:
    bucket = local_stack.endpoints.get("uploads_bucket")
    if not bucket:
        pytest.skip("this local stack has no uploads bucket")
    return [
        "--uploads-bucket",
        bucket,
        "--aws-endpoint-url",
        local_stack.aws_endpoint_url,
        "--region",
        local_stack.region,
        "--owner",
        local_stack.key_id(key),  # the caller's API key id: the generation is theirs
        "--find-timeout",
        "20",
        "--interval",
        "0.1",
    ]


def test_upload_puts_the_image_with_its_request_as_metadata(
    run: Run, local_stack: LocalStack, upload_flags: list[str], tmp_path: Path, api: Any, key: str
) -> None:
    (tmp_path / "sunset.png").write_bytes(png())
    prompt = "Le soleil se couche derrière la colline"  # non-ASCII: RFC 2047 in the metadata
    code, out, err = run(
        "upload", "sunset.png", "--prompt", prompt, "-p", "enhance_prompt=false", *upload_flags, cwd=tmp_path
    )
    assert code == 0, err
    reference = err.split(" to ", 1)[1].split()[0]
    bucket, object_key = reference.removeprefix("s3://").split("/", 1)
    assert object_key.startswith("uploads/") and object_key.endswith("-sunset.png")
    head = local_stack.client("s3").head_object(Bucket=bucket, Key=object_key)
    assert head["ContentType"] == "image/png"
    assert head["Metadata"]["owner"] == local_stack.key_id(key)
    assert head["Metadata"]["enhance_prompt"] == "false"

    generation = api_get(api, out.strip())  # the generation the stack made of it, found by the CLI
    assert generation["source"] == "s3" and generation["request"]["image_url"] == reference
    assert generation["request"]["prompt"] == prompt
    assert generation["request"]["enhance_prompt"] is False


def test_a_large_local_image_is_uploaded_and_followed_to_the_video(
    run: Run, poller: None, upload_flags: list[str], tmp_path: Path
) -> None:
    (tmp_path / "big.png").write_bytes(png(340, 320, noise=True))
    assert (tmp_path / "big.png").stat().st_size > 256 * 1024
    argv = ["generate", "The big picture moves", "--image", "big.png", "--wait", "--timeout", "30"]
    code, _, err = run(*argv, "-o", "big.mp4", *upload_flags, cwd=tmp_path)
    assert code == 0, err
    assert "more than the 256 KiB" in err and "uploaded" in err and "the stack created gen_" in err
    assert (tmp_path / "big.mp4").read_bytes()[4:8] == b"ftyp"


def test_upload_wait_finds_the_owner_in_endpoints_json(
    local_stack: LocalStack, poller: None, tmp_path: Path, api: Any
) -> None:
    """What `make local` users run: no flags at all. endpoints.json carries `api_key_ids`, so the
    CLI knows the caller's owner id and can follow the generation its upload made."""
    written = json.loads(local_stack.endpoints_path.read_text())
    assert written["api_key_ids"] == {k: local_stack.key_id(k) for k in local_stack.api_keys}
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "endpoints.json").write_text(json.dumps(written))
    (tmp_path / "cat.png").write_bytes(png())

    argv = ["upload", "cat.png", "--prompt", "The cat yawns", *WAIT, "--find-timeout", "20", "-o", "cat.mp4"]
    code, _, err = cli(argv, env={}, cwd=tmp_path)
    assert code == 0, err
    assert "the stack created gen_" in err
    generation_id = err.split("the stack created ", 1)[1].split()[0]
    # the file's key is the first one (the `api` fixture's caller): the generation is theirs
    assert api_get(api, generation_id)["status"] == "completed"
    assert (tmp_path / "cat.mp4").read_bytes()[4:8] == b"ftyp"
