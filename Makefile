# One-command set-up: `make run` (install + models + default pipeline), `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

# The project runs offline and quietly: no telemetry, no model hub.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Torch threads: 2 cores here. Runs use both; tests use 1 because some start a second process
# (a server) that would otherwise fight for the same cores (50x slower matmuls were seen).
RUN_THREADS ?= 2
TEST_THREADS ?= 1

.PHONY: help install system-deps models run test viz viz-build mlflow-ui lint format clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/lock.txt requirements/nodeps.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), f"Python 3.12+ needed, $(PYTHON) is {sys.version.split()[0]} (pyenv: see .python-version)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python -r requirements/lock.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -r requirements/nodeps.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

install: $(STAMP)  ## create .venv (if missing) and install the pinned dependencies

system-deps:  ## Debian packages the browser tests drive: chromium and its driver (needs root)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver present"; \
	else \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	fi

models: $(STAMP)  ## convert the configured teacher and student to model dirs (cached)
	OMP_NUM_THREADS=$(RUN_THREADS) $(BIN)/python -m product_descgen.models prepare

run: models  ## install, prepare models, run the default pipeline on the demo catalogue
	OMP_NUM_THREADS=$(RUN_THREADS) $(BIN)/kedro run

test: $(STAMP)  ## install, then run the test suite
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest

viz: $(STAMP)  ## Kedro-Viz on http://127.0.0.1:4141
	$(BIN)/kedro viz run

viz-build: $(STAMP)  ## static Kedro-Viz site in build/
	$(BIN)/kedro viz build --include-previews

mlflow-ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000 (every run: params, metrics, report)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/kedro mlflow ui

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:  ## remove generated data (keeps the venv, raw data and converted models)
	find data/0[2-5]* data/07* data/08* -type f ! -name .gitkeep -delete
