# Elexirion developer commands. `make run` and `make test` install first when
# .venv is missing or older than pyproject.toml, so a fresh clone needs only Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The main job: Ray, the supervision tree and the HTTP platform (API, OpenAI-compatible
# API, web chat, dashboard); prints the URL to open (with a one-time login key).
run: $(STAMP)
	$(BIN)/elexirion serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python scripts/bench_engine.py
	$(BIN)/python scripts/bench_providers.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
