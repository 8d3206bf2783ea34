"""Atomic conditional writes for moto's DynamoDB, as DynamoDB's own are.

moto 5.2.5 performs a conditional PutItem/UpdateItem/DeleteItem in Python steps (read the item,
evaluate the condition, store the new item) with no lock, so two threads can both pass
`attribute_not_exists(id)` and both write. DynamoDB never lets that happen, and this project's
guarantees rest on it (one idempotency record per key, one winner per status change). Found by
a test submitting five concurrent POSTs with one Idempotency-Key, which, on a loaded machine,
now and then saw two records and two provider submits.

`make_dynamodb_writes_atomic()` wraps the backend's write methods in one process-wide lock
(reads need none: an item is replaced whole). `slow_writes(table, seconds)` makes every write to
one table take that long (waited before the lock, so other tables' writes go on): a test uses it
to hold a request in flight for a known time, where timing luck would otherwise decide whether
concurrent calls overlap. It is idempotent, and used by the unit tests'
in-process moto and by the local stack's moto server. Like the Lambda shim it touches moto's
internals, so it refuses any moto but the pinned one (local.aws.lambdas.SUPPORTED_MOTO_VERSION).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()
_MARK = "_videogen_atomic"
_WRITE_DELAYS: dict[str, float] = {}  # table name -> seconds each write to it waits


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
        table = kwargs.get("table_name", args[1] if len(args) > 1 else None)
        delay = _WRITE_DELAYS.get(table) if isinstance(table, str) else None
        if delay:
            time.sleep(delay)
        with _LOCK:
            return method(*args, **kwargs)

    setattr(write, _MARK, True)
    return write


@contextlib.contextmanager
def slow_writes(table_name: str, seconds: float) -> Iterator[None]:
    """Every PutItem/UpdateItem/DeleteItem on `table_name` served by this process's moto takes
    `seconds` longer while the block runs (make_dynamodb_writes_atomic must have been called)."""
    _WRITE_DELAYS[table_name] = seconds
    try:
        yield
    finally:
        _WRITE_DELAYS.pop(table_name, None)
