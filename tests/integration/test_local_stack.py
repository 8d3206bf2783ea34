"""The local stack itself: resources from the template, endpoints.json, the API Gateway adapter,
the schedule, and one whole flow through the real handlers."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local.aws.apigw import Route, RouteTable, api_key_id, render_gateway_response
from local.aws.cfn import Template
from local.stack import ENDPOINT_KEYS, LocalStack

ApiClient = Any  # tests/integration/conftest.py's ApiClient, reached through fixtures
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}
TEXT_MODEL = "kling-video/v1.6/standard/text-to-video"
# The variables every function gets (design contract); the template sets them in Globals.
CONTRACT_VARS = {
    "TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "OUTPUTS_BUCKET",
    "AIML_API_KEY_SECRET_ID",
    "AIML_BASE_URL",
    "MAX_GENERATION_AGE_SECONDS",
    "POLL_CONCURRENCY",
    "DUE_SHARDS",
    "PRESIGN_EXPIRY_SECONDS",
    "URL_DNS_STRICT",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}


def _template_resources(stack: LocalStack, type_: str) -> dict[str, dict[str, Any]]:
    assert stack.template is not None
    return {lid: stack.template.properties(lid) for lid in stack.template.of_type(type_)}


# ---- resources ---------------------------------------------------------------------------------
def test_every_table_matches_its_template_definition(local_stack: LocalStack) -> None:
    ddb = local_stack.client("dynamodb")
    tables = _template_resources(local_stack, "AWS::DynamoDB::Table")
    assert tables, "the template defines no table"
    for lid, props in tables.items():
        desc = ddb.describe_table(TableName=local_stack.template.physical_name(lid))["Table"]
        assert desc["KeySchema"] == props["KeySchema"], lid
        assert {tuple(a.items()) for a in desc["AttributeDefinitions"]} == {
            tuple(a.items()) for a in props["AttributeDefinitions"]
        }, lid
        wanted = {g["IndexName"]: g for g in props.get("GlobalSecondaryIndexes", [])}
        got = {g["IndexName"]: g for g in desc.get("GlobalSecondaryIndexes", [])}
        assert set(got) == set(wanted), lid
        for name, gsi in wanted.items():
            assert got[name]["KeySchema"] == gsi["KeySchema"], (lid, name)
            assert got[name]["Projection"]["ProjectionType"] == gsi["Projection"]["ProjectionType"]
        ttl = ddb.describe_time_to_live(TableName=desc["TableName"])["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in props:
            assert ttl == {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": props["TimeToLiveSpecification"]["AttributeName"],
            }
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
        if props.get("SSESpecification", {}).get("SSEEnabled"):
            assert desc["SSEDescription"]["Status"] == "ENABLED"


def test_contract_indexes_exist(local_stack: LocalStack) -> None:
    """The design contract's names, checked on what the stack created (not on a second list)."""
    ddb = local_stack.client("dynamodb")
    desc = ddb.describe_table(TableName=local_stack.endpoints["table_name"])["Table"]
    keys = {
        g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in desc["GlobalSecondaryIndexes"]
    }
    assert keys == {"by-owner": ["owner", "created_at"], "due": ["due_shard", "next_poll_at"]}
    idem = ddb.describe_time_to_live(TableName=local_stack.endpoints["idempotency_table_name"])
    assert idem["TimeToLiveDescription"]["AttributeName"] == "expiration"


def test_buckets_and_secrets_exist_as_the_template_says(local_stack: LocalStack) -> None:
    s3 = local_stack.client("s3")
    buckets = _template_resources(local_stack, "AWS::S3::Bucket")
    assert buckets
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for lid, props in buckets.items():
        name = local_stack.template.physical_name(lid)
        assert name in existing
        if "PublicAccessBlockConfiguration" in props:
            block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            assert all(block.values()), block
        if "BucketEncryption" in props:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
            assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    sm = local_stack.client("secretsmanager")
    secrets = _template_resources(local_stack, "AWS::SecretsManager::Secret")
    assert secrets
    for lid in secrets:
        value = sm.get_secret_value(SecretId=local_stack.template.resources[lid].ref)["SecretString"]
        if lid == "AimlApiKeySecret":
            assert value == "sim-key"  # the simulator's key, since AIML_API_KEY is not used here
        else:  # generated as GenerateSecretString says (the webhook signing secret)
            assert value.isalnum() and len(value) >= 32 and value != "sim-key", lid


