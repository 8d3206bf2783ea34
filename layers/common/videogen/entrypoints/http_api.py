"""The HTTPS API on Powertools' REST resolver: each route a thin call into GenerationService, and
the one place where errors become HTTP answers of the shape {"error": {"code", "message",
"details"?}} (VideogenError.to_body).

Routes are methods of `GenerationRoutes`, registered from the ROUTES table. One resolver (and
one set of routes) is made per `build_app` call: a module-level Powertools Router would bind to
whichever resolver included it last, and tests and the local stack run several apps in one
process."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError as OpenApiValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from videogen.domain.catalog import describe_catalog
from videogen.domain.errors import VideogenError
from videogen.domain.models import Generation, Status
from videogen.entrypoints.api_models import (
    ErrorBody,
    GenerationOut,
    GenerationPage,
    GenerationRequest,
    ModelList,
    WebhookSecretOut,
)
from videogen.entrypoints.http_errors import (
    ErrorAnswer,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    error_response,
    submit_failure,
)
from videogen.entrypoints.usage_models import UsageReport
from videogen.lazy import Once
from videogen.logic.service import GenerationService

TITLE = "videogen"
VERSION = "1.0.0"
# What a browser may send and read across origins (API Gateway answers the preflights: template Cors).
CORS_ALLOW_HEADERS = ["Content-Type", "x-api-key", "Idempotency-Key"]
CORS_EXPOSE_HEADERS = ["Location", "Retry-After"]


class ApiComponents(Protocol):
    """What the routes use (videogen.bootstrap.Components)."""

    @property
    def service(self) -> GenerationService: ...
    @property
    def idempotency_table_name(self) -> str: ...
    @property
    def dynamodb(self) -> Any: ...
    @property
    def webhook_secrets(self) -> Any: ...  # videogen.logic.webhook_secrets.OwnerSecrets | None
    @property
    def batches(self) -> Any: ...  # videogen.logic.batches.BatchService | None


def _errors(*codes: int) -> dict[int, Any]:
    return {
        code: {
            "description": HTTPStatus(code).phrase,
            "content": {"application/json": {"model": ErrorBody}},
        }
        for code in codes
    }


def _answer(model: type, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


class GenerationRoutes:
    """The routes of one resolver. `components` is called on first use, so the OpenAPI document
    can be produced without AWS."""

    def __init__(self, app: APIGatewayRestResolver, components: Callable[[], ApiComponents]) -> None:
        self.app = app
        self.components = components
        self._idempotent = Once(self._make_idempotent_submit)

    # -- helpers --------------------------------------------------------------------------
    def owner(self) -> str:
        # API Gateway has checked the key (ApiKeyRequired); its id, not the key, names the caller.
        key_id = self.app.current_event.request_context.identity.api_key_id
        if not key_id:
            raise VideogenError("no API key identity on the request")
        return key_id

    def present(self, generation: Generation) -> GenerationOut:
        service = self.components().service
        return GenerationOut.of(generation, service.video_link(generation), service.queue_view(generation))

    def _make_idempotent_submit(self) -> tuple[Callable[..., dict[str, Any]], Any]:
        from videogen.entrypoints.idempotency import idempotent_submit

        parts = self.components()
        return idempotent_submit(
            parts.service, table_name=parts.idempotency_table_name, dynamodb_client=parts.dynamodb
        )

    def submit_idempotently(self, owner: str, key: str, body: dict[str, Any]) -> Generation:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        submit, config = self._idempotent()
        config.register_lambda_context(self.app.lambda_context)
        try:
            answer = submit(request={"owner": owner, "idempotency_key": key, "body": body})
        except IdempotencyValidationError:
            raise IdempotencyKeyReused() from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyKeyInFlight() from None
        return Generation.model_validate(answer)

    # -- routes ---------------------------------------------------------------------------
    def create_generation(
        self,
        request: Annotated[GenerationRequest, Body(description="model and its fields")],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=128,
                description="a retry with the same key returns the first answer and never submits twice",
            ),
        ] = None,
    ) -> Response[Any]:
        body = request.model_dump()
        if body.get("callback_url") is None:
            body.pop("callback_url", None)  # absent and null mean the same: no webhook
        if idempotency_key:
            generation = self.submit_idempotently(self.owner(), idempotency_key, body)
        else:
            generation = self.components().service.accept(self.owner(), body)
        if generation.error is not None and generation.status is Status.FAILED:
            raise submit_failure(generation)
        return Response[Any](
            status_code=202,
            content_type=content_types.APPLICATION_JSON,
            body=self.present(generation),
            headers={"Location": f"/generations/{generation.id}"},
        )

    def get_generation(self, generation_id: Annotated[str, Path(max_length=64)]) -> GenerationOut:
        return self.present(self.components().service.get(self.owner(), generation_id))

    def list_generations(
        self,
        status: Annotated[Status | None, Query(description="only generations in this status")] = None,
        limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
        next_token: Annotated[
            str | None, Query(max_length=2048, description="from the previous page")
        ] = None,
    ) -> GenerationPage:
        items, token = self.components().service.list_for_owner(
            self.owner(), status=status, limit=limit, next_token=next_token
        )
        return GenerationPage(items=[self.present(item) for item in items], next_token=token)

    def cancel_generation(self, generation_id: Annotated[str, Path(max_length=64)]) -> GenerationOut:
        return self.present(self.components().service.cancel(self.owner(), generation_id))

    def get_usage(
        self,
        days: Annotated[int, Query(ge=1, le=400, description="how many UTC days back, today included")] = 31,
    ) -> UsageReport:
        return UsageReport.model_validate(self.components().service.spend.usage(self.owner(), days))

    def _owner_secrets(self) -> Any:
        secrets = self.components().webhook_secrets
        if secrets is None:
            raise ErrorAnswer(501, "webhooks_not_configured", "this stack has no webhook secret")
        return secrets

    def get_webhook_secret(self) -> WebhookSecretOut:
        return WebhookSecretOut.model_validate(self._owner_secrets().describe(self.owner()))

    def rotate_webhook_secret(self) -> WebhookSecretOut:
        return WebhookSecretOut.model_validate(self._owner_secrets().rotate(self.owner()))

    def list_models(self) -> ModelList:
        return ModelList.model_validate({"models": describe_catalog()})

    # -- errors: one shape for all --------------------------------------------------------
    def domain_error(self, exc: VideogenError) -> Response[str]:
        headers = {"Retry-After": "1"} if isinstance(exc, IdempotencyKeyInFlight) else None
        return error_response(exc, headers)

    def invalid_request(self, exc: OpenApiValidationError) -> Response[str]:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return error_response(ErrorAnswer(400, "invalid_json", "the body is not valid JSON"))
        details = [
            {
                "field": ".".join(str(part) for part in p.get("loc", ())[1:]) or "body",
                "message": p.get("msg", p.get("type", "")),
            }
            for p in problems
        ]
        return error_response(ErrorAnswer(422, "validation_error", "the request is not valid", details))

    def undecodable_body(self, _: UnicodeDecodeError) -> Response[str]:
        # A binary body (API Gateway passes it base64-encoded) that is not UTF-8: Powertools'
        # body decoding raises this before validation, which would otherwise end in a 502.
        return error_response(ErrorAnswer(400, "invalid_json", "the body is not valid JSON (not UTF-8 text)"))

    def no_route(self, _: Exception) -> Response[str]:
        event = self.app.current_event
        return error_response(
            ErrorAnswer(404, "route_not_found", f"no route {event.http_method} {event.path}")
        )


# (method, path, route, OpenAPI options)
ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "post",
        "/generations",
        "create_generation",
        {
            "summary": "Request a video",
            "description": (
                "Checks the request against the model catalog and records it `pending` in the submit "
                "queue; a dispatcher submits it to the provider when there is room. 429 queue_full: "
                "this API key already has the most generations queued that one key may have."
            ),
            "responses": {
                202: _answer(GenerationOut, "Accepted: the generation, pending in the submit queue"),
                **_errors(400, 402, 409, 422, 429),
            },
            "tags": ["generations"],
        },
    ),
    (
        "get",
        "/generations/<generation_id>",
        "get_generation",
        {
            "summary": "Read a generation",
            "responses": {200: _answer(GenerationOut, "The generation"), **_errors(404)},
            "tags": ["generations"],
        },
    ),
    (
        "get",
        "/generations",
        "list_generations",
        {
            "summary": "List your generations, newest first",
            "responses": {200: _answer(GenerationPage, "A page"), **_errors(422)},
            "tags": ["generations"],
        },
    ),
    (
        "delete",
        "/generations/<generation_id>",
        "cancel_generation",
        {
            "summary": "Cancel a generation",
            "description": (
                "Stops tracking it. The provider has no cancel call: a job it started is still paid."
            ),
            "responses": {200: _answer(GenerationOut, "Cancelled"), **_errors(404, 409)},
            "tags": ["generations"],
        },
    ),
    (
        "get",
        "/usage",
        "get_usage",
        {
            "summary": "Your spend by day and model, and your budgets",
            "description": (
                "Credits counted for your key (the provider's reported usage, or the estimate until "
                "it reports): today, this month, and per UTC day and model."
            ),
            "responses": {200: _answer(UsageReport, "The key's spend"), **_errors(422)},
            "tags": ["usage"],
        },
    ),
    (
        "get",
        "/webhook-secret",
        "get_webhook_secret",
        {
            "summary": "Your webhook signing secret",
            "description": (
                "The secret that signs the webhooks of your generations (and only yours). Derived "
                "per API key from the stack's master secret."
            ),
            "responses": {200: _answer(WebhookSecretOut, "Your current secret"), **_errors(501)},
            "tags": ["webhooks"],
        },
    ),
    (
        "post",
        "/webhook-secret/rotate",
        "rotate_webhook_secret",
        {
            "summary": "Rotate your webhook signing secret",
            "description": (
                "A new secret. The previous one keeps signing (a second signature on each delivery) "
                "until previous_valid_until, then verifies nothing."
            ),
            "responses": {200: _answer(WebhookSecretOut, "Your new secret"), **_errors(409, 501)},
            "tags": ["webhooks"],
        },
    ),
    (
        "get",
        "/models",
        "list_models",
        {
            "summary": "The model catalog",
            "responses": {200: _answer(ModelList, "Every model with its fields")},
            "tags": ["models"],
        },
    ),
]
# Exception class -> the GenerationRoutes method that answers it.
ERROR_HANDLERS: list[tuple[type[Exception], str]] = [
    (VideogenError, "domain_error"),
    (OpenApiValidationError, "invalid_request"),
    (UnicodeDecodeError, "undecodable_body"),
]


def build_app(
    components: Callable[[], ApiComponents], *, allowed_origin: str | None = None
) -> APIGatewayRestResolver:
    """A resolver with every route. `allowed_origin` ("*" or an origin) adds CORS headers to
    every answer, errors included."""
    cors = None
    if allowed_origin:
        cors = CORSConfig(
            allow_origin=allowed_origin,
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            max_age=600,
        )
    app = APIGatewayRestResolver(enable_validation=True, cors=cors)
    routes = GenerationRoutes(app, components)
    for method, path, name, options in ROUTES:
        getattr(app, method)(path, **options)(getattr(routes, name))
    # the /batches routes (videogen.entrypoints.batch_routes)
    from videogen.entrypoints.batch_routes import BatchRoutes, batch_routes

    batch = BatchRoutes(routes.owner, lambda: components().batches)
    for method, path, name, options in batch_routes(_errors):
        getattr(app, method)(path, **options)(getattr(batch, name))
    for exception, name in ERROR_HANDLERS:
        app.exception_handler(exception)(getattr(routes, name))
    app.not_found(routes.no_route)
    return app


class HttpApi:
    """The API function's entry point: one resolver over the components."""

    def __init__(self, components: ApiComponents, *, allowed_origin: str | None = None) -> None:
        self.components = components
        self.app = build_app(lambda: components, allowed_origin=allowed_origin)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self.app.resolve(event, context)


def openapi_document() -> str:
    """The OpenAPI document of the API, as committed in openapi.json."""

    def unavailable() -> ApiComponents:
        raise RuntimeError("the OpenAPI document needs no AWS")

    schema = build_app(unavailable).get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        summary="Prompts and images to videos through the AIML API",
        description="Authenticate with the `x-api-key` header (API Gateway usage plan).",
    )
    return json.dumps(json.loads(schema), indent=2, sort_keys=True) + "\n"
