"""One place for Logger, Tracer and Metrics, shared by every function with the same settings
(service name and namespace come from POWERTOOLS_* variables set in template.yaml).

The Tracer is made at the first invocation, not at import: making one imports the X-Ray SDK and
patches the libraries it traces, a tenth of a second or more of every cold start's init. Its
decorators can still be applied at import (`@tracer.capture_lambda_handler(...)`). Only what the
functions call out through is patched: botocore (DynamoDB, S3, Secrets Manager, Lambda), when
the Tracer is made, and requests (the AIML API, webhooks) when requests is first imported
(wrapt's post-import hook): patching it eagerly would import requests, urllib3 and
charset_normalizer into every cold start, and the notifier, or an API call that never reaches
the provider, never uses them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from videogen.lazy import Once

TRACED_MODULES = ("botocore", "requests")
PATCHED_WHEN_IMPORTED = ("requests",)  # of TRACED_MODULES: patched once something imports them


def _make_tracer(options: dict[str, Any]) -> Any:
    import wrapt  # the X-Ray SDK's own dependency (it patches through it)
    from aws_lambda_powertools import Tracer

    modules = tuple(options.pop("patch_modules", ()))
    tracer = Tracer(patch_modules=[m for m in modules if m not in PATCHED_WHEN_IMPORTED], **options)
    for module in (m for m in modules if m in PATCHED_WHEN_IMPORTED):
        # called at once when the module is already imported; Tracer.patch is a no-op when disabled
        wrapt.register_post_import_hook(functools.partial(_patch_on_import, tracer, module), module)
    return tracer


def _patch_on_import(tracer: Any, name: str, _module: Any) -> None:
    tracer.patch([name])


class LazyTracer:
    """Stands for a Powertools `Tracer`, made on first use; every attribute is the real one's."""

    def __init__(self, **options: Any) -> None:
        self._get = Once(lambda: _make_tracer(options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def capture_lambda_handler(self, lambda_handler: Callable[..., Any] | None = None, **options: Any) -> Any:
        """`Tracer.capture_lambda_handler`, the Tracer being made at the first invocation."""
        if lambda_handler is None:
            return functools.partial(self.capture_lambda_handler, **options)
        return self._deferred("capture_lambda_handler", lambda_handler, options)

    def capture_method(self, method: Callable[..., Any] | None = None, **options: Any) -> Any:
        """`Tracer.capture_method` (sync functions), the Tracer being made at the first call."""
        if method is None:
            return functools.partial(self.capture_method, **options)
        return self._deferred("capture_method", method, options)

    def _deferred(self, decorator: str, function: Callable[..., Any], options: dict[str, Any]) -> Any:
        decorated = Once(lambda: getattr(self._get(), decorator)(function, **options))

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            return decorated()(*args, **kwargs)

        return call


logger = Logger()
tracer = LazyTracer(patch_modules=TRACED_MODULES)
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
