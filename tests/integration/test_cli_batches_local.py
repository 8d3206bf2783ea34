"""`videogen batch` against the local stack: a manifest submitted inline or through the uploads
bucket, followed with a progress bar to its end, then its results, status, list and cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.stack import LocalStack
from tests.integration import test_cli_local
from tests.integration.test_cli_local import Run

# the CLI tests' fixtures: the caller's key, `run(*argv)`, the uploads bucket flags
key, run, upload_flags = test_cli_local.key, test_cli_local.run, test_cli_local.upload_flags

MODEL = "kling-video/v1.6/standard/text-to-video"
FOLLOW = ["--wait", "--interval", "0.2", "--timeout", "90"]


def jsonl(*prompts: str) -> str:
    return "".join(json.dumps({"model": MODEL, "prompt": p}) + "\n" for p in prompts)


def test_batch_wait_follows_an_inline_manifest_to_its_results(run: Run, tmp_path: Path, poller: None) -> None:
    (tmp_path / "prompts.jsonl").write_text(jsonl("cli one", "cli two", "cli three"))
    code, out, err = run("batch", "prompts.jsonl", *FOLLOW)
    assert code == 0, err
    batch_id, status, counts = out.strip().splitlines()[-1].split(None, 2)
    assert batch_id.startswith("bat_") and status == "completed" and json.loads(counts) == {"completed": 3}
    bars = [line for line in err.splitlines() if line.startswith(batch_id)]
    assert bars and "[" in bars[-1] and "100.0%" in bars[-1] and "3/3" in bars[-1]
    code, _, err = run("batch", "results", batch_id, "-o", "results.jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in rows] == [(1, "completed"), (2, "completed"), (3, "completed")]
    assert all(r["video_url"].startswith("http") for r in rows)
    code, out, _ = run("batch", "status", batch_id)
    assert code == 0 and "completed" in out and "100.0%" in out
    code, out, _ = run("batch", "list")
    assert code == 0 and batch_id in out


def test_a_csv_goes_through_the_uploads_bucket_and_its_bad_line_is_named(
    run: Run, tmp_path: Path, upload_flags: list[str], local_stack: LocalStack, poller: None
) -> None:
    (tmp_path / "ads.csv").write_text(f"model,prompt,duration\n{MODEL},csv one,5\n{MODEL},csv two,7\n")
    flags = [f for f in upload_flags if f not in ("--find-timeout", "20", "--interval", "0.1")]
    code, out, err = run("batch", "ads.csv", *FOLLOW, *flags)
    assert code == 0, err
    assert "uploaded to s3://" in err and "line 3: validation_error" in err
    assert json.loads(out.strip().splitlines()[-1].split(None, 2)[2]) == {"completed": 1}


def test_batch_cancel_and_errors(run: Run, tmp_path: Path, api: Any) -> None:
    (tmp_path / "p.jsonl").write_text(jsonl("cancel me", "cancel me too"))
    code, out, err = run("batch", "p.jsonl")
    assert code == 0, err
    batch_id = out.strip()
    code, out, err = run("batch", "cancel", batch_id)
    assert code == 0, err
    assert out.split()[1] in ("cancelling", "cancelled")
    code, _, err = run("batch", "status", "bat_000000000000000000000000")
    assert code == 3 and "not_found" in err
    code, _, err = run("batch", "status")
    assert code == 2 and "needs a batch id" in err
    (tmp_path / "big.jsonl").write_text(jsonl(*[f"p{i}" for i in range(1001)]))
    code, _, err = run("batch", "big.jsonl")  # no uploads bucket given: a usage error, nothing sent
    assert code == 2 and "uploads bucket" in err