def test_functions_share_one_environment_resolved_to_local_names(local_stack: LocalStack) -> None:
    specs = local_stack.functions
    assert {"ApiFunction", "PollerFunction"} <= set(specs)
    for spec in specs.values():
        assert spec.module_file.is_file(), spec
        assert set(spec.environment) >= CONTRACT_VARS, CONTRACT_VARS - set(spec.environment)
        assert not any("${" in v for v in spec.environment.values()), spec.environment
    envs = [spec.environment for spec in specs.values()]
    shared = set.intersection(*(set(e) for e in envs))
    for key in shared:
        assert len({e[key] for e in envs}) == 1, key
    env = local_stack.environment
    tpl = local_stack.template
    assert env["TABLE_NAME"] == tpl.physical_name("GenerationsTable")
    assert env["OUTPUTS_BUCKET"] == tpl.physical_name("OutputsBucket")
    assert env["AIML_API_KEY_SECRET_ID"].startswith("arn:aws:secretsmanager:")
    assert env["AIML_BASE_URL"] == local_stack.simulator.url
    assert env["URL_DNS_STRICT"] == "false"
    assert env["AWS_ENDPOINT_URL"] == local_stack.aws_endpoint_url


def test_endpoints_json_has_every_key(local_stack: LocalStack) -> None:
    data = json.loads(local_stack.endpoints_path.read_text())
    assert set(ENDPOINT_KEYS) <= set(data)
    assert data["api_url"] == local_stack.api_url and data["api_url"].startswith("http://127.0.0.1:")
    assert data["api_key"] == local_stack.api_keys[0]
    assert data["aws_endpoint_url"] == local_stack.aws_endpoint_url
    assert data["region"] == "us-east-1"
    assert data["table_name"] == local_stack.environment["TABLE_NAME"]
    assert data["outputs_bucket"] == local_stack.environment["OUTPUTS_BUCKET"]
    assert data["simulator_url"] == local_stack.simulator.url
    assert data["simulator_control"]["state"].endswith("/_sim/state")
    # the simulator's own fake key is written (to point the seed's scripts at it); a real
    # provider key never is (the stack then has no simulator and simulator_api_key is None)
    assert data["simulator_api_key"] == "sim-key" == local_stack.simulator._config.api_key


def test_only_one_stack_per_process(local_stack: LocalStack) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        LocalStack(port=0, timer=False, use_simulator=True, write_endpoints=False).start()


# ---- API Gateway adapter -----------------------------------------------------------------------
def _gateway(local_stack: LocalStack, response_type: str) -> tuple[int, dict[str, Any]]:
    status, _, body = render_gateway_response(
        response_type, local_stack.template.api("VideogenApi").gateway_responses, {}
    )
    return status, json.loads(body)


def test_missing_or_unknown_key_is_refused_like_api_gateway(
    local_stack: LocalStack, api: ApiClient, api_client: Any
) -> None:
    status, body = _gateway(local_stack, "INVALID_API_KEY")
    assert status == 403
    for client in (api_client(None), api_client("not-a-key")):
        answer = client.get("/models")
        assert answer.status_code == 403
        assert answer.json() == body
        assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert api.get("/models").status_code == 200


def test_unknown_route_answers_the_missing_token_gateway_response(
    local_stack: LocalStack, api: ApiClient, api_client: Any
) -> None:
    status, body = _gateway(local_stack, "MISSING_AUTHENTICATION_TOKEN")
    for method, path in (("GET", "/nope"), ("PUT", "/models"), ("GET", "/generations/a/b")):
        answer = api.request(method, path)
        assert (answer.status_code, answer.json()) == (status, body), (method, path)
    # an unknown route is refused before the key is looked at, as in API Gateway
    assert api_client(None).get("/nope").status_code == status


def test_stage_prefix_is_optional(local_stack: LocalStack, api_client: Any) -> None:
    root = local_stack.api_url.rsplit("/", 1)[0]
    assert api_client(local_stack.api_keys[0], root).get("/models").status_code == 200
    assert api_client(local_stack.api_keys[0], root + "/v1").get("/models").status_code == 200


