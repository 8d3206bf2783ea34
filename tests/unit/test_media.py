"""OutputArchive's download of the provider's video link: every URL it fetches, the link and
each redirect target, passes the SSRF check first (no redirect into a private address)."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from tests.unit.test_urls import PUBLIC_V4, FakeResolver
from videogen.adapters.s3_archive import OutputArchive
from videogen.adapters.url_safety import download_url_checker
from videogen.domain.ports import ArchiveError

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
PROVIDER = "https://api.aimlapi.com"


class FakeAnswer:
    def __init__(
        self,
        status: int,
        *,
        location: str | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status
        self.headers = {"Location": location} if location else {"Content-Type": "video/mp4"}
        self.headers.update(headers or {})
        self.raw = io.BytesIO(body)
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeAnswer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeHttp:
    """requests.Session look-alike: answers from a table of URL -> FakeAnswer, records each GET."""

    def __init__(self, answers: dict[str, FakeAnswer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, url: str, **kwargs: Any) -> FakeAnswer:
        self.calls.append((url, kwargs))
        return self.answers[url]


@pytest.fixture
def archive_with(aws: dict[str, str]) -> Any:
    resolver = FakeResolver(
        {
            "cdn.example.com": [PUBLIC_V4],
            "files.example.com": [PUBLIC_V4],
            "intranet.example.com": ["10.0.0.7"],
        }
    )

    def make(answers: dict[str, FakeAnswer]) -> tuple[OutputArchive, FakeHttp]:
        http = FakeHttp(answers)
        check = download_url_checker(PROVIDER, strict_dns=True, resolver=resolver)
        archive = OutputArchive(boto3.client("s3"), aws["OutputsBucket"], http=http, check_download_url=check)  # type: ignore[arg-type]
        return archive, http

    return make


def _stored(aws: dict[str, str], key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=aws["OutputsBucket"], Key=key)["Body"].read())


def test_a_public_link_is_downloaded_without_requests_following_redirects(
    archive_with: Any, aws: dict[str, str]
) -> None:
    archive, http = archive_with({"https://cdn.example.com/v.mp4": FakeAnswer(200, body=MP4)})
    key = archive.archive("gen_1", "https://cdn.example.com/v.mp4")
    assert _stored(aws, key) == MP4
    assert [kwargs["allow_redirects"] for _, kwargs in http.calls] == [False]


def test_public_redirects_are_followed_and_each_target_checked(
    archive_with: Any, aws: dict[str, str]
) -> None:
    archive, http = archive_with(
        {
            "https://cdn.example.com/v.mp4": FakeAnswer(302, location="https://files.example.com/a/v.mp4"),
            "https://files.example.com/a/v.mp4": FakeAnswer(307, location="../b/v.mp4?sig=1"),
            "https://files.example.com/b/v.mp4?sig=1": FakeAnswer(200, body=MP4),
        }
    )
    key = archive.archive("gen_2", "https://cdn.example.com/v.mp4")
    assert _stored(aws, key) == MP4
    assert [url for url, _ in http.calls][-1] == "https://files.example.com/b/v.mp4?sig=1"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:9001/2018-06-01/runtime/invocation/next",  # the Lambda runtime API
        "https://[::1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://2130706433/",
        "https://intranet.example.com/v.mp4",  # a public-looking name resolving to 10.0.0.7
        "http://cdn.example.com/v.mp4",  # a downgrade to plain http
    ],
)
def test_a_redirect_to_a_private_address_is_never_fetched(archive_with: Any, target: str) -> None:
    first = FakeAnswer(302, location=target)
    archive, http = archive_with({"https://cdn.example.com/v.mp4": first})
    with pytest.raises(ArchiveError, match="video URL refused") as excinfo:
        archive.archive("gen_3", "https://cdn.example.com/v.mp4")
    assert [url for url, _ in http.calls] == ["https://cdn.example.com/v.mp4"]  # the target never was
    assert first.closed
    assert "169.254" not in str(excinfo.value) and "127.0.0.1" not in str(excinfo.value)


@pytest.mark.parametrize("link", ["http://10.0.0.1/v.mp4", "https://localhost/v.mp4", "file:///etc/passwd"])
def test_a_private_provider_link_is_refused_before_any_request(archive_with: Any, link: str) -> None:
    archive, http = archive_with({})
    with pytest.raises(ArchiveError, match="video URL refused"):
        archive.archive("gen_4", link)
    assert http.calls == []


def test_redirect_loops_and_bare_redirects_fail(archive_with: Any) -> None:
    loop = {"https://cdn.example.com/v.mp4": FakeAnswer(301, location="https://cdn.example.com/v.mp4")}
    archive, http = archive_with(loop)
    with pytest.raises(ArchiveError, match="redirected more than 5 times"):
        archive.archive("gen_5", "https://cdn.example.com/v.mp4")
    assert len(http.calls) == 6
    archive, _ = archive_with({"https://cdn.example.com/v.mp4": FakeAnswer(302)})
    with pytest.raises(ArchiveError, match="without a Location"):
        archive.archive("gen_6", "https://cdn.example.com/v.mp4")


def test_the_configured_provider_origin_is_trusted() -> None:
    # locally the provider is the simulator on loopback over http: its own links must work
    resolver = FakeResolver()
    local = download_url_checker("http://127.0.0.1:8123", strict_dns=True, resolver=resolver)
    local("http://127.0.0.1:8123/_sim/videos/job.mp4?sig=abc")
    for other in (
        "http://127.0.0.1:8124/x",  # another port
        "http://127.0.0.2:8123/x",
        "https://127.0.0.1:8123/x",  # another scheme
        "http://x@127.0.0.1:8123/x",  # credentials
        "http://127.0.0.1:8123\\@evil/x",
    ):
        with pytest.raises(Exception, match=r"https|non-public|credentials|backslash"):
            local(other)
    deployed = download_url_checker(PROVIDER, strict_dns=True, resolver=FakeResolver())
    deployed("https://API.aimlapi.com:443/v2/file.mp4")  # same origin: no DNS needed
    with pytest.raises(Exception, match="does not resolve"):
        deployed("https://cdn.example.org/v.mp4")  # any other host goes through the full check


def test_bootstrap_wires_the_checker_into_the_archive() -> None:
    from videogen.bootstrap import build
    from videogen.settings import Settings

    settings = Settings(
        table_name="t", idempotency_table_name="i", outputs_bucket="b", aiml_api_key_secret_id="s"
    )
    archive = build(settings).service.archive
    assert isinstance(archive, OutputArchive)
    with pytest.raises(ArchiveError, match="video URL refused"):
        archive.archive("gen_7", "https://169.254.169.254/latest/meta-data/")


# -- what a download may be: its real size and its type ----------------------------------------

CAP = 4096  # the archive's byte cap in these tests; the real one is 4 GiB


def _capped(aws: dict[str, str], answers: dict[str, FakeAnswer]) -> OutputArchive:
    return OutputArchive(boto3.client("s3"), aws["OutputsBucket"], http=FakeHttp(answers), max_bytes=CAP)  # type: ignore[arg-type]


def _absent(aws: dict[str, str], key: str) -> bool:
    try:
        boto3.client("s3").head_object(Bucket=aws["OutputsBucket"], Key=key)
    except ClientError:
        return True
    return False


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "100"},  # a body longer than its Content-Length claims
        {},  # no Content-Length at all (a chunked answer)
    ],
    ids=["understated-length", "no-length"],
)
def test_a_body_over_the_cap_is_refused_whatever_its_content_length_says(
    aws: dict[str, str], headers: dict[str, str]
) -> None:
    url = "https://cdn.example.com/v.mp4"
    archive = _capped(aws, {url: FakeAnswer(200, body=MP4 + b"\x00" * (2 * CAP), headers=headers)})

    with pytest.raises(ArchiveError, match=f"over the {CAP} byte limit"):
        archive.archive("gen_big", url)
    assert _absent(aws, OutputArchive.key_for("gen_big"))


def test_a_body_at_the_cap_is_archived(aws: dict[str, str]) -> None:
    body = MP4 + b"\x00" * (CAP - len(MP4))
    archive = _capped(aws, {"https://cdn.example.com/v.mp4": FakeAnswer(200, body=body)})

    assert _stored(aws, archive.archive("gen_cap", "https://cdn.example.com/v.mp4")) == body


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json", "image/png"])
def test_an_answer_that_is_not_a_video_is_refused(aws: dict[str, str], content_type: str) -> None:
    url = "https://cdn.example.com/v.mp4"
    page = FakeAnswer(200, body=b"<html>Access denied</html>", headers={"Content-Type": content_type})
    archive = _capped(aws, {url: page})

    with pytest.raises(ArchiveError, match="not a video"):
        archive.archive("gen_html", url)
    assert _absent(aws, OutputArchive.key_for("gen_html"))


@pytest.mark.parametrize("content_type", ["video/mp4", "Video/WebM", "application/octet-stream", None])
def test_video_and_generic_types_are_archived(aws: dict[str, str], content_type: str | None) -> None:
    answer = FakeAnswer(200, body=MP4)
    if content_type is None:
        del answer.headers["Content-Type"]  # HTTP lets a recipient take it as application/octet-stream
    else:
        answer.headers["Content-Type"] = content_type
    archive = _capped(aws, {"https://cdn.example.com/v.mp4": answer})

    assert _stored(aws, archive.archive("gen_ok", "https://cdn.example.com/v.mp4")) == MP4


@pytest.fixture
def gzip_server() -> Iterator[str]:
    """A loopback server whose video is gzip-encoded: a few bytes on the wire, far more decoded,
    and a Content-Length that states only the encoded size."""
    encoded = gzip.compress(MP4 + b"\x00" * (4 * CAP))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v.mp4"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cap_counts_decoded_bytes(aws: dict[str, str], gzip_server: str) -> None:
    archive = OutputArchive(boto3.client("s3"), aws["OutputsBucket"], http=requests.Session(), max_bytes=CAP)

    with pytest.raises(ArchiveError, match=f"over the {CAP} byte limit"):
        archive.archive("gen_gzip", gzip_server)
    assert _absent(aws, OutputArchive.key_for("gen_gzip"))
