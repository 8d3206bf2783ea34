"""HTTPS API: API Gateway REST proxy events -> the routes of videogen.entrypoints.http_api."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build_api, from_env
from videogen.observability import logger, metrics, tracer

entry = from_env(build_api)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return entry().handle(event, context)
