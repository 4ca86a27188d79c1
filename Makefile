# BONSAI task runner. `make demo` and `make test` set themselves up on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow test-all lint format bench demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -m "not slow and not browser" -q

test-slow: setup
	$(BIN)/python -m pytest -m "slow or browser" -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: setup
	$(BIN)/python bench/curate.py
	$(BIN)/python bench/check.py
	$(BIN)/python bench/annotate_accuracy.py
	$(BIN)/python bench/teach.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/generate.py --loops 12
	$(BIN)/python bench/context_decoding.py
	$(BIN)/python bench/chat_ready.py
	$(BIN)/python bench/web.py

demo: setup
	$(BIN)/bonsai demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
