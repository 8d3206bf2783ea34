"""HTTP on 127.0.0.1 -> API Gateway REST (v1) proxy events -> a Lambda handler in-process.

Behaves like a REST API with `ApiKeyRequired` and a usage plan, as far as a client can tell:
- a path/method that matches no route -> MISSING_AUTHENTICATION_TOKEN (403 `{"message":"Missing
  Authentication Token"}` unless the template's GatewayResponses say otherwise)
- a route that needs a key, called without `x-api-key` or with an unknown one -> INVALID_API_KEY
  (403 `{"message":"Forbidden"}` by default)
- a handler that raises or returns something that is not a proxy response -> 502 `Internal server
  error` (DEFAULT_5XX)
- a body over 10 MB -> REQUEST_TOO_LARGE (413)
- a handler that takes longer than the integration timeout (29 s) -> INTEGRATION_TIMEOUT (504),
  once it has finished: what it wrote stays written, as when API Gateway stops waiting for a Lambda
The API's `GatewayResponses` (status code, `application/json` template with `$context.error.*` and
`$context.requestId`, static headers) are applied like API Gateway applies them, falling back on
DEFAULT_4XX / DEFAULT_5XX. Not emulated: the usage plan's throttle and quota.
Routes are matched the way API Gateway walks its resource tree: a literal segment beats `{param}`,
which beats `{proxy+}`. Paths are served both under the stage (`/v1/models`, what the deployed URL
looks like) and without it (`/models`, what `sam local start-api` serves).

With the API's `Cors` set (SAM), every resource answers `OPTIONS` preflights as SAM's mock
integration does: 200 with the Access-Control-Allow-* headers of the template, no API key needed
(the template sets `AddApiKeyRequiredToCorsPreflight: false`).

Not API Gateway at all: given a `console_dir`, the adapter also serves that folder's files (the
browser console) at `/console/`, with `/` redirecting there, without a key, and with the
Content-Security-Policy header the template gives CloudFront (ConsoleResponseHeadersPolicy), its
two origins made local. A deployed stack serves the console from S3 behind CloudFront.

Each accepted key has a stable `apiKeyId` (`local-` + sha256(key)[:12]) in
`requestContext.identity.apiKeyId`, so several keys can stand for several callers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
INTEGRATION_TIMEOUT_SECONDS = 29.0

# (function logical id, event) -> the handler's return value
Invoker = Callable[[str, dict[str, Any]], Any]
# (status, headers, body) of an answer
Answer = tuple[int, list[tuple[str, str]], bytes]

CONSOLE_PATH = "/console/"
CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# The console's Content-Security-Policy is the template's (ConsoleResponseHeadersPolicy, what
# CloudFront sends in AWS), rendered with this stack's two origins: see console_csp.
CONSOLE_CSP_ORIGINS = ("ApiOrigin", "VideoOrigins")
RESPONSE_HEADERS_POLICY_TYPE = "AWS::CloudFront::ResponseHeadersPolicy"


def console_csp_text(resources: Mapping[str, Any]) -> str:
    """The CSP of the template's one CloudFront response headers policy, as written: a `Fn::Sub`
    whose variables are the API's origin and the videos' origins (CONSOLE_CSP_ORIGINS)."""
    policies = [r for r in resources.values() if r.get("Type") == RESPONSE_HEADERS_POLICY_TYPE]
    if len(policies) != 1:
        raise ValueError(
            f"expected one {RESPONSE_HEADERS_POLICY_TYPE} in the template, found {len(policies)}"
        )
    config = policies[0]["Properties"]["ResponseHeadersPolicyConfig"]
    node = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    text, variables = node["Fn::Sub"]
    if set(variables) != set(CONSOLE_CSP_ORIGINS):
        raise ValueError(f"the console CSP's variables are {sorted(variables)}, not {CONSOLE_CSP_ORIGINS}")
    return str(text)


def console_csp(text: str, *, api_origin: str, video_origins: str) -> str:
    """The template's console CSP with this stack's origins in place of the deployed ones."""
    rendered = text.replace("${ApiOrigin}", api_origin).replace("${VideoOrigins}", video_origins)
    if "${" in rendered:
        raise ValueError(f"the console CSP names a variable the local stack cannot fill: {rendered}")
    return rendered


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a burst of concurrent clients (the reliability
    # scenarios send 50 at once) overflows it and connections are reset. API Gateway takes them.
    request_queue_size = 128


def api_key_id(key: str) -> str:
    """The stable id API Gateway would report for this key (locally derived from the key)."""
    return "local-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class LambdaContext:
    """The parts of the Lambda context object handlers and Powertools read."""

    def __init__(
        self,
        function_name: str,
        *,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 3.0,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Route:
    method: str  # upper case or ANY
    resource: str  # /generations/{id}
    function: str  # logical id
    api_key_required: bool = True

    @property
    def segments(self) -> list[str]:
        return [s for s in self.resource.split("/") if s]


def _segment_score(template: str) -> int:
    if template.startswith("{") and template.endswith("+}"):
        return 0
    if template.startswith("{") and template.endswith("}"):
        return 1
    return 2


class RouteTable:
    """Resolve (method, path) to a route and its path parameters."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)

    def _match_resource(self, route: Route, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        segs = route.segments
        for i, seg in enumerate(segs):
            if seg.startswith("{") and seg.endswith("+}"):
                if i >= len(parts):
                    return None
                params[seg[1:-2]] = "/".join(parts[i:])
                return params
            if i >= len(parts):
                return None
            if seg.startswith("{") and seg.endswith("}"):
                params[seg[1:-1]] = parts[i]
            elif seg != parts[i]:
                return None
        return params if len(segs) == len(parts) else None

    def _resource(self, raw_path: str) -> list[tuple[Route, dict[str, str]]]:
        """The routes of the resource `raw_path` resolves to (empty: no such resource)."""
        # Split before decoding, so an encoded "/" (%2F) stays inside its segment.
        parts = [unquote(p) for p in raw_path.split("/") if p]
        candidates = []
        for route in self.routes:
            params = self._match_resource(route, parts)
            if params is not None:
                candidates.append((tuple(_segment_score(s) for s in route.segments), route, params))
        if not candidates:
            return []
        best = max(c[0] for c in candidates)
        return [(r, p) for score, r, p in candidates if score == best]

    def methods(self, raw_path: str) -> list[str]:
        """The methods of the resource `raw_path` resolves to (empty: no such resource)."""
        return sorted({route.method for route, _ in self._resource(raw_path)})

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        on_resource = self._resource(raw_path)
        for wanted in (method.upper(), "ANY"):
            for route, params in on_resource:
                if route.method == wanted:
                    return route, params
        return None  # the resource exists but not this method: API Gateway answers 403 as well


class ApiGatewayAdapter:
    """A ThreadingHTTPServer on 127.0.0.1 that plays API Gateway in front of `invoke`."""

    def __init__(
        self,
        routes: Iterable[Route],
        invoke: Invoker,
        *,
        api_keys: Iterable[str],
        stage: str = "v1",
        host: str = "127.0.0.1",
        port: int = 0,
        api_id: str = "local",
        gateway_responses: Mapping[str, Any] | None = None,
        cors: Mapping[str, Any] | None = None,
        console_dir: str | Path | None = None,
        console_csp_text: str = "",
        video_origins: str = "",
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.table = RouteTable(routes)
        self.invoke = invoke
        self.keys: dict[str, str] = {k: api_key_id(k) for k in api_keys}
        self.stage = stage
        self.api_id = api_id
        self.gateway_responses = dict(gateway_responses or {})
        self.cors = dict(cors) if cors is not None else None
        self.console_dir = Path(console_dir) if console_dir is not None else None
        self.console_csp_text = console_csp_text
        self.video_origins = video_origins
        self.integration_timeout = integration_timeout
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL including the stage, like the deployed API's URL."""
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{self.stage}"

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    def start(self) -> ApiGatewayAdapter:
        adapter = self

        class Handler(_RequestHandler):
            gateway = adapter

        self._server = _Server(self._address, Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-apigw", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> ApiGatewayAdapter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what API Gateway answers itself, and the console -------------------------------------
    def preflight(self, methods: Iterable[str]) -> Answer:
        """SAM's CORS preflight (a mock integration): 200, the template's Access-Control headers."""
        assert self.cors is not None
        cors = self.cors

        def header(name: str, default: str | None = None) -> str | None:
            value = cors.get(name)
            return _static_value(str(value)) if value is not None else default

        allow_methods = ",".join(sorted({*methods, "OPTIONS"}))
        headers = [
            ("Content-Type", "application/json"),
            ("Access-Control-Allow-Origin", header("AllowOrigin", "*") or "*"),
            ("Access-Control-Allow-Methods", header("AllowMethods", allow_methods) or allow_methods),
        ]
        for name, key in (
            ("Access-Control-Allow-Headers", "AllowHeaders"),
            ("Access-Control-Max-Age", "MaxAge"),
        ):
            value = header(key)
            if value:
                headers.append((name, value))
        if _truthy(cors.get("AllowCredentials")):
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return 200, headers, b""

    def console_csp(self) -> str:
        """The template's console CSP, the API's origin being this adapter (by either loopback
        name: the page may be loaded from one and call the other) and the videos' the local S3."""
        port = self.port
        return console_csp(
            self.console_csp_text,
            api_origin=f"http://127.0.0.1:{port} http://localhost:{port}",
            video_origins=self.video_origins,
        )

    def console(self, path: str, host: str = "") -> Answer | None:
        """The console's files for GET `path`, or None when `path` is not the console's. `host`:
        the request's Host header (config.json names the API on the host the page came from)."""
        if self.console_dir is None:
            return None
        if path in ("/", CONSOLE_PATH.rstrip("/")):
            return 302, [("Location", CONSOLE_PATH), ("Content-Type", "text/plain")], b""
        if not path.startswith(CONSOLE_PATH):
            return None
        name = path[len(CONSOLE_PATH) :] or "index.html"
        if name == "config.json":  # what make deploy-console writes next to the page: the API's URL
            if not re.fullmatch(r"(127\.0\.0\.1|localhost)(:[0-9]{1,5})?", host):
                host = f"127.0.0.1:{self.port}"  # only loopback names are echoed back
            body = json.dumps({"apiUrl": f"http://{host}/{self.stage}"}).encode()
            return 200, [("Content-Type", "application/json"), ("Cache-Control", "no-cache")], body
        # Only the folder's own files, by exact name: no path ever reaches the file system.
        files = {p.name: p for p in self.console_dir.iterdir() if p.is_file() and p.suffix in CONSOLE_TYPES}
        target = files.get(name)
        if target is None:
            return 404, [("Content-Type", "text/plain")], b"not found"
        headers = [
            ("Content-Type", CONSOLE_TYPES[target.suffix]),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", self.console_csp()),
        ]
        return 200, headers, target.read_bytes()

    # ---- the proxy event ----------------------------------------------------------------------
    def build_event(
        self,
        *,
        method: str,
        path: str,
        raw_query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        route: Route,
        path_params: Mapping[str, str],
        source_ip: str,
        api_key: str | None,
        request_id: str,
        host: str,
    ) -> dict[str, Any]:
        single_headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            single_headers[name] = value  # API Gateway keeps the last value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        text_body: str | None = None
        is_b64 = False
        if body:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body, is_b64 = base64.b64encode(body).decode("ascii"), True
        now = datetime.now(UTC)
        user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(path_params) or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": hashlib.sha256(route.resource.encode()).hexdigest()[:6],
                "resourcePath": route.resource,
                "httpMethod": method,
                "extendedRequestId": request_id[:16],
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "path": f"/{self.stage}{path}",
                "accountId": ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": host.split(".")[0].split(":")[0],
                "domainName": host,
                "requestId": request_id,
                "apiId": self.api_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": user_agent,
                    "user": None,
                    "apiKey": api_key,
                    "apiKeyId": self.keys.get(api_key) if api_key else None,
                },
            },
            "body": text_body,
            "isBase64Encoded": is_b64,
        }


