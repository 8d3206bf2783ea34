"""Lambda's event source mappings, played locally: the template's `Type: DynamoDB` (stream) and
`Type: SQS` function events, polled on moto and delivered to the real handlers.

Why not moto's own mappings: moto delivers a stream record or an SQS message synchronously
inside the PutItem / SendMessage call that produced it (in the moto server's request thread,
while the writing handler holds the local stack's invocation lock), never redelivers a failed
batch, and ignores ReportBatchItemFailures. Here, as in Lambda, a poller reads each source in
batches of the event's BatchSize and invokes the function with a Lambda-shaped event:
- DynamoDB streams: from StartingPosition; a batch whose handler raises is retried whole, one
  with `batchItemFailures` from the first failed record (sequence number) on; after
  MaximumRetryAttempts (default: until it succeeds) the batch is dropped and recorded in `failures`
  (AWS would send it to the OnFailure destination).
- FilterCriteria, as Lambda applies them: a record that matches none of the event's filters is
  dropped (a stream record skipped, an SQS message deleted) and never reaches the function. The
  patterns are EventBridge's syntax, matched with moto's own EventBridge pattern engine; an SQS
  body is matched as JSON when it parses as JSON.
- SQS: messages received with their attributes (ApproximateReceiveCount), deleted when the
  handler succeeds unless listed in `batchItemFailures`; failed ones come back after their
  visibility timeout, and moto's redrive policy moves them to the dead-letter queue.
- Concurrency: a stream shard's batches go one at a time (ParallelizationFactor 1). An SQS
  source runs up to `concurrency[function]` batches at once (the function's worker processes, see
  local/aws/concurrency.py), never more than its ScalingConfig.MaximumConcurrency, as Lambda's
  mapping scales; it receives a batch only when one of those is free (a message it cannot run
  stays visible). Default: one batch at a time, the invocation made by the polling thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from moto.events.models import EventPattern

from local.aws.cfn import FunctionSpec, Template

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 0.2


class EventFilters:
    """An event's FilterCriteria: no filters lets everything through; else any filter matching."""

    def __init__(self, props: dict[str, Any]) -> None:
        filters = (props.get("FilterCriteria") or {}).get("Filters") or []
        self.patterns = [EventPattern.load(str(f["Pattern"])) for f in filters]

    def __call__(self, record: dict[str, Any]) -> bool:
        if not self.patterns:
            return True
        if record.get("eventSource") == "aws:sqs":
            with contextlib.suppress(ValueError):
                record = {**record, "body": json.loads(record["body"])}
        return any(pattern.matches_event(record) for pattern in self.patterns)


class _StreamSource:
    def __init__(self, function: str, props: dict[str, Any], streams: Any, region: str) -> None:
        self.function = function
        self.arn = str(props["Stream"])
        self.batch_size = int(props.get("BatchSize", 100))
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))
        self.streams = streams
        self.region = region
        shard = streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        position = str(props.get("StartingPosition", "LATEST"))
        self.iterator = streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard, ShardIteratorType=position
        )["ShardIterator"]
        self.pending: list[dict[str, Any]] = []
        self.attempts = 0
        self.wanted = EventFilters(props)

    def poll(self, invoke: Callable[[str, dict[str, Any]], Any], failures: list[dict[str, Any]]) -> int:
        if not self.pending:
            answer = self.streams.get_records(ShardIterator=self.iterator, Limit=self.batch_size)
            self.iterator = answer["NextShardIterator"]
            records = [self._lambda_record(r) for r in answer.get("Records", [])]
            self.pending = [r for r in records if self.wanted(r)]
            self.attempts = 0
            if records and not self.pending:
                return len(records)  # read and filtered out: there may be more to read
        if not self.pending:
            return 0
        batch = self.pending
        try:
            result = invoke(self.function, {"Records": batch})
        except Exception as exc:  # noqa: BLE001 (the function's error: the batch is retried)
            log.warning("%s: stream batch failed (%s); retrying", self.function, type(exc).__name__)
            failed_from = 0
        else:
            failed = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])}
            seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
            failed_from = min((seqs.index(s) for s in failed if s in seqs), default=len(batch))
        self.pending = batch[failed_from:]
        if self.pending:
            self.attempts += 1
            if 0 <= self.max_retries < self.attempts:
                failures.append({"function": self.function, "source": self.arn, "records": self.pending})
                log.error("%s: stream records dropped after %d retries", self.function, self.max_retries)
                self.pending = []
        return len(batch)

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": self.arn,
        }


