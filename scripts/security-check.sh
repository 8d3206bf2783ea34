#!/usr/bin/env bash
# The security checks, run by `make security` (part of `make test`):
#   1. checkov on template.yaml: no failed check (suppressions sit in the template with a reason)
#   2. bandit on layers/ functions/ local/ cli/ scripts/: nothing of medium or high severity
#   3. pip-audit on the pinned requirements (scripts/audit_deps.py): no known vulnerability
# pip-audit needs PyPI (it looks the pins up), so it starts first and runs while the offline
# checks do. Any failure fails the script; nothing is skipped.
#
# Environment: SEC_VENV (default .venv-sec), VENV (default .venv), PIP_AUDIT_IGNORE (vulnerability ids accepted, space
# separated; each needs its reason in the README), AUDIT_STRICT=1 (fail on unauditable pins),
# AUDIT_RESOLVE=1 (pip-audit resolves the requirement files itself instead of reading .venv).
set -euo pipefail

cd "$(dirname "$0")/.."
SEC_VENV=${SEC_VENV:-.venv-sec}
for tool in checkov bandit pip-audit; do
  [[ -x "$SEC_VENV/bin/$tool" ]] || { echo "$tool not found in $SEC_VENV (run: make install-sec)" >&2; exit 2; }
done

step() { printf '\n== %s\n' "$*"; }
start=$SECONDS
audit_log=$(mktemp)
trap 'rm -f "$audit_log"' EXIT

ignores=()
for id in ${PIP_AUDIT_IGNORE:-}; do ignores+=(--ignore-vuln "$id"); done
# what `make install` resolved from the two files into .venv (pip freeze), audited without a
# second resolution; AUDIT_RESOLVE=1 lets pip-audit resolve the files itself (a minute or more)
source=(--from-venv "${VENV:-.venv}")
[[ "${AUDIT_RESOLVE:-}" == 1 ]] && source=()
"$SEC_VENV/bin/python" scripts/audit_deps.py "${source[@]}" \
  -r layers/common/requirements.txt -r requirements-dev.txt "${ignores[@]}" >"$audit_log" 2>&1 &
audit_pid=$!

step "checkov template.yaml"
# BC_SKIP_MAPPING and --skip-download: offline, no Bridgecrew platform
BC_SKIP_MAPPING=TRUE "$SEC_VENV/bin/checkov" -f template.yaml --framework cloudformation \
  --skip-download --compact --quiet

step "bandit (medium and high severity)"
"$SEC_VENV/bin/bandit" -c pyproject.toml -r layers functions local cli scripts \
  --severity-level medium --quiet
echo "bandit: no finding of medium or high severity"

step "pip-audit (layers/common/requirements.txt, requirements-dev.txt)"
audit_status=0
wait "$audit_pid" || audit_status=$?
cat "$audit_log"
if [[ $audit_status -ne 0 ]]; then
  echo "pip-audit check FAILED (exit $audit_status): see above" >&2
  exit "$audit_status"
fi

printf '\nsecurity checks passed in %ss\n' "$((SECONDS - start))"
