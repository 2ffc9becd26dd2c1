# qarion-etl developer commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help run test test-fast fuzz lint fmt bench check-fresh services browser clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "qarion-etl needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-runtime: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-runtime
	$(BIN)/python -m pip install -q -e '.[dev,airflow]'
	@touch $@

run: $(VENV)/.installed-runtime ## Install into .venv and run the example flow on DuckDB
	$(BIN)/qarion-etl validate
	$(BIN)/qarion-etl graph data_pipeline
	$(BIN)/qarion-etl run flows/data_pipeline.toml
	@printf 'avg_value pulled from XCom: '
	@$(BIN)/qarion-etl xcom get calculate_stats --key avg_value --flow data_pipeline
	@echo 'qarion-etl is installed in $(VENV): "source $(VENV)/bin/activate" puts it on PATH in this shell.'

test: $(VENV)/.installed-dev services browser ## Install test tools and run every test (real PostgreSQL, MariaDB, S3 server, Airflow, chromium)
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-dev ## Tests without PostgreSQL, MariaDB, S3, Airflow, a browser or slow ones
	$(BIN)/python -m pytest -m 'not postgres and not mariadb and not s3 and not airflow and not browser and not slow'

fuzz: $(VENV)/.installed-dev ## The grammar fuzz test at 10,000 cases and the run property test at 200 (slow)
	QARION_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest tests/reliability/test_grammar_fuzz.py
	QARION_PROPERTY_EXAMPLES=200 $(BIN)/python -m pytest tests/reliability/test_run_invariants.py

lint: $(VENV)/.installed-dev ## ruff check, format check and strict mypy on qarion_etl
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(VENV)/.installed-dev ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev services ## Benchmarks: ratios against the raw engines
	$(BIN)/python -m benchmarks

services: ## Start PostgreSQL and MariaDB if they are down (needs root)
	@bash .ci/services || true

browser: ## Install Debian's chromium for the browser tests if it is missing (needs root)
	@bash .ci/browser || true

check-fresh: ## Clone to a temporary folder and run make test there
	rm -rf /tmp/qarion-etl-fresh && git clone -q . /tmp/qarion-etl-fresh && $(MAKE) -C /tmp/qarion-etl-fresh test

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) .qarion warehouse.duckdb warehouse.duckdb.wal .pytest_cache .ruff_cache
