# seg-pipeline: `make demo` (set up, generate 30 days, run the pipeline), `make test`, `make ui`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export SEG_DATA_DIR ?= $(CURDIR)/data
KEY_FILE := $(SEG_DATA_DIR)/.pseudonymisation_key
# The vault's key-encryption key (docs/privacy.md): random, kept out of git and out of every
# database; `make` passes it as SEG_VAULT_KEY.
VAULT_KEY_FILE := $(SEG_DATA_DIR)/.vault_key
KEYS := SEG_PSEUDONYMISATION_KEY=$$(cat $(KEY_FILE)) SEG_VAULT_KEY=$$(cat $(VAULT_KEY_FILE))
DEMO_CUSTOMERS ?= 5000
DEMO_DAYS ?= 30
# Last day of the demo (YYYY-MM-DD; default yesterday): the same seed and dates give the same output.
DEMO_END ?=
UI_PORT ?= 3000
# The browser of the UI test (tests/ui): Debian's package, never one Playwright downloads.
CHROMIUM ?= /usr/bin/chromium
export SEG_CHROMIUM := $(CHROMIUM)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup browser demo simulate test test-privacy lint format ui bench bench-features bench-segmentation bench-day bench-predictive clean

# The environment is installed from the lock file (exact versions) with uv; the stamp file
# re-runs the install when the lock file or pyproject changes. The lock file holds the extras
# too (`dev`, which includes `generator`: Faker, pytest, ruff), so demo, tests and benchmarks work;
# a production install is `pip install seg-pipeline` without extras. --compile-bytecode: uv
# writes no .pyc files by default, and where PYTHONDONTWRITEBYTECODE is set (CI images) every
# process would compile Dagster, Great Expectations and scikit-learn from source again: about
# 12 s more per process (each test worker, CLI run and run worker).
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

# Debian's Chromium for the UI test, installed when missing (as root: CI and containers);
# anyone else is told how. Only `make test` needs it.
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the UI test (tests/ui)"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "$(CHROMIUM) is missing: the UI test needs Debian's chromium." >&2; \
		echo "Install it (sudo apt-get install -y chromium) or set CHROMIUM=/path/to/chromium." >&2; \
		exit 1; \
	fi

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Random keys, each created once and kept out of git: the keyed hash's of personal data, and the
# vault's key-encryption key (32 random bytes as hex).
$(KEY_FILE) $(VAULT_KEY_FILE):
	mkdir -p $(SEG_DATA_DIR)
	umask 077; $(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@

demo: setup $(KEY_FILE) $(VAULT_KEY_FILE)
	$(KEYS) $(BIN)/python -m seg_pipeline.demo \
		--days $(DEMO_DAYS) --customers $(DEMO_CUSTOMERS) $(if $(DEMO_END),--end $(DEMO_END))

# The closed loop (docs/activation.md): history as one backfill, then SIM_DAYS days one by one
# (generate the day from the pipeline's exports of the day before, run, export), following
# playbooks/simulation.yaml. Its own data folder, so the demo's stays:
# SEG_DATA_DIR=data/simulation SEG_PLAYBOOK=playbooks/simulation.yaml make ui shows it.
# About half an hour on 2 cores.
SIM_CUSTOMERS ?= 2000
SIM_HISTORY_DAYS ?= 42
SIM_DAYS ?= 21
simulate: setup $(KEY_FILE) $(VAULT_KEY_FILE)
	SEG_DATA_DIR=$(SEG_DATA_DIR)/simulation SEG_PLAYBOOK=$(CURDIR)/playbooks/simulation.yaml \
		$(KEYS) \
		$(BIN)/python -m seg_pipeline.simulate --customers $(SIM_CUSTOMERS) \
		--history-days $(SIM_HISTORY_DAYS) --days $(SIM_DAYS) --fresh

test: setup browser lint
	$(BIN)/pytest -q -n auto --dist worksteal

# The privacy review in one command (docs/privacy.md): vault and crypto-shredding; erasure from
# tables, files and model artifacts with its verification; retention; consent; hostile input;
# secrets kept out of logs. Part of `make test` too.
test-privacy: setup
	$(BIN)/pytest -q -n auto --dist worksteal tests/privacy tests/security tests/activation/test_consent.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/sqlfluff fix sql

ui: setup $(KEY_FILE) $(VAULT_KEY_FILE)
	$(KEYS) $(BIN)/dg dev --port $(UI_PORT)

# One day at 100,000 customers / 1,000,000 web events: load + staging, then the quality checks.
bench: setup
	$(BIN)/python -m benchmarks.bench_ingest
	$(BIN)/python -m benchmarks.bench_quality

# customer_features and CLV for one day at 1,000,000 customers with a year of history
# (builds a ~6 GB synthetic warehouse in a temporary folder first; takes several minutes).
bench-features: setup
	$(BIN)/python -m benchmarks.bench_features

# The segmentation assets (model refit with automatic K, segments, migrations, profiles) for one
# day at 1,000,000 customers resampled from a generated month (builds ~1 GB under
# $(SEG_DATA_DIR)/bench_segmentation first; about 3 minutes). Not part of `bench`.
bench-segmentation: setup
	SEG_PSEUDONYMISATION_KEY=$${SEG_PSEUDONYMISATION_KEY:-bench-key} \
		$(BIN)/python -m benchmarks.bench_segmentation \
		--data-dir $(SEG_DATA_DIR)/bench_segmentation

# The whole daily job for the second of two days at 1,000,000 customers / 10,000,000 web events,
# one CLI run as a user runs it, with the raw DuckDB floor beside it (generates ~6 GB under
# $(SEG_DATA_DIR)/bench_day once; then a few minutes a run). Not part of `bench`.
bench-day: setup
	$(BIN)/python -m benchmarks.bench_day --data-dir $(SEG_DATA_DIR)/bench_day

# Train the churn and purchase models on a default-sized sample and score a day at 1,000,000
# customers (reasons for the top decile), on bench-day's first day (run bench-day once first).
bench-predictive: setup
	$(BIN)/python -m benchmarks.bench_predictive --data-dir $(SEG_DATA_DIR)/bench_day

clean:
	rm -rf $(SEG_DATA_DIR) $(DAGSTER_HOME)
