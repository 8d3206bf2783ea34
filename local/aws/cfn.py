"""template.yaml -> local resources on a moto server, and each function's environment.

The template is the only source of resource definitions: every AWS::DynamoDB::Table,
AWS::S3::Bucket, AWS::SecretsManager::Secret, AWS::SQS::Queue and AWS::Events::EventBus in it is
created with the key schema, indexes, stream, TTL, encryption, queue attributes and public-access
settings its properties give, under a local physical name
`<stack name>-<logical id lower-cased>` (`videogen-local-generationstable`). Intrinsics are resolved
the way CloudFormation would for what the template uses: Ref (parameters -> Default or override,
resources -> local physical name or ARN, pseudo parameters), Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If with
Conditions, Fn::Select, Fn::FindInMap.

Not applied locally: bucket policies (the TLS-only deny would refuse moto's plain HTTP if it were
enforced), KMS keys, IAM roles, the API's usage plan (the adapter in local/aws/apigw.py enforces the API
key itself), schedules (local/stack.py runs a timer instead).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "videogen-local"

TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
BUCKET_TYPE = "AWS::S3::Bucket"
SECRET_TYPE = "AWS::SecretsManager::Secret"  # noqa: S105 (a type name)
QUEUE_TYPE = "AWS::SQS::Queue"
EVENT_BUS_TYPE = "AWS::Events::EventBus"
FUNCTION_TYPE = "AWS::Serverless::Function"
API_TYPE = "AWS::Serverless::Api"
LAYER_TYPE = "AWS::Serverless::LayerVersion"


class TemplateError(Exception):
    """The template uses something this local translation does not understand."""


class _NoValue:
    """AWS::NoValue: the property or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass
class LocalResource:
    """One resource as it exists locally: what `Ref` and `Fn::GetAtt` return for it."""

    logical_id: str
    type: str
    physical_name: str
    ref: str
    attributes: dict[str, str] = field(default_factory=dict)
    created: bool = False


@dataclass(frozen=True)
class ApiRoute:
    """One `Type: Api` event of a function (REST API, proxy integration)."""

    function: str
    event: str
    method: str  # upper case, or "ANY"
    path: str  # resource template, e.g. /generations/{id}
    api: str | None  # logical id of the AWS::Serverless::Api (None: the implicit API)
    api_key_required: bool


@dataclass(frozen=True)
class ScheduleSpec:
    function: str
    event: str
    expression: str
    enabled: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path  # absolute
    handler: str  # "app.lambda_handler"
    timeout: int
    memory_size: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]  # ContentUri of the template's own layers, absolute
    routes: tuple[ApiRoute, ...]
    schedules: tuple[ScheduleSpec, ...]

    @property
    def module_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str | None
    stage_name: str
    api_key_required: bool
    gateway_responses: dict[str, Any] = field(default_factory=dict)  # SAM GatewayResponses, resolved
    cors: dict[str, Any] | None = None  # SAM Cors (a string is its AllowOrigin), resolved


