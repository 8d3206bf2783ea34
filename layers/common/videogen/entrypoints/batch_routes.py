"""The /batches routes (registered by videogen.entrypoints.http_api.build_app): thin calls into
videogen.logic.batches.BatchService, per owner like the generations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from videogen.entrypoints.batch_models import BatchCreated, BatchOut, BatchPage, BatchRequest, BatchResults
from videogen.entrypoints.http_errors import ErrorAnswer
from videogen.logic.batches import BatchService

_ID = Path(max_length=64)


class BatchRoutes:
    def __init__(self, owner: Callable[[], str], batches: Callable[[], BatchService | None]) -> None:
        self.owner = owner
        self._batches = batches

    def batches(self) -> BatchService:
        service = self._batches()
        if service is None:
            raise ErrorAnswer(501, "batches_not_configured", "this stack has no batches")
        return service

    def create_batch(
        self, request: Annotated[BatchRequest, Body(description="inline items or an S3 manifest")]
    ) -> Response[Any]:
        batch, rejected = self.batches().create(
            self.owner(),
            items=request.items,
            manifest_key=request.manifest_key,
            fmt=request.format,
            callback_url=request.callback_url,
        )
        body = BatchCreated(**BatchOut.of(batch).model_dump(), rejected_lines=rejected)
        return Response[Any](
            status_code=202,
            content_type=content_types.APPLICATION_JSON,
            body=body,
            headers={"Location": f"/batches/{batch.id}"},
        )

    def get_batch(self, batch_id: Annotated[str, _ID]) -> BatchOut:
        return BatchOut.of(self.batches().get(self.owner(), batch_id))

    def list_batches(
        self,
        limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
        next_token: Annotated[
            str | None, Query(max_length=2048, description="from the previous page")
        ] = None,
    ) -> BatchPage:
        items, token = self.batches().list_for_owner(self.owner(), limit=limit, next_token=next_token)
        return BatchPage(items=[BatchOut.of(item) for item in items], next_token=token)

    def get_batch_results(
        self,
        batch_id: Annotated[str, _ID],
        limit: Annotated[int, Query(ge=1, le=1000, description="lines per page")] = 100,
        next_token: Annotated[str | None, Query(max_length=32, description="from the previous page")] = None,
    ) -> BatchResults:
        page = self.batches().results(self.owner(), batch_id, limit=limit, next_token=next_token)
        return BatchResults.model_validate(page)

    def cancel_batch(self, batch_id: Annotated[str, _ID]) -> BatchOut:
        return BatchOut.of(self.batches().cancel(self.owner(), batch_id))

    def resume_batch(self, batch_id: Annotated[str, _ID]) -> BatchOut:
        return BatchOut.of(self.batches().resume(self.owner(), batch_id))


def _answer(model: type, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


def batch_routes(errors: Callable[..., dict[int, Any]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, route, OpenAPI options), as http_api.ROUTES."""
    tags = ["batches"]
    return [
        (
            "post",
            "/batches",
            "create_batch",
            {
                "summary": "Request many videos at once",
                "description": (
                    "Inline `items` (up to 1,000 POST /generations bodies) or `manifest_key` (a JSONL or CSV "
                    "manifest in the uploads bucket, up to 100,000 lines). Each line is checked like POST "
                    "/generations; a bad line is reported with its line number and the others still run. "
                    "The lines go through the submit queue, at most BatchQueueShare of your queue cap "
                    "at once."
                ),
                "responses": {202: _answer(BatchCreated, "Accepted: the batch"), **errors(400, 409, 422)},
                "tags": tags,
            },
        ),
        (
            "get",
            "/batches",
            "list_batches",
            {
                "summary": "List your batches, newest first",
                "responses": {200: _answer(BatchPage, "A page"), **errors(422)},
                "tags": tags,
            },
        ),
        (
            "get",
            "/batches/<batch_id>",
            "get_batch",
            {
                "summary": "Read a batch: counts by status, progress, credits used",
                "responses": {200: _answer(BatchOut, "The batch"), **errors(404)},
                "tags": tags,
            },
        ),
        (
            "get",
            "/batches/<batch_id>/results",
            "get_batch_results",
            {
                "summary": "A page of the batch's results manifest, with video links",
                "description": "409 until the first count of the batch has written its results manifest.",
                "responses": {200: _answer(BatchResults, "Results"), **errors(404, 409, 422)},
                "tags": tags,
            },
        ),
        (
            "delete",
            "/batches/<batch_id>",
            "cancel_batch",
            {
                "summary": "Cancel what has not started",
                "description": (
                    "Lines not yet accepted are skipped and pending generations cancelled; generations the "
                    "provider already took run to their end (it has no cancel call)."
                ),
                "responses": {200: _answer(BatchOut, "Cancelling"), **errors(404, 409)},
                "tags": tags,
            },
        ),
        (
            "post",
            "/batches/<batch_id>/resume",
            "resume_batch",
            {
                "summary": "Run a stopped batch again",
                "description": (
                    "A new run accepts the lines the stopped one did not reach and skips the others."
                ),
                "responses": {200: _answer(BatchOut, "Resumed"), **errors(404, 409)},
                "tags": tags,
            },
        ),
    ]
