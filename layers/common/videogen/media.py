"""Durable output: copy a finished video from the provider's expiring link into our bucket, and
hand out short-lived links to it."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


@functools.cache
def _transfer_config() -> Any:
    """Multipart in 8 MiB parts, two at a time: memory stays bounded whatever the video's size.
    (boto3's transfer module is imported on first use, not at a cold start.)"""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=2, use_threads=True)


class ArchiveError(Exception):
    """The copy did not complete; the generation stays active and the copy is retried."""


@dataclass(frozen=True)
class VideoLink:
    url: str
    expires_at: float


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
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._given_http = http
        self._made_http: requests.Session | None = None
        self._http_lock = threading.Lock()
        self._timeout = timeout
        self._max_bytes = max_bytes

    @property
    def _http(self) -> requests.Session:
        """The download session, made on the first archive (requests is not imported at a cold start)."""
        if self._given_http is not None:
            return self._given_http
        if self._made_http is None:
            with self._http_lock:
                if self._made_http is None:
                    import requests

                    self._made_http = requests.Session()
        return self._made_http

    @staticmethod
    def key_for(generation_id: str) -> str:
        return f"videos/{generation_id}.mp4"

    def archive(self, generation_id: str, source_url: str) -> str:
        """Stream `source_url` into the bucket; returns the object key. The body is never held
        whole in memory: the HTTP response is read in chunks as the upload consumes it."""
        import requests

        key = self.key_for(generation_id)
        try:
            with self._http.get(source_url, stream=True, timeout=self._timeout) as answer:
                if answer.status_code != 200:
                    raise ArchiveError(f"video download answered HTTP {answer.status_code}")
                length = answer.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > self._max_bytes:
                    raise ArchiveError(f"video is {length} bytes, over the {self._max_bytes} byte limit")
                answer.raw.decode_content = True
                self._s3.upload_fileobj(
                    answer.raw,
                    self._bucket,
                    key,
                    ExtraArgs={"ContentType": "video/mp4"},
                    Config=_transfer_config(),
                )
        except requests.RequestException as exc:
            raise ArchiveError(f"video download failed: {type(exc).__name__}") from exc
        except ArchiveError:
            raise
        except Exception as exc:  # boto3 upload failures come in several classes
            raise ArchiveError(f"archive upload failed: {type(exc).__name__}") from exc
        return key

    def link(self, key: str, *, expires_in: int, now: float) -> VideoLink:
        url = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
        return VideoLink(url=url, expires_at=now + expires_in)
