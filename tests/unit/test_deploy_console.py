"""`make deploy-console` (scripts/deploy_console.py) against moto: the stack's outputs name the
bucket and the distribution; the console's files land with their types, config.json names the API,
stale files go, and the distribution's cache is invalidated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts.deploy_console import CONSOLE, deploy, stack_outputs

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3, cloudfront, cfn = boto3.client("s3"), boto3.client("cloudfront"), boto3.client("cloudformation")
        s3.create_bucket(Bucket="console-bucket")
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "t",
                "Comment": "",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "o",
                            "DomainName": "console-bucket.s3.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "o",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "MinTTL": 0,
                },
            }
        )["Distribution"]
        outputs = {
            "ConsoleBucketName": "console-bucket",
            "ConsoleDistributionId": distribution["Id"],
            "ApiUrl": API_URL,
            "ConsoleUrl": f"https://{distribution['DomainName']}/",
        }
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        cfn.create_stack(StackName="videogen", TemplateBody=json.dumps(template))
        yield {"s3": s3, "cloudfront": cloudfront, "cfn": cfn, "distribution": distribution["Id"]}


def test_deploy_uploads_the_console_with_its_config_and_invalidates(clients: dict[str, Any]) -> None:
    s3 = clients["s3"]
    s3.put_object(Bucket="console-bucket", Key="old.js", Body=b"stale")
    outputs = stack_outputs(clients["cfn"], "videogen")

    done = deploy(outputs, s3, clients["cloudfront"])

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="console-bucket")["Contents"]}
    expected = {p.name for p in CONSOLE.iterdir() if p.suffix in (".html", ".js", ".css")} | {"config.json"}
    assert keys == expected and done["deleted"] == ["old.js"]
    page = s3.get_object(Bucket="console-bucket", Key="index.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert page["Body"].read() == (CONSOLE / "index.html").read_bytes()
    assert s3.get_object(Bucket="console-bucket", Key="console.js")["ContentType"].startswith(
        "text/javascript"
    )
    config = s3.get_object(Bucket="console-bucket", Key="config.json")
    assert json.loads(config["Body"].read()) == {"apiUrl": API_URL}
    invalidations = clients["cloudfront"].list_invalidations(DistributionId=clients["distribution"])
    assert [i["Id"] for i in invalidations["InvalidationList"]["Items"]] == [done["invalidation"]]


def test_a_stack_without_the_console_outputs_is_refused(clients: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="ConsoleBucketName"):
        deploy({"ApiUrl": API_URL}, clients["s3"], clients["cloudfront"])
