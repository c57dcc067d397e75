PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test test-sqlite test-postgres system-packages bench clean

$(BIN)/clienttrack: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

serve: $(BIN)/clienttrack
	$(BIN)/clienttrack serve --demo

# pytest-xdist: `auto` is two workers a CPU, as half a worker's time is
# waiting (tests/conftest.py); `make test WORKERS=1` for one process.
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS)

# Bytecode caches (__pycache__/, which git ignores) even where the
# environment sets PYTHONDONTWRITEBYTECODE (many container images do):
# without them every worker compiles and assertion-rewrites the test modules
# again (collection: ~8.5 s of CPU a worker instead of ~3 s) and every
# `clienttrack` process the tests start compiles the gateway again. Empty
# is unset to Python.
test test-sqlite test-postgres: export PYTHONDONTWRITEBYTECODE :=

# The whole suite on SQLite, then the tests that use a database again on a
# throwaway PostgreSQL cluster that each worker starts on loopback and
# removes (tests/pgcluster.py; tests marked no_database are left out).
test: system-packages $(BIN)/clienttrack
	@echo "== the suite on SQLite"
	$(PYTEST)
	@echo "== the tests that use a database, on PostgreSQL (a throwaway cluster)"
	$(PYTEST) --database=postgres

test-sqlite: system-packages $(BIN)/clienttrack
	$(PYTEST)

test-postgres: system-packages $(BIN)/clienttrack
	$(PYTEST) --database=postgres

# swaks, Chromium, LibreOffice Calc, PostgreSQL: apt-get installs what is
# missing (as root or through sudo), or this stops and names the command.
system-packages:
	@PYTHON=$(PYTHON) sh tests/system-packages

bench: $(BIN)/clienttrack
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data test-output
