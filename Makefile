# The two set-up commands: `make run` (the main job) and `make test` (lint, type check, tests).
# Both create .venv and install into it on first use; later calls reuse it (idempotent).
# `make test` = lint (ruff, the import-layer contract) + typecheck (mypy) + pytest.
PYTHON ?= python3
VENV ?= .venv
# torch and torchvision are pinned to the builds this project is tested with; override e.g.
# TORCH_SPEC="torch==2.13.0" for the numerics gate on another version.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.cnnbench-installed

.PHONY: setup run test lint typecheck pytest clean gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev,html]'
	touch $(STAMP)

# Runs every case, stores the run under reports/, prints the markdown report; exits non-zero if any failed.
run: setup
	@$(BIN)/cnnbench run cases/; status=$$?; \
	  $(BIN)/cnnbench report --format markdown; exit $$status

# The GPU check (README, "The GPU check"): sets up its own venv; OUT is where runs and reports go.
OUT ?= reports/gpu-check
gpu-check:
	tools/gpu-check $(OUT) $(GPU_CHECK_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest -q -n 2 tests

test: lint typecheck pytest

clean:
	rm -rf $(VENV) reports/runs reports/latest
