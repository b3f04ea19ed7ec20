# Two commands do all the set-up from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo needs numpy and matplotlib (its report) only.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[report]'
	touch $@

# torch==2.13.0 first: it is the CPU build on local disk; the dev extra's
# unpinned torch>=2.3 is then already satisfied and pulls nothing.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/rnnlab demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Each script prints its table; with `--write` it rewrites its own BENCHMARKS.md section
# (the command is in that section's "Regenerate" line). `make bench` only prints.
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/step.py
	$(BIN)/python benchmarks/tasks.py
	$(BIN)/python benchmarks/diagnostics.py
	$(BIN)/python benchmarks/sweep.py
	$(BIN)/python benchmarks/torch_monitor.py

clean:
	rm -rf $(VENV)
