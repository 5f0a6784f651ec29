# The front door: `make run` starts the Procfile under procrun, `make test` runs every check CI runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint venv clean redis-server-installed soak

# The examples' own requirements come in too: their end-to-end tests run in `make test`.
EXAMPLE_REQUIREMENTS := $(wildcard examples/*/requirements.txt)

$(BIN)/procrun: pyproject.toml $(EXAMPLE_REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "procrun needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' $(addprefix -r ,$(EXAMPLE_REQUIREMENTS))
	@touch $@

venv: $(BIN)/procrun

# The whole reference system: the Procfile's web, worker and Beat with the development overlays
# on top (Procfile.dev: a throwaway redis-server on REDIS_PORT; procrun.dev.toml: the worker and
# Beat wait for it, text logs). REDIS_URL is set here, from REDIS_PORT, so that a REDIS_URL
# exported in your shell cannot point the app at another Redis (the real environment beats
# procrun.toml env). The venv's bin goes first on PATH for gunicorn and celery; exec makes procrun
# the child of make, so a signal to it reaches procrun itself.
REDIS_PORT ?= 6390
run: redis-server-installed venv
	PATH="$(abspath $(BIN)):$$PATH" REDIS_PORT="$(REDIS_PORT)" \
	  REDIS_URL="redis://127.0.0.1:$(REDIS_PORT)/0" \
	  exec $(BIN)/procrun start -f Procfile -f Procfile.dev --config procrun.toml --config procrun.dev.toml

redis-server-installed:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "make run needs redis-server, which is not installed. Install it with:" >&2; \
	  echo "  Debian/Ubuntu:  apt-get install redis-server" >&2; \
	  echo "  macOS:          brew install redis" >&2; \
	  exit 1; }

lint: venv
	$(BIN)/ruff check procrun tests app bench examples
	$(BIN)/ruff format --check procrun tests app bench examples
	$(BIN)/mypy

# Three workers: the tests mostly wait on real processes, so two cores carry three at once; the
# reference app's formations run one at a time (tests/conftest.py).
test: lint
	$(BIN)/pytest -n 3 --dist loadgroup

# The seeded fault soak (tests/reliability/soak.py) beyond CI's 20 cycles: the reference app and
# misbehaving children through random faults, a SIGTERM per cycle; a failure names its seed.
CYCLES ?= 100
SEED   ?= 20261201
soak: redis-server-installed venv
	SOAK_SEED=$(SEED) $(BIN)/python -m tests.reliability.soak $(CYCLES)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Benchmarks against honcho, supervisord and tini (issue 5; docs/benchmarks.md). bench/.venv holds
# the peers from PyPI and procrun from this tree, installed as users install it (a wheel, as in the
# Dockerfile, reinstalled on every run: an editable install adds its import hook to every start);
# tini comes from apt-get when it can (root).
BENCH_VENV := bench/.venv

$(BENCH_VENV)/.installed: bench/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "the benchmark needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet '.[watch]' -r bench/requirements.txt
	@touch $@

bench-procrun: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/pip install --quiet --no-deps --force-reinstall .
	@rm -rf build procrun.egg-info
	@sh bench/install-tini.sh

# Full run (about 10 minutes): rewrites docs/benchmarks.md.
bench: bench-procrun
	$(BENCH_VENV)/bin/python -m bench

# Every scenario end to end at tiny sizes, one repetition (under a minute); writes bench/.out/.
bench-smoke: bench-procrun
	$(BENCH_VENV)/bin/python -m bench --smoke

# The leak soak (issue 18; not in CI nor in `make bench`): a crash loop of RESTARTS restarts with
# a `procrun status` every 100 ms, procrun's RSS, fds and zombies read from /proc (100,000 took
# 6-20 minutes here, with the load). Writes bench/.out/soak.json; the next `make bench` reports it.
RESTARTS ?= 100000
bench-soak: bench-procrun
	$(BENCH_VENV)/bin/python -m bench.soak $(RESTARTS)

.PHONY: bench bench-smoke bench-procrun bench-soak
