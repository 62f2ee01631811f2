# One command to a working setup and the main job (`make parity`), one for the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEB := parity/measure/web
JS := parity/measure/kokoro-js
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt $(WEB)/package-lock.json $(JS)/package-lock.json | sha256sum | cut -c1-12)

.PHONY: setup parity test bench lint clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is the CPU build this machine ships; the constraints keep pip off CUDA builds.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# onnxruntime-web from its lockfile, for the WebAssembly speed gates, and kokoro-js, the
	# browser client, whose package ships the official voice packs. --ignore-scripts: kokoro-js
	# pulls onnxruntime-node, whose install script downloads; the WebAssembly path never uses it.
	if command -v npm >/dev/null; then npm ci --prefix $(WEB) --no-audit --no-fund --loglevel=error && \
	npm ci --prefix $(JS) --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: make test will stop on the gates that need Node.js; PARITY_WITHOUT=node make test runs without them"; fi
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
	$(BIN)/pytest --durations=15
	# The float32 parity gate again on the trained weights (tox -e recovered runs them all).
	$(BIN)/pytest --parity-weights=recovered -k "parity and sentence and fp32"

# Latency on CPU and WebAssembly, saved under .benchmarks/ for --benchmark-compare.
bench: setup
	$(BIN)/pytest -k bench --benchmark-autosave

clean:
	rm -rf $(VENV) $(WEB)/node_modules $(JS)/node_modules .parity-cache .pytest_cache .hypothesis
