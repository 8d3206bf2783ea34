"""scripts/audit_deps.py's verdicts, with pip-audit and PyPI played by fakes: a skipped lookup is
never a pass, known vulnerabilities fail, accepted ones need --ignore-vuln, network trouble fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts import audit_deps

SKIP = "Dependency not found on PyPI and could not be audited: {} ({})"


class FakeAnswer:
    def __init__(self, status: int, body: dict[str, Any] | None = None) -> None:
        self.status_code = status
        self._body = body or {}

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(f"HTTP {self.status_code}")

    def json(self) -> dict[str, Any]:
        return self._body


def _run(
    monkeypatch: pytest.MonkeyPatch,
    report: dict[str, Any] | None,
    pypi: dict[str, FakeAnswer],
    *args: str,
    returncode: int = 0,
) -> int:
    commands: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> Any:
        commands.append(command)
        if report is not None:
            Path(command[command.index("--output") + 1]).write_text(json.dumps(report))
        return type("Done", (), {"returncode": returncode, "stdout": "", "stderr": "boom"})()

    def fake_get(url: str, **kwargs: Any) -> FakeAnswer:
        if url not in pypi:
            raise requests.ConnectionError("no route")
        return pypi[url]

    monkeypatch.setattr(audit_deps.subprocess, "run", fake_run)
    monkeypatch.setattr(audit_deps.requests, "get", fake_get)
    monkeypatch.setattr(audit_deps.time, "sleep", lambda s: None)
    monkeypatch.setattr(sys, "argv", ["audit_deps.py", *args])
    try:
        return audit_deps.main()
    except SystemExit as exc:
        return 3 if exc.code not in (0, None) else 0


def _project(version: str, vulns: list[dict[str, Any]] | None = None) -> FakeAnswer:
    return FakeAnswer(200, {"info": {"version": version}, "vulnerabilities": vulns or []})


def test_a_clean_audit_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"dependencies": [{"name": "requests", "version": "2.34.2", "vulns": []}]}
    assert _run(monkeypatch, report, {}) == 0


def test_a_known_vulnerability_fails_unless_accepted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vuln = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-1"], "fix_versions": ["9.9"]}
    report = {"dependencies": [{"name": "requests", "version": "2.0", "vulns": [vuln]}]}
    assert _run(monkeypatch, report, {}, returncode=1) == 1
    assert "PYSEC-2099-1" in capsys.readouterr().err
    assert _run(monkeypatch, report, {}, "--ignore-vuln", "CVE-2099-1", returncode=1) == 0


def test_unreachable_per_release_api_falls_back_to_latest_release_advisories(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {
        "dependencies": [
            {"name": "requests", "skip_reason": SKIP.format("requests", "2.34.2")},
            {"name": "boto3", "skip_reason": SKIP.format("boto3", "1.0")},
        ]
    }
    pypi = {
        "https://pypi.org/pypi/requests/2.34.2/json": FakeAnswer(404),
        "https://pypi.org/pypi/requests/json": _project("2.34.2"),
        "https://pypi.org/pypi/boto3/json": _project("2.0"),
    }
    assert _run(monkeypatch, report, pypi) == 0
    out = capsys.readouterr().out
    assert "NOT AUDITED (1)" in out and "boto3 1.0 (latest 2.0)" in out
    assert "no known vulnerability in 1 audited packages" in out
    monkeypatch.setenv("AUDIT_STRICT", "1")
    assert _run(monkeypatch, report, pypi) == 1


def test_the_fallback_reports_the_latest_releases_vulnerabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"dependencies": [{"name": "idna", "skip_reason": SKIP.format("idna", "3.20")}]}
    vulns = [{"id": "GHSA-x", "aliases": [], "withdrawn": None, "fixed_in": ["3.21"]}]
    pypi = {
        "https://pypi.org/pypi/idna/3.20/json": FakeAnswer(404),
        "https://pypi.org/pypi/idna/json": _project("3.20", vulns),
    }
    assert _run(monkeypatch, report, pypi) == 1
    withdrawn = [{**vulns[0], "withdrawn": "2026-01-01"}]
    pypi["https://pypi.org/pypi/idna/json"] = _project("3.20", withdrawn)
    assert _run(monkeypatch, report, pypi) == 0


def test_network_failures_fail_and_are_never_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # pip-audit could not resolve (no report), PyPI unreachable in the fallback, an odd skip reason
    assert _run(monkeypatch, None, {}, returncode=1) == 2
    report = {"dependencies": [{"name": "idna", "skip_reason": SKIP.format("idna", "3.20")}]}
    assert _run(monkeypatch, report, {}) == 3
    odd = {"dependencies": [{"name": "x", "skip_reason": "could not parse requirement"}]}
    assert _run(monkeypatch, odd, {}) == 2


def test_a_per_release_page_that_exists_means_a_transient_error(monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"dependencies": [{"name": "idna", "skip_reason": SKIP.format("idna", "3.20")}]}
    pypi = {"https://pypi.org/pypi/idna/3.20/json": FakeAnswer(200, {"vulnerabilities": []})}
    assert _run(monkeypatch, report, pypi) == 2


def test_from_venv_audits_the_frozen_pins_without_resolving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> Any:
        commands.append(command)
        if "freeze" in command:
            return type("Done", (), {"returncode": 0, "stdout": "requests==2.34.2\n", "stderr": ""})()
        assert Path(command[command.index("-r") + 1]).read_text() == "requests==2.34.2\n"
        Path(command[command.index("--output") + 1]).write_text(json.dumps({"dependencies": []}))
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(audit_deps.subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["audit_deps.py", "--from-venv", str(tmp_path)])
    assert audit_deps.main() == 0
    freeze, audit = commands
    assert freeze[0] == f"{tmp_path}/bin/python" and freeze[1:4] == ["-m", "pip", "freeze"]
    assert {"--no-deps", "--disable-pip"} <= set(audit)
