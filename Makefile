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

# The whole suite twice: on SQLite, then on a throwaway PostgreSQL cluster
# that the run starts on loopback and removes (tests/pgcluster.py).
test: system-packages $(BIN)/clienttrack
	@echo "== the suite on SQLite"
	$(BIN)/python -m pytest -q
	@echo "== the suite on PostgreSQL (a throwaway cluster)"
	$(BIN)/python -m pytest -q --database=postgres

test-sqlite: system-packages $(BIN)/clienttrack
	$(BIN)/python -m pytest -q

test-postgres: system-packages $(BIN)/clienttrack
	$(BIN)/python -m pytest -q --database=postgres

# swaks, Chromium, LibreOffice Calc, PostgreSQL: apt-get installs what is
# missing (as root or through sudo), or this stops and names the command.
system-packages:
	@PYTHON=$(PYTHON) sh tests/system-packages

bench: $(BIN)/clienttrack
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data test-output
