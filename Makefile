# One set of tools, run the same way by people and CI.
# `make demo` and `make test` set up everything on a fresh machine with only Python 3.11+.

PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml sandbox/pyproject.toml | cksum | cut -d' ' -f1)
UV_VERSION := 0.13.9
PYTEST ?= $(BIN)/pytest
PYTEST_ARGS ?=

.PHONY: install browser demo test test-unit test-integration test-e2e lint format bench clean help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml sandbox/pyproject.toml
	@test -n "$(PYTHON)" || { echo "tieout needs Python 3.11 or newer on PATH"; exit 1; }
	@echo "setting up $(VENV) with $(PYTHON) from requirements.lock ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . -e sandbox
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP) ## Create .venv with the locked dependencies, tieout and the sandbox (reused when unchanged)

browser: ## Debian's chromium and chromium-driver, for the UI tests (installs them if missing)
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		echo "installing chromium and chromium-driver for the browser tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# requirements.lock (make install) holds tieout, its dev tools and the sandbox; the two images'
# locks hold only what each installs, pinned as in the first: requirements-runtime.lock tieout's
# runtime (Dockerfile), sandbox/requirements.lock the sandbox's (sandbox/Dockerfile).
lock: ## Re-resolve the locks (with hashes): dev tools and sandbox, then each image's
	$(BIN)/uv pip compile pyproject.toml sandbox/pyproject.toml --extra dev --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -c requirements.lock -o requirements-runtime.lock
	$(BIN)/uv pip compile sandbox/pyproject.toml --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -c requirements.lock -o sandbox/requirements.lock

demo: install ## The main job: sandbox, the nightly DAG twice, the drift report
	$(BIN)/tieout demo

lint: install ## ruff, mypy, sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if ls dbt_project/models >/dev/null 2>&1; then $(BIN)/sqlfluff lint dbt_project/models --disable-progress-bar --processes 2; fi

format: install ## Apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install lint browser ## Lint, then unit, integration and e2e tests
	$(PYTEST) tests $(PYTEST_ARGS)

test-unit: install ## Tests that need no database
	$(PYTEST) tests/unit $(PYTEST_ARGS)

test-integration: install ## Tests against a real PostgreSQL (TIEOUT_TEST_DATABASE_URL or embedded)
	$(PYTEST) tests/integration $(PYTEST_ARGS)

test-e2e: install browser ## The whole pipeline, Airflow and the browser
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

clean: ## Remove build output (keeps .tieout state)
	rm -rf .pytest_cache .mypy_cache .ruff_cache dbt_project/target dbt_project/logs test-output
