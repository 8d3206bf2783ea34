"""`videogen batch`: many generations from one manifest (docs/batches.md).

    videogen batch prompts.jsonl --wait       # submit (inline, or via the uploads bucket) and follow it
    videogen batch status ID | results ID [-o results.jsonl] | cancel ID | resume ID | list

A JSONL file of at most 1,000 lines without blank lines goes inline (`items`), so the line numbers
the API reports are the file's; anything else (CSV, blank lines, more lines) is uploaded to the
uploads bucket under batches/<owner>/ and sent as `manifest_key`, where the stack numbers the
file's own lines.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen_cli.errors import EXIT_OK, GenerationFailedError, NetworkError, UsageError
from videogen_cli.progress import clock, pause

if TYPE_CHECKING:
    from videogen_cli.main import Context

ACTIONS = ("status", "results", "cancel", "resume", "list")
ENDED = ("completed", "failed", "cancelled")
MAX_INLINE_ITEMS = 1000
BAR_WIDTH = 30


def progress_bar(batch: dict[str, Any], elapsed: float | None = None) -> str:
    """`bat_... running [#######-----]  41.7%  20/48  completed 20 · pending 28  1:02`."""
    valid = int(batch.get("valid") or 0)
    finished = int(batch.get("finished") or 0)
    fraction = float(batch.get("progress") or 0.0)
    filled = int(BAR_WIDTH * min(1.0, fraction))
    counts = batch.get("counts") or {}
    shown = " · ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    return (
        f"{batch.get('id')} {batch.get('status')!s:<10} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
        f"{fraction * 100:5.1f}%  {finished}/{valid}  {shown}"
        + (f"  {clock(elapsed)}" if elapsed is not None else "")
    ).rstrip()


def inline_items(path: Path, text: str) -> list[dict[str, Any]] | None:
    """The file's requests when it can go inline with the same line numbers, else None."""
    if path.suffix.lower() == ".csv":
        return None
    rows = text.splitlines()
    if not rows or len(rows) > MAX_INLINE_ITEMS or any(not row.strip() for row in rows):
        return None
    items = []
    for row in rows:
        try:
            item = json.loads(row)
        except ValueError:
            return None  # the stack reports the bad line by its number
        if not isinstance(item, dict):
            return None
        items.append(item)
    return items


def upload_manifest(ctx: Context, path: Path) -> str:
    config = ctx.config
    if not config.uploads_bucket or not config.owner:
        raise UsageError(
            f"{path.name} must go through the uploads bucket "
            f"(CSV, blank lines or over {MAX_INLINE_ITEMS} lines)",
            hints=[
                "  give --uploads-bucket (the stack's UploadsBucket) and VIDEOGEN_OWNER (your API key's id),",
                "  or run the local stack (its endpoints.json names both).",
            ],
        )
    from botocore.exceptions import BotoCoreError, ClientError

    from videogen_cli.uploads import s3_client

    key = f"batches/{config.owner}/{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        s3_client(config).upload_file(str(path), config.uploads_bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise NetworkError(f"the upload to s3://{config.uploads_bucket}/{key} failed: {exc}") from None
    ctx.console.note(f"uploaded to s3://{config.uploads_bucket}/{key}")
    return key


def cmd_batch(ctx: Context) -> int:
    args = ctx.args
    if args.target in ACTIONS:
        if args.target != "list" and not args.id:
            raise UsageError(f"videogen batch {args.target} needs a batch id")
        return ACTION_COMMANDS[args.target](ctx)
    if args.id:
        raise UsageError(f"unexpected argument {args.id!r} after the manifest file")
    path = ctx.path(args.target)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    body: dict[str, Any] = {}
    items = None if args.upload else inline_items(path, text)
    if items is not None:
        body["items"] = items
    else:
        body["manifest_key"] = upload_manifest(ctx, path)
    if args.callback_url:
        body["callback_url"] = args.callback_url
    batch = ctx.client.create_batch(body)
    rejected = batch.get("rejected_lines") or []
    for line in rejected:
        ctx.console.info(f"line {line.get('line')}: {line.get('code')}: {line.get('message')}")
    ctx.resume = f"the batch keeps running; follow it with: videogen batch status {batch.get('id')}"
    if not args.wait:
        if args.json:
            ctx.emit_json(batch)
        else:
            ctx.console.print(str(batch.get("id")))
            ctx.console.note(f"follow it with: videogen batch status {batch.get('id')}")
        return EXIT_OK
    return follow(ctx, batch)


