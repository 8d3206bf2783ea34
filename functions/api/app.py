"""HTTPS API handler: API Gateway REST proxy events -> the videogen service."""

import os

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.bootstrap import build
from videogen.http_api import build_app
from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

components = build(Settings.from_env(os.environ))
app = build_app(lambda: components, allowed_origin=components.settings.allowed_origin)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
