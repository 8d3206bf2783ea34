"""`make deploy-console`: upload console/ to the stack's ConsoleBucket and make CloudFront serve it.

SAM uploads no static site, so after `make deploy` this one command (boto3, your AWS credentials
and region) reads the stack's outputs, then:
1. uploads the console's files with their Content-Type, and `config.json` = {"apiUrl": ApiUrl},
   which the page reads to fill in its API URL;
2. deletes what the bucket holds beyond those (a file removed from console/ goes away);
3. invalidates the distribution's cache (`/*`), so the new files are served at once.

    python scripts/deploy_console.py [--stack-name videogen] [--region eu-west-1]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = ROOT / "console"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# small files: a browser revalidates each time, so a deploy is seen at the next load
CACHE_CONTROL = "no-cache"


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def console_files(folder: Path = CONSOLE) -> dict[str, tuple[bytes, str]]:
    """name -> (content, Content-Type) of the console's files (not its screenshots' sources)."""
    return {p.name: (p.read_bytes(), TYPES[p.suffix]) for p in sorted(folder.iterdir()) if p.suffix in TYPES}


def deploy(outputs: Mapping[str, str], s3: Any, cloudfront: Any, folder: Path = CONSOLE) -> dict[str, Any]:
    """Upload, prune, invalidate; returns what was done (for the caller to print)."""
    missing = {"ConsoleBucketName", "ConsoleDistributionId", "ApiUrl", "ConsoleUrl"} - set(outputs)
    if missing:
        raise SystemExit(f"the stack has no output {sorted(missing)}: deploy the current template first")
    bucket = outputs["ConsoleBucketName"]
    files = console_files(folder)
    files["config.json"] = (json.dumps({"apiUrl": outputs["ApiUrl"]}).encode(), "application/json")
    for name, (body, content_type) in files.items():
        s3.put_object(
            Bucket=bucket, Key=name, Body=body, ContentType=content_type, CacheControl=CACHE_CONTROL
        )
    stale = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
        if obj["Key"] not in files
    ]
    if stale:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale], "Quiet": True})
    invalidation = cloudfront.create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
    )["Invalidation"]["Id"]
    return {
        "uploaded": sorted(files),
        "deleted": stale,
        "invalidation": invalidation,
        "url": outputs["ConsoleUrl"],
    }


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name", default="videogen", help="the SAM stack (samconfig.toml: videogen)")
    parser.add_argument("--region", default=None, help="default: your AWS profile's")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    outputs = stack_outputs(session.client("cloudformation"), args.stack_name)
    done = deploy(outputs, session.client("s3"), session.client("cloudfront"))
    uploaded, deleted = ", ".join(done["uploaded"]), len(done["deleted"])
    print(f"uploaded {uploaded}; deleted {deleted}; invalidation {done['invalidation']}")
    print(f"console: {done['url']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