def test_proxy_event_reaches_the_handler(
    local_stack: LocalStack, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[dict[str, Any], Any]] = []
    real = local_stack._handlers["ApiFunction"]

    def spy(event: dict[str, Any], context: Any) -> Any:
        seen.append((event, context))
        return real(event, context)

    monkeypatch.setitem(local_stack._handlers, "ApiFunction", spy)
    answer = api.get("/generations/gen_missing?x=1&x=2", headers={"X-Trace": "t1"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    event, context = seen[-1]
    assert event["resource"] == "/generations/{id}"
    assert event["path"] == "/generations/gen_missing"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "gen_missing"}
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["headers"]["X-Trace"] == "t1" and event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "v1" and ctx["resourcePath"] == "/generations/{id}" and ctx["requestId"]
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    key = local_stack.api_keys[0]
    assert ctx["identity"]["apiKeyId"] == api_key_id(key) == local_stack.key_id(key)
    assert answer.headers["x-amzn-RequestId"] == ctx["requestId"]
    assert context.function_name == "videogen-local-apifunction"
    assert context.memory_limit_in_mb == local_stack.functions["ApiFunction"].memory_size
    assert 0 < context.get_remaining_time_in_millis() <= local_stack.functions["ApiFunction"].timeout * 1000
    assert context.invoked_function_arn.endswith(":function:videogen-local-apifunction")


def test_api_workers_serve_requests_at_once_and_keep_each_callers_own(
    local_stack: LocalStack,
    api: ApiClient,
    other_api: ApiClient,
    simulator: Any,
    wait_for: Any,
    poller: None,  # the schedule: finished jobs give their provider slots back to the queue
) -> None:
    """API requests in worker processes (LocalStack(api_workers=N)): two callers' requests
    overlap (the pool saw more than one busy at once), each caller's answer is its own, every
    generation reached the provider once (through the dispatcher, which the API's DispatchQueue
    message wakes), and each caller lists only its own generations (the caller comes from the
    request each worker resolves, never from another's)."""
    run = str(time.time_ns())
    bodies = [
        (client, {"model": "video-01", "prompt": f"workers {run} {i}-{n}"})
        for n in range(3)
        for i, client in enumerate((api, other_api))
    ]
    simulator.configure(latency_ms=400)
    try:
        with local_stack.concurrent_api(3) as pools, ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda cb: cb[0].post("/generations", json=cb[1]), bodies))
            lists = {
                id(client): client.get("/generations", params={"limit": 100}).json()["items"]
                for client in (api, other_api)
            }
    finally:
        simulator.configure(latency_ms=0)
    assert [a.status_code for a in answers] == [202] * len(bodies)
    assert [a.json()["request"]["prompt"] for a in answers] == [b["prompt"] for _, b in bodies]
    assert pools["ApiFunction"].busy_peak > 1

    def dispatched() -> bool:  # every generation out of the submit queue, at the provider
        return all(
            client.get(f"/generations/{a.json()['id']}").json()["provider_generation_id"]
            for (client, _), a in zip(bodies, answers, strict=True)
        )

    wait_for(dispatched, timeout=30, interval=0.1)
    paid = simulator.submits_by("prompt")
    assert all(paid.get(b["prompt"]) == 1 for _, b in bodies), paid
    for client in (api, other_api):
        mine = {a.json()["id"] for (c, _), a in zip(bodies, answers, strict=True) if c is client}
        listed = {
            g["id"] for g in lists[id(client)] if g["request"].get("prompt", "").startswith(f"workers {run}")
        }
        assert listed == mine


def test_a_worker_that_died_while_idle_is_replaced(local_stack: LocalStack, api: ApiClient) -> None:
    with local_stack.concurrent_api(1) as pools:
        workers = pools["ApiFunction"]
        assert api.get("/models").status_code == 200
        (idle,) = workers._idle
        idle.process.kill()  # the one worker this test started
        idle.process.wait(timeout=10)
        assert api.get("/models").status_code == 200
        assert workers.started == 2


