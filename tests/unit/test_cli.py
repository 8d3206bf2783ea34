"""The `videogen` command-line client without the stack: parsing, coercion, configuration,
error output and exit codes, retries and Ctrl-C, against a small fake API on loopback."""

from __future__ import annotations

import base64
import io
import json
import threading
import tomllib
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from videogen_cli import main as cli_main
from videogen_cli import progress
from videogen_cli.api import ApiClient
from videogen_cli.config import find_endpoints_file, mask, resolve
from videogen_cli.errors import ApiError, NetworkError, UsageError
from videogen_cli.images import MAX_INLINE_BYTES, image_kind, is_reference, open_local_image
from videogen_cli.params import coerce, field_types, guess, parse_params, split_param
from videogen_cli.progress import clock, estimate, progress_line
from videogen_cli.uploads import MAX_METADATA_BYTES, build_metadata, object_key

ROOT = Path(__file__).resolve().parents[2]
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
MODELS = {
    "models": [
        {
            "id": "m/text",
            "provider": "p",
            "mode": "text-to-video",
            "description": "a text model",
            "typical_seconds": 60,
            "fields": [
                {"name": "prompt", "type": "string", "required": True},
                {"name": "duration", "type": "integer", "required": False, "enum": [5, 10]},
                {"name": "cfg_scale", "type": "number", "required": False},
                {"name": "loop", "type": "boolean", "required": False},
                {"name": "resolution", "type": "string", "required": False},
                {"name": "extra", "type": "object", "required": False},
            ],
        }
    ]
}


# ---------------------------------------------------------------------------------------------
# A fake API on loopback: each test scripts the answers.

Answer = tuple[int, dict[str, str], Any] | str  # (status, headers, JSON body) or "drop"


class FakeApi:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any]], Answer]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(raw) if raw else None,
                }
                api.requests.append(record)
                route = api.routes.get((self.command, path))
                answer: Answer = (
                    route(record) if route else (404, {}, {"error": {"code": "nf", "message": path}})
                )
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                assert not isinstance(answer, str)
                status, headers, body = answer
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def route(self, method: str, path: str, *answers: Answer) -> None:
        """Answer in turn; the last answer repeats."""
        queue = list(answers)

        def handler(_: dict[str, Any]) -> Answer:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[(method, "/v1" + path)] = handler

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].split("?")[0] == "/v1" + path]


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    api.thread.start()
    api.route("GET", "/models", (200, {}, MODELS))
    yield api
    api.server.shutdown()
    api.server.server_close()


def generation(gid: str = "gen_1", status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {
        "id": gid,
        "status": status,
        "model": "m/text",
        "source": "api",
        "request": {"prompt": "a fox"},
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        **extra,
    }


@pytest.fixture
def run(
    fake_api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """`run(*argv)` -> (exit code, stdout, stderr), against the fake API, isolated from the host."""

    def call(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
        args = [*argv, "--api-url", fake_api.url, "--api-key", "k-test"] if env is None else list(argv)
        code = cli_main.main(args, env=env or {}, cwd=cwd or tmp_path)
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "pause", lambda seconds: None)


# ---------------------------------------------------------------------------------------------
# packaging


def test_pyproject_installs_the_cli_and_not_the_backend() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"videogen": "videogen_cli.main:main"}
    assert project["tool"]["setuptools"]["packages"]["find"] == {
        "where": ["cli"],
        "include": ["videogen_cli*"],
    }
    deps = " ".join(project["project"]["dependencies"])
    assert "requests" in deps and "boto3" in deps


def test_the_cli_never_imports_the_layer() -> None:
    for path in (ROOT / "cli" / "videogen_cli").glob("*.py"):
        text = path.read_text()
        assert "from videogen." not in text and "import videogen\n" not in text, path


# ---------------------------------------------------------------------------------------------
# --param


def test_split_param() -> None:
    assert split_param("duration=10") == ("duration", "10")
    assert split_param("prompt=a=b") == ("prompt", "a=b")
    assert split_param("negative_prompt=") == ("negative_prompt", "")
    for bad in ("duration", "=5", "du ration=5", "9x=1"):
        with pytest.raises(UsageError):
            split_param(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("16:9", "16:9"),
        ("720p", "720p"),
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", [1, 2]),
        ("{not json", "{not json"),
        ("hello world", "hello world"),
    ],
)
def test_guess(text: str, value: Any) -> None:
    assert guess(text) == value and type(guess(text)) is type(value)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("10", "integer", 10),
        ("10.0", "integer", 10),
        ("ten", "integer", "ten"),  # sent as written: the API names the field
        ("7", "number", 7),
        ("7.5", "number", 7.5),
        ("yes", "boolean", True),
        ("off", "boolean", False),
        ("0", "boolean", False),
        ("maybe", "boolean", "maybe"),
        ("720", "string", "720"),  # a string field keeps digits as text
        ("true", "string", "true"),
        ("https://x.test/a.png", "url", "https://x.test/a.png"),
        ('{"k": [1]}', "object", {"k": [1]}),
        ("42", "mystery", 42),
    ],
)
def test_coerce_by_field_type(text: str, kind: str, value: Any) -> None:
    result = coerce(text, kind)
    assert result == value and type(result) is type(value)


