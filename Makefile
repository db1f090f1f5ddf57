# The README's quick start: `make demo` and `make test` on a fresh machine.
# Both create .venv from the lock file first; nothing needs installing by hand.

PYTHON ?= python3
# uv from PATH, else bootstrapped with pip into .tools/ (the only thing pip installs).
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
# Compile bytecode at install time: some machines set PYTHONDONTWRITEBYTECODE, and
# importing the stack without .pyc files costs seconds per process.
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: env demo test deploy-tools check lint format typecheck services-start services-stop clean

env: $(VENV)/.installed

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet 'uv>=0.9,<1'

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

demo: env
	scripts/demo

test: env deploy-tools
	scripts/services start >/dev/null
	scripts/run-tests; status=$$?; scripts/services stop; exit $$status

# What tests/deploy uses, in .tools/: helm, built from the Go module proxy (minutes, once),
# and the Compose Specification's schema.
deploy-tools:
	scripts/install-helm >/dev/null
	scripts/fetch-compose-schema >/dev/null

check: env lint typecheck

lint: env
	$(BIN)/ruff check src tests soak
	$(BIN)/ruff format --check src tests soak
	$(BIN)/lint-imports --no-cache

format: env
	$(BIN)/ruff format src tests soak
	$(BIN)/ruff check --fix src tests soak

typecheck: env
	$(BIN)/mypy

services-start:
	scripts/services start

services-stop:
	scripts/services stop

clean:
	scripts/services stop
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache

# Soak test: 30 min of mixed load on `slipway up`, checking that no process leaks memory
# or file descriptors and no write is lost (SLIPWAY_SOAK_SECONDS to change the length;
# the report's path is printed). Not part of `make test`: soak/ is outside its testpaths.
.PHONY: soak
soak: env
	scripts/services start >/dev/null
	set -a; . .services/env; set +a; $(BIN)/pytest soak -m soak -p no:randomly -s; \
	status=$$?; scripts/services stop; exit $$status

# Feature-store benchmarks against Feast (~20 min; not part of `make test`). Writes
# BENCHMARKS.md; see bench/run.py.
.PHONY: bench
bench: env
	$(BIN)/python bench/run.py
