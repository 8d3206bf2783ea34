"""Durable output: copy a finished video from the provider's expiring link into our bucket, and
hand out short-lived links to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from videogen.domain.errors import UnsafeUrlError
from videogen.domain.ports import ArchiveError, VideoLink
from videogen.lazy import lazy_import, once

if TYPE_CHECKING:
    import requests

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_requests = lazy_import("requests")
_transfer = lazy_import("boto3.s3.transfer")
# Multipart in 8 MiB parts, two at a time: memory stays bounded whatever the video's size.
_transfer_config = once(
    lambda: _transfer.TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=2, use_threads=True)
)


class OutputArchive:
    """Videos in the outputs bucket under `videos/<generation id>.mp4`."""

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        *,
        http: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 60.0),
        max_bytes: int = 4 * 1024**3,
        check_download_url: Callable[[str], None] | None = None,
        max_redirects: int = MAX_REDIRECTS,
        http_factory: Callable[[], requests.Session] | None = None,
    ) -> None:
        """`check_download_url` (e.g. url_safety.download_url_checker) vets the provider's link and every
        redirect target before it is fetched; it raises UnsafeUrlError to refuse one. `http_factory`
        makes the download session at the first download (pinned_http.pinned_session connects to
        the address it checked, so DNS cannot change between the check and the connection)."""
        self._s3 = s3_client
        self._bucket = bucket
        self._given_http = http
        self._made_http = once(http_factory or (lambda: _requests.Session()))
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._check_download_url = check_download_url
        self._max_redirects = max_redirects

    @property
    def _http(self) -> requests.Session:
        """The download session, made on the first archive."""
        if self._given_http is not None:
            return self._given_http
        return self._made_http()

    @staticmethod
    def key_for(generation_id: str) -> str:
        return f"videos/{generation_id}.mp4"

    def archive(self, generation_id: str, source_url: str) -> str:
        """Stream `source_url` into the bucket; returns the object key. The body is never held
        whole in memory: the HTTP response is read in chunks as the upload consumes it."""
        key = self.key_for(generation_id)
        try:
            with self._open(source_url) as answer:
                if answer.status_code != 200:
                    raise ArchiveError(f"video download answered HTTP {answer.status_code}")
                _check_video_type(answer.headers.get("Content-Type"))
                length = answer.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > self._max_bytes:
                    raise ArchiveError(f"video is {length} bytes, over the {self._max_bytes} byte limit")
                answer.raw.decode_content = True
                # Content-Length is only a claim (and absent from chunked answers): the cap is
                # kept on the bytes actually read, after decoding.
                body = _CappedReader(answer.raw, self._max_bytes)
                try:
                    self._s3.upload_fileobj(
                        body,
                        self._bucket,
                        key,
                        ExtraArgs={"ContentType": "video/mp4"},
                        Config=_transfer_config(),
                    )
                except Exception:
                    if body.over:  # the transfer may wrap or replace the reader's error
                        raise body.over from None
                    raise
        except _requests.RequestException as exc:
            from videogen.adapters.pinned_http import UnsafeAddressError  # requests is loaded by now

            if isinstance(exc, UnsafeAddressError):  # resolved to a private address since the check
                raise ArchiveError("video URL refused: host resolves to a non-public address") from None
            raise ArchiveError(f"video download failed: {type(exc).__name__}") from exc
        except ArchiveError:
            raise
        except Exception as exc:  # boto3 upload failures come in several classes
            raise ArchiveError(f"archive upload failed: {type(exc).__name__}") from exc
        return key

    def _open(self, url: str) -> requests.Response:
        """GET `url`, following redirects by hand so that each target is checked before it is
        fetched: requests' own redirect handling would reach a private address unchecked."""
        for _ in range(self._max_redirects + 1):
            if self._check_download_url is not None:
                try:
                    self._check_download_url(url)
                except UnsafeUrlError as exc:  # the message never repeats the URL (it may be signed)
                    raise ArchiveError(f"video URL refused: {exc.message}") from None
            answer = self._http.get(url, stream=True, timeout=self._timeout, allow_redirects=False)
            if answer.status_code not in _REDIRECT_STATUSES:
                return answer
            location = answer.headers.get("Location")
            answer.close()
            if not location:
                raise ArchiveError(f"video download answered HTTP {answer.status_code} without a Location")
            url = urljoin(url, location)
        raise ArchiveError(f"video download redirected more than {self._max_redirects} times")

    def link(self, key: str, *, expires_in: int, now: float) -> VideoLink:
        url = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
        return VideoLink(url=url, expires_at=now + expires_in)


# What a video download may be: a video type, or the generic type (also assumed when absent, as
# HTTP says a recipient may) that storage services give files they do not know.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def _check_video_type(content_type: str | None) -> None:
    """An answer that is not a video (an HTML error page, a JSON error) is refused, not archived
    and served as the generation's MP4."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type.startswith("video/") or media_type in _GENERIC_TYPES:
        return
    raise ArchiveError(f"video download answered content type {media_type!r}, not a video")


class _CappedReader:
    """A file-like view of the download that fails once more than `limit` bytes were read."""

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._read = 0
        self.over: ArchiveError | None = None

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size) if size is not None and size >= 0 else self._raw.read()
        self._read += len(chunk)
        if self._read > self._limit:
            self.over = ArchiveError(f"video is over the {self._limit} byte limit (counted while streaming)")
            raise self.over
        return bytes(chunk)
