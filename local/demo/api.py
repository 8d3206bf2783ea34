"""The demo's REST API part: text-to-video, image-to-video and an S3 upload, down to the MP4.

It acts as a client of the REST API with `requests` and the API key only: lists the models,
submits a Kling text-to-video and the seed's MiniMax video-01 image-to-video (the cheetah), prints
every status change as it happens, and when a generation is `completed` downloads its MP4 from the
presigned link and checks it is an MP4. Then "drop an image, get a video": it uploads
local/assets/upload-sample.png into the uploads bucket (boto3 against moto, the prompt and the
demo key's id in the object's metadata), and follows the generation the upload handler made
through the API down to its MP4 too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from local.demo.common import DemoError, download_mp4, shown_path
from local.stack import ROOT, LocalStack

TEXT_MODEL = "kling-video/v1.6/standard/text-to-video"
IMAGE_MODEL = "video-01"
CHEETAH = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg"
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}
SIM_DURATIONS = {TEXT_MODEL: 3.0, IMAGE_MODEL: 5.0}
UPLOAD_SAMPLE = ROOT / "local" / "assets" / "upload-sample.png"
UPLOAD_PROMPT = "The sun sinks behind the hill and the sky turns violet."


@dataclass
class Job:
    label: str
    body: dict[str, Any]
    id: str = ""
    status: str = ""
    answer: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[float, str]] = field(default_factory=list)
    file: Path | None = None
    size: int = 0


class Client:
    """The REST API as any caller sees it: base URL + x-api-key."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"x-api-key": api_key, "Accept": "application/json"})

    def call(self, method: str, path: str, *, expect: int, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = self.http.request(method, self.base + path, timeout=(3.05, 30), **kwargs)
        except requests.RequestException as exc:
            raise DemoError(f"{method} {path}: no answer ({type(exc).__name__}: {exc})") from exc
        if answer.status_code != expect:
            raise DemoError(
                f"{method} {path}: HTTP {answer.status_code} (wanted {expect}): {answer.text[:500]}"
            )
        try:
            body = answer.json()
        except ValueError as exc:
            raise DemoError(f"{method} {path}: the answer is not JSON: {answer.text[:200]!r}") from exc
        if not isinstance(body, dict):
            raise DemoError(f"{method} {path}: expected a JSON object, got {type(body).__name__}")
        return body


def _say(start: float, text: str) -> None:
    print(f"[{time.monotonic() - start:6.1f}s] {text}", flush=True)


def upload_sample(stack: LocalStack) -> str:
    """Put the sample PNG in the uploads bucket as any S3 client would; the demo key's id as owner
    makes the generation visible to it through the API. Returns the s3:// reference on record."""
    bucket = stack.uploads_bucket
    if not bucket:
        raise DemoError("the template has no uploads bucket")
    key = f"uploads/demo sunset {uuid.uuid4().hex[:8]}.png"  # a space: S3 encodes it in the event
    stack.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=UPLOAD_SAMPLE.read_bytes(),
        ContentType="image/png",
        Metadata={"prompt": UPLOAD_PROMPT, "owner": stack.key_id(stack.api_key)},
    )
    return f"s3://{bucket}/{key}"


def find_upload(client: Client, reference: str, deadline: float) -> dict[str, Any]:
    """The generation whose request names the uploaded object (the upload handler runs
    asynchronously, as S3 invokes it: it may take a moment to appear)."""
    while True:
        page = client.call("GET", "/generations", expect=200, params={"limit": "20"})
        for item in page.get("items") or []:
            if (item.get("request") or {}).get("image_url") == reference:
                return item
        if time.monotonic() >= deadline:
            raise DemoError(f"no generation appeared for the upload {reference}")
        time.sleep(0.2)


def run(
    client: Client,
    *,
    timeout: float,
    outputs: Path,
    poll_every: float = 0.5,
    upload: Callable[[], str] | None = None,
) -> list[Job]:
    start = time.monotonic()
    deadline = start + timeout

    catalog = client.call("GET", "/models", expect=200)
    models = catalog.get("models") or catalog.get("items") or []
    ids = {m.get("id") for m in models if isinstance(m, dict)}
    _say(start, f"GET /models -> {len(ids)} models")
    for wanted in (TEXT_MODEL, IMAGE_MODEL):
        if wanted not in ids:
            raise DemoError(f"model {wanted} is not in the catalog")

    jobs = [
        Job(
            "text-to-video",
            {"model": TEXT_MODEL, "prompt": "A paper boat drifting down a rainy street, cinematic"},
        ),
        Job(
            "image-to-video",
            {"model": IMAGE_MODEL, "prompt": "Cheetah turns toward the camera.", "image_url": CHEETAH},
        ),
    ]
    for job in jobs:
        answer = client.call(
            "POST", "/generations", expect=202, json=job.body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        job.id, job.status, job.answer = str(answer["id"]), str(answer["status"]), answer
        job.history.append((time.monotonic() - start, job.status))
        _say(start, f"{job.label:15} {job.id}: submitted ({job.body['model']}) -> {job.status}")
    if upload is not None:
        reference = upload()
        _say(start, f"{'s3-upload':15} put {reference}")
        answer = find_upload(client, reference, deadline)
        job = Job("s3-upload", {"model": answer["model"], "image_url": reference}, answer=answer)
        job.id, job.status = str(answer["id"]), str(answer["status"])
        job.history.append((time.monotonic() - start, job.status))
        _say(start, f"{job.label:15} {job.id}: by the upload handler ({job.body['model']}) -> {job.status}")
        jobs.append(job)

    while True:
        for job in jobs:
            if job.file is not None:
                continue
            if job.status not in TERMINAL:
                answer = client.call("GET", f"/generations/{job.id}", expect=200)
                if answer["status"] != job.status:
                    job.status = str(answer["status"])
                    job.history.append((time.monotonic() - start, job.status))
                    _say(start, f"{job.label:15} {job.id}: -> {job.status}")
                job.answer = answer
            if job.status == "completed":
                video = job.answer.get("video") or {}
                if not video.get("url"):
                    raise DemoError(f"{job.id} is completed but carries no video.url: {job.answer}")
                job.file = outputs / f"{job.id}.mp4"
                job.size = download_mp4(video["url"], job.file)
                _say(start, f"{job.label:15} {job.id}: saved {job.size} bytes to {shown_path(job.file)}")
            elif job.status in TERMINAL:
                error = job.answer.get("error") or {}
                raise DemoError(
                    f"{job.label} {job.id} ended {job.status}: {error.get('code')}: {error.get('message')}"
                )
        if all(job.file is not None for job in jobs):
            return jobs
        if time.monotonic() >= deadline:
            pending = ", ".join(f"{j.id} ({j.status})" for j in jobs if j.file is None)
            raise DemoError(f"deadline of {timeout:g} s passed; still waiting for {pending}")
        time.sleep(min(poll_every, max(0.0, deadline - time.monotonic())))
