# calcache: `make test` and `make demo` do all of their own set-up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test test-django6 test-live system-packages lint typecheck pytest demo migrate bench clean help

help:
	@echo "make test   - lint, type-check and run the test suite (DATABASE_URL picks the database)"
	@echo "make test-django6 - the test suite on the newest Django 6 (needs Python 3.12+: DJANGO6_PYTHON)"
	@echo "make test-live - the live suite: the emulator, and the real Google with CALCACHE_LIVE_GOOGLE_TOKEN"
	@echo "make demo   - the demo: Google emulator, demo users, and the site on 127.0.0.1:8000"
	@echo "make bench  - SQL cache vs legacy JSON cache: reads, sync writes, cleanup (BENCH_ARGS=\"--quick --sqlite\")"
	@echo "make clean  - remove the virtualenv and the demo database"

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "calcache needs Python 3.11 or newer; set PYTHON=python3.x")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,emulator,celery,postgres,metrics]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# .ci/system-packages: Chromium and gettext for the browser and translation tests,
# installed when missing (as root with apt-get), else it stops with the command to run.
test: system-packages $(STAMP) lint typecheck pytest

system-packages:
	@bash .ci/system-packages

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The live suite (docs/live-tests.md): the emulator always, the real Google when
# CALCACHE_LIVE_GOOGLE_TOKEN names an authorized-user JSON file. Never part of CI.
test-live: $(STAMP)
	CALCACHE_LIVE_GOOGLE_TOKEN="$(CALCACHE_LIVE_GOOGLE_TOKEN)" $(BIN)/python -m pytest tests/live -m live -v $(PYTEST_ARGS)

# The same suite on Django 6.x, which needs Python 3.12+: the first of python3.13,
# python3.12 and pyenv's 3.13/3.12 that runs, or DJANGO6_PYTHON. Lint and mypy run on
# the main venv only (django-stubs follows Django 5.2 there).
DJANGO6_PYTHON ?= $(shell for p in python3.13 python3.12 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV6 := .venv-django6
STAMP6 := $(VENV6)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

$(STAMP6):
	@test -n "$(DJANGO6_PYTHON)" || { echo "Django 6 needs Python 3.12 or newer: none found; set DJANGO6_PYTHON=/path/to/python3.12" >&2; exit 1; }
	@test -x $(VENV6)/bin/python || $(DJANGO6_PYTHON) -m venv $(VENV6)
	$(VENV6)/bin/python -m pip install --quiet --upgrade pip
	$(VENV6)/bin/python -m pip install --quiet -e '.[test,emulator,celery,postgres,metrics]' 'Django>=6.1,<6.2'
	@rm -f $(VENV6)/.installed-*
	@touch $@

test-django6: $(STAMP6)
	$(VENV6)/bin/python -c 'import django; print("Django", django.get_version())'
	$(VENV6)/bin/python -m pytest $(PYTEST_ARGS)

# Fills its own database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/calcache_bench,
# or --sqlite) and writes bench/results/<date>.json; asserts nothing about timings.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

# The admin/admin superuser is created only for a person at a terminal or with
# DEMO=1, never by a script that happens to run `make demo` on a real server.
# project/demo.py starts the seeded Google emulator, migrates, runs calcache_demo (demo
# users, first sync, stage 3 for the demo team), then runserver; Ctrl-C stops both servers.
# It owns the demo's settings (DEBUG, the emulator's URLs and OAuth client, a database
# cache) and keeps them in .env.demo while it runs, so manage.py in a second shell uses them.
demo: $(STAMP)
	@if [ "$(DEMO)" = "1" ] || [ -t 0 ]; then admin=--create-admin; else admin=; fi; \
	exec $(BIN)/python project/demo.py $$admin

clean:
	rm -rf $(VENV) $(VENV6) db.sqlite3 db.sqlite3-wal db.sqlite3-shm
