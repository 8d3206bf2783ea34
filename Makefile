SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
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

template-check: install install-sam ## cfn-lint, sam validate --lint and sam build of template.yaml
	$(if $(PY313_BIN),PATH="$(PY313_BIN):$$PATH") SAM=$(SAM_VENV)/bin/sam scripts/check-template.sh

deps: ## both virtualenvs, installed side by side
	$(MAKE) --no-print-directory -j2 install install-sam

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

openapi: install ## regenerate openapi.json from the API routes
	PYTHONPATH=layers/common $(BIN)/python scripts/openapi.py

unit: install ## the unit tests only (fast)
	$(BIN)/pytest tests/unit

local: install ## local stack (moto + AIML API simulator + handlers) on 127.0.0.1:3000 (PORT=...); Ctrl-C stops
	$(BIN)/python -m local.stack

demo: install ## text- and image-to-video end to end on a throwaway local stack, down to the MP4s
	$(BIN)/python -m local.demo

test: deps ## everything CI runs: lint, template checks (cfn-lint, sam validate, sam build), the whole suite
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory template-check
	$(BIN)/pytest

bench: install build ## the performance benchmarks of issue 4 (a few minutes): a table and bench/results.json
	$(BIN)/python -m bench.run

build: install-sam ## sam build (for deploy)
	$(if $(PY313_BIN),PATH="$(PY313_BIN):$$PATH") $(SAM_VENV)/bin/sam build

deploy: build ## sam deploy --guided (needs AWS credentials)
	$(SAM_VENV)/bin/sam deploy --guided

clean: ## remove build output and local state (keeps the virtualenvs)
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install install-sam template-check deps lint openapi unit local demo test bench build deploy clean
