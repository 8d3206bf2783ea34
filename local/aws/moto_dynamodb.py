"""Atomic conditional writes for moto's DynamoDB, as DynamoDB's own are.

moto 5.2.5 performs a conditional PutItem/UpdateItem/DeleteItem in Python steps (read the item,
evaluate the condition, store the new item) with no lock, so two threads can both pass
`attribute_not_exists(id)` and both write. DynamoDB never lets that happen, and this project's
guarantees rest on it (one idempotency record per key, one winner per status change). Found by
a test submitting five concurrent POSTs with one Idempotency-Key, which, on a loaded machine,
now and then saw two records and two provider submits.

`make_dynamodb_writes_atomic()` wraps the backend's write methods in one process-wide lock
(reads need none: an item is replaced whole). It is idempotent, and used by the unit tests'
in-process moto and by the local stack's moto server. Like the Lambda shim it touches moto's
internals, so it refuses any moto but the pinned one (local.aws.lambdas.SUPPORTED_MOTO_VERSION).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()
_MARK = "_videogen_atomic"


def make_dynamodb_writes_atomic() -> None:
    import moto
    from moto.dynamodb.models import DynamoDBBackend

    from local.aws.lambdas import SUPPORTED_MOTO_VERSION

    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        raise RuntimeError(
            f"local.aws.moto_dynamodb supports moto {SUPPORTED_MOTO_VERSION}, not {moto.__version__}: "
            "re-read DynamoDBBackend's write methods, then move the pin"
        )
    for name in WRITE_METHODS:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, _MARK, False):
            setattr(DynamoDBBackend, name, _locked(method))


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    setattr(write, _MARK, True)
    return write
