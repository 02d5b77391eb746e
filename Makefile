# Two entry points: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-test install-bench test lint serve build openapi bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

install-bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check .

serve: install
	$(BIN)/snippets serve --bind 127.0.0.1:8000

openapi: install
	$(BIN)/snippets openapi

# Benchmarks and the retrieval-quality evaluation read ../shared/corpus (never copied here).
bench: install-bench
	$(BIN)/python bench/perf.py

eval: install-bench
	$(BIN)/python bench/eval.py

build: install
	$(BIN)/snippets build

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
