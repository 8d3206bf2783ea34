"""pip-audit on the pinned requirements, with a clear verdict for every package.

Runs `pip-audit -r layers/common/requirements.txt -r requirements-dev.txt` (pip resolves the pins
and their dependencies in a throwaway virtualenv, a minute or more), or with `--from-venv .venv`
audits what `make install` resolved from those same files: `pip freeze` of that virtualenv
(every package pinned, pip and setuptools left out) with `--no-deps --disable-pip`, in seconds.
Then it decides itself, package by package:

- a known vulnerability not given with --ignore-vuln: fails.
- pip-audit could not look a package up: PyPI answers a release's advisories at
  /pypi/<name>/<version>/json. Some networks (the sandboxes this project is built in) reach PyPI's
  project pages but not that per-release API, and pip-audit then reports every package as "not
  found on PyPI" and, without --strict, "No known vulnerabilities found". That is never taken as a
  pass: the package is looked up again at /pypi/<name>/json, whose advisories are those of the
  latest release, so a pin equal to the latest release is audited exactly. A pin behind it cannot
  be audited that way: it is listed under NOT AUDITED, and fails the run with AUDIT_STRICT=1.
- pip-audit itself failing (network down, timeouts): fails with its message, never skipped.

Usage (Python of .venv-sec, where pip-audit lives):
    python scripts/audit_deps.py [-r FILE ... | --from-venv VENV] [--ignore-vuln ID ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

PYPI = "https://pypi.org/pypi"
NOT_FOUND = re.compile(
    r"^Dependency not found on PyPI and could not be audited: (?P<name>\S+) \((?P<version>[^)]+)\)$"
)


def _get_json(url: str) -> dict[str, Any] | None:
    """GET a PyPI JSON page: its document, None on 404; network trouble raises after 3 tries."""
    for attempt in range(3):
        try:
            answer = requests.get(url, timeout=20)
            if answer.status_code == 404:
                return None
            answer.raise_for_status()
            return dict(answer.json())
        except (requests.RequestException, ValueError) as exc:
            if attempt == 2:
                message = f"pip-audit fallback: {url} could not be read ({exc}); nothing skipped, failing"
                raise SystemExit(message) from exc
            time.sleep(2 * (attempt + 1))
    raise AssertionError("unreachable")


def _ignored(vuln: dict[str, Any], ignore: set[str]) -> bool:
    return bool({vuln.get("id"), *(vuln.get("aliases") or [])} & ignore)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-r", dest="requirements", action="append", default=[])
    parser.add_argument("--from-venv", help="audit `pip freeze` of this virtualenv instead of resolving -r")
    parser.add_argument("--ignore-vuln", action="append", default=[])
    args = parser.parse_args()
    requirements = args.requirements or ["layers/common/requirements.txt", "requirements-dev.txt"]
    ignore = set(args.ignore_vuln)
    strict = os.environ.get("AUDIT_STRICT") == "1"

    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--format", "json"]
        if args.from_venv:
            frozen = Path(tmp) / "frozen.txt"
            freeze = [f"{args.from_venv}/bin/python", "-m", "pip", "freeze", "--disable-pip-version-check"]
            listed = subprocess.run(freeze, capture_output=True, text=True, check=False)  # noqa: S603
            if listed.returncode != 0 or not listed.stdout.strip():
                print(
                    f"pip freeze of {args.from_venv} failed: {listed.stderr} (run: make install)",
                    file=sys.stderr,
                )
                return 2
            frozen.write_text(listed.stdout)
            count = len(listed.stdout.splitlines())
            print(f"{args.from_venv}: {count} packages resolved from {', '.join(requirements)}")
            command += ["--no-deps", "--disable-pip", "-r", str(frozen)]
        else:
            command += [arg for req in requirements for arg in ("-r", req)]
        command += [arg for vuln in sorted(ignore) for arg in ("--ignore-vuln", vuln)]
        command += ["--output", str(report_path)]
        print("$", " ".join(command[2:]), flush=True)
        started = time.monotonic()
        # our own interpreter and arguments, no shell
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if not report_path.exists() or run.returncode not in (0, 1):
            sys.stderr.write(run.stdout + run.stderr)
            print(
                f"pip-audit FAILED (exit {run.returncode}) before it could report: see above. It needs "
                "PyPI (pip resolves the pins); a network failure fails this check, it is not skipped.",
                file=sys.stderr,
            )
            return 2
        report = json.loads(report_path.read_text())
    print(f"pip-audit resolved {len(report['dependencies'])} packages in {time.monotonic() - started:.0f} s")

    found: list[str] = []
    unaudited: list[str] = []
    looked_up_again: list[tuple[str, str]] = []
    for dep in report["dependencies"]:
        for vuln in dep.get("vulns") or []:
            if not _ignored(vuln, ignore):
                found.append(
                    f"{dep['name']} {dep.get('version')}: {vuln['id']} (fixed in {vuln.get('fix_versions')})"
                )
        reason = dep.get("skip_reason")
        if reason:
            match = NOT_FOUND.match(reason)
            if match is None:
                print(f"pip-audit could not audit {dep['name']}: {reason}", file=sys.stderr)
                return 2
            looked_up_again.append((match["name"], match["version"]))

    if looked_up_again:
        probe_name, probe_version = looked_up_again[0]
        if _get_json(f"{PYPI}/{probe_name}/{probe_version}/json") is not None:
            print(
                f"pip-audit found no advisories page for {probe_name} {probe_version} although PyPI has "
                "it now: a transient PyPI error? run again",
                file=sys.stderr,
            )
            return 2
        print(
            f"PyPI's per-release JSON API is not reachable from here ({len(looked_up_again)} packages "
            "unaudited by pip-audit): reading each project's latest-release advisories instead"
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            projects = list(pool.map(lambda dep: _get_json(f"{PYPI}/{dep[0]}/json"), looked_up_again))
        for (name, version), project in zip(looked_up_again, projects, strict=True):
            if project is None:
                print(f"{name} is not on PyPI at all: cannot audit it", file=sys.stderr)
                return 2
            latest = project["info"]["version"]
            if latest != version:
                unaudited.append(f"{name} {version} (latest {latest})")
                continue
            for vuln in project.get("vulnerabilities") or []:
                if not vuln.get("withdrawn") and not _ignored(vuln, ignore):
                    found.append(f"{name} {version}: {vuln['id']} (fixed in {vuln.get('fixed_in')})")

    audited = len(report["dependencies"]) - len(unaudited)
    if unaudited:
        print(f"\nNOT AUDITED ({len(unaudited)}): pinned behind the latest release, whose advisories")
        print("are the only ones this network's PyPI answers. Audit them where PyPI's per-release")
        print("JSON API (or OSV) is reachable:")
        print("  pip-audit --strict -r layers/common/requirements.txt -r requirements-dev.txt")
        for line in unaudited:
            print(f"  - {line}")
    if found:
        print(f"\nKNOWN VULNERABILITIES ({len(found)}):", file=sys.stderr)
        for line in found:
            print(f"  - {line}", file=sys.stderr)
        print(
            "Raise the pin, or accept one with --ignore-vuln ID (Makefile PIP_AUDIT_IGNORE) and say "
            "why in the README.",
            file=sys.stderr,
        )
        return 1
    print(f"\npip-audit: no known vulnerability in {audited} audited packages", end="")
    print(f" ({', '.join(sorted(ignore))} accepted)" if ignore else "")
    if unaudited and strict:
        print("AUDIT_STRICT=1: failing because some packages could not be audited", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