class _QueueSource:
    def __init__(
        self,
        function: str,
        props: dict[str, Any],
        queue_url: str,
        sqs: Any,
        region: str,
        *,
        concurrency: int = 1,
        done: Callable[[], None] | None = None,
    ) -> None:
        self.function = function
        self.arn = str(props["Queue"])
        self.queue_url = queue_url
        self.batch_size = min(int(props.get("BatchSize", 10)), 10)
        self.sqs = sqs
        self.region = region
        self.wanted = EventFilters(props)
        maximum = ((props.get("ScalingConfig") or {}).get("MaximumConcurrency")) or concurrency
        self.concurrency = max(1, min(concurrency, int(maximum)))
        self.in_flight = 0
        self.peak = 0  # the most batches that ran at once
        self._count = threading.Lock()
        self._done = done or (lambda: None)
        self._pool = (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"esm-{function}")
            if self.concurrency > 1
            else None
        )

    def poll(self, invoke: Callable[[str, dict[str, Any]], Any], failures: list[dict[str, Any]]) -> int:
        if self._pool is None:
            return self._poll_one(invoke)
        moved = 0
        while True:
            with self._count:
                if self.in_flight >= self.concurrency:
                    return moved  # every batch slot busy: the messages wait, visible
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            records = self._receive()
            if not records:
                self._finished()
                return moved
            moved += len(records)
            self._pool.submit(self._run_batch, invoke, records)

    def _run_batch(self, invoke: Callable[[str, dict[str, Any]], Any], records: list[dict[str, Any]]) -> None:
        try:
            self._handle(invoke, records)
        except Exception:
            log.exception("%s: SQS batch could not run", self.function)
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._count:
            self.in_flight -= 1
        self._done()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _poll_one(self, invoke: Callable[[str, dict[str, Any]], Any]) -> int:
        records = self._receive()
        if records:
            self._handle(invoke, records)
        return len(records)

    def _receive(self) -> list[dict[str, Any]]:
        """A batch the function should see (filtered-out messages are deleted here)."""
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                return []
            records = self._records(messages)
            filtered_out = [r for r in records if not self.wanted(r)]
            if filtered_out:  # Lambda deletes a message no filter matches
                self._delete(filtered_out)
                records = [r for r in records if self.wanted(r)]
            if records:
                return records

    def _records(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes") or {}),
                "messageAttributes": {
                    k: {
                        "stringValue": v.get("StringValue"),
                        "dataType": v.get("DataType"),
                        "stringListValues": [],
                        "binaryListValues": [],
                    }
                    for k, v in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": self.arn,
                "awsRegion": self.region,
            }
            for m in messages
        ]

    def _handle(self, invoke: Callable[[str, dict[str, Any]], Any], records: list[dict[str, Any]]) -> None:
        try:
            result = invoke(self.function, {"Records": records})
        except Exception as exc:  # noqa: BLE001 (all messages come back after their visibility timeout)
            log.warning("%s: SQS batch failed (%s)", self.function, type(exc).__name__)
            return
        failed = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])}
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            self._delete(done)

    def _delete(self, records: list[dict[str, Any]]) -> None:
        self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records)],
        )


class EventSourcePoller:
    """Every `poll_seconds`, one pass over each source (`start()`); `pump()` runs passes now."""

    def __init__(
        self,
        template: Template,
        functions: dict[str, FunctionSpec],
        invoke: Callable[[str, dict[str, Any]], Any],
        client: Callable[[str], Any],
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        concurrency: Mapping[str, int] | None = None,
    ) -> None:
        self.invoke = invoke
        self.poll_seconds = poll_seconds
        self.failures: list[dict[str, Any]] = []
        self.sources: list[_StreamSource | _QueueSource] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a batch ended: look again now, not at the next period
        self._thread: threading.Thread | None = None
        concurrency = dict(concurrency or {})
        queue_urls = {
            res.attributes.get("Arn"): res.ref
            for res in template.resources.values()
            if res.type == "AWS::SQS::Queue"
        }
        for lid in functions:
            events = (template.resources_doc[lid].get("Properties") or {}).get("Events") or {}
            for event in events.values():
                kind = event.get("Type")
                if kind not in ("DynamoDB", "SQS"):
                    continue
                props = template.resolve(event.get("Properties") or {})
                if str(props.get("Enabled", True)).lower() == "false":
                    continue
                if kind == "DynamoDB":
                    self.sources.append(_StreamSource(lid, props, client("dynamodbstreams"), template.region))
                else:
                    url = queue_urls.get(str(props["Queue"]))
                    if url is None:
                        raise RuntimeError(f"{lid}: no local queue with ARN {props['Queue']}")
                    self.sources.append(
                        _QueueSource(
                            lid,
                            props,
                            url,
                            client("sqs"),
                            template.region,
                            concurrency=concurrency.get(lid, 1),
                            done=self._wake.set,
                        )
                    )

    def poll_once(self) -> int:
        """One pass over every source; the number of records handed to functions."""
        with self._lock:
            moved = 0
            for source in self.sources:
                try:
                    moved += source.poll(self.invoke, self.failures)
                except Exception:
                    log.exception("%s: polling its event source failed", source.function)
            return moved

    def in_flight(self) -> int:
        """Batches running in the background (sources with concurrency)."""
        return sum(getattr(source, "in_flight", 0) for source in self.sources)

    def pump(self, timeout: float = 10.0) -> None:
        """Passes until one moves nothing and no batch is running (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll_once():
                continue
            if not self.in_flight():
                return
            self._wake.wait(0.05)
            self._wake.clear()

    def start(self) -> EventSourcePoller:
        if self.sources and self._thread is None and self.poll_seconds > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="local-event-sources", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for source in self.sources:
            if isinstance(source, _QueueSource):
                source.close()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            while self.poll_once() and not self._stop.is_set():
                pass
