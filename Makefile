# Rebound: `make run` runs the product with a demo, `make test` runs the tests.
# Both install what they need first (.venv with pip, Azurite with npm); a second run is fast.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
PYTEST_ARGS ?=

.PHONY: all install run test test-unit lint format mypy bench clean

all: lint test

install: $(STAMPS)/python $(STAMPS)/node

$(STAMPS)/python: requirements.txt requirements-dev.txt
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(STAMPS)/node: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

local.settings.json: | local.settings.sample.json
	cp local.settings.sample.json $@

run: install local.settings.json
	$(PY) -m devtools.launcher

# The portal browser tests drive Debian's Chromium through Playwright. Checked on every run (a
# `test -x`, so no stamp that could outlive the binary); installed with apt when missing.
CHROMIUM := /usr/bin/chromium

.PHONY: chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the portal browser tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

test: install chromium
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

# The fast layer: unit tests and the memory half of the contract suite, no Azurite (well under 10 s).
# Schemathesis and Hypothesis (the security tier's) are not loaded: their import alone costs ~2 s.
FAST_PYTEST := -p no:schemathesis -p no:hypothesispytest
test-unit: install
	$(PY) -m pytest $(FAST_PYTEST) tests/unit tests/contract -m "not integration" $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

mypy: install
	$(PY) -m mypy .

# Benchmarks (bench/README.md), writes bench/RESULTS.md: every benchmark, the engine alone and end to end
# through the host (devhost, ingest to delivery) among them; ~46 min on 2 cores for the jobs at 100,000
# failures, plus ~16 min through the host and up to 60 min for retry-delivered at 100,000.
# Quick iterations: make bench BENCH_ARGS="--only host --host-messages 1000"
BENCH_ARGS ?=
bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules $(STAMPS) .azurite .mypy_cache .ruff_cache .pytest_cache

# Infra: pycep parses every Bicep file, then checkov scans infra/ with no failed check (a skip needs
# a written reason in the template). checkov gets its own venv: its pins (packaging<24,
# pycep-parser==0.5.1) clash with the project's tools. It lives inside .venv so that everything
# already keeping .venv out (git, .funcignore, ruff, mypy) keeps it out too. Installed on first use.
CHECKOV_VENV := $(VENV)/checkov

.PHONY: infra-check clean-infra

$(STAMPS)/checkov: infra/requirements-checkov.txt
	@mkdir -p $(STAMPS)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	@touch $@

infra-check: $(STAMPS)/python $(STAMPS)/checkov
	$(PY) infra/check.py $(CHECKOV_VENV)/bin/checkov

clean: clean-infra
clean-infra:
	rm -rf $(CHECKOV_VENV) $(STAMPS)/checkov
