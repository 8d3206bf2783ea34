"""S3 uploads handler: ObjectCreated events of the uploads bucket -> one generation per image.

Bad uploads end as `failed` generations and the invocation succeeds (no retry); only unexpected
infrastructure errors raise, so Lambda retries the event and then sends it to the dead-letter
queue. Redelivered events are harmless: each object maps to one deterministic generation id."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import uploads
from videogen.bootstrap import build
from videogen.observability import logger, metrics, tracer
from videogen.settings import Settings

components = build(Settings.from_env(os.environ))
processor = uploads.from_settings(components.settings, components.service)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return processor.handle(event).as_dict()
