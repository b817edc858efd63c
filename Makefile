# The two commands of the README:  `make demo`  and  `make test`.
# Each sets up .venv (scripts/setup.sh, idempotent) and then runs its job.
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-output
CHECKED := hybridrad tests benchmarks examples

.PHONY: setup demo test lint typecheck

setup:
	./scripts/setup.sh

demo: setup
	$(BIN)/hybridrad demo $(DEMO_OUT) --overwrite

lint: setup
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)

typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest
