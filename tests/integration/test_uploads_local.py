"""S3 uploads on the local stack: an object put into the local uploads bucket (boto3 against
aws_endpoint_url) reaches the real upload handler through moto's own S3 -> Lambda notification
(the Lambda shim runs it asynchronously), and its generation is driven to `completed` by the
scheduled poller like any other."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import requests

from local.stack import ROOT, LocalStack

ApiClient = Any  # tests/integration/conftest.py's ApiClient, reached through fixtures
SAMPLE_PNG = (ROOT / "local" / "assets" / "upload-sample.png").read_bytes()
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


def upload(stack: LocalStack, key: str, body: bytes = SAMPLE_PNG, **metadata: str) -> None:
    """Put an object as any client would, then wait for the notification's invocation to end."""
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=body, ContentType="image/png", Metadata=metadata)
    assert stack.lambdas is not None and stack.lambdas.drain(20)


def find(api: ApiClient, key: str, bucket: str) -> dict[str, Any] | None:
    answer = api.get("/generations", params={"limit": "50"})
    assert answer.status_code == 200, answer.text
    reference = f"s3://{bucket}/{key}"
    found = [g for g in answer.json()["items"] if g["request"].get("image_url") == reference]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_endpoints_json_names_the_uploads_bucket(local_stack: LocalStack) -> None:
    data = json.loads(local_stack.endpoints_path.read_text())
    assert (
        data["uploads_bucket"]
        == local_stack.uploads_bucket
        == local_stack.template.physical_name("UploadsBucket")
    )
    local_stack.client("s3").head_bucket(Bucket=data["uploads_bucket"])


def test_an_upload_becomes_a_completed_generation(
    local_stack: LocalStack, api: ApiClient, wait_for: Any
) -> None:
    key = f"uploads/it {uuid.uuid4().hex[:8]} sunset+1.png"  # spaces and a plus: encoded by S3
    owner = local_stack.key_id(api.http.headers["x-api-key"])  # the caller's API key id

    upload(local_stack, key, prompt="The sun sets behind the hill.", owner=owner)

    generation = find(api, key, local_stack.uploads_bucket)
    assert generation is not None, "the upload handler made no generation"
    assert generation["source"] == "s3" and generation["model"] == "video-01"
    assert generation["request"]["prompt"] == "The sun sets behind the hill."
    assert generation["status"] in {
        "pending",
        "submitting",
        "queued",
        "generating",
    }  # the queue, then the provider

    def done() -> dict[str, Any] | None:
        local_stack.poll_now()
        body = api.get(f"/generations/{generation['id']}").json()
        return body if body["status"] in TERMINAL else None

    final = wait_for(done, timeout=20, interval=0.2)
    assert final["status"] == "completed", final
    video = requests.get(final["video"]["url"], timeout=10)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_the_provider_got_a_presigned_url_and_the_record_an_s3_reference(
    local_stack: LocalStack, api: ApiClient, simulator: Any
) -> None:
    key = f"uploads/ref-{uuid.uuid4().hex[:8]}.png"
    before = set(simulator.jobs)

    upload(local_stack, key, owner=local_stack.key_id(api.http.headers["x-api-key"]))

    generation = find(api, key, local_stack.uploads_bucket)
    assert generation is not None
    assert generation["request"]["image_url"] == f"s3://{local_stack.uploads_bucket}/{key}"
    (job_id,) = set(simulator.jobs) - before
    url = simulator.jobs[job_id].body["image_url"]
    assert "X-Amz-Signature=" in url and "X-Amz-" not in json.dumps(generation)
    assert requests.get(url, timeout=10).content == SAMPLE_PNG  # the link serves the upload


def test_a_bad_upload_is_a_failed_generation_with_its_reason(local_stack: LocalStack, api: ApiClient) -> None:
    key = f"uploads/not-an-image-{uuid.uuid4().hex[:8]}.png"

    upload(
        local_stack,
        key,
        b"plain text, not a picture",
        owner=local_stack.key_id(api.http.headers["x-api-key"]),
    )

    generation = find(api, key, local_stack.uploads_bucket)
    assert generation is not None
    assert generation["status"] == "failed" and generation["error"]["code"] == "upload_not_an_image"
    assert local_stack.lambdas is not None and local_stack.lambdas.async_failures == []  # not retried


def test_only_images_under_the_prefix_invoke_the_function(local_stack: LocalStack) -> None:
    assert local_stack.lambdas is not None
    before = local_stack.lambdas.invocations
    for key in ("elsewhere/a.png", "uploads/a.gif", "uploads/a.Png", "uploads/notes.txt"):
        upload(local_stack, key)
    assert local_stack.lambdas.invocations == before
    upload(local_stack, f"uploads/UPPER-{uuid.uuid4().hex[:6]}.PNG")
    assert local_stack.lambdas.invocations == before + 1


def test_a_redelivered_event_is_one_generation(
    local_stack: LocalStack, api: ApiClient, simulator: Any
) -> None:
    key = f"uploads/twice-{uuid.uuid4().hex[:8]}.png"
    owner = local_stack.key_id(api.http.headers["x-api-key"])
    upload(local_stack, key, owner=owner)
    submits = simulator.submit_count
    # S3 delivers at least once: send the same event again, twice, as S3 would (asynchronously)
    head = local_stack.client("s3").head_object(Bucket=local_stack.uploads_bucket, Key=key)
    event = json.loads((Path(ROOT) / "events" / "s3_put_image.json").read_text())
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = local_stack.uploads_bucket
    record["s3"]["object"].update(
        {"key": key.replace(" ", "+"), "eTag": head["ETag"].strip('"'), "size": head["ContentLength"]}
    )
    record["s3"]["object"].pop("sequencer")  # moto's own events carry none: the ETag identifies the PUT
    lambda_client = local_stack.client("lambda")
    for _ in range(2):
        lambda_client.invoke(
            FunctionName=local_stack.function_arn("UploadFunction"),
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
    assert local_stack.lambdas is not None and local_stack.lambdas.drain(20)

    assert simulator.submit_count == submits
    assert find(api, key, local_stack.uploads_bucket) is not None  # still exactly one (find checks)


def test_uploads_without_an_owner_belong_to_the_default_owner(
    local_stack: LocalStack, api: ApiClient
) -> None:
    key = f"uploads/ownerless-{uuid.uuid4().hex[:8]}.png"

    upload(local_stack, key)

    assert find(api, key, local_stack.uploads_bucket) is None  # not this caller's
    table = local_stack.environment["TABLE_NAME"]
    items = local_stack.client("dynamodb").query(
        TableName=table,
        IndexName="by-owner",
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "s3-uploads"}},
    )["Items"]
    assert any(i["request"]["M"]["image_url"]["S"].endswith(key) for i in items)
