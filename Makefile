# One-command set-up: `make run` (install + models + default pipeline), `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# The export toolchain: OpenVINO's exporter (optimum-intel pins transformers <5.6, so it has its
# own venv) and llama.cpp's LoRA-to-GGUF converter, taken from the llama-cpp-python sdist.
EXPORT_VENV := .venv-export
EXPORT_STAMP := $(EXPORT_VENV)/.installed
LLAMA_CPP_SDIST := llama-cpp-python==0.3.36

# The project runs offline and quietly: no telemetry, no model hub.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# CPU threads are one setting, runtime.threads in conf/base/parameters.yml (tests: tests/conftest.py).

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

$(EXPORT_STAMP): requirements/export.txt | $(STAMP)
	test -x $(EXPORT_VENV)/bin/python || $(BIN)/uv venv --quiet --python $(PYTHON) $(EXPORT_VENV)
	$(BIN)/uv pip install --python $(EXPORT_VENV)/bin/python -r requirements/export.txt
	rm -rf $(EXPORT_VENV)/sdist $(EXPORT_VENV)/llama.cpp && mkdir -p $(EXPORT_VENV)/sdist
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
		$(LLAMA_CPP_SDIST) -d $(EXPORT_VENV)/sdist
	tar -xzf $(EXPORT_VENV)/sdist/*.tar.gz -C $(EXPORT_VENV)/sdist --wildcards \
		'*/vendor/llama.cpp/convert_*.py' '*/vendor/llama.cpp/conversion/*' \
		'*/vendor/llama.cpp/gguf-py/*' '*/vendor/llama.cpp/LICENSE'
	mv $(EXPORT_VENV)/sdist/*/vendor/llama.cpp $(EXPORT_VENV)/llama.cpp && rm -rf $(EXPORT_VENV)/sdist
	touch $@

install: $(STAMP) $(EXPORT_STAMP)  ## create .venv and .venv-export (if missing), install pinned deps

system-deps:  ## Debian packages the browser tests drive: chromium and its driver (needs root)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver present"; \
	else \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	fi

models: $(STAMP) $(EXPORT_STAMP)  ## convert the configured teacher and student to model dirs (cached)
	$(BIN)/python -m product_descgen.models prepare

run: models  ## install, prepare models, run the default pipeline on the demo catalogue
	$(BIN)/kedro run

# Two test processes: each test runs on one thread, so a second process uses the second core;
# a process that runs out of tests takes queued ones from the other (worksteal).
TEST_WORKERS ?= 2

test: $(STAMP) $(EXPORT_STAMP)  ## install, then run the test suite
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

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

# In every environment's data root. Kept: the call stores (answers paid for, reused only for the
# same prompt, model and settings) and the key that unblinds ratings of sheets already sent.
clean:  ## remove generated data (keeps the venv, raw data, converted models, paid answers, rating key)
	find data \( -path '*/0[2-5]_*/*' -o -path '*/07_*/*' -o -path '*/08_*/*' \) -type f \
		! -name .gitkeep ! -name '*_calls.sqlite*' ! -name human_eval_key.csv -delete
