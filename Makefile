SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SEC_VENV := .venv-sec
# vulnerability ids pip-audit accepts (space separated); the README says why for each
PIP_AUDIT_IGNORE ?=
# sam build needs the Lambda runtime's Python (3.13) first on PATH; pyenv carries it here.
PY313_BIN := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin) $(dir $(shell command -v python3.13 2>/dev/null)))
export SAM_CLI_TELEMETRY := 0

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt layers/common/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed ## create .venv with everything tests and the local stack need

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check aws-sam-cli==1.170.0
	touch $@

install-sam: $(SAM_VENV)/.installed ## the SAM CLI in its own virtualenv (it pins its own boto3)

$(SEC_VENV)/.installed:
	$(PYTHON) -m venv $(SEC_VENV)
	$(SEC_VENV)/bin/pip install -q --disable-pip-version-check checkov==3.3.30 bandit==1.9.4 pip-audit==2.10.1
	touch $@

install-sec: $(SEC_VENV)/.installed ## checkov, bandit and pip-audit in their own virtualenv (checkov's pins clash)

security: install install-sec ## checkov on the template, bandit on the code, pip-audit on the pinned requirements
	VENV=$(VENV) SEC_VENV=$(SEC_VENV) PIP_AUDIT_IGNORE="$(PIP_AUDIT_IGNORE)" scripts/security-check.sh

template-check: install install-sam ## cfn-lint, sam validate --lint and sam build of template.yaml
	$(if $(PY313_BIN),PATH="$(PY313_BIN):$$PATH") SAM=$(SAM_VENV)/bin/sam scripts/check-template.sh

CHROMIUM := /usr/bin/chromium
# Debian's chromium for the browser-console test (Playwright drives it; nothing downloads a browser).
install-browser: ## Debian's chromium at /usr/bin/chromium (apt-get, sudo only when not root), if missing
	@if [ -x $(CHROMIUM) ]; then echo "chromium: $$($(CHROMIUM) --version 2>/dev/null || echo $(CHROMIUM))"; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation; \
	fi

deps: ## the three virtualenvs, installed side by side
	$(MAKE) --no-print-directory -j3 install install-sam install-sec

lint: install ## ruff, mypy and the import contracts of the layered core (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=layers/common $(BIN)/lint-imports

catalog: install ## regenerate the model catalog (and template.yaml's image models) from ../shared/aimlapi-docs
	$(BIN)/python scripts/gen_catalog.py

dashboard: install ## the dashboard of ops/dashboard.py into template.yaml, and docs/img/dashboard.png from make demo's metric lines
	$(BIN)/python scripts/gen_dashboard.py
	$(BIN)/python -m ops.render --logs .local/demo-logs --out docs/img/dashboard.png

openapi: install ## regenerate openapi.json from the API routes
	PYTHONPATH=layers/common $(BIN)/python scripts/openapi.py

unit: install ## the unit tests only (fast)
	$(BIN)/pytest tests/unit

local: install ## local stack (moto + AIML API simulator + handlers) on 127.0.0.1:3000 (PORT=...); Ctrl-C stops
	$(BIN)/python -m local.stack

demo: install ## text- and image-to-video end to end on a throwaway local stack, down to the MP4s
	$(BIN)/python -m local.demo

demo-batch: install ## a 50-line batch (S3 manifest, Distributed Map) to its results manifest on a throwaway local stack
	$(BIN)/python -m local.demo.batch

chaos: install ## reliability scenarios on the local stack (a few minutes): a table, bench/reliability.json and the figures in docs/
	PYTHONPATH=layers/common $(BIN)/python -m bench.chaos
	$(BIN)/python scripts/render_figures.py

test: deps install-browser ## everything CI runs: lint, template checks (cfn-lint, sam validate, sam build), security, the whole suite
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory template-check
	$(MAKE) --no-print-directory security
	$(BIN)/pytest

bench: install build ## the performance benchmarks (a few minutes): a table, bench/results.json and the figures in docs/
	$(BIN)/python -m bench.run
	$(BIN)/python scripts/render_figures.py

build: install-sam ## sam build (for deploy)
	$(if $(PY313_BIN),PATH="$(PY313_BIN):$$PATH") $(SAM_VENV)/bin/sam build

deploy: build ## sam deploy --guided (needs AWS credentials)
	$(SAM_VENV)/bin/sam deploy --guided

deploy-console: install ## upload console/ to the deployed stack's bucket behind CloudFront (STACK=videogen)
	$(BIN)/python scripts/deploy_console.py --stack-name $(or $(STACK),videogen)

clean: ## remove build output and local state (keeps the virtualenvs)
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache

.PHONY: catalog dashboard help install install-sam install-sec install-browser security template-check deps lint openapi unit local demo demo-batch chaos test bench build deploy deploy-console clean
