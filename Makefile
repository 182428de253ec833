# Two commands on a fresh machine:
#   make demo   - create .venv, install, segment an example image
#   make test   - create .venv, install (with test extras and a headless browser), run the tests,
#                 then install the built wheel into clean venvs (with and without torch) and run it
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
DEMO_ARGS ?=

.PHONY: install demo test wheel-check browser bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first; a bare "torch" requirement would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[torch,hub,server,onnx,video]'
	touch $(STAMP)

# test-only extras (property tests, the authors' cv2 blur, transformers for parity, Ray Data)
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[torch,hub,server,onnx,video,dev,ray]'
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/clipseg demo $(DEMO_ARGS)

# Debian's Chromium and the playwright Python package drive the web-page test; without
# root (or apt) the browser test is skipped with its reason.
browser: $(TEST_STAMP)
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install -q playwright

# the tests, then the wheel as users install it (clean venvs with and without torch)
test: $(TEST_STAMP) browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest
	DEV=$(BIN)/python .ci/wheel_check.sh

wheel-check: $(TEST_STAMP)
	DEV=$(BIN)/python .ci/wheel_check.sh

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
