"""The uploads bucket through a boto3 S3 client (SigV4, so presigned URLs are v4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from videogen.domain.uploads import ObjectGoneError, ObjectHead, UploadRecord
from videogen.lazy import client_error


class S3Uploads:
    """The uploads bucket through a boto3 S3 client (SigV4, so presigned URLs are v4).

    Every read names the event's object exactly: its version id when the event has one, else
    If-Match on its ETag, so a key overwritten since the event is never read in its place. The
    presigned URL the provider fetches is pinned the same way: to the version id, or else to a copy
    of the checked object under `checked/<generation id>` (see `presign`)."""

    # Copies of checked objects whose event had no version id. Outside any upload prefix, and the
    # key has no image suffix, so a copy never raises an upload event of its own.
    CHECKED_PREFIX = "checked/"

    _GONE = frozenset({"404", "NoSuchKey", "NoSuchVersion", "405", "MethodNotAllowed"})
    _REPLACED = frozenset({"412", "PreconditionFailed"})

    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    @staticmethod
    def _object(record: UploadRecord) -> dict[str, str]:
        params = {"Bucket": record.bucket, "Key": record.key}
        if record.version_id:
            params["VersionId"] = record.version_id
        return params

    def _exact(self, record: UploadRecord) -> dict[str, str]:
        params = self._object(record)
        if not record.version_id and record.etag:
            params["IfMatch"] = f'"{record.etag}"'
        return params

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._s3, operation)(**params)
        except client_error() as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in self._GONE:
                raise ObjectGoneError("the object no longer exists") from None
            if code in self._REPLACED:
                raise ObjectGoneError("the object was replaced since this event") from None
            raise

    def head(self, record: UploadRecord) -> ObjectHead:
        answer = self._call("head_object", **self._exact(record))
        return ObjectHead(
            size=int(answer.get("ContentLength", 0)),
            content_type=str(answer.get("ContentType") or ""),
            metadata={str(k).lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()},
        )

    def read_start(self, record: UploadRecord, length: int) -> bytes:
        answer = self._call("get_object", Range=f"bytes=0-{length - 1}", **self._exact(record))
        body = answer["Body"]
        try:
            return bytes(body.read(length))
        finally:
            body.close()

    def presign(self, record: UploadRecord, *, content_type: str, expires_in: int) -> str:
        """A GET URL of exactly the object the checks read. A URL of the bare key would serve
        whatever a later PUT wrote there, unchecked, for as long as the URL lives."""
        # The provider sees the type the bytes proved, whatever the uploader declared.
        params = {**self._pinned(record), "ResponseContentType": content_type}
        return str(self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    def pin(self, record: UploadRecord) -> dict[str, str]:
        """Where the checked object stays as checked (see `_pinned`): bucket, key and version_id
        when there is one. A queued upload keeps this, not a URL; `link` makes the URL later."""
        params = self._pinned(record)
        pinned = {"bucket": params["Bucket"], "key": params["Key"]}
        if params.get("VersionId"):
            pinned["version_id"] = params["VersionId"]
        return pinned

    def link(self, pinned: Mapping[str, str], *, expires_in: int) -> str:
        """A presigned GET of a pinned object (`pin`), served as its proven `content_type`."""
        params = {"Bucket": pinned["bucket"], "Key": pinned["key"]}
        if pinned.get("version_id"):
            params["VersionId"] = pinned["version_id"]
        if pinned.get("content_type"):
            params["ResponseContentType"] = pinned["content_type"]
        return str(self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    def _pinned(self, record: UploadRecord) -> dict[str, str]:
        """The checked object under a name no later PUT of the uploader's key changes: its version
        id (the bucket is versioned, and S3's events carry it), else a copy made on the condition
        that the source still has the checked ETag (moto's local events carry no version id)."""
        if record.version_id:
            return self._object(record)
        if not record.etag:
            raise ObjectGoneError("the event names neither a version id nor an ETag to pin the object to")
        key = self.CHECKED_PREFIX + record.generation_id()
        answer = self._call(
            "copy_object",
            Bucket=record.bucket,
            Key=key,
            CopySource={"Bucket": record.bucket, "Key": record.key},
            CopySourceIfMatch=f'"{record.etag}"',
        )
        copied = str((answer.get("CopyObjectResult") or {}).get("ETag", "")).strip('"')
        # A second check for stores that ignore CopySourceIfMatch (moto does): a single-part
        # object's copy has the same ETag (its MD5). A multipart ETag ("...-N") differs in any copy,
        # so there the condition alone decides.
        if "-" not in record.etag and copied != record.etag:
            raise ObjectGoneError("the object was replaced since this event")
        return {"Bucket": record.bucket, "Key": key}
