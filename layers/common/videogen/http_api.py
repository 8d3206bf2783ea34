"""The HTTPS API: routes of the REST resolver, each a thin call into GenerationService, and the
one place where errors become HTTP answers of the shape {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError as OpenApiValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from videogen.api_models import ErrorBody, GenerationOut, GenerationPage, GenerationRequest, ModelList
from videogen.bootstrap import Components
from videogen.catalog import describe_catalog
from videogen.errors import VideogenError
from videogen.models import Generation, Status
from videogen.provider import ErrorClass
from videogen.service import SUBMIT_FAILURE_HTTP_STATUS

TITLE = "videogen"
VERSION = "1.0.0"
# What a browser may send and read across origins (API Gateway answers the preflights: template Cors).
CORS_ALLOW_HEADERS = ["Content-Type", "x-api-key", "Idempotency-Key"]
CORS_EXPOSE_HEADERS = ["Location", "Retry-After"]


# Powertools' idempotency errors, re-raised as these: importing Powertools' idempotency package
# imports boto3, which only a POST with an Idempotency-Key needs, not every cold start.
class _IdempotencyKeyReused(VideogenError):
    pass


class _IdempotencyKeyInFlight(VideogenError):
    pass


def _error(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers=headers,
    )


def _errors(*codes: int) -> dict[int, Any]:
    return {
        code: {
            "description": HTTPStatus(code).phrase,
            "content": {"application/json": {"model": ErrorBody}},
        }
        for code in codes
    }


def build_app(
    components: Callable[[], Components], *, allowed_origin: str | None = None
) -> APIGatewayRestResolver:
    """`components` is called on first use, so the OpenAPI document can be produced without AWS.
    `allowed_origin` ("*" or an origin) adds CORS headers to every answer, errors included."""
    cors = (
        CORSConfig(
            allow_origin=allowed_origin,
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            max_age=600,
        )
        if allowed_origin
        else None
    )
    app = APIGatewayRestResolver(enable_validation=True, cors=cors)
    submitters: dict[str, Any] = {}

    def owner() -> str:
        # API Gateway has checked the key (ApiKeyRequired); its id, not the key, names the caller.
        key_id = app.current_event.request_context.identity.api_key_id
        if not key_id:
            raise VideogenError("no API key identity on the request")
        return key_id

    def present(generation: Generation) -> GenerationOut:
        return GenerationOut.of(generation, components().service.video_link(generation))

    def submit_idempotently(owner_id: str, key: str, body: dict[str, Any]) -> Generation:
        if "submit" not in submitters:
            from videogen.idempotency import idempotent_submit

            parts = components()
            submitters["submit"], submitters["config"] = idempotent_submit(
                parts.service,
                table_name=parts.settings.idempotency_table_name,
                dynamodb_client=parts.dynamodb,
            )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        submitters["config"].register_lambda_context(app.lambda_context)
        try:
            answer = submitters["submit"](request={"owner": owner_id, "idempotency_key": key, "body": body})
        except IdempotencyValidationError:
            raise _IdempotencyKeyReused("reused") from None
        except IdempotencyAlreadyInProgressError:
            raise _IdempotencyKeyInFlight("in flight") from None
        return Generation.model_validate(answer)

    @app.post(
        "/generations",
        summary="Request a video",
        description="Checks the request against the model catalog, records it, submits it to the provider.",
        responses={
            202: {
                "description": "Accepted: the generation, queued at the provider",
                "content": {"application/json": {"model": GenerationOut}},
            },
            **_errors(400, 409, 422, 429, 502, 504),
        },
        tags=["generations"],
    )
    def create_generation(
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
            generation = submit_idempotently(owner(), idempotency_key, body)
        else:
            generation = components().service.submit(owner(), body)
        if generation.error is not None and generation.status is Status.FAILED:
            provider_class = generation.error.provider_class
            status = (
                SUBMIT_FAILURE_HTTP_STATUS.get(ErrorClass(provider_class), 502) if provider_class else 502
            )
            if generation.submit_outcome_unknown:
                status = 502
            return _error(
                status,
                generation.error.code,
                generation.error.message,
                [{"generation_id": generation.id, "provider_class": provider_class}],
            )
        return Response[Any](
            status_code=202,
            content_type=content_types.APPLICATION_JSON,
            body=present(generation),
            headers={"Location": f"/generations/{generation.id}"},
        )

    @app.get(
        "/generations/<generation_id>",
        summary="Read a generation",
        responses={
            200: {"description": "The generation", "content": {"application/json": {"model": GenerationOut}}},
            **_errors(404),
        },
        tags=["generations"],
    )
    def get_generation(generation_id: Annotated[str, Path(max_length=64)]) -> GenerationOut:
        return present(components().service.get(owner(), generation_id))

    @app.get(
        "/generations",
        summary="List your generations, newest first",
        responses={
            200: {"description": "A page", "content": {"application/json": {"model": GenerationPage}}},
            **_errors(422),
        },
        tags=["generations"],
    )
    def list_generations(
        status: Annotated[Status | None, Query(description="only generations in this status")] = None,
        limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
        next_token: Annotated[
            str | None, Query(max_length=2048, description="from the previous page")
        ] = None,
    ) -> GenerationPage:
        items, token = components().service.list(owner(), status=status, limit=limit, next_token=next_token)
        return GenerationPage(items=[present(item) for item in items], next_token=token)

    @app.delete(
        "/generations/<generation_id>",
        summary="Cancel a generation",
        description="Stops tracking it. The provider has no cancel call: a job it started is still paid.",
        responses={
            200: {"description": "Cancelled", "content": {"application/json": {"model": GenerationOut}}},
            **_errors(404, 409),
        },
        tags=["generations"],
    )
    def cancel_generation(generation_id: Annotated[str, Path(max_length=64)]) -> GenerationOut:
        return present(components().service.cancel(owner(), generation_id))

    @app.get(
        "/models",
        summary="The model catalog",
        responses={
            200: {
                "description": "Every model with its fields",
                "content": {"application/json": {"model": ModelList}},
            }
        },
        tags=["models"],
    )
    def list_models() -> ModelList:
        return ModelList.model_validate({"models": describe_catalog()})

    # -- errors: one shape for all -------------------------------------------------------
    @app.exception_handler(VideogenError)
    def domain_error(exc: VideogenError) -> Response[str]:
        return _error(exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(OpenApiValidationError)
    def invalid_request(exc: OpenApiValidationError) -> Response[str]:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return _error(400, "invalid_json", "the body is not valid JSON")
        details = [
            {
                "field": ".".join(str(part) for part in p.get("loc", ())[1:]) or "body",
                "message": p.get("msg", p.get("type", "")),
            }
            for p in problems
        ]
        return _error(422, "validation_error", "the request is not valid", details)

    @app.exception_handler(UnicodeDecodeError)
    def undecodable_body(_: UnicodeDecodeError) -> Response[str]:
        # A binary body (API Gateway passes it base64-encoded) that is not UTF-8: Powertools'
        # body decoding raises this before validation, which would otherwise end in a 502.
        return _error(400, "invalid_json", "the body is not valid JSON (not UTF-8 text)")

    @app.exception_handler(_IdempotencyKeyReused)
    def key_reused(_: _IdempotencyKeyReused) -> Response[str]:
        return _error(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with another body",
            [{"field": "Idempotency-Key", "message": "use a new key for a new request"}],
        )

    @app.exception_handler(_IdempotencyKeyInFlight)
    def key_in_flight(_: _IdempotencyKeyInFlight) -> Response[str]:
        return _error(
            409,
            "request_in_progress",
            "a request with this Idempotency-Key is in progress",
            headers={"Retry-After": "1"},
        )

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        return _error(
            404, "route_not_found", f"no route {app.current_event.http_method} {app.current_event.path}"
        )

    return app


def openapi_document() -> str:
    """The OpenAPI document of the API, as committed in openapi.json."""

    def unavailable() -> Components:
        raise RuntimeError("the OpenAPI document needs no AWS")

    schema = build_app(unavailable).get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        summary="Prompts and images to videos through the AIML API",
        description="Authenticate with the `x-api-key` header (API Gateway usage plan).",
    )
    return json.dumps(json.loads(schema), indent=2, sort_keys=True) + "\n"