class Template:
    """A parsed template plus the values needed to resolve it locally."""

    def __init__(
        self,
        path: str | Path,
        *,
        parameter_overrides: Mapping[str, Any] | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        self.path = Path(path).resolve()
        self.root = self.path.parent
        template, matches = decode(str(self.path))
        if matches or template is None:
            raise TemplateError(f"cannot parse {self.path}: {[str(m) for m in matches]}")
        self.doc: dict[str, Any] = template
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.resources_doc: dict[str, Any] = dict(template.get("Resources") or {})
        self.globals: dict[str, Any] = dict(template.get("Globals") or {})
        self.parameters = self._parameter_values(parameter_overrides or {})
        self.resources: dict[str, LocalResource] = {
            lid: self._placeholder(lid, res["Type"]) for lid, res in self.resources_doc.items()
        }
        self._conditions: dict[str, bool] = {}

    # ---- names and values -------------------------------------------------------------------
    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id.lower()}"

    def of_type(self, *types: str) -> list[str]:
        """Logical ids of the resources of these types whose Condition (if any) holds."""
        return [
            lid
            for lid, res in self.resources_doc.items()
            if res.get("Type") in types and self._resource_enabled(res)
        ]

    def _parameter_values(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        declared = self.doc.get("Parameters") or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameter override(s): {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                continue  # referenced without a value -> error at resolution time
            if str(spec.get("Type", "")).endswith("CommaDelimitedList") and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            values[name] = value
        return values

    def _pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }[name]

    def _placeholder(self, logical_id: str, type_: str) -> LocalResource:
        """What Ref/GetAtt give for a resource before (or without) creating it locally."""
        name = self.physical_name(logical_id)
        arn_prefix = f"arn:aws:{{}}:{self.region}:{self.account_id}"
        if type_ in (FUNCTION_TYPE, "AWS::Lambda::Function"):
            arn = arn_prefix.format("lambda") + f":function:{name}"
            return LocalResource(logical_id, type_, name, name, {"Arn": arn})
        if type_ in (LAYER_TYPE, "AWS::Lambda::LayerVersion"):
            arn = arn_prefix.format("lambda") + f":layer:{name}:1"
            return LocalResource(logical_id, type_, name, arn, {"Arn": arn})
        if type_ == BUCKET_TYPE:
            return LocalResource(logical_id, type_, name, name, self._bucket_attributes(name))
        if type_ == API_TYPE:
            return LocalResource(logical_id, type_, "local", "local", {"RootResourceId": "root"})
        if type_ == EVENT_BUS_TYPE:
            arn = arn_prefix.format("events") + f":event-bus/{name}"
            return LocalResource(logical_id, type_, name, name, {"Arn": arn, "Name": name})
        if type_ == QUEUE_TYPE:
            url = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
            return LocalResource(
                logical_id,
                type_,
                name,
                url,
                {"Arn": arn_prefix.format("sqs") + f":{name}", "QueueName": name},
            )
        if type_ in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            # Ref is the ARN, known before creation (a function's environment may name it);
            # local/aws/statemachines.py creates the machine under this very name
            props = self.resources_doc[logical_id].get("Properties") or {}
            name = str(self.resolve(props.get("Name") or props.get("StateMachineName") or name))
            arn = arn_prefix.format("states") + f":stateMachine:{name}"
            return LocalResource(logical_id, type_, name, arn, {"Arn": arn, "Name": name})
        service = type_.split("::")[1].lower() if type_.count("::") >= 2 else "local"
        arn = arn_prefix.format(service) + f":{name}"
        return LocalResource(logical_id, type_, name, name, {"Arn": arn})

    def _bucket_attributes(self, name: str) -> dict[str, str]:
        return {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{self.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{self.region}.amazonaws.com",
        }

    # ---- intrinsics -------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsics inside `value` (recursively); AWS::NoValue drops items."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref":
                    return self._ref(arg)
                if key.startswith("Fn::") or key == "Condition":
                    return self._intrinsic(key, arg)
            out = {}
            for k, v in value.items():
                r = self.resolve(v)
                if r is not NO_VALUE:
                    out[str(k)] = r
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if isinstance(value, str):
            return str(value)  # drop cfn-lint's node subclass
        return value

    def _ref(self, name: str) -> Any:
        name = str(name)
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in (self.doc.get("Parameters") or {}):
            raise TemplateError(f"parameter {name} has no Default: pass it as an override")
        if name in self.resources:
            return self.resources[name].ref
        raise TemplateError(f"Ref to unknown name {name!r}")

    def _getatt(self, logical_id: str, attribute: str) -> str:
        res = self.resources.get(logical_id)
        if res is None:
            raise TemplateError(f"GetAtt of unknown resource {logical_id!r}")
        if attribute not in res.attributes:
            raise TemplateError(f"GetAtt {logical_id}.{attribute} is not available locally")
        return res.attributes[attribute]

    def _intrinsic(self, key: str, arg: Any) -> Any:
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                lid, _, attribute = arg.partition(".")
            else:
                lid, attribute = (self.resolve(a) for a in arg)
            return self._getatt(str(lid), str(attribute))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            sep, items = arg
            return str(sep).join(str(i) for i in self.resolve(items))
        if key == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if key == "Fn::Split":
            sep, text = self.resolve(arg)
            return str(text).split(str(sep))
        if key == "Fn::If":
            cond, when_true, when_false = arg
            return self.resolve(when_true if self.condition(str(cond)) else when_false)
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(a) for a in arg[:3])
            return self.resolve(self.doc["Mappings"][mapping][top][second])
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
            return self._condition_value({key: arg})
        raise TemplateError(f"{key} is not supported by the local stack")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), {str(k): self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = str(arg), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, _, attribute = name.partition(".")
                return str(self._getatt(lid, attribute))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.doc.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._condition_value(conditions[name]))
        return self._conditions[name]

    def _condition_value(self, expr: Any) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self._condition_value(arg[0])
            if key == "Fn::And":
                return all(self._condition_value(x) for x in arg)
            if key == "Fn::Or":
                return any(self._condition_value(x) for x in arg)
            if key == "Condition":
                return self.condition(str(arg))
        raise TemplateError(f"cannot evaluate condition {expr!r}")

    def _resource_enabled(self, res: Mapping[str, Any]) -> bool:
        cond = res.get("Condition")
        return True if cond is None else self.condition(str(cond))

    def properties(self, logical_id: str) -> dict[str, Any]:
        props = self.resolve(self.resources_doc[logical_id].get("Properties") or {})
        return props if isinstance(props, dict) else {}

    # ---- creation on moto -------------------------------------------------------------------
    def create_resources(
        self, session: Any, endpoint_url: str, *, secret_values: Mapping[str, str] | None = None
    ) -> dict[str, LocalResource]:
        """Create the tables, buckets and secrets of the template on the moto server at
        `endpoint_url` (a boto3 Session gives the clients). `secret_values` maps a secret's
        logical id to the string stored in it. Returns the created resources by logical id."""
        secret_values = dict(secret_values or {})
        kw = {"endpoint_url": endpoint_url, "region_name": self.region}
        ddb = session.client("dynamodb", **kw)
        s3 = session.client("s3", **kw)
        sm = session.client("secretsmanager", **kw)
        created: dict[str, LocalResource] = {}
        for lid in self.of_type(*TABLE_TYPES):
            created[lid] = self._create_table(ddb, lid)
        for lid in self.of_type(BUCKET_TYPE):
            created[lid] = self._create_bucket(s3, lid)
        for lid in self.of_type(SECRET_TYPE):
            created[lid] = self._create_secret(sm, lid, secret_values.pop(lid, None))
        # Queues that others redrive into first: a RedrivePolicy names its target's ARN.
        queues = sorted(self.of_type(QUEUE_TYPE), key=lambda q: "RedrivePolicy" in self.properties(q))
        sqs = session.client("sqs", **kw)
        for lid in queues:
            created[lid] = self._create_queue(sqs, lid)
        events = session.client("events", **kw)
        for lid in self.of_type(EVENT_BUS_TYPE):
            name = self.properties(lid).get("Name") or self.physical_name(lid)
            arn = events.create_event_bus(Name=name)["EventBusArn"]
            created[lid] = LocalResource(
                lid, EVENT_BUS_TYPE, name, name, {"Arn": arn, "Name": name}, created=True
            )
        if secret_values:
            raise TemplateError(f"no such secret in the template: {sorted(secret_values)}")
        self.resources.update(created)
        return created

    def _create_table(self, ddb: Any, lid: str) -> LocalResource:
        props = self.properties(lid)
        name = self.physical_name(lid)
        type_ = self.resources_doc[lid]["Type"]
        if type_ == "AWS::Serverless::SimpleTable":
            pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            ddb_type = {"String": "S", "Number": "N", "Binary": "B"}[pk["Type"]]
            props = {
                "AttributeDefinitions": [{"AttributeName": pk["Name"], "AttributeType": ddb_type}],
                "KeySchema": [{"AttributeName": pk["Name"], "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
                **{k: v for k, v in props.items() if k in ("SSESpecification",)},
            }
        params: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in props:
            params["ProvisionedThroughput"] = _numbers(props["ProvisionedThroughput"])
        elif params["BillingMode"] == "PROVISIONED":
            params["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        index_keys = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(kind):
                params[kind] = [
                    {
                        k: _numbers(v) if k == "ProvisionedThroughput" else v
                        for k, v in gsi.items()
                        if k in index_keys
                    }
                    for gsi in props[kind]
                ]
        if props.get("StreamSpecification", {}).get("StreamViewType"):
            params["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
        sse = props.get("SSESpecification")
        if sse and _truthy(sse.get("SSEEnabled")):
            params["SSESpecification"] = {"Enabled": True, "SSEType": sse.get("SSEType", "KMS")}
            if sse.get("KMSMasterKeyId"):
                params["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
        table = ddb.create_table(**params)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and _truthy(ttl.get("Enabled")):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and _truthy(pitr.get("PointInTimeRecoveryEnabled")):
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return LocalResource(lid, type_, name, name, attributes, created=True)

    def _create_bucket(self, s3: Any, lid: str) -> LocalResource:
        props = self.properties(lid)
        name = self.physical_name(lid)
        params: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(**params)
        if props.get("BucketEncryption"):
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        _encryption_rule(r)
                        for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=_bools(props["PublicAccessBlockConfiguration"])
            )
        status = (props.get("VersioningConfiguration") or {}).get("Status")
        if status:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        if props.get("CorsConfiguration"):
            rules = props["CorsConfiguration"]["CorsRules"]
            s3.put_bucket_cors(
                Bucket=name,
                CORSConfiguration={"CORSRules": [_cors_rule(r) for r in rules]},
            )
        return LocalResource(lid, BUCKET_TYPE, name, name, self._bucket_attributes(name), created=True)

    def _create_secret(self, sm: Any, lid: str, value: str | None) -> LocalResource:
        props = self.properties(lid)
        name = self.physical_name(lid)
        if value is None and isinstance(props.get("SecretString"), str):
            value = props["SecretString"]
        elif value is None and isinstance(props.get("GenerateSecretString"), dict):
            value = _generated_secret(props["GenerateSecretString"])
        elif value is None:
            value = "local-placeholder"
        params = {"Name": name, "SecretString": value}
        if props.get("Description"):
            params["Description"] = props["Description"]
        arn = sm.create_secret(**params)["ARN"]
        # Ref of a secret is its ARN in CloudFormation; GetSecretValue takes either.
        return LocalResource(lid, SECRET_TYPE, name, arn, {"Id": arn}, created=True)

    def _create_queue(self, sqs: Any, lid: str) -> LocalResource:
        props = self.properties(lid)
        name = str(props.get("QueueName") or self.physical_name(lid))
        attributes: dict[str, str] = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "SqsManagedSseEnabled"):
            if key in props:
                attributes[key] = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        if props.get("RedrivePolicy"):
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return LocalResource(
            lid, QUEUE_TYPE, name, url, {"Arn": arn, "QueueName": name, "QueueUrl": url}, created=True
        )

    # ---- functions --------------------------------------------------------------------------
    def api(self, logical_id: str | None) -> ApiSpec:
        global_api = self.resolve(self.globals.get("Api") or {})
        props = dict(global_api)
        if logical_id is not None:
            props.update(self.properties(logical_id))
        auth = props.get("Auth") or {}
        cors = props.get("Cors")
        return ApiSpec(
            logical_id,
            str(props.get("StageName", "Prod")),
            _truthy(auth.get("ApiKeyRequired")),
            dict(props.get("GatewayResponses") or {}),
            {"AllowOrigin": cors}
            if isinstance(cors, str)
            else dict(cors)
            if isinstance(cors, dict)
            else None,
        )

    def functions(self) -> dict[str, FunctionSpec]:
        """Every AWS::Serverless::Function with its merged, resolved environment. Call after
        create_resources so Refs to tables/buckets/secrets resolve to what exists locally."""
        glob = self.globals.get("Function") or {}
        glob_env = ((glob.get("Environment") or {}).get("Variables")) or {}
        specs: dict[str, FunctionSpec] = {}
        for lid in self.of_type(FUNCTION_TYPE):
            raw = self.resources_doc[lid].get("Properties") or {}
            own_env = ((raw.get("Environment") or {}).get("Variables")) or {}
            env: dict[str, str] = {}
            for key, value in {**glob_env, **own_env}.items():
                resolved = self.resolve(value)
                if resolved is not NO_VALUE:
                    env[str(key)] = _env_string(resolved)
            props = {
                **self.resolve({k: v for k, v in glob.items() if k != "Environment"}),
                **self.properties(lid),
            }
            code_uri = props.get("CodeUri")
            handler = props.get("Handler")
            if not isinstance(code_uri, str) or not isinstance(handler, str):
                raise TemplateError(f"{lid}: local stack needs a CodeUri folder and a Handler")
            specs[lid] = FunctionSpec(
                logical_id=lid,
                code_uri=(self.root / code_uri).resolve(),
                handler=handler,
                timeout=int(props.get("Timeout", 3)),
                memory_size=int(props.get("MemorySize", 128)),
                environment=env,
                layer_dirs=tuple(self._layer_dirs(raw.get("Layers", glob.get("Layers")) or [])),
                routes=tuple(self._routes(lid, raw.get("Events") or {})),
                schedules=tuple(self._schedules(lid, raw.get("Events") or {})),
            )
        return specs

    def _layer_dirs(self, layers: list[Any]) -> list[Path]:
        dirs = []
        for layer in layers:
            if isinstance(layer, dict) and set(layer) == {"Ref"} and layer["Ref"] in self.resources_doc:
                res = self.resources_doc[layer["Ref"]]
                if res.get("Type") == LAYER_TYPE:
                    content = self.resolve((res.get("Properties") or {}).get("ContentUri"))
                    if isinstance(content, str):
                        dirs.append((self.root / content).resolve())
        return dirs

    def _routes(self, lid: str, events: Mapping[str, Any]) -> list[ApiRoute]:
        routes = []
        for name, ev in events.items():
            if ev.get("Type") != "Api":
                continue
            props = ev.get("Properties") or {}
            api_ref = props.get("RestApiId")
            api_id = str(api_ref["Ref"]) if isinstance(api_ref, dict) and "Ref" in api_ref else None
            api = self.api(api_id)
            auth = self.resolve(props.get("Auth") or {})
            key_required = (
                _truthy(auth["ApiKeyRequired"]) if "ApiKeyRequired" in auth else api.api_key_required
            )
            method = str(self.resolve(props["Method"])).upper()
            routes.append(
                ApiRoute(
                    lid,
                    str(name),
                    "ANY" if method == "ANY" else method,
                    str(self.resolve(props["Path"])),
                    api_id,
                    key_required,
                )
            )
        return routes

    def _schedules(self, lid: str, events: Mapping[str, Any]) -> list[ScheduleSpec]:
        out = []
        for name, ev in events.items():
            if ev.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            props = self.resolve(ev.get("Properties") or {})
            expression = props.get("Schedule") or props.get("ScheduleExpression") or ""
            enabled = props.get("Enabled", props.get("State", "ENABLED") != "DISABLED")
            out.append(ScheduleSpec(lid, str(name), str(expression), _truthy(enabled)))
        return out


def _generated_secret(spec: Mapping[str, Any]) -> str:
    """A local stand-in for GenerateSecretString: random letters and digits (what
    ExcludePunctuation gives) of PasswordLength."""
    alphabet = string.ascii_letters + string.digits
    if not _truthy(spec.get("ExcludePunctuation", False)):
        alphabet += "!#$%&()*+,-.:;<=>?[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"environment values must be scalars, got {value!r}")
    return str(value)


def _numbers(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: int(v) for k, v in value.items()}


def _bools(value: Any) -> Any:
    """CloudFormation accepts "true"/"false" strings where boto3 wants booleans."""
    if isinstance(value, dict):
        return {k: _bools(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bools(v) for v in value]
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _encryption_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "ServerSideEncryptionByDefault" in rule:
        out["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
    if "BucketKeyEnabled" in rule:
        out["BucketKeyEnabled"] = _truthy(rule["BucketKeyEnabled"])
    return out


def _cors_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    names = {
        "AllowedHeaders": "AllowedHeaders",
        "AllowedMethods": "AllowedMethods",
        "AllowedOrigins": "AllowedOrigins",
        "ExposedHeaders": "ExposeHeaders",
        "MaxAge": "MaxAgeSeconds",
        "Id": "ID",
    }
    return {names[k]: (int(v) if k == "MaxAge" else v) for k, v in rule.items() if k in names}
