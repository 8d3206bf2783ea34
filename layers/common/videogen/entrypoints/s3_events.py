"""S3 ObjectCreated events of the uploads bucket -> one upload use case per record.

The record's key arrives URL-encoded (`quote_plus`: spaces as `+`, `+` as `%2B`, unicode as UTF-8
percent escapes) and is decoded with `unquote_plus`. Every record is handled on its own: a bad
upload never sinks the others. Only unexpected infrastructure errors fail the invocation, so that
Lambda retries the event (and then sends it to the dead-letter queue); the deterministic
generation id of each object makes those retries safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from videogen.domain.uploads import UploadRecord, UploadReport
from videogen.logic.uploads import UploadProcessor


class BadEventError(Exception):
    """A record that is not an S3 object event: retrying would never help."""


class UploadProcessingError(Exception):
    """Some record met an unexpected (infrastructure) error: the invocation fails so Lambda retries
    the whole event; the records already handled are duplicates on the retry."""


def parse_record(record: Mapping[str, Any]) -> UploadRecord:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        bucket = s3["bucket"]["name"]
        raw_key = obj["key"]
    except (KeyError, TypeError) as exc:
        raise BadEventError(f"not an S3 event record (missing {exc})") from None
    if not isinstance(bucket, str) or not isinstance(raw_key, str) or not bucket or not raw_key:
        raise BadEventError("an S3 event record needs a bucket name and an object key")
    size = obj.get("size")
    etag = obj.get("eTag") or obj.get("etag")
    return UploadRecord(
        bucket=bucket,
        key=unquote_plus(raw_key),  # S3 encodes keys like a form: '+' is a space, '%2B' a plus
        event_name=str(record.get("eventName") or ""),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=str(etag).strip('"') if etag else None,
        version_id=str(obj["versionId"]) if obj.get("versionId") else None,
        sequencer=str(obj["sequencer"]) if obj.get("sequencer") else None,
    )


def handle_event(event: Mapping[str, Any], processor: UploadProcessor) -> UploadReport:
    """Every record of the event. Raises UploadProcessingError after the last record when any
    record met an unexpected error."""
    report = UploadReport()
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        keys = sorted(event) if isinstance(event, Mapping) else None
        processor.warn("not an S3 event; ignored", keys=keys)
        return report
    first_error: Exception | None = None
    for raw in records:
        try:
            record = parse_record(raw)
        except BadEventError as exc:
            processor.warn("bad S3 event record; ignored", error=str(exc))
            processor.metric("UploadsSkipped")
            continue
        try:
            report.results.append(processor.process(record))
        except Exception as exc:  # counted, logged, re-raised below
            report.errors += 1
            first_error = first_error or exc
            processor.metric("UploadErrors")
            if processor.log is not None:
                processor.log.exception(
                    "upload failed; the event will be retried",
                    extra={"object": record.reference, "error": type(exc).__name__},
                )
    if first_error is not None:
        raise UploadProcessingError(
            f"{report.errors} of {len(records)} upload record(s) failed: {type(first_error).__name__}"
        ) from first_error
    return report


class UploadEvents:
    """The upload function's entry point."""

    def __init__(self, processor: UploadProcessor) -> None:
        self.processor = processor

    def handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return handle_event(event, self.processor).as_dict()