def test_handler_crash_becomes_a_502(
    local_stack: LocalStack, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(local_stack._handlers, "ApiFunction", boom)
    answer = api.get("/models")
    status, body = _gateway(local_stack, "DEFAULT_5XX")
    assert (answer.status_code, answer.json()) == (status, body)


def test_get_models_through_the_real_handler(api: ApiClient) -> None:
    answer = api.get("/models")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    ids = {m["id"] for m in answer.json()["models"]}
    assert {"video-01", TEXT_MODEL} <= ids


def test_route_table_prefers_literal_segments() -> None:
    table = RouteTable(
        [
            Route("GET", "/generations/{id}", "F"),
            Route("GET", "/generations/latest", "L"),
            Route("ANY", "/files/{proxy+}", "P"),
        ]
    )
    assert table.match("GET", "/generations/latest")[0].function == "L"
    assert table.match("GET", "/generations/abc") == (Route("GET", "/generations/{id}", "F"), {"id": "abc"})
    assert table.match("GET", "/generations/a%2Fb")[1] == {"id": "a/b"}
    assert table.match("DELETE", "/files/a/b/c")[1] == {"proxy": "a/b/c"}
    assert table.match("POST", "/generations/abc") is None
    assert table.match("GET", "/generations") is None


def test_template_intrinsics_resolve(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        """
Parameters:
  Level: {Type: String, Default: INFO}
  Size: {Type: Number, Default: 3}
Conditions:
  Debug: !Equals [!Ref Level, DEBUG]
Resources:
  Things:
    Type: AWS::S3::Bucket
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Environment:
        Variables:
          A: !Ref Things
          B: !Sub "${AWS::StackName}/${Things}/${Things.Arn}/${!Literal}"
          C: !If [Debug, verbose, !Ref AWS::NoValue]
          D: !Ref Size
          E: !Join ["-", [x, !Ref Level]]
          F: true
"""
    )
    env = Template(tmp_path / "template.yaml").functions()["Fn"].environment
    assert env == {
        "A": "videogen-local-things",
        "B": "videogen-local/videogen-local-things/arn:aws:s3:::videogen-local-things/${Literal}",
        "D": "3",
        "E": "x-INFO",
        "F": "true",
    }
    debug = Template(tmp_path / "template.yaml", parameter_overrides={"Level": "DEBUG"}).functions()["Fn"]
    assert debug.environment["C"] == "verbose"
    assert debug.code_uri == (tmp_path / "src").resolve() and debug.handler_name == "handler"


# ---- schedule and the whole flow ---------------------------------------------------------------
def _submit(api: ApiClient, **fields: Any) -> dict[str, Any]:
    answer = api.post("/generations", json={"model": TEXT_MODEL, "prompt": "a paper boat", **fields})
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_end_to_end_submit_poll_download(local_stack: LocalStack, api: ApiClient, wait_for: Any) -> None:
    created = _submit(api)
    # accepted first: pending in the submit queue, with its place; the dispatcher (woken through
    # DispatchQueue -> DispatcherFunction, played by the local event sources) submits it
    assert created["status"] == "pending"
    assert isinstance(created["queue_position"], int) and created["estimated_start"]
    assert created["video"] is None and created["provider_generation_id"] is None

    def finished() -> dict[str, Any] | None:
        local_stack.poll_now()
        body = api.get(f"/generations/{created['id']}").json()
        return body if body["status"] in TERMINAL else None

    done = wait_for(finished, timeout=20, interval=0.1)
    assert done["status"] == "completed", done
    assert done["provider_generation_id"] and done["queue_position"] is None
    video = requests.get(done["video"]["url"], timeout=10)
    assert video.status_code == 200
    assert video.content[4:8] == b"ftyp"
    assert done["video"]["expires_at"] > time.time()
    s3 = local_stack.client("s3")
    listed = s3.list_objects_v2(Bucket=local_stack.endpoints["outputs_bucket"])
    assert any(created["id"] in obj["Key"] for obj in listed.get("Contents", []))


def test_callers_only_see_their_own_generations(api: ApiClient, other_api: ApiClient) -> None:
    mine = _submit(api)
    assert other_api.get(f"/generations/{mine['id']}").status_code == 404
    assert api.get(f"/generations/{mine['id']}").status_code == 200
    theirs = other_api.get("/generations").json()
    assert mine["id"] not in {g["id"] for g in theirs["items"]}
    assert mine["id"] in {g["id"] for g in api.get("/generations").json()["items"]}
    assert api.http.headers["x-api-key"] != other_api.http.headers["x-api-key"]


def test_timer_plays_the_schedule(local_stack: LocalStack, api: ApiClient, wait_for: Any) -> None:
    created = _submit(api)
    local_stack.start_timer(0.2)
    try:
        done = wait_for(
            lambda: (body := api.get(f"/generations/{created['id']}").json())["status"] in TERMINAL and body,
            timeout=20,
            interval=0.1,
        )
    finally:
        local_stack.stop_timer()
    assert done["status"] == "completed"