def test_parse_params_uses_the_models_field_types() -> None:
    types = field_types(MODELS["models"][0])
    assert types is not None and types["duration"] == "integer"
    fields = parse_params(
        ["duration=10", "cfg_scale=0.5", "loop=true", "resolution=720", 'extra={"a":1}', "unknown=3"], types
    )
    assert fields == {
        "duration": 10,
        "cfg_scale": 0.5,
        "loop": True,
        "resolution": "720",
        "extra": {"a": 1},
        "unknown": 3,
    }
    assert parse_params(["resolution=720"], None) == {"resolution": 720}  # no catalog: guessed
    with pytest.raises(UsageError, match="twice"):
        parse_params(["seed=1", "seed=2"], types)


# ---------------------------------------------------------------------------------------------
# configuration


def test_flags_then_environment_then_endpoints_file(tmp_path: Path) -> None:
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "endpoints.json").write_text(
        json.dumps(
            {
                "api_url": "http://127.0.0.1:3000/v1",
                "api_key": "file-key",
                "uploads_bucket": "file-bucket",
                "aws_endpoint_url": "http://127.0.0.1:5000",
                "region": "us-east-1",
                "api_key_ids": {"file-key": "local-abc", "env-key": "local-env"},
            }
        )
    )
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_endpoints_file(deep) == tmp_path / ".local" / "endpoints.json"

    config = resolve({}, {}, deep)
    assert (config.api_url, config.api_key, config.uploads_bucket) == (
        "http://127.0.0.1:3000/v1",
        "file-key",
        "file-bucket",
    )
    assert config.owner == "local-abc"
    assert config.origin["api_key"].endswith("endpoints.json")

    config = resolve({}, {"VIDEOGEN_API_KEY": "env-key"}, deep)
    assert (config.api_key, config.owner, config.origin["api_key"]) == (
        "env-key",
        "local-env",
        "env VIDEOGEN_API_KEY",
    )

    config = resolve({"api_key": "flag-key", "owner": "me"}, {"VIDEOGEN_API_KEY": "env-key"}, deep)
    assert (config.api_key, config.owner) == ("flag-key", "me")

    # the same API given by flag (trailing slash aside) still uses the file's other settings
    config = resolve({"api_url": "http://127.0.0.1:3000/v1/"}, {}, deep)
    assert (config.api_url, config.api_key) == ("http://127.0.0.1:3000/v1", "file-key")

    # another API: nothing of the local stack's file applies
    config = resolve({"api_url": "https://api.example.test/v1"}, {}, deep)
    assert (config.api_key, config.uploads_bucket, config.endpoints_file) == (None, None, None)
    with pytest.raises(UsageError, match="no API key"):
        config.require_api()


def test_bad_endpoints_file_and_bad_url_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "endpoints.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        resolve({}, {}, tmp_path)
    with pytest.raises(UsageError, match="http"):
        resolve({"api_url": "ftp://x"}, {}, tmp_path / "..")


def _endpoints(folder: Path, **values: str) -> Path:
    (folder / ".local").mkdir(parents=True, exist_ok=True)
    path = folder / ".local" / "endpoints.json"
    path.write_text(json.dumps(values))
    return path


