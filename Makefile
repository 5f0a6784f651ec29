# The front door: `make run` starts the Procfile under procrun, `make test` runs every check CI runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint venv clean redis-server-installed

$(BIN)/procrun: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "procrun needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/procrun

# The whole reference system (Procfile.dev): web, worker, Beat and a throwaway redis-server on
# REDIS_PORT (default 6390). The venv's bin goes first on PATH for gunicorn and celery; exec makes
# procrun the child of make, so a signal to it reaches procrun itself.
run: redis-server-installed venv
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/procrun start -f Procfile.dev

redis-server-installed:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "make run needs redis-server, which is not installed. Install it with:" >&2; \
	  echo "  Debian/Ubuntu:  apt-get install redis-server" >&2; \
	  echo "  macOS:          brew install redis" >&2; \
	  exit 1; }

lint: venv
	$(BIN)/ruff check procrun tests app
	$(BIN)/ruff format --check procrun tests app
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
