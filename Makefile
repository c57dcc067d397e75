PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test bench clean

$(BIN)/clienttrack: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

serve: $(BIN)/clienttrack
	$(BIN)/clienttrack serve --demo

test: $(BIN)/clienttrack
	$(BIN)/python -m pytest -q

bench: $(BIN)/clienttrack
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data test-output
