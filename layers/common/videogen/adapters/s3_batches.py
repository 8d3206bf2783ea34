"""S3 objects of batches: manifests (uploads bucket, batches/<owner>/...), and in the outputs
bucket under batches/<batch id>/: the inline input, the item file the Distributed Map reads, the
invalid lines, the results manifest and the Map's ResultWriter output."""

from __future__ import annotations

from typing import Any

from videogen.lazy import client_error

_MISSING = {"404", "NoSuchKey", "NotFound"}


class BatchObjects:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def size(self, bucket: str, key: str) -> int | None:
        try:
            return int(self._s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except client_error() as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            return bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client_error() as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise

    def write(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def link(self, bucket: str, key: str, expires_in: int) -> str:
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
