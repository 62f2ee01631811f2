# One command to a working setup and the main job (`make parity`), one for the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEB := parity/measure/web
JS := parity/measure/kokoro-js
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt $(WEB)/package-lock.json $(JS)/package-lock.json | sha256sum | cut -c1-12)

.PHONY: setup parity test bench lint clean webgpu

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is the CPU build this machine ships; the constraints keep pip off CUDA builds.
	# --no-compile: byte-compiling every file (torch: thousands) took a clean install from 47 s
	# to 79 s here (2026-12-06); Python compiles what it imports, when it imports it.
	$(BIN)/pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
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
	$(BIN)/pytest --durations=40
	# The float32 parity gate again on the trained weights (tox -e recovered runs them all).
	$(BIN)/pytest --parity-weights=recovered -k "parity and sentence and fp32"
	# The staged check of the trained float32 and float16 files on WebGPU (docs/webgpu.md), on
	# the shortest held-out request (held-yes in af_heart): float32 in Chromium (SwiftShader),
	# float16 (the file `parity fp16 --webgpu` makes) on Dawn over Mesa's lavapipe, which has
	# the shader-f16 SwiftShader lacks. Each skips, with the line saying what is missing,
	# without Chromium or without a Vulkan driver Dawn accepts.
	$(BIN)/pytest --parity-weights=recovered --parity-provider=webgpu \
	  -k "parity and staged and shortest_held_out and fp32"
	$(BIN)/pytest --parity-weights=recovered --parity-provider=webgpu --parity-webgpu-adapter=dawn \
	  -k "parity and staged and shortest_held_out and fp16"

# Latency on CPU and WebAssembly, saved under .benchmarks/ for --benchmark-compare.
bench: setup
	$(BIN)/pytest -k bench --benchmark-autosave

# The table of docs/webgpu.md: the trained files (float32, float16, the shipped int8 recipe, the
# registry's int8 variants and the published int8) on cpu, wasm and webgpu in headless
# Chromium, on the shortest held-out sentence (the software adapter takes minutes per request;
# WEBGPU_REQUESTS takes more). Float
# files get the staged check, int8 ones the four-axis verdict against fp32.onnx on the CPU, and
# every file the module walk. Each run's JSON, text and stderr and the table go to $(WEBGPU_RUNS).
WEBGPU_RUNS ?= .parity-webgpu
WEBGPU_REQUESTS ?= held-yes
WEBGPU_VARIANTS ?= dynamic-uint8 qdq qoperator dynamic-int8-per-channel
WEBGPU_FILES ?= fp32 fp16 fp16-webgpu int8-shipped published $(WEBGPU_VARIANTS)
# The backends of the first columns; the Dawn column always runs. WEBGPU_PROVIDERS="cpu wasm"
# leaves out Chromium's SwiftShader, which takes minutes per run.
WEBGPU_PROVIDERS ?= cpu wasm webgpu
# One run of the table: $(call webgpu_run,FILE,PROVIDER,RUN NAME,EXTRA FLAGS).
define webgpu_run
run="$(WEBGPU_RUNS)/$(3)"; rm -f "$$run".*; \
set -- $(WEBGPU_RUNS)/$(1).onnx --checkpoint $(WEBGPU_RUNS)/trained.pth \
  --reference $(WEBGPU_RUNS)/fp32.onnx --provider $(2) --requests $(WEBGPU_REQUESTS) $(4); \
echo "webgpu table: $(3)"; \
$(BIN)/parity compare "$$@" --json "$$run.json" >"$$run.txt" 2>"$$run.err" || true; \
[ -f "$$run.json" ] && { $(BIN)/parity compare "$$@" --intermediate \
  --json "$$run.walk.json" >>"$$run.txt" 2>>"$$run.err" || true; }
endef
webgpu: setup
	mkdir -p $(WEBGPU_RUNS)
	$(BIN)/parity weights recover -o $(WEBGPU_RUNS)/trained.pth --onnx-fp32 $(WEBGPU_RUNS)/fp32.onnx --int8 $(WEBGPU_RUNS)/published.onnx
	# Kokoro's float32-kept nodes (under this layout's, kokoro-onnx's, names): the float16 file
	# as shipped elsewhere, and the one `parity fp16 --webgpu` makes for WebGPU.
	$(BIN)/parity fp16 $(WEBGPU_RUNS)/fp32.onnx -o $(WEBGPU_RUNS)/fp16.onnx
	$(BIN)/parity fp16 $(WEBGPU_RUNS)/fp32.onnx -o $(WEBGPU_RUNS)/fp16-webgpu.onnx --webgpu
	$(BIN)/parity quantize $(WEBGPU_RUNS)/fp32.onnx -o $(WEBGPU_RUNS)/int8-shipped.onnx --recipe fixtures/recipes/cpu.json
	for variant in $(WEBGPU_VARIANTS); do \
	  $(BIN)/parity quantize $(WEBGPU_RUNS)/fp32.onnx -o $(WEBGPU_RUNS)/$$variant.onnx --variant $$variant; done
	for file in $(WEBGPU_FILES); do for provider in $(WEBGPU_PROVIDERS); do \
	  $(call webgpu_run,$$file,$$provider,$$file.$$provider,); \
	done; done
	# Every file again on a WebGPU adapter with shader-f16, so float16 runs: Dawn in Node.js on
	# the system's Vulkan driver (Mesa 25's lavapipe here; .ci/run installs it).
	for file in $(WEBGPU_FILES); do \
	  $(call webgpu_run,$$file,webgpu,$$file.webgpu-dawn,--webgpu-adapter dawn); done
	# The float32 file again on WebGPU, on the onnxruntime-web kokoro-js ships (--ort-web).
	$(if $(filter webgpu,$(WEBGPU_PROVIDERS)),$(call webgpu_run,fp32,webgpu,fp32.webgpu-kokoro-js,--ort-web kokoro-js))
	# Every file on that runtime on Dawn, which has shader-f16: what kokoro-js's WebGPU device
	# computes for each file a user ships through it.
	for file in $(WEBGPU_FILES); do \
	  $(call webgpu_run,$$file,webgpu,$$file.webgpu-dawn-kokoro-js,--webgpu-adapter dawn --ort-web kokoro-js); done
	$(BIN)/parity report --backends $(WEBGPU_RUNS) -o $(WEBGPU_RUNS)/table.md
	# kokoro-js itself with device "webgpu" on Dawn: each shipped file, and the --webgpu float16
	# file, judged as the WebAssembly client's (tests/test_client_kokoro_js.py, docs/webgpu.md).
	$(BIN)/pytest --parity-provider=webgpu --parity-webgpu-adapter=dawn tests/test_client_kokoro_js.py

clean:
	rm -rf $(VENV) $(WEB)/node_modules $(JS)/node_modules .parity-cache .pytest_cache .hypothesis
