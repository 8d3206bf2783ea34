"""`videogen`: generate videos from the command line, against a deployed stack or `make local`.

    videogen generate "A red fox runs through snow" --wait
    videogen generate "Cheetah turns" --image cheetah.jpg --model video-01 --wait -o cheetah.mp4
    videogen status ID | wait ID | list | cancel ID | models [ID] | upload IMAGE --prompt ... | config
    videogen batch prompts.jsonl --wait | batch status|results|cancel|resume ID | batch list

Exit codes: 0 done, 2 usage or configuration error, 3 the API answered an error or could not be
reached, 4 the generation failed / timed out / was cancelled (or did not finish within --timeout),
130 interrupted (Ctrl-C; a generation keeps running and the CLI says how to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from videogen_cli import __version__
from videogen_cli.api import TERMINAL, ApiClient, new_idempotency_key
from videogen_cli.batches import ACTIONS as BATCH_ACTIONS
from videogen_cli.batches import cmd_batch
from videogen_cli.config import Config, resolve
from videogen_cli.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ApiError,
    CliError,
    GenerationFailedError,
    UsageError,
)
from videogen_cli.images import (
    MAX_INLINE_BYTES,
    UPLOADABLE,
    LocalImage,
    human_size,
    is_reference,
    open_local_image,
)
from videogen_cli.params import field_types, parse_params
from videogen_cli.progress import Console, Watch, bar, clock, default_output, download, is_mp4, pause
from videogen_cli.uploads import Uploaded, build_metadata, upload_image

DEFAULT_TEXT_MODEL = "kling-video/v1.6/standard/text-to-video"
DEFAULT_IMAGE_MODEL = "video-01"
STATUSES = ("pending", "submitting", "queued", "generating", "completed", "failed", "timed_out", "cancelled")
RESERVED_PARAMS = {"model": "--model", "prompt": "the prompt argument", "image_url": "--image"}


@dataclass
class Context:
    args: argparse.Namespace
    console: Console
    env: dict[str, str]
    cwd: Path
    resume: str | None = None  # what to tell the user on Ctrl-C
    _config: Config | None = field(default=None, repr=False)
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            flags = {
                name: getattr(self.args, name, None)
                for name in (
                    "api_url",
                    "api_key",
                    "uploads_bucket",
                    "upload_prefix",
                    "aws_endpoint_url",
                    "region",
                    "owner",
                    "endpoints_file",
                )
            }
            self._config = resolve(flags, self.env, self.cwd)
        return self._config

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            url, key = self.config.require_api()
            self._client = ApiClient(url, key)
        return self._client

    def path(self, value: str | Path) -> Path:
        """A path of the command line: relative ones are relative to the working folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.cwd / path

    def emit_json(self, value: Any) -> None:
        self.console.print(json.dumps(value, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# argument parsing


def _add_common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """Options accepted before or after the command (`videogen --json list` == `videogen list --json`)."""
    default: Any = argparse.SUPPRESS if sub else None
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--api-url", metavar="URL", default=default, help="API base URL (env VIDEOGEN_API_URL)"
    )
    group.add_argument("--api-key", metavar="KEY", default=default, help="API key (env VIDEOGEN_API_KEY)")
    group.add_argument(
        "--endpoints-file",
        metavar="PATH",
        default=default,
        help="settings file to use (env VIDEOGEN_ENDPOINTS_FILE; default .local/endpoints.json here, "
        "or in a parent when it points at localhost)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="print JSON on stdout",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="no progress on stderr (errors still)",
    )


def _add_upload_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("uploads (images larger than the API's inline limit)")
    group.add_argument(
        "--uploads-bucket", metavar="BUCKET", help="the stack's uploads bucket (env VIDEOGEN_UPLOADS_BUCKET)"
    )
    group.add_argument(
        "--upload-prefix",
        metavar="PREFIX",
        help="key prefix that triggers generations (default uploads/; env VIDEOGEN_UPLOAD_PREFIX)",
    )
    group.add_argument(
        "--owner",
        metavar="KEY_ID",
        help="your API key's id, so that the upload's generation is yours (env VIDEOGEN_OWNER)",
    )
    group.add_argument(
        "--aws-endpoint-url", metavar="URL", help="S3 endpoint (env VIDEOGEN_AWS_ENDPOINT_URL; moto locally)"
    )
    group.add_argument("--region", help="AWS region of the bucket (env VIDEOGEN_REGION)")
    group.add_argument(
        "--find-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=60.0,
        help="seconds to wait for the upload's generation to appear (default 60)",
    )


def _add_wait_options(parser: argparse.ArgumentParser, *, always: bool = False) -> None:
    group = parser.add_argument_group("waiting and downloading")
    if not always:
        group.add_argument("-w", "--wait", action="store_true", help="wait until done and download the video")
    group.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="where to save the video (default <id>.mp4)"
    )
    group.add_argument("--no-download", action="store_true", help="wait, but do not download the video")
    group.add_argument(
        "--interval",
        type=_seconds,
        metavar="SECONDS",
        default=2.0,
        help="seconds between status checks (default 2)",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="stop waiting after this many seconds (it keeps running)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be 1..100")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videogen",
        description="Turn prompts and images into videos through the videogen API.",
        epilog=(
            "Endpoint and key come from --api-url/--api-key, else VIDEOGEN_API_URL/VIDEOGEN_API_KEY, "
            "else --endpoints-file, else .local/endpoints.json (written by `make local`) in this folder "
            "or a parent (a parent's only when it points at localhost). http:// only to localhost. "
            "Exit codes: 0 ok, 2 usage, 3 API or network error, 4 generation failed/timed out/cancelled, "
            "130 interrupted."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"videogen {__version__}")
    _add_common(parser, sub=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        _add_common(sub, sub=True)
        return sub

    gen = command("generate", "request a video (and with --wait, wait for it and download it)")
    gen.add_argument("prompt", nargs="?", help="what the video shows")
    gen.add_argument(
        "-m",
        "--model",
        help=f"model id from `videogen models` (default {DEFAULT_TEXT_MODEL}, "
        f"or {DEFAULT_IMAGE_MODEL} with --image)",
    )
    gen.add_argument(
        "-i",
        "--image",
        metavar="PATH_OR_URL",
        help="first frame: an https URL, a data URL, or a local file "
        f"(sent inline up to {MAX_INLINE_BYTES // 1024} KiB, uploaded to the uploads bucket when larger)",
    )
    gen.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model field, typed as GET /models says (repeatable): -p duration=10 -p aspect_ratio=9:16",
    )
    gen.add_argument(
        "--idempotency-key", metavar="KEY", help="reuse to retry a submit safely (default: a new uuid4)"
    )
    _add_wait_options(gen)
    _add_upload_options(gen)

    status = command("status", "show a generation")
    status.add_argument("id")

    wait = command(
        "wait", "wait for a generation to finish and download its video (resumes `generate --wait`)"
    )
    wait.add_argument("id")
    _add_wait_options(wait, always=True)

    lst = command("list", "your generations, newest first")
    lst.add_argument("--status", choices=STATUSES, help="only generations in this status")
    lst.add_argument("--limit", type=_limit, default=20, help="page size, 1..100 (default 20)")
    lst.add_argument("--next-token", help="the next page, from a previous list")
    lst.add_argument("--all", action="store_true", help="every page")

    cancel = command("cancel", "stop tracking a generation (the provider's job, if started, is still paid)")
    cancel.add_argument("id")

    models = command("models", "the models and their fields")
    models.add_argument("id", nargs="?", help="show this model's fields")

    upload = command("upload", "upload an image to the uploads bucket; the stack turns it into a generation")
    upload.add_argument("image", help="a local JPEG, PNG or WebP file")
    upload.add_argument("--prompt", help="what the video shows (default: the stack's UploadDefaultPrompt)")
    upload.add_argument("-m", "--model", help="model id (default: the stack's UploadDefaultModel)")
    upload.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="a model field"
    )
    _add_wait_options(upload)
    _add_upload_options(upload)

    usage = command("usage", "your spend in provider credits by day and model, and your budgets")
    usage.add_argument(
        "--days", type=_days, default=7, help="UTC days back, today included, 1..400 (default 7)"
    )

    command("config", "show where the endpoint, key and bucket come from (the key masked)")

    hook = command(
        "webhook-secret",
        "show this key's webhook signing secret (rotate: replace it; the old one signs for a grace period)",
    )
    hook.add_argument("action", nargs="?", choices=["rotate"], help="rotate: a new secret for this key")

    batch = command(
        "batch",
        "many videos from one manifest: `batch FILE [--wait]`, or `batch status|results|cancel|resume ID`, "
        "`batch list`",
    )
    batch.add_argument(
        "target", metavar="FILE|ACTION", help="a JSONL or CSV manifest, or " + "|".join(BATCH_ACTIONS)
    )
    batch.add_argument("id", nargs="?", help="the batch id (for an action)")
    group = batch.add_argument_group("batches")
    group.add_argument(
        "-w", "--wait", action="store_true", help="follow the batch with a progress bar until it ends"
    )
    group.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="stop following after this long")
    group.add_argument(
        "--interval", type=_seconds, metavar="SECONDS", default=2.0, help="seconds between checks (default 2)"
    )
    group.add_argument("--callback-url", metavar="URL", help="receives a signed webhook when the batch ends")
    group.add_argument(
        "--upload",
        action="store_true",
        help="send the file through the uploads bucket even if it could go inline",
    )
    group.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="results: write the rows here (JSONL)"
    )
    _add_upload_options(batch)
    return parser


