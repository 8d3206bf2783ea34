"""`videogen batch` without the stack: what goes inline (the API then numbers lines as the file
does) and what must go through the uploads bucket, and the progress bar."""

from __future__ import annotations

import json
from pathlib import Path

from videogen_cli.batches import inline_items, progress_bar


def test_only_a_plain_jsonl_of_at_most_1000_lines_goes_inline() -> None:
    row = json.dumps({"model": "m", "prompt": "p"})
    assert inline_items(Path("a.jsonl"), f"{row}\n{row}\n") == [{"model": "m", "prompt": "p"}] * 2
    assert inline_items(Path("a.jsonl"), f"{row}\n\n{row}\n") is None  # a blank line would shift numbers
    assert inline_items(Path("a.jsonl"), f"{row}\nnot json\n") is None  # the stack reports it by number
    assert inline_items(Path("a.jsonl"), "[1]\n") is None
    assert inline_items(Path("a.jsonl"), f"{row}\n" * 1001) is None
    assert inline_items(Path("a.csv"), "model,prompt\nm,p\n") is None
    assert inline_items(Path("a.jsonl"), "") is None


def test_the_progress_bar_shows_the_share_finished_and_the_counts() -> None:
    batch = {
        "id": "bat_1",
        "status": "running",
        "valid": 4,
        "finished": 1,
        "progress": 0.25,
        "counts": {"completed": 1, "pending": 3},
    }
    line = progress_bar(batch, 62)
    assert line.startswith("bat_1 running ")
    assert "[" + "#" * 7 + "-" * 23 + "]" in line
    assert " 25.0%  1/4  completed 1 · pending 3  1:02" in line
    assert progress_bar(batch).endswith("pending 3")
