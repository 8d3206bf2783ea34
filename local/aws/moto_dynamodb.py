"""Atomic conditional writes for moto's DynamoDB, as DynamoDB's own are.

moto 5.2.5 performs a conditional PutItem/UpdateItem/DeleteItem in Python steps (read the item,
evaluate the condition, store the new item) with no lock, so two threads can both pass
`attribute_not_exists(id)` and both write. DynamoDB never lets that happen, and this project's
guarantees rest on it (one idempotency record per key, one winner per status change). Found by
a test submitting five concurrent POSTs with one Idempotency-Key, which, on a loaded machine,
now and then saw two records and two provider submits.

`make_dynamodb_writes_atomic()` wraps the backend's write methods in one process-wide lock
(reads need none: an item is replaced whole). It also makes TransactWriteItems cost what it
touches: moto backs up every table a transaction names with a deepcopy of the whole table, to
put it back if the transaction is cancelled, so each transaction on a table of N items copies N
items (a 1,000-line batch's queue transactions slowed the local stack to a crawl, and a
10,000-line one grows quadratically). DynamoDB's cost does not depend on the table's size.
Here the items the transaction names are copied before it runs and put back, with the stream
records it wrote taken away, if it is cancelled; the whole-table copy is skipped.

`make_dynamodb_writes_atomic()` is idempotent, and used by the unit tests' in-process moto and
by the local stack's moto server. Like the Lambda shim it touches moto's internals, so it
refuses any moto but the pinned one (local.aws.lambdas.SUPPORTED_MOTO_VERSION).

`slow_writes(table, seconds)` makes every write to one table take that long (waited before the
lock, so other tables' writes go on): a test uses it to hold a request in flight for a known
time, where timing luck would otherwise decide whether concurrent calls overlap.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()
_MARK = "_videogen_atomic"
_BACKUP_MARK = "_videogen_item_backup"
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
    import moto.dynamodb.models as backend_module

    if not getattr(DynamoDBBackend.transact_write_items, _BACKUP_MARK, False):
        # (under the lock below: the lock wraps the item backup)
        DynamoDBBackend.transact_write_items = _item_backup(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
        backend_module.copy = types.SimpleNamespace(  # type: ignore[assignment]
            deepcopy=_deepcopy_unless_table_backup, copy=copy.copy
        )
    for name in WRITE_METHODS:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, _MARK, False):
            setattr(DynamoDBBackend, name, _locked(method))


_backing_up_items = threading.local()  # set while a transaction keeps its own item backup


def _deepcopy_unless_table_backup(value: Any, memo: Any = None) -> Any:
    """moto's `copy.deepcopy` in its DynamoDB backend: a whole table, inside a transaction that
    backs up its items itself, is not copied (the transaction's "restore" puts the same table
    back); anything else is deep-copied as before (an item's old image, a single item)."""
    from moto.dynamodb.models.table import Table

    if isinstance(value, Table) and getattr(_backing_up_items, "active", False):
        return value
    return copy.deepcopy(value, memo)


def _item_backup(transact: Callable[..., Any]) -> Callable[..., Any]:
    """TransactWriteItems backing up only the items it names (see the module's docstring)."""

    @functools.wraps(transact)
    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, the item before or None)
        streams: dict[int, tuple[Any, int]] = {}  # table id -> (its stream shard, records before)
        for entry in transact_items:
            try:
                _, op = next(iter(entry.items()))
                table = backend.tables.get(op.get("TableName"))
                key = op["Item"] if "Item" in op else op["Key"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                before = table.get_item(hash_value, range_value)
            except Exception:  # noqa: BLE001, S112 (a malformed entry: moto refuses it, nothing to save)
                continue
            saved.append((table, hash_value, range_value, copy.deepcopy(before)))
            if table.stream_shard is not None:
                streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        _backing_up_items.active = True
        try:
            return transact(backend, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(saved):  # the first copy last
                _put_back(table, hash_value, range_value, before)
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            _backing_up_items.active = False

    setattr(transact_write_items, _BACKUP_MARK, True)
    return transact_write_items


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        table = kwargs.get("table_name", args[1] if len(args) > 1 else None)
        delay = _WRITE_DELAYS.get(table) if isinstance(table, str) else None
        if delay:
            time.sleep(delay)
        with _LOCK:
            return method(*args, **kwargs)

    setattr(write, _MARK, True)  # (functools.wraps carried the backup's mark over)
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