# ---------------------------------------------------------------------------------------------
# commands


def cmd_models(ctx: Context) -> int:
    models = ctx.client.models()
    if ctx.args.id:
        model = ctx.client.model(ctx.args.id)
        if model is None:
            known = ", ".join(str(m.get("id")) for m in models)
            raise UsageError(f"unknown model {ctx.args.id!r}; known models: {known}")
        if ctx.args.json:
            ctx.emit_json(model)
            return EXIT_OK
        c = ctx.console
        typical = clock(model.get("typical_seconds", 0))
        c.print(f"{model['id']}  ({model.get('mode')}, {model.get('provider')}, typically ~{typical})")
        if model.get("description"):
            c.print(f"  {model['description']}")
        for spec in model.get("fields") or []:
            extra = []
            if spec.get("required"):
                extra.append("required")
            if spec.get("enum"):
                extra.append("one of " + ", ".join(map(str, spec["enum"])))
            if spec.get("minimum") is not None or spec.get("maximum") is not None:
                extra.append(f"{spec.get('minimum', '')}..{spec.get('maximum', '')}")
            if spec.get("max_length"):
                extra.append(f"max {spec['max_length']} chars")
            c.print(f"  {spec['name']:<16} {spec.get('type', ''):<8} {'; '.join(extra)}")
            if spec.get("description"):
                c.print(f"  {'':<16} {'':<8} {spec['description']}")
        return EXIT_OK
    if ctx.args.json:
        ctx.emit_json({"models": models})
        return EXIT_OK
    rows = [
        (
            str(m.get("id")),
            str(m.get("mode", "")),
            "~" + clock(m.get("typical_seconds", 0)),
            " ".join(_field_label(f) for f in m.get("fields") or []),
        )
        for m in models
    ]
    _table(ctx.console, ("MODEL", "MODE", "TYPICAL", "FIELDS (* required)"), rows)
    return EXIT_OK


