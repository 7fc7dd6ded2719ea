# calcache: `make test` and `make demo` do all of their own set-up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test lint typecheck pytest demo migrate clean help

help:
	@echo "make test   - lint, type-check and run the test suite (DATABASE_URL picks the database)"
	@echo "make demo   - migrate the SQLite demo database and run the site on 127.0.0.1:8000"
	@echo "make clean  - remove the virtualenv and the demo database"

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "calcache needs Python 3.11 or newer; set PYTHON=python3.x")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

# The admin/admin superuser is created only for a person at a terminal or with
# DEMO=1, never by a script that happens to run `make demo` on a real server.
demo: migrate
	@if [ "$(DEMO)" = "1" ] || [ -t 0 ]; then $(BIN)/python manage.py calcache_demo --create-admin; \
	else $(BIN)/python manage.py calcache_demo; fi
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:8000

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm
