#!/usr/bin/env bash
# Checks template.yaml the way a deploy would see it, offline and without Docker:
#   1. cfn-lint (zero findings, warnings included)
#   2. sam validate --lint (the SAM transform itself)
#   3. sam build into .aws-sam/build (the layer's requirements for python3.13 arm64, built by
#      layers/common/Makefile), then a look inside the built layer: the videogen package is
#      there, boto3/botocore are not (the runtime has them), native code is aarch64, at most 25 MB.
# Any failure stops the script with a non-zero status.
#
# Environment: CFN_LINT (default .venv/bin/cfn-lint), SAM (default .venv-sam/bin/sam, else `sam`).
# sam build needs python3.13 on PATH; when it is missing the script looks in pyenv.
set -euo pipefail

cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

CFN_LINT=${CFN_LINT:-.venv/bin/cfn-lint}
if [[ -z "${SAM:-}" ]]; then
  if [[ -x .venv-sam/bin/sam ]]; then SAM=.venv-sam/bin/sam; else SAM=$(command -v sam || true); fi
fi
[[ -x "$CFN_LINT" ]] || { echo "cfn-lint not found at $CFN_LINT (run: make install)" >&2; exit 2; }
[[ -n "$SAM" && -x "$SAM" ]] || { echo "sam CLI not found (run: make install-sam, or set SAM=...)" >&2; exit 2; }

# (a pyenv shim named python3.13 may exist and still refuse to run: try it)
if ! python3.13 -c 'import sys' >/dev/null 2>&1; then
  py313=$(compgen -G "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/3.13*/bin" | tail -n 1 || true)
  [[ -n "$py313" ]] || { echo "sam build needs python3.13 on PATH (the Lambda runtime)" >&2; exit 2; }
  export PATH="$py313:$PATH"
  python3.13 -c 'import sys' || { echo "python3.13 in $py313 does not run" >&2; exit 2; }
fi

step() { printf '\n== %s\n' "$*"; }
start=$SECONDS

step "cfn-lint template.yaml"
"$CFN_LINT" template.yaml
echo "cfn-lint: no findings"

step "sam validate --lint"
"$SAM" validate --lint --template-file template.yaml

step "sam build (python3.13 arm64, $(python3.13 --version))"
"$SAM" build --template-file template.yaml --build-dir .aws-sam/build

step "built layer"
layer=.aws-sam/build/CommonLayer/python
[[ -f "$layer/videogen/__init__.py" ]] || { echo "the built layer lacks the videogen package" >&2; exit 1; }
wrong_arch=$(find "$layer" -name '*.so' \( -name '*x86_64*' -o -name '*amd64*' \) | head -n 5)
[[ -z "$wrong_arch" ]] || { echo "x86_64 native code in an arm64 layer:" >&2; echo "$wrong_arch" >&2; exit 1; }
for fn in ApiFunction PollerFunction WorkflowFunction; do
  [[ -f ".aws-sam/build/$fn/app.py" ]] || { echo "$fn was built without its app.py" >&2; exit 1; }
done
# sam package uploads the state machine's definition from the path the built template names
definition=$(sed -n 's/^ *DefinitionUri: //p' .aws-sam/build/template.yaml)
for uri in $definition; do
  [[ -f ".aws-sam/build/$uri" ]] || { echo "the built template's DefinitionUri $uri is missing" >&2; exit 1; }
  python3 -m json.tool ".aws-sam/build/$uri" >/dev/null || { echo "$uri is not JSON" >&2; exit 1; }
done
# boto3 and botocore come with the runtime: the layer must not carry them (layers/common/Makefile)
for pkg in boto3 botocore s3transfer; do
  [[ ! -e "$layer/$pkg" ]] || { echo "the built layer carries $pkg, which the runtime provides" >&2; exit 1; }
done
for pkg in requests urllib3 pydantic_core aws_lambda_powertools aws_xray_sdk wrapt; do
  [[ -d "$layer/$pkg" ]] || { echo "the built layer lacks $pkg" >&2; exit 1; }
done
max_mb=25
# bytes, as Lambda counts the unzipped size (and as bench/coldstart.py's layer_size_mb), not disk blocks
size_kb=$(du -sk --apparent-size "$layer" | cut -f1)
(( size_kb <= max_mb * 1024 )) || { echo "the built layer is $((size_kb / 1024)) MB unzipped, over ${max_mb} MB" >&2; exit 1; }
echo "layer $(du -sh --apparent-size "$layer" | cut -f1) (limit ${max_mb} MB), videogen package present, no boto3/botocore, no x86_64 native code"

printf '\ntemplate check passed in %ss\n' "$((SECONDS - start))"
