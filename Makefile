# djq — developer commands. Everything a fresh machine needs is set up by these targets.
#
#   make run     the demo: SQLite, admin at http://127.0.0.1:$(PORT)/admin/, a worker, a task stream
#   make test    lint + checks + the test suite on PostgreSQL (throwaway cluster) and on SQLite
#   make bench   the benchmarks on a throwaway durable PostgreSQL (fsync, synchronous_commit on;
#                BIG=1: also 1,000,000 waiting jobs and the memory over their drain, ~30 min more)
#   make chaos   the fault campaign (docs/chaos.md): kill -9, database crashes, partitions ...
#   make lint    ruff (lint, format --check) and mypy (strict on store, calling, running, worker, roles, cli)
#   make clean   remove the venv and the SQLite files
#
# Variables: PYTEST_ARGS="-k foo -x" (passed to both pytest passes), BENCH_ARGS, ADMIN_BENCH_ARGS
# (e.g. "--rows 200000"), BIG=1 (make bench: also 1,000,000 waiting jobs and the worker's memory
# over their drain: much longer), CHAOS_ARGS (e.g. "--short", "--only kill9"), PORT (make run).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Each pass its own temporary tree (the passes run at the same time).
BASETEMP ?= $(or $(TMPDIR),/tmp)/djq-pytest-$(shell printf %s "$(CURDIR)" | cksum | cut -d" " -f1)
BENCH_ARGS ?=
BIG ?=
ADMIN_BENCH_ARGS ?=
CHAOS_ARGS ?=
PORT ?= 8000
export PORT

# Browser tests (Playwright) drive the system Chromium; install it only when a test uses it.
NEEDS_BROWSER := $(shell grep -rlsq playwright tests && echo yes)

.PHONY: help venv test test-pg test-sqlite run bench chaos lint clean browser pgbouncer

help:
	@sed -n '3,10p' Makefile | sed 's/^# \{0,1\}//'

# The venv is (re)built with the newest Python >= 3.12 found by scripts/find-python; pip
# re-runs only when pyproject.toml changes (or the venv's interpreter is gone).
# (djq/__init__.py is a prerequisite: an editable install made before it existed maps djq as a
# namespace package, which Django rejects.)
$(STAMP): pyproject.toml scripts/find-python $(wildcard djq/__init__.py)
	@if ! $(PY) -c 'import sys' >/dev/null 2>&1; then \
		py=$$(scripts/find-python); \
		echo "creating $(VENV) with $$py ($$($$py -V 2>&1))"; \
		rm -rf $(VENV); \
		"$$py" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet -e '.[test]'
	@$(PY) -c 'import sys, django; print(f"venv ready: Python {sys.version.split()[0]}, Django {django.get_version()}")'
	@touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	env -u DATABASE_URL $(VENV)/bin/mypy

browser:
	@scripts/ensure-chromium >/dev/null

# tests/system/test_pgbouncer.py runs workers through a PgBouncer it starts itself (Debian's package).
pgbouncer:
	@scripts/ensure-pgbouncer >/dev/null

# The whole suite: both database passes always run, side by side (most tests wait on worker
# processes, not on the CPU: the two passes together take little longer than one); the target
# fails if either does (pytest's exit 5, "no tests collected", is a failure too). Each pass's
# output is printed whole when it ends. Tests without database access (tests/unit, parsing,
# docs checks ...) run on the SQLite pass only, the shorter one (DJQ_TEST_DB_AGNOSTIC_ON, see
# tests/conftest.py); `make test-pg` or `make test-sqlite` alone runs every test.
test: venv $(if $(NEEDS_BROWSER),browser) pgbouncer
	$(MAKE) lint
	env -u DATABASE_URL $(PY) manage.py check
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run
	DJQ_TEST_DB_AGNOSTIC_ON=sqlite scripts/pg-throwaway run $(MAKE) -k -j2 --output-sync=target \
		test-pg test-sqlite

# One pass on PostgreSQL; needs DATABASE_URL=postgres://... (as set by scripts/pg-throwaway run).
test-pg: venv
	@case "$${DATABASE_URL:-}" in postgres*) ;; \
		*) echo "test-pg needs DATABASE_URL=postgres://...; use: scripts/pg-throwaway run make test-pg" >&2; exit 2;; esac
	@echo "=== pytest on PostgreSQL ($$DATABASE_URL) ==="
	@mkdir -p $(BASETEMP)
	$(PY) -m pytest --basetemp=$(BASETEMP)/pg $(PYTEST_ARGS)

# One pass on SQLite (the test database is a file so that worker subprocesses can share it).
test-sqlite: venv
	@echo "=== pytest on SQLite ==="
	@mkdir -p $(BASETEMP)
	env -u DATABASE_URL -u DJQ_PG_STATE -u DJQ_PG_CTL -u DJQ_PG_DATA -u DJQ_PG_SCRIPT \
		$(PY) -m pytest --basetemp=$(BASETEMP)/sqlite $(PYTEST_ARGS)

run: venv
	env -u DATABASE_URL $(PY) manage.py migrate --noinput
	env -u DATABASE_URL $(PY) scripts/run_demo.py

bench: venv
	DJQ_PG_DURABLE=1 scripts/pg-throwaway run $(PY) -m benchmarks.run $(if $(BIG),--big 1000000) $(BENCH_ARGS)
	scripts/pg-throwaway run $(PY) -m benchmarks.admin $(ADMIN_BENCH_ARGS)
	scripts/pg-throwaway run $(PY) -m benchmarks.pending

# Its own durable throwaway PostgreSQL (python -m chaos starts it) and network namespaces (root).
chaos: venv
	$(PY) -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info artifacts .ruff_cache .pytest_cache
	rm -f *.sqlite3 *.sqlite3-* .*.sqlite3 .*.sqlite3-*
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
