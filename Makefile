# The commands of the README:  `make demo`,  `make test`  and  `make test-slow`.
# Each sets up .venv (scripts/setup.sh, idempotent) and then runs its job.
# `make test`: lint, type check and the fast tests (pytest leaves out `slow` by default,
# see [tool.pytest.ini_options]); `make test-slow`: only the `slow` tests (minutes each).
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-output
CHECKED := hybridrad tests benchmarks examples

.PHONY: setup demo test test-slow lint typecheck docs

setup:
	./scripts/setup.sh

demo: setup
	$(BIN)/hybridrad run demo --out $(DEMO_OUT)

lint: setup
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)

typecheck: setup
	$(BIN)/mypy

docs: setup
	$(BIN)/mkdocs build --strict --site-dir site

test: lint typecheck docs
	$(BIN)/pytest

test-slow: setup
	$(BIN)/pytest -m slow