# response type -> (default status, default message, x-amzn-ErrorType)
GATEWAY_ERRORS: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (
        403,
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
    ),
    "INVALID_API_KEY": (403, "Forbidden", "ForbiddenException"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "RequestTooLongException"),
    "DEFAULT_5XX": (502, "Internal server error", "InternalServerErrorException"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out", "InternalServerErrorException"),
    "THROTTLED": (429, "Too Many Requests", "TooManyRequestsException"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded", "LimitExceededException"),
}
_CONTEXT_VAR = re.compile(r"\$(?:\{context\.([A-Za-z.]+)\}|context\.([A-Za-z][A-Za-z.]*[A-Za-z]))")


def render_gateway_response(
    response_type: str, gateway_responses: Mapping[str, Any], context: Mapping[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of a gateway error, customised by the API's GatewayResponses."""
    status, message, error_type = GATEWAY_ERRORS[response_type]
    family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
    custom = gateway_responses.get(response_type) or gateway_responses.get(family) or {}
    code = custom.get("StatusCode") or (gateway_responses.get(family) or {}).get("StatusCode")
    if code:
        status = int(code)
    values = {
        "error.message": message,
        "error.messageString": json.dumps(message),
        "error.responseType": response_type,
        **context,
    }
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
    templates = custom.get("ResponseTemplates") or {}
    template = templates.get("application/json") or next(iter(templates.values()), None)
    if template is None:
        body = json.dumps({"message": message})
    else:
        body = _CONTEXT_VAR.sub(lambda m: values.get(m.group(1) or m.group(2), ""), str(template))
    for name, value in ((custom.get("ResponseParameters") or {}).get("Headers") or {}).items():
        value = str(value)
        if len(value) >= 2 and value[0] == value[-1] == "'":  # static values are single-quoted
            headers.append((str(name), value[1:-1]))
    return status, headers, body.encode()


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: ApiGatewayAdapter
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "local-apigw"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        n = int(length)
        if n > MAX_BODY_BYTES:
            return None
        return self.rfile.read(n)

    def _handle(self) -> None:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        gw = self.gateway
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        prefix = f"/{gw.stage}"
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            raw_path = raw_path[len(prefix) :] or "/"
        path = unquote(raw_path)
        method = self.command.upper()
        body = self._read_body()
        console = (
            gw.console(split.path or "/", self.headers.get("Host", ""))
            if method in ("GET", "HEAD") and body is not None
            else None
        )
        if console is not None:
            status, headers, payload = console
        elif body is None:
            self.close_connection = True
            status, headers, payload = self._gateway_error("REQUEST_TOO_LARGE", request_id)
        else:
            status, headers, payload = self._dispatch(method, raw_path, path, split.query, body, request_id)
        self._write(status, headers, payload, request_id)
        log.info("%s %s -> %s (%d ms)", method, self.path, status, (time.monotonic() - started) * 1000)

    def _dispatch(
        self, method: str, raw_path: str, path: str, query: str, body: bytes, request_id: str
    ) -> Answer:
        gw = self.gateway
        if method == "OPTIONS" and gw.cors is not None:
            methods = gw.table.methods(raw_path)
            if methods:  # SAM adds an OPTIONS method (no key) to every resource of the API
                return gw.preflight(methods)
        found = gw.table.match(method, raw_path)
        if found is None:
            return self._gateway_error("MISSING_AUTHENTICATION_TOKEN", request_id)
        route, params = found
        api_key = self.headers.get("x-api-key")
        if route.api_key_required and (not api_key or api_key not in gw.keys):
            return self._gateway_error("INVALID_API_KEY", request_id, route.resource)
        event = gw.build_event(
            method=method,
            path=path,
            raw_query=query,
            headers=list(self.headers.items()),
            body=body,
            route=route,
            path_params=params,
            source_ip=self.client_address[0],
            api_key=api_key if api_key in gw.keys else None,
            request_id=request_id,
            host=self.headers.get("Host", "127.0.0.1"),
        )
        started = time.monotonic()
        try:
            result = gw.invoke(route.function, event)
        except Exception:
            log.exception("handler %s raised on %s %s", route.function, method, path)
            return self._gateway_error("DEFAULT_5XX", request_id, route.resource)
        elapsed = time.monotonic() - started
        if elapsed > gw.integration_timeout:
            log.warning("%s took %.1f s: API Gateway answers 504", route.function, elapsed)
            return self._gateway_error("INTEGRATION_TIMEOUT", request_id, route.resource)
        try:
            return _proxy_response(result)
        except (TypeError, ValueError, KeyError) as exc:
            log.error("handler %s returned a malformed proxy response: %s", route.function, exc)
            return self._gateway_error("DEFAULT_5XX", request_id, route.resource)

    def _gateway_error(self, response_type: str, request_id: str, resource: str = "") -> Answer:
        gw = self.gateway
        context = {
            "requestId": request_id,
            "extendedRequestId": request_id[:16],
            "stage": gw.stage,
            "httpMethod": self.command,
            "resourcePath": resource,
            "identity.sourceIp": self.client_address[0],
        }
        return render_gateway_response(response_type, gw.gateway_responses, context)

    def _write(self, status: int, headers: list[tuple[str, str]], payload: bytes, request_id: str) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        self.send_response(status, phrase)
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _static_value(value: str) -> str:
    """A SAM/API Gateway static header value: "'*'" -> "*"."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip("'").lower() == "true"


def _proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Turn a Lambda proxy integration answer into (status, headers, body bytes)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        raise ValueError("no statusCode")
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status}")
    merged: dict[str, list[str]] = {}
    for name, value in (result.get("headers") or {}).items():
        merged[str(name)] = [str(value)]
    # Where both maps name a header, API Gateway keeps the multi-value one.
    for name, values in (result.get("multiValueHeaders") or {}).items():
        merged[str(name)] = [str(v) for v in values]
    headers = [(name, value) for name, values in merged.items() for value in values]
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = str(body).encode("utf-8")
    return status, headers, payload