def test_a_parent_folders_endpoints_file_may_only_point_at_this_machine(tmp_path: Path) -> None:
    planted = _endpoints(tmp_path, api_url="https://elsewhere.example.test/v1", api_key="planted")
    deep = tmp_path / "work"
    deep.mkdir()
    with pytest.raises(UsageError, match=r"not using .*api_url is not on this machine") as refused:
        resolve({}, {"VIDEOGEN_API_KEY": "mine"}, deep)
    assert any("--endpoints-file" in hint for hint in refused.value.hints)
    # the moto endpoint gets AWS-signed requests: it must be local too
    _endpoints(tmp_path, api_url="http://127.0.0.1:3000/v1", aws_endpoint_url="https://s3.example.test")
    with pytest.raises(UsageError, match="aws_endpoint_url is not on this machine"):
        resolve({}, {}, deep)
    # another API given: the file is ignored, as before, not refused
    config = resolve({"api_url": "https://api.example.test/v1"}, {"VIDEOGEN_API_KEY": "mine"}, deep)
    assert (config.api_url, config.api_key, config.endpoints_file) == (
        "https://api.example.test/v1",
        "mine",
        None,
    )

    # the same file in the current folder, or named by flag or environment, is the user's choice
    _endpoints(tmp_path, api_url="https://elsewhere.example.test/v1", api_key="planted")
    assert resolve({}, {}, tmp_path).api_url == "https://elsewhere.example.test/v1"
    named = resolve({"endpoints_file": str(planted)}, {}, deep)
    assert (named.api_key, named.endpoints_file) == ("planted", planted)
    assert resolve({}, {"VIDEOGEN_ENDPOINTS_FILE": "../.local/endpoints.json"}, deep).api_key == "planted"
    with pytest.raises(UsageError, match="no endpoints file"):
        resolve({"endpoints_file": "missing.json"}, {}, deep)


def test_the_endpoints_file_flag_reaches_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "stack"
    elsewhere.mkdir()
    path = _endpoints(elsewhere, api_url="http://localhost:3000/v1", api_key="local-dev-key")
    code = cli_main.main(["config", "--json", "--endpoints-file", str(path)], env={}, cwd=tmp_path)
    view = json.loads(capsys.readouterr().out)
    assert code == 0 and view["endpoints_file"] == str(path) and view["api_url"] == "http://localhost:3000/v1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:3000/v1",
        "http://localhost:3000/v1",
        "http://127.0.0.2/v1",
        "http://[::1]:3000/v1",
        "https://api.example.test/v1",
    ],
)
def test_http_is_accepted_for_loopback_and_https_anywhere(tmp_path: Path, url: str) -> None:
    assert resolve({"api_url": url}, {}, tmp_path).api_url == url