def follow(ctx: Context, batch: dict[str, Any]) -> int:
    """Poll the batch until it ends, a progress bar on stderr; exit 4 unless it completed."""
    started = time.monotonic()
    last = ""
    while True:
        state = progress_bar(batch)
        ctx.console.live(progress_bar(batch, time.monotonic() - started), changed=state != last)
        last = state
        if batch.get("status") in ENDED:
            break
        if ctx.args.timeout and time.monotonic() - started > ctx.args.timeout:
            ctx.console.end_live()
            raise GenerationFailedError(
                f"batch {batch.get('id')} still {batch.get('status')} after {clock(ctx.args.timeout)}",
                hints=[f"  it keeps running: videogen batch status {batch.get('id')}"],
            )
        pause(ctx.args.interval)
        batch = ctx.client.get_batch(str(batch["id"]))
    ctx.console.end_live()
    for line in batch.get("invalid_lines") or []:
        ctx.console.info(f"line {line.get('line')}: {line.get('code')}: {line.get('message')}")
    if ctx.args.json:
        ctx.emit_json(batch)
    else:
        ctx.console.print(f"{batch.get('id')} {batch.get('status')}  {json.dumps(batch.get('counts'))}")
        ctx.console.note(f"results: videogen batch results {batch.get('id')} -o results.jsonl")
    if batch.get("status") != "completed":
        raise GenerationFailedError(
            f"batch {batch.get('id')} {batch.get('status')}: {batch.get('error') or ''}"
        )
    return EXIT_OK


def cmd_status(ctx: Context) -> int:
    batch = ctx.client.get_batch(ctx.args.id)
    if ctx.args.json:
        ctx.emit_json(batch)
        return EXIT_OK
    ctx.console.print(progress_bar(batch))
    for name in ("created_at", "completed_at", "lines", "valid", "invalid", "credits_used", "error"):
        if batch.get(name) not in (None, ""):
            ctx.console.print(f"{name.replace('_', ' ') + ':':<14}{batch[name]}")
    for line in batch.get("invalid_lines") or []:
        ctx.console.print(f"{'':<14}line {line.get('line')}: {line.get('code')}: {line.get('message')}")
    return EXIT_OK


def cmd_results(ctx: Context) -> int:
    rows = list(ctx.client.iter_batch_results(ctx.args.id))
    if ctx.args.output:
        path = ctx.path(ctx.args.output)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        ctx.console.note(f"{len(rows)} rows in {path} (video links expire; see video_url)")
        return EXIT_OK
    if ctx.args.json:
        ctx.emit_json(rows)
        return EXIT_OK
    for row in rows:
        detail = row.get("video_url") or (row.get("error") or {}).get("message") or ""
        ctx.console.print(
            f"{row.get('line'):>6}  {row.get('status'):<10} {row.get('generation_id') or '-':<36} {detail}"
        )
    return EXIT_OK


def cmd_cancel(ctx: Context) -> int:
    batch = ctx.client.cancel_batch(ctx.args.id)
    if ctx.args.json:
        ctx.emit_json(batch)
    else:
        ctx.console.print(f"{batch.get('id')} {batch.get('status')}")
        ctx.console.note(
            "lines not started are skipped; jobs the provider already took still run (and are paid)"
        )
    return EXIT_OK


def cmd_resume(ctx: Context) -> int:
    batch = ctx.client.resume_batch(ctx.args.id)
    if ctx.args.wait:
        return follow(ctx, batch)
    if ctx.args.json:
        ctx.emit_json(batch)
    else:
        ctx.console.print(f"{batch.get('id')} {batch.get('status')}")
    return EXIT_OK


def cmd_list(ctx: Context) -> int:
    page = ctx.client.batches(limit=20)
    if ctx.args.json:
        ctx.emit_json(page)
        return EXIT_OK
    for batch in page.get("items") or []:
        ctx.console.print(progress_bar(batch))
    return EXIT_OK


ACTION_COMMANDS = {
    "status": cmd_status,
    "results": cmd_results,
    "cancel": cmd_cancel,
    "resume": cmd_resume,
    "list": cmd_list,
}
