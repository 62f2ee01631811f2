# One command to a working setup and the main job (`make parity`), one for the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)

.PHONY: setup parity test lint clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is the CPU build this machine ships; the constraints keep pip off CUDA builds.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

parity: setup
	$(BIN)/pytest -k parity

lint: setup
	$(BIN)/ruff check parity tests conftest.py
	$(BIN)/ruff format --check parity tests conftest.py
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .parity-cache .pytest_cache .hypothesis