@pytest.mark.parametrize(
    "url", ["http://api.example.test/v1", "http://10.0.0.5:3000/v1", "http://localhost.example.test/v1"]
)
def test_plain_http_to_another_host_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    with pytest.raises(UsageError, match="refusing plain http"):
        resolve({"api_url": url}, {}, tmp_path)
    code = cli_main.main(["models", "--api-url", url, "--api-key", "k"], env={}, cwd=tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "unencrypted" in err and "https://" in err


def test_nothing_configured_exits_2_and_says_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main.main(["models"], env={}, cwd=tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert "no API URL and API key" in err and "VIDEOGEN_API_URL" in err and "make local" in err
    assert "Traceback" not in err


def test_mask() -> None:
    assert mask("local-dev-key") == "loc…" and mask("short") == "…" and mask(None) is None


def test_config_masks_the_key(run: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run("config", "--json")
    view = json.loads(out)
    assert code == 0 and view["api_key"] == "…" and view["from"]["api_key"] == "flag"


# ---------------------------------------------------------------------------------------------
# usage errors


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["list", "--limit", "0"],
        ["list", "--status", "done"],
        ["status"],
        ["generate", "x", "--interval", "-1"],
        ["generate", "x", "-p", "novalue"],
        ["generate", "x", "-p", "model=other"],
        ["usage", "--days", "0"],
        ["usage", "--days", "many"],
    ],
)
def test_usage_errors_exit_2(run: Callable[..., tuple[int, str, str]], argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2, err
    assert "Traceback" not in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out
    assert cli_main.main(["--version"]) == 0


def test_global_options_go_before_or_after_the_command(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi
) -> None:
    code, out, _ = run("--json", "models")
    assert code == 0 and json.loads(out)["models"][0]["id"] == "m/text"
    code, out, _ = run("models", "--json")
    assert code == 0 and json.loads(out)["models"][0]["id"] == "m/text"
    assert fake_api.calls("GET", "/models")[0]["headers"]["x-api-key"] == "k-test"


# ---------------------------------------------------------------------------------------------
# images


def test_image_arguments(tmp_path: Path) -> None:
    assert is_reference("https://example.test/a.png") and is_reference("data:image/png;base64,AAAA")
    assert is_reference("http://example.test/a.png")  # the API refuses it, with its reason
    assert not is_reference("photos/cat.png") and not is_reference("C:cat.png")
    assert image_kind(PNG_1PX) == "png" and image_kind(b"\xff\xd8\xff\xe0") == "jpeg"
    assert image_kind(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp" and image_kind(b"GIF89a") == "gif"
    assert image_kind(b"hello") is None

    (tmp_path / "a.png").write_bytes(PNG_1PX)
    image = open_local_image(str(tmp_path / "a.png"))
    assert (
        image.fits_inline
        and image.data_url() == "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    )
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match="not a JPEG"):
        open_local_image(str(tmp_path / "notes.txt"))
    with pytest.raises(UsageError, match="no such file"):
        open_local_image(str(tmp_path / "missing.png"))


def test_a_small_local_image_is_sent_inline(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi, tmp_path: Path
) -> None:
    (tmp_path / "cat.png").write_bytes(PNG_1PX)
    fake_api.route("POST", "/generations", (202, {}, generation()))
    code, out, err = run("generate", "a cat", "--image", str(tmp_path / "cat.png"))
    assert code == 0 and out.strip() == "gen_1"
    body = fake_api.calls("POST", "/generations")[0]["json"]
    assert body["model"] == "video-01"  # the image default
    assert body["image_url"] == "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    assert "inline" in err


def test_a_large_local_image_without_an_uploads_bucket_is_a_clear_usage_error(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG_1PX + b"\x00" * MAX_INLINE_BYTES)
    code, _, err = run("generate", "a cat", "--image", str(big))
    assert code == 2
    assert "uploads bucket" in err and "--uploads-bucket" in err and "https URL" in err
    assert not fake_api.calls("POST", "/generations")


def test_upload_metadata() -> None:
    metadata = build_metadata(
        "Un chat très grand", "video-01", "local-abc", {"duration": 10, "enhance_prompt": False}
    )
    assert metadata["model"] == "video-01" and metadata["owner"] == "local-abc"
    assert metadata["duration"] == "10" and metadata["enhance_prompt"] == "false"
    assert metadata["prompt"].isascii()
    assert (
        str(make_header(decode_header(metadata["prompt"]))) == "Un chat très grand"
    )  # as the upload function reads it
    assert build_metadata("plain", None, None, {}) == {"prompt": "plain"}
    with pytest.raises(UsageError, match="2048"):
        build_metadata("x" * MAX_METADATA_BYTES, None, None, {})
    with pytest.raises(UsageError):
        build_metadata("p", None, None, {"owner": "someone"})


def test_upload_keys_sit_under_the_prefix_with_the_real_extension(tmp_path: Path) -> None:
    path = tmp_path / "My Photo (1).PNG"
    path.write_bytes(PNG_1PX)
    key = object_key("uploads/", open_local_image(str(path)))
    assert key.startswith("uploads/") and key.endswith("-My-Photo-1.png")
    assert object_key("in", open_local_image(str(path))).startswith("in/")


# ---------------------------------------------------------------------------------------------
# errors and exit codes


def test_api_errors_print_code_message_and_fields_exit_3(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi
) -> None:
    fake_api.route(
        "POST",
        "/generations",
        (
            422,
            {},
            {
                "error": {
                    "code": "validation_error",
                    "message": "invalid request for m/text: duration: must be one of 5, 10",
                    "details": [{"field": "duration", "message": "must be one of 5, 10"}],
                }
            },
        ),
    )
    code, out, err = run("generate", "a fox", "-m", "m/text", "-p", "duration=7")
    assert code == 3 and out == ""
    assert (
        "error: validation_error: invalid request for m/text: duration: must be one of 5, 10 (HTTP 422)"
        in err
    )
    assert "  duration: must be one of 5, 10" in err
    assert fake_api.calls("POST", "/generations")[0]["json"]["duration"] == 7
    assert len(fake_api.calls("POST", "/generations")) == 1  # the API's own answer is final


def test_api_gateway_shaped_errors_are_reported_too() -> None:
    error = ApiError(403, "invalid_api_key", "a valid x-api-key header is required")
    assert error.lines() == ["error: invalid_api_key: a valid x-api-key header is required (HTTP 403)"]


def test_unreachable_api_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = cli_main.main(
        ["status", "gen_1", "--api-url", f"http://127.0.0.1:{port}", "--api-key", "k"], env={}, cwd=tmp_path
    )
    err = capsys.readouterr().err
    assert code == 3 and "cannot reach the API" in err and "Traceback" not in err


def test_a_failed_generation_exits_4(run: Callable[..., tuple[int, str, str]], fake_api: FakeApi) -> None:
    failed = generation(status="failed", error={"code": "provider_failed", "message": "simulated failure"})
    fake_api.route("GET", "/generations/gen_1", (200, {}, generation(status="generating")), (200, {}, failed))
    code, _, err = run("wait", "gen_1")
    assert code == 4
    assert "gen_1 failed: provider_failed: simulated failure" in err
    for status in ("cancelled", "timed_out"):
        fake_api.route("GET", "/generations/gen_1", (200, {}, generation(status=status)))
        assert run("wait", "gen_1")[0] == 4


def test_wait_timeout_exits_4_and_says_how_to_resume(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi
) -> None:
    fake_api.route("GET", "/generations/gen_1", (200, {}, generation(status="generating")))
    code, _, err = run("wait", "gen_1", "--timeout", "0")
    assert code == 4 and "still generating" in err and "videogen wait gen_1" in err


def test_internal_errors_are_one_line(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(ctx: Any) -> int:
        raise RuntimeError("bug")

    monkeypatch.setitem(cli_main.COMMANDS, "models", boom)
    code, _, err = run("models")
    assert code == 1 and "internal error: RuntimeError: bug" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# waiting, downloading, Ctrl-C


def test_wait_shows_progress_then_downloads(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi, tmp_path: Path
) -> None:
    video_url = fake_api.url + "/files/v.mp4"
    done = generation(status="completed", video={"url": video_url, "expires_at": 2e9})
    fake_api.route(
        "GET",
        "/generations/gen_1",
        (200, {}, generation(status="queued")),
        (200, {}, generation(status="generating")),
        (200, {}, done),
    )
    fake_api.route("GET", "/files/v.mp4", (200, {"Content-Type": "video/mp4"}, MP4_HEAD))
    out_file = tmp_path / "sub" / "fox.mp4"
    code, out, err = run("wait", "gen_1", "-o", str(out_file))
    assert code == 0, err
    assert out.strip() == str(out_file) and out_file.read_bytes() == MP4_HEAD
    lines = err.splitlines()
    assert any("queued" in line and "typically ~1:00" in line for line in lines)
    assert any("generating" in line for line in lines) and any("completed" in line for line in lines)
    assert "saved" in err
    assert "x-api-key" not in fake_api.calls("GET", "/files/v.mp4")[0]["headers"]  # a presigned link


def test_an_expired_link_is_renewed_once(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi, tmp_path: Path
) -> None:
    old = generation(status="completed", video={"url": fake_api.url + "/files/old.mp4", "expires_at": 1})
    new = generation(status="completed", video={"url": fake_api.url + "/files/new.mp4", "expires_at": 2e9})
    fake_api.route("GET", "/generations/gen_1", (200, {}, old), (200, {}, new))
    fake_api.route("GET", "/files/old.mp4", (403, {}, b"<Error>expired</Error>"))
    fake_api.route("GET", "/files/new.mp4", (200, {}, MP4_HEAD))
    code, _, err = run("wait", "gen_1", "-o", str(tmp_path / "v.mp4"))
    assert code == 0, err
    assert "expired" in err and (tmp_path / "v.mp4").read_bytes() == MP4_HEAD


def test_ctrl_c_while_waiting_leaves_it_running_and_says_how_to_resume(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_api.route("POST", "/generations", (202, {}, generation()))
    fake_api.route("GET", "/generations/gen_1", (200, {}, generation(status="generating")))

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(progress, "pause", interrupt)
    code, _, err = run("generate", "a fox", "--wait", "-o", "fox.mp4")
    assert code == 130
    assert "gen_1 keeps running; resume with: videogen wait gen_1 -o fox.mp4" in err
    assert not fake_api.calls("DELETE", "/generations/gen_1")


# ---------------------------------------------------------------------------------------------
# idempotency and retries


def test_generate_sends_an_idempotency_key_and_reuses_it_after_a_network_failure(
    run: Callable[..., tuple[int, str, str]], fake_api: FakeApi
) -> None:
    fake_api.route("POST", "/generations", "drop", (202, {}, generation()))
    code, out, err = run("generate", "a fox", "-m", "m/text", "-p", "duration=5", "-p", "loop=yes")
    assert code == 0, err and out.strip() == "gen_1"
    posts = fake_api.calls("POST", "/generations")
    assert len(posts) == 2
    keys = {p["headers"]["idempotency-key"] for p in posts}
    assert len(keys) == 1 and len(keys.pop()) == 36  # one uuid4, sent twice
    assert posts[0]["json"] == {"model": "m/text", "prompt": "a fox", "duration": 5, "loop": True}
    code, _, _ = run("generate", "again", "-m", "m/text", "--idempotency-key", "order-42")
    assert fake_api.calls("POST", "/generations")[-1]["headers"]["idempotency-key"] == "order-42"


def test_submit_retry_rules(fake_api: FakeApi) -> None:
    client = ApiClient(fake_api.url, "k", sleep=lambda s: None)
    in_progress = {"error": {"code": "request_in_progress", "message": "wait"}}
    fake_api.route("POST", "/generations", (409, {"Retry-After": "1"}, in_progress), (202, {}, generation()))
    assert client.create({"model": "m"}, idempotency_key="k1")["id"] == "gen_1"
    assert len(fake_api.calls("POST", "/generations")) == 2

    # API Gateway's own 504 (the handler may have run): retried, the key makes it safe
    fake_api.requests.clear()
    fake_api.route(
        "POST", "/generations", (504, {}, {"message": "Endpoint request timed out"}), (202, {}, generation())
    )
    assert client.create({"model": "m"}, idempotency_key="k2")["id"] == "gen_1"
    assert len(fake_api.calls("POST", "/generations")) == 2

    # the API's own 502: final (the same key would replay it)
    fake_api.requests.clear()
    unknown = {
        "error": {"code": "submit_outcome_unknown", "message": "lost", "details": [{"generation_id": "g"}]}
    }
    fake_api.route("POST", "/generations", (502, {}, unknown))
    with pytest.raises(ApiError) as caught:
        client.create({"model": "m"}, idempotency_key="k3")
    assert caught.value.code == "submit_outcome_unknown" and len(fake_api.calls("POST", "/generations")) == 1
    assert "  generation_id=g" in caught.value.lines()


def test_reads_are_retried_on_5xx_and_network_failures(fake_api: FakeApi) -> None:
    client = ApiClient(fake_api.url, "k", sleep=lambda s: None)
    fake_api.route(
        "GET", "/generations/gen_1", (503, {}, {"message": "busy"}), "drop", (200, {}, generation())
    )
    assert client.get("gen_1")["id"] == "gen_1"
    assert len(fake_api.calls("GET", "/generations/gen_1")) == 3
    fake_api.route("GET", "/generations/gen_2", "drop")
    with pytest.raises(NetworkError):
        client.get("gen_2")


def test_cancel_after_a_lost_answer_checks_the_status(fake_api: FakeApi) -> None:
    client = ApiClient(fake_api.url, "k", sleep=lambda s: None)
    conflict = {"error": {"code": "conflict", "message": "already cancelled"}}
    fake_api.route("DELETE", "/generations/gen_1", "drop", (409, {}, conflict))
    fake_api.route("GET", "/generations/gen_1", (200, {}, generation(status="cancelled")))
    assert client.cancel("gen_1")["status"] == "cancelled"
    fake_api.route("DELETE", "/generations/gen_2", (409, {}, conflict))
    with pytest.raises(ApiError, match="already cancelled"):
        client.cancel("gen_2")


def _template_gateway_answer(response_type: str) -> tuple[int, dict[str, str], Any]:
    """What API Gateway answers for `response_type`, as template.yaml's GatewayResponses shape it."""
    from local.aws.apigw import render_gateway_response
    from local.aws.cfn import Template

    responses = Template(ROOT / "template.yaml").api("VideogenApi").gateway_responses
    status, headers, body = render_gateway_response(response_type, responses, {"requestId": "r-1"})
    return status, dict(headers), json.loads(body)


@pytest.mark.parametrize(
    ("response_type", "status", "code"),
    [
        ("INTEGRATION_TIMEOUT", 504, "gateway_timeout"),
        ("THROTTLED", 429, "gateway_throttled"),
        ("DEFAULT_5XX", 502, "gateway_error"),
    ],
)
def test_a_post_is_retried_after_api_gateways_own_errors_with_the_same_key(
    fake_api: FakeApi, response_type: str, status: int, code: str
) -> None:
    answer = _template_gateway_answer(response_type)
    assert (answer[0], answer[2]["error"]["code"]) == (status, code)  # the exact body the CLI meets
    sleeps: list[float] = []
    client = ApiClient(fake_api.url, "k", sleep=sleeps.append, backoff=0.5)
    fake_api.route("POST", "/generations", answer, (202, {}, generation()))
    assert client.create({"model": "m"}, idempotency_key="key-1")["id"] == "gen_1"
    posts = fake_api.calls("POST", "/generations")
    assert [p["headers"]["idempotency-key"] for p in posts] == ["key-1", "key-1"]
    assert sleeps == [0.5]

    # bounded: after `attempts` gateway errors the last one is reported; the code alone (no
    # x-amzn-ErrorType, as behind a proxy that drops it) is enough to retry
    fake_api.requests.clear()
    sleeps.clear()
    fake_api.route("POST", "/generations", (status, {}, answer[2]))
    with pytest.raises(ApiError) as caught:
        client.create({"model": "m"}, idempotency_key="key-2")
    assert caught.value.code == code and len(fake_api.calls("POST", "/generations")) == 3
    assert sleeps == [0.5, 1.0]


def test_the_apis_own_errors_and_the_quota_are_final_for_a_post(fake_api: FakeApi) -> None:
    client = ApiClient(fake_api.url, "k", sleep=lambda s: None)
    own = {"error": {"code": "internal_error", "message": "boom"}}  # the handler's own 500
    quota = _template_gateway_answer("QUOTA_EXCEEDED")
    assert quota[0] == 429 and quota[2]["error"]["code"] == "quota_exceeded"
    for answer, code in (((500, {}, own), "internal_error"), (quota, "quota_exceeded")):
        fake_api.requests.clear()
        fake_api.route("POST", "/generations", answer, (202, {}, generation()))
        with pytest.raises(ApiError) as caught:
            client.create({"model": "m"}, idempotency_key="k")
        assert caught.value.code == code and len(fake_api.calls("POST", "/generations")) == 1


def test_x_amzn_errortype_marks_an_answer_as_api_gateways(fake_api: FakeApi) -> None:
    """A stack whose GatewayResponses still say `internal_error`: the header tells them apart."""
    client = ApiClient(fake_api.url, "k", sleep=lambda s: None)
    reshaped = {"error": {"code": "internal_error", "message": "Endpoint request timed out"}}
    header = {"x-amzn-ErrorType": "InternalServerErrorException:http://internal.amazon.com/coral/"}
    fake_api.route("POST", "/generations", (504, header, reshaped), (202, {}, generation()))
    assert client.create({"model": "m"}, idempotency_key="k")["id"] == "gen_1"
    assert len(fake_api.calls("POST", "/generations")) == 2


def test_the_local_gateway_answers_504_after_a_slow_handler_and_the_cli_retries(tmp_path: Path) -> None:
    """The local adapter's INTEGRATION_TIMEOUT, rendered from the template, end to end: the first
    attempt is recorded by the handler but answered 504; the retry with the same key gets the
    recorded answer, as the API's idempotency does."""
    import time

    from local.aws.apigw import ApiGatewayAdapter, Route
    from local.aws.cfn import Template

    recorded: dict[str, dict[str, Any]] = {}
    keys_seen: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        key = {k.lower(): v for k, v in event["headers"].items()}["idempotency-key"]
        keys_seen.append(key)
        if key not in recorded:
            recorded[key] = generation()
            time.sleep(0.3)  # longer than the integration timeout below
        return {
            "statusCode": 202,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(recorded[key]),
        }

    responses = Template(ROOT / "template.yaml").api("VideogenApi").gateway_responses
    adapter = ApiGatewayAdapter(
        [Route("POST", "/generations", "ApiFunction")],
        invoke,
        api_keys=["k"],
        gateway_responses=responses,
        integration_timeout=0.1,
    )
    with adapter:
        # the first answer alone, as a client without retries sees it
        once = ApiClient(adapter.url, "k", attempts=1)
        with pytest.raises(ApiError) as caught:
            once.create({"model": "m"}, idempotency_key="first")
        assert (caught.value.status, caught.value.code) == (504, "gateway_timeout")
        assert caught.value.gateway_error_type == "InternalServerErrorException"

        client = ApiClient(adapter.url, "k", sleep=lambda s: None)
        assert client.create({"model": "m"}, idempotency_key="second")["id"] == "gen_1"
    assert keys_seen == ["first", "second", "second"]
    assert len(recorded) == 2  # one record per key, however many attempts


def test_redirects_are_not_followed_with_the_key(
    fake_api: FakeApi, run: Callable[..., tuple[int, str, str]]
) -> None:
    elsewhere = FakeApi()
    elsewhere.thread.start()
    try:
        target = elsewhere.url + "/models"
        fake_api.route("GET", "/models", (302, {"Location": target}, {}))
        fake_api.route("POST", "/generations", (307, {"Location": elsewhere.url + "/generations"}, {}))
        client = ApiClient(fake_api.url, "k-test", sleep=lambda s: None)
        with pytest.raises(ApiError) as caught:
            client.create({"model": "m"}, idempotency_key="k")
        assert caught.value.code == "redirect_not_followed"
        code, _, err = run("models")
        assert code == 3
        assert "redirect_not_followed" in err and target in err and "not sent there" in err
        assert "--api-url" in err
        assert len(fake_api.calls("GET", "/models")) == 1  # not retried either
        assert elsewhere.requests == []  # the key never left for the other host
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()


# ---------------------------------------------------------------------------------------------
# output


def test_progress_line_and_estimate() -> None:
    assert clock(5) == "0:05" and clock(185) == "3:05" and clock(3725) == "1:02:05"
    assert estimate(30, 180) == "typically ~3:00, about 2:30 left"
    assert estimate(200, 180) == "typically ~3:00, taking longer than usual"
    assert estimate(10, None) == ""
    line = progress_line(generation(status="generating"), 42, 180)
    assert line == "gen_1  generating  0:42 elapsed  (typically ~3:00, about 2:18 left)"
    assert progress_line(generation(status="completed"), 65, 180) == "gen_1  completed   after 1:05"


def test_a_terminal_gets_one_line_rewritten_in_place() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    console = progress.Console(io.StringIO(), err)
    console.live("one", changed=True)
    console.live("two", changed=False)
    console.end_live()
    assert err.getvalue() == "\r\x1b[Kone\r\x1b[Ktwo\n"
    plain = io.StringIO()
    console = progress.Console(io.StringIO(), plain)
    console.live("one", changed=True)
    console.live("one again", changed=False)
    assert plain.getvalue() == "one\n"


def test_list_and_status_output(run: Callable[..., tuple[int, str, str]], fake_api: FakeApi) -> None:
    page = {"items": [generation(), generation("gen_2", "completed")], "next_token": "tok"}
    fake_api.route("GET", "/generations", (200, {}, page))
    code, out, err = run("list", "--limit", "2", "--status", "queued")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "STATUS", "MODEL", "CREATED", "(UTC)", "PROMPT"]
    assert "gen_2" in out and "a fox" in out
    assert "videogen list --next-token tok --status queued" in err
    assert fake_api.calls("GET", "/generations")[0]["path"].endswith("?status=queued&limit=2")

    fake_api.route(
        "GET",
        "/generations/gen_1",
        (200, {}, generation(request={"prompt": "a fox", "image_url": "data:image/png;base64," + "A" * 500})),
    )
    code, out, _ = run("status", "gen_1")
    assert code == 0 and "status:       queued" in out and "(522 chars)" in out


def test_off_a_terminal_progress_is_a_line_per_change_and_a_heartbeat() -> None:
    now = [0.0]
    answers = [generation(status="generating")] * 7 + [generation(status="completed")]

    class Client:
        def get(self, generation_id: str) -> dict[str, Any]:
            return answers.pop(0)

        def model(self, model_id: str) -> dict[str, Any]:
            return MODELS["models"][0]

    err = io.StringIO()
    watch = progress.Watch(
        Client(),  # type: ignore[arg-type]
        progress.Console(io.StringIO(), err),
        interval=10,
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        monotonic=lambda: now[0],
    )
    final = watch.until_done(generation(status="queued", created_at="not a time"))
    assert final["status"] == "completed"
    lines = err.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [
        "queued",
        "generating",
        "generating",
        "generating",
        "completed",
    ]
    assert lines[1].endswith("0:10 elapsed  (typically ~1:00, about 0:50 left)")
    assert lines[2].split()[2] == "0:40" and lines[-1].endswith("after 1:20")


def test_webhook_secret_shows_the_keys_secret_and_rotate_is_never_retried(
    fake_api: FakeApi, run: Callable[..., tuple[int, str, str]]
) -> None:
    secret = {"secret": "whsec_abc=", "version": 1, "previous_version": None, "previous_valid_until": None}
    fake_api.route("GET", "/webhook-secret", (200, {}, secret))
    code, out, _ = run("webhook-secret")
    assert code == 0 and out.splitlines()[0] == "whsec_abc="

    rotated = {
        "secret": "whsec_new=",
        "version": 2,
        "previous_version": 1,
        "previous_valid_until": 1_800_003_600,
    }
    fake_api.route("POST", "/webhook-secret/rotate", (200, {}, rotated))
    code, out, err = run("webhook-secret", "rotate")
    assert code == 0 and out.splitlines()[0] == "whsec_new="
    assert "version 1 also signs until 2027-01-15T09:00:00+00:00" in err
    code, out, _ = run("webhook-secret", "--json")
    assert code == 0 and json.loads(out) == secret

    # a lost answer (API Gateway's 504) is not retried: a second rotation would end the grace of
    # the secret the receivers still hold
    timeout = {"error": {"code": "gateway_timeout", "message": "Endpoint request timed out"}}
    fake_api.route("POST", "/webhook-secret/rotate", (504, {}, timeout))
    before = len(fake_api.calls("POST", "/webhook-secret/rotate"))
    code, _, _ = run("webhook-secret", "rotate")
    assert code == 3 and len(fake_api.calls("POST", "/webhook-secret/rotate")) == before + 1
