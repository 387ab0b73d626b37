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
	$(PY) -m devhost.launcher

test: install
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

mypy: install
	$(PY) -m mypy .

clean:
	rm -rf $(VENV) node_modules $(STAMPS) .azurite .mypy_cache .ruff_cache .pytest_cache
