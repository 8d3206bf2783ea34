"""Images into the stack's uploads bucket, where each one becomes a generation.

The object goes under the upload prefix (`uploads/` by default), named `<random>-<file stem>.<ext>`
with the extension of its real type (the bucket's notifications filter on `.jpg .jpeg .png .webp`),
its content type, and the request as user metadata (`x-amz-meta-prompt`, `-model`, `-owner` and
any model field such as `-duration`). Non-ASCII text is sent as RFC 2047 encoded words, which the
upload function decodes. S3 allows 2 KB of user metadata in all; a longer request is refused here.

boto3 finds credentials and region as usual (environment, profile, instance role); for the local
stack, the moto endpoint and region come from endpoints.json and any credentials will do.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from videogen_cli.config import Config
from videogen_cli.errors import NetworkError, UsageError
from videogen_cli.images import EXTENSIONS, UPLOADABLE, LocalImage
from videogen_cli.params import metadata_value

MAX_METADATA_BYTES = 2048  # S3's limit on all user metadata (names + values, UTF-8)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    key: str
    metadata: dict[str, str]

    @property
    def reference(self) -> str:
        """What the generation's request records instead of an image URL."""
        return f"s3://{self.bucket}/{self.key}"


def header_text(value: str) -> str:
    """ASCII as is; anything else as one RFC 2047 encoded word (S3 metadata is ASCII)."""
    if value.isascii() and "\n" not in value and "\r" not in value:
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def build_metadata(
    prompt: str | None, model: str | None, owner: str | None, fields: Mapping[str, Any]
) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for name, value in (("prompt", prompt), ("model", model), ("owner", owner)):
        if value:
            metadata[name] = header_text(value)
    for name, value in fields.items():
        if name in ("prompt", "model", "owner", "image_url"):
            raise UsageError(f"--param {name}: give it with its own option, not --param")
        metadata[name.lower()] = header_text(metadata_value(value))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise UsageError(
            f"the upload's metadata (prompt and fields) is {size} bytes; S3 allows {MAX_METADATA_BYTES}",
            hints=["  shorten the prompt, or send the image by https URL with `videogen generate`"],
        )
    return metadata


def object_key(prefix: str, image: LocalImage) -> str:
    stem = _SAFE.sub("-", image.path.stem).strip("-.")[:60] or "image"
    prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    return f"{prefix}{uuid.uuid4().hex[:12]}-{stem}{EXTENSIONS[image.kind]}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def s3_client(config: Config) -> Any:
    import boto3  # imported on use: the other commands start faster without it
    from botocore.config import Config as BotoConfig

    kwargs: dict[str, Any] = {}
    if config.region:
        kwargs["region_name"] = config.region
    if config.aws_endpoint_url:
        kwargs["endpoint_url"] = config.aws_endpoint_url
        kwargs["config"] = BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
        session = boto3.session.Session()
        if _is_loopback(config.aws_endpoint_url) and session.get_credentials() is None:
            # the local stack's moto takes any credentials; a real endpoint never gets these
            kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
        return session.client("s3", **kwargs)
    return boto3.session.Session().client("s3", **kwargs)


def upload_image(
    config: Config,
    image: LocalImage,
    metadata: dict[str, str],
    *,
    client: Any = None,
    progress: Callable[[int], None] | None = None,
) -> Uploaded:
    if not config.uploads_bucket:
        raise UsageError(
            "no uploads bucket known",
            hints=[
                "  give --uploads-bucket or VIDEOGEN_UPLOADS_BUCKET (the stack's UploadsBucket),",
                "  or run the local stack (its endpoints.json names `uploads_bucket`).",
            ],
        )
    if image.kind not in UPLOADABLE:
        raise UsageError(
            f"{image}: the uploads bucket takes JPEG, PNG or WebP images, not {image.kind.upper()}"
        )
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    key = object_key(config.upload_prefix, image)
    try:
        s3 = client or s3_client(config)
        s3.upload_file(
            str(image.path),
            config.uploads_bucket,
            key,
            ExtraArgs={"Metadata": metadata, "ContentType": image.mime},
            Callback=progress,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise NetworkError(
            f"the upload to s3://{config.uploads_bucket}/{key} was refused: "
            f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
        ) from None
    except (BotoCoreError, Boto3Error) as exc:
        raise NetworkError(f"the upload to s3://{config.uploads_bucket}/{key} failed: {exc}") from None
    return Uploaded(bucket=config.uploads_bucket, key=key, metadata=metadata)
