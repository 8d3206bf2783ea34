"""The measured figures in docs/ are exactly what scripts/render_figures.py makes of
bench/results.json and bench/reliability.json: regenerated into a copy of the checkout, the docs
must come out unchanged, and a figure edited by hand must fail `--check`."""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_figures", ROOT / "scripts" / "render_figures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rf = _load()
DOCS = sorted({block.doc for block in rf.BLOCKS})
SOURCES = sorted({block.source for block in rf.BLOCKS})


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The docs and the JSON they are made from, in a throwaway root."""
    for relative in DOCS + SOURCES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, tmp_path / relative)
    return tmp_path


def _block(text: str, block) -> str:
    return text[text.index(block.begin) : text.index(block.end)]


def test_committed_docs_are_what_the_json_gives(copy: Path) -> None:
    assert rf.main(["--root", str(copy)]) == 0
    for relative in DOCS:
        committed = (ROOT / relative).read_text()
        regenerated = (copy / relative).read_text()
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                regenerated.splitlines(keepends=True),
                f"{relative} (committed)",
                f"{relative} (from the JSON)",
            )
        )
        assert not diff, f"run python scripts/render_figures.py:\n{diff}"


def test_check_passes_on_the_checkout() -> None:
    assert rf.main(["--check"]) == 0


@pytest.mark.parametrize("block", rf.BLOCKS, ids=lambda b: b.name)
def test_a_figure_edited_by_hand_fails_the_check(
    copy: Path, block, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy / block.doc
    text = doc.read_text()
    inside = _block(text, block)
    # the first figure of the block's table: bump its first digit
    match = re.search(r"\| ([0-9][0-9.,]*) \|", inside)
    assert match, f"no figure in the {block.name} block"
    figure = match.group(1)
    edited = str((int(figure[0]) + 1) % 10) + figure[1:]
    start = text.index(block.begin) + match.start(1)
    doc.write_text(text[:start] + edited + text[start + len(figure) :])

    assert rf.main(["--check", "--root", str(copy)]) == 1
    assert block.doc in capsys.readouterr().err
    assert rf.main(["--root", str(copy)]) == 0  # regenerating puts the measured value back
    assert doc.read_text() == text


@pytest.mark.parametrize("block", rf.BLOCKS, ids=lambda b: b.name)
def test_a_new_run_changes_the_docs(copy: Path, block) -> None:
    source = copy / block.source
    document = json.loads(source.read_text())
    if block.name == "bench":
        document["layer_size_mb"] = 23.456
        expected = "| 23.5 |"
    else:
        first = next(key for key, value in document.items() if isinstance(value, dict) and "summary" in value)
        document[first]["summary"] = "a summary no run ever wrote"
        expected = "a summary no run ever wrote"
    source.write_text(json.dumps(document))

    assert rf.main(["--check", "--root", str(copy)]) == 1
    assert rf.main(["--root", str(copy)]) == 0
    assert expected in _block((copy / block.doc).read_text(), block)
    assert rf.main(["--check", "--root", str(copy)]) == 0


def test_text_outside_the_markers_is_kept(copy: Path) -> None:
    block = rf.BLOCKS[0]
    doc = copy / block.doc
    doc.write_text("# above\n\n" + doc.read_text() + "\nbelow\n")
    assert rf.main(["--check", "--root", str(copy)]) == 0
    text = doc.read_text()
    assert text.startswith("# above\n\n") and text.endswith("\nbelow\n")


def test_missing_markers_are_an_error(copy: Path) -> None:
    block = rf.BLOCKS[0]
    doc = copy / block.doc
    doc.write_text(doc.read_text().replace(block.end, ""))
    assert rf.main(["--check", "--root", str(copy)]) == 2


def _outside_blocks(text: str) -> str:
    for block in rf.BLOCKS:
        if block.begin in text:
            text = text[: text.index(block.begin)] + text[text.index(block.end) + len(block.end) :]
    return text


def test_measured_figures_are_not_retyped_elsewhere() -> None:
    """The headline figures appear only inside the generated blocks, never typed into prose."""
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    cost = results["details"]["cost"]
    figures = {rf.num(results[name]) for name in results["goals"] if results[name] is not None}
    figures |= {rf.dollars(cost[path]["dollars_per_1000"]) for path in ("poller", "workflow")}
    reliability = json.loads((ROOT / "bench" / "reliability.json").read_text())
    load = reliability.get("load", {}).get("measured", {})
    figures |= {f"{load[k]} req/s" for k in ("requests_per_second",) if k in load}
    figures = {f for f in figures if len(f) >= 4}  # "1.00"-like values and longer: no chance hits

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = []
    for page in pages:
        prose = _outside_blocks(page.read_text())
        for figure in figures:
            if re.search(rf"(?<![\w.$]){re.escape(figure)}(?![\w.])", prose):
                found.append(f"{page.relative_to(ROOT)}: {figure}")
    assert not found, f"measured figures typed by hand (quote the generated blocks instead): {found}"