def _field_label(spec: dict[str, Any]) -> str:
    return f"{spec.get('name')}{'*' if spec.get('required') else ''}"


def _table(console: Console, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        console.print("  ".join([*cells, str(row[-1])]).rstrip())


def _request_fields(ctx: Context, model_id: str, params: list[str]) -> dict[str, Any]:
    # GET /models says each field's type; an unknown model is the API's to report on submit
    types = field_types(ctx.client.model(model_id)) if params else None
    fields = parse_params(params, types)
    for name, option in RESERVED_PARAMS.items():
        if name in fields:
            raise UsageError(f"--param {name}: give it with {option}")
    return fields


def cmd_generate(ctx: Context) -> int:
    args, console = ctx.args, ctx.console
    ctx.config.require_api()
    model = args.model or (DEFAULT_IMAGE_MODEL if args.image else DEFAULT_TEXT_MODEL)
    fields = _request_fields(ctx, model, args.param)
    body: dict[str, Any] = {"model": model}
    if args.prompt is not None:
        body["prompt"] = args.prompt
    body.update(fields)

    if args.image:
        if is_reference(args.image):
            body["image_url"] = args.image
        else:
            image = open_local_image(args.image, ctx.cwd)
            if image.fits_inline:
                console.note(f"sending {args.image} inline ({human_size(image.size)})")
                body["image_url"] = image.data_url()
            else:
                _check_upload(ctx, image)
                console.note(
                    f"{image} is {human_size(image.size)}, more than the {MAX_INLINE_BYTES // 1024} KiB "
                    "the API takes inline: uploading it to the uploads bucket, where the stack turns it "
                    "into a generation"
                )
                return _via_upload(ctx, image, prompt=args.prompt, model=model, fields=fields)

    key = args.idempotency_key or new_idempotency_key()
    ctx.resume = (
        f"interrupted while submitting; it may have been created. Run the same command with "
        f"--idempotency-key {key} to get it without submitting twice, or see `videogen list`."
    )
    generation = ctx.client.create(body, idempotency_key=key)
    ctx.resume = None
    return _after_submit(ctx, generation)


def _after_submit(ctx: Context, generation: dict[str, Any]) -> int:
    args, console = ctx.args, ctx.console
    gid = generation["id"]
    if not args.wait:
        if args.json:
            ctx.emit_json(generation)
        else:
            ctx.console.print(gid)
            console.note(f"{generation.get('status')} · follow it with: videogen wait {gid}")
        return EXIT_OK
    if not args.json:
        console.note(f"submitted {gid} ({generation.get('model')})")
    return _wait_and_fetch(ctx, generation)


def _wait_and_fetch(ctx: Context, generation: dict[str, Any]) -> int:
    args, console = ctx.args, ctx.console
    gid = str(generation["id"])
    output: Path = args.output or default_output(gid)
    resume = f"videogen wait {gid}" + (f" -o {args.output}" if args.output else "")
    ctx.resume = f"{gid} keeps running; resume with: {resume}"
    watch = Watch(ctx.client, console, interval=args.interval, timeout=args.timeout)
    try:
        final = watch.until_done(generation)
    except GenerationFailedError:
        ctx.resume = None
        raise
    status = final.get("status")
    if status != "completed":
        ctx.resume = None
        if args.json:
            ctx.emit_json(final)
        error = final.get("error") or {}
        reason = f": {error.get('code')}: {error.get('message')}" if error else ""
        raise GenerationFailedError(f"{gid} {status}{reason}", generation=final)
    if args.no_download:
        ctx.resume = None
        if args.json:
            ctx.emit_json(final)
        else:
            console.print((final.get("video") or {}).get("url", gid))
        return EXIT_OK
    ctx.resume = f"interrupted during the download; the video is ready: {resume}"
    size = _fetch_video(ctx, final, output)
    ctx.resume = None
    if not is_mp4(ctx.path(output)):
        console.info(f"warning: {output} does not look like an MP4 file")
    if args.json:
        ctx.emit_json({**final, "output_file": str(output), "output_bytes": size})
    else:
        console.note(f"saved {output} ({human_size(size)})")
        console.print(str(output))
    return EXIT_OK


def _fetch_video(ctx: Context, generation: dict[str, Any], output: Path) -> int:
    """Download the video; an expired link is renewed once with a fresh GET."""
    for attempt in range(2):
        video = generation.get("video") or {}
        url = video.get("url")
        if not url:
            raise ApiError(200, "no_video", f"{generation.get('id')} is completed but has no video link")
        try:
            return download(url, ctx.path(output), ctx.console, label=str(output))
        except ApiError as exc:
            if exc.code != "link_expired" or attempt:
                raise
            ctx.console.note("the video link expired; asking for a fresh one")
            generation = ctx.client.get(str(generation["id"]))
    raise AssertionError("unreachable")


def cmd_wait(ctx: Context) -> int:
    ctx.args.wait = True
    generation = ctx.client.get(ctx.args.id)
    return _wait_and_fetch(ctx, generation)


def cmd_status(ctx: Context) -> int:
    generation = ctx.client.get(ctx.args.id)
    if ctx.args.json:
        ctx.emit_json(generation)
        return EXIT_OK
    c = ctx.console
    request = dict(generation.get("request") or {})
    rows: list[tuple[str, Any]] = [
        ("id", generation.get("id")),
        ("status", generation.get("status")),
        ("queue position", generation.get("queue_position")),
        ("est. start", generation.get("estimated_start")),
        ("model", generation.get("model")),
        ("source", generation.get("source")),
        ("prompt", request.pop("prompt", None)),
        ("image", _short_image(request.pop("image_url", None))),
    ]
    rows += [
        (name, json.dumps(value) if not isinstance(value, str) else value) for name, value in request.items()
    ]
    rows += [
        ("created", generation.get("created_at")),
        ("updated", generation.get("updated_at")),
        ("completed", generation.get("completed_at")),
        ("provider id", generation.get("provider_generation_id")),
    ]
    error = generation.get("error")
    if error:
        rows.append(("error", f"{error.get('code')}: {error.get('message')}"))
    if generation.get("submit_outcome_unknown"):
        rows.append(("note", "the provider may have taken (and charged) it; it is never resubmitted"))
    video = generation.get("video")
    if video:
        rows.append(("video", video.get("url")))
        expires = video.get("expires_at")
        if isinstance(expires, int | float):
            rows.append(("link expires", datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")))
    for name, value in rows:
        if value not in (None, ""):
            c.print(f"{name + ':':<14}{value}")
    if generation.get("status") not in TERMINAL:
        c.note(f"follow it with: videogen wait {generation.get('id')}")
    elif generation.get("status") == "completed":
        c.note(f"download it with: videogen wait {generation.get('id')}")
    return EXIT_OK


def _short_image(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("data:"):
        header = value.partition(",")[0]
        return f"{header},… ({len(value)} chars)"
    return value


def cmd_list(ctx: Context) -> int:
    args = ctx.args
    next_token = None
    if args.all:
        items = list(ctx.client.iter_generations(status=args.status))
    else:
        page = ctx.client.page(status=args.status, limit=args.limit, next_token=args.next_token)
        items = list(page.get("items") or [])
        next_token = page.get("next_token")
    if args.json:
        ctx.emit_json({"items": items, "next_token": next_token})
        return EXIT_OK
    if not items:
        ctx.console.note("no generations" + (f" in status {args.status}" if args.status else ""))
    else:
        rows = [
            (
                str(g.get("id")),
                str(g.get("status")),
                str(g.get("model")),
                str(g.get("created_at", ""))[:19].replace("T", " "),
                _ellipsis(str((g.get("request") or {}).get("prompt") or ""), 50),
            )
            for g in items
        ]
        _table(ctx.console, ("ID", "STATUS", "MODEL", "CREATED (UTC)", "PROMPT"), rows)
    if next_token:
        ctx.console.note(
            f"more: videogen list --next-token {next_token}"
            + (f" --status {args.status}" if args.status else "")
        )
    return EXIT_OK


def _ellipsis(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 400:
        raise argparse.ArgumentTypeError("must be 1..400")
    return value


def cmd_usage(ctx: Context) -> int:
    report = ctx.client.usage(ctx.args.days)
    if ctx.args.json:
        ctx.emit_json(report)
        return EXIT_OK
    for name in ("daily", "monthly"):
        budget = report.get(name) or {}
        limit = budget.get("limit")
        spent = budget.get("spent", 0)
        of = f" of {limit:,} ({budget.get('remaining', 0):,} left)" if limit else " (no limit)"
        ctx.console.print(f"{name:<8} {budget.get('period', '')}: {spent:,} credits{of}")
    rows = [
        (str(r.get("day")), str(r.get("model")), f"{r.get('credits', 0):,}", str(r.get("requests", 0)))
        for r in report.get("days") or []
    ]
    if rows:
        _table(ctx.console, ("DAY (UTC)", "MODEL", "CREDITS", "REQUESTS"), rows)
    else:
        ctx.console.note(f"no spend in the last {ctx.args.days} day(s)")
    ctx.console.note("credits are the provider's reported usage, or the estimate until it reports")
    return EXIT_OK


def cmd_cancel(ctx: Context) -> int:
    generation = ctx.client.cancel(ctx.args.id)
    if ctx.args.json:
        ctx.emit_json(generation)
    else:
        ctx.console.print(f"{generation.get('id')} {generation.get('status')}")
        ctx.console.note("tracking stopped; a job the provider already started is still paid")
    return EXIT_OK


def cmd_webhook_secret(ctx: Context) -> int:
    rotate = ctx.args.action == "rotate"
    answer = ctx.client.rotate_webhook_secret() if rotate else ctx.client.webhook_secret()
    if ctx.args.json:
        ctx.emit_json(answer)
        return EXIT_OK
    ctx.console.print(str(answer.get("secret")))
    ctx.console.note(f"version {answer.get('version')}: verify webhook-signature with it (standardwebhooks)")
    until = answer.get("previous_valid_until")
    if until:
        when = datetime.fromtimestamp(int(until), UTC).isoformat(timespec="seconds")
        ctx.console.note(f"version {answer.get('previous_version')} also signs until {when}")
    return EXIT_OK


def cmd_upload(ctx: Context) -> int:
    args = ctx.args
    image = open_local_image(args.image, ctx.cwd)
    # Metadata is text: the upload function types each field by the catalog itself.
    fields = parse_params(args.param, None)
    for name, option in (("model", "--model"), ("prompt", "--prompt"), ("image_url", "the IMAGE argument")):
        if name in fields:
            raise UsageError(f"--param {name}: give it with {option}")
    return _via_upload(ctx, image, prompt=args.prompt, model=args.model, fields=fields)


def _check_upload(ctx: Context, image: LocalImage) -> None:
    """What an upload needs, checked before anything is sent."""
    config = ctx.config
    if not config.uploads_bucket:
        raise UsageError(
            f"{image} is {human_size(image.size)}: it needs the uploads bucket, and none is known"
            if ctx.args.command == "generate"
            else "no uploads bucket known",
            hints=[
                "  give --uploads-bucket or VIDEOGEN_UPLOADS_BUCKET (the stack's UploadsBucket),",
                "  or run the local stack (its endpoints.json names `uploads_bucket`);",
                f"  or give the image as an https URL, or one of at most {MAX_INLINE_BYTES // 1024} KiB.",
            ],
        )
    if image.kind not in UPLOADABLE:
        raise UsageError(f"{image}: the uploads bucket takes JPEG, PNG or WebP images, not {image.kind}")
    if ctx.args.wait and not config.owner:
        raise UsageError(
            "--wait on an upload needs --owner (your API key's id, or VIDEOGEN_OWNER)",
            hints=["  without it the generation belongs to the stack's UploadDefaultOwner, not to your key"],
        )
    if ctx.args.wait:
        config.require_api()


def _via_upload(
    ctx: Context, image: LocalImage, *, prompt: str | None, model: str | None, fields: dict[str, Any]
) -> int:
    args, console, config = ctx.args, ctx.console, ctx.config
    owner = config.owner
    _check_upload(ctx, image)
    metadata = build_metadata(prompt, model, owner, fields)
    started = time.monotonic()

    sent = 0

    def progress(chunk: int) -> None:
        nonlocal sent
        sent += chunk
        console.live(bar(sent, image.size, time.monotonic() - started), changed=False)

    ctx.resume = "interrupted during the upload; nothing may have been uploaded: run the command again"
    uploaded = upload_image(config, image, metadata, progress=progress)
    console.clear_live()
    ctx.resume = None
    console.note(f"uploaded {image} ({human_size(image.size)}) to {uploaded.reference}")
    if not owner:
        console.note(
            "no --owner: the generation belongs to the stack's UploadDefaultOwner; pass your API key's id "
            "as --owner (or VIDEOGEN_OWNER) to follow it with this key"
        )
    generation = _find_upload_generation(ctx, uploaded) if owner and config.api_url else None
    if generation is None:
        if args.wait:
            raise GenerationFailedError(
                f"no generation for {uploaded.reference} appeared within {args.find_timeout:g} s",
                hints=[
                    f"  is {owner!r} your API key's id, and is the bucket's notification set up?",
                    "  `videogen list` shows it once the stack has taken the upload.",
                ],
            )
        if args.json:
            ctx.emit_json({"upload": _upload_json(uploaded), "generation": None})
        else:
            console.print(uploaded.reference)
        return EXIT_OK
    if not args.wait:
        if args.json:
            ctx.emit_json({"upload": _upload_json(uploaded), "generation": generation})
        else:
            console.print(str(generation["id"]))
            console.note(f"{generation.get('status')} · follow it with: videogen wait {generation['id']}")
        return EXIT_OK
    console.note(f"the stack created {generation['id']} ({generation.get('model')})")
    return _wait_and_fetch(ctx, generation)


def _upload_json(uploaded: Uploaded) -> dict[str, Any]:
    return {"bucket": uploaded.bucket, "key": uploaded.key, "reference": uploaded.reference}


def _find_upload_generation(ctx: Context, uploaded: Uploaded) -> dict[str, Any] | None:
    """The caller's newest generations are searched for the one whose image is the upload."""
    console, args = ctx.console, ctx.args
    deadline = time.monotonic() + args.find_timeout
    console.note(f"waiting for the stack to create the generation (up to {args.find_timeout:g} s)")
    ctx.resume = (
        f"interrupted; the upload is done: `videogen list` shows its generation ({uploaded.reference})"
    )
    while True:
        page = ctx.client.page(limit=50)
        for item in page.get("items") or []:
            if (item.get("request") or {}).get("image_url") == uploaded.reference:
                ctx.resume = None
                return dict(item)
        if time.monotonic() >= deadline:
            ctx.resume = None
            return None
        pause(min(args.interval, max(0.05, deadline - time.monotonic())))


def cmd_config(ctx: Context) -> int:
    view = ctx.config.public_view()
    if ctx.args.json:
        ctx.emit_json(view)
        return EXIT_OK
    sources = view.pop("from")
    for name, value in view.items():
        origin = sources.get(name)
        ctx.console.print(
            f"{name + ':':<18}{value if value is not None else '-'}" + (f"   ({origin})" if origin else "")
        )
    return EXIT_OK


COMMANDS = {
    "generate": cmd_generate,
    "status": cmd_status,
    "wait": cmd_wait,
    "list": cmd_list,
    "cancel": cmd_cancel,
    "models": cmd_models,
    "upload": cmd_upload,
    "usage": cmd_usage,
    "config": cmd_config,
    "webhook-secret": cmd_webhook_secret,
    "batch": cmd_batch,
}


# ---------------------------------------------------------------------------------------------
# entry point


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Run one command; return its exit code (the `videogen` script exits with it)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    console = Console(out, err, quiet=bool(args.quiet))
    ctx = Context(args, console, dict(os.environ if env is None else env), cwd or Path.cwd())
    try:
        return COMMANDS[args.command](ctx)
    except CliError as exc:
        console.clear_live()
        for line in exc.lines():
            console.info(line)
        return exc.exit_code
    except KeyboardInterrupt:
        console.clear_live()
        console.info("interrupted" + (f": {ctx.resume}" if ctx.resume else ""))
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK  # `videogen list | head`
    except Exception as exc:  # a bug of the CLI: one line, not a traceback
        if ctx.env.get("VIDEOGEN_DEBUG"):
            raise
        console.clear_live()
        console.info(
            f"error: internal error: {exc.__class__.__name__}: {exc} (VIDEOGEN_DEBUG=1 shows the traceback)"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
