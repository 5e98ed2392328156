# Gradient Highways: build the book, test everything, run the benchmarks.
#
#   make book    set up .venv, vendor MathJax, execute every notebook, (re)build the site into _build/html
#   make test    set up, then: unit tests -> nbval over book/ -> clean strict build -> browser checks
#   make bench   python benchmarks/bench.py
#   make lock    re-resolve requirements.txt's ranges in a fresh venv and write requirements.lock (+ Binder's pins)
#   make colab   the widget tests and the notebooks again, with Colab's pins (ipywidgets 7.7.1), in .venv-colab
#   make clean   remove _build, the vendored assets and caches (make distclean also removes .venv)
#
# Set-up is shared and stamped (.venv/.gh-installed): it reruns only when requirements.txt, requirements.lock
# or pyproject.toml change. torch is installed FIRST, at the lock's version, so that the range in
# requirements.txt is already satisfied and pip never pulls a CUDA build; then requirements.txt, constrained
# by requirements.lock (the exact versions the last green `make test` used). Elsewhere, point pip at
# PyTorch's CPU index:  make book TORCH_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON_SYS ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip
JB := $(BIN)/jupyter-book
STAMP := $(VENV)/.gh-installed
LOCK := requirements.lock
# torch at the lock's version; the local CPU wheel here is "2.13.0", which pip also finds as "2.13.0+cpu"
TORCH_SPEC ?= $(shell sed -n 's/^torch==\([0-9.]*\).*/torch==\1/p' $(LOCK))
COLAB_VENV := .venv-colab
COLAB_PY := $(CURDIR)/$(COLAB_VENV)/bin/python
TORCH_PIP_ARGS ?=
SITE := _build/html
CHROMIUM := /usr/bin/chromium
CELL_TIMEOUT := 600
# nbval runs every notebook in a kernel of this .venv and fails on any error ("lax": outputs not compared).
NBVAL_ARGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) --ignore-glob='*/.ipynb_checkpoints/*'

# The registry mirror here warns once per package ("Location ... is ignored"): harmless, filtered out.
QUIET_PIP := 2>&1 | { grep -v -E "^WARNING: Location '.*' is ignored" || true; }
# Print how long a step took: $(call timed,label,command)
timed = start=$$(date +%s); echo "== $(1)"; $(2); echo "   $(1): $$(( $$(date +%s) - start )) s"

export PATH := $(BIN):$(PATH)
# Kernels started by nbval and jupyter-book: no debugger frozen-module warning, no jupyter path notice.
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export JUPYTER_PLATFORM_DIRS := 1

.PHONY: help install vendor system book test bench lock colab clean distclean

help:
	@sed -n '3,7p' Makefile | sed 's/^# \{0,1\}//'

install: $(STAMP)

$(STAMP): requirements.txt $(LOCK) pyproject.toml tools/kernel/ipython_kernel_config.py
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON_SYS)"; $(PYTHON_SYS) -m venv $(VENV); }
	@echo "installing $(TORCH_SPEC) (CPU) first, then requirements.txt at $(LOCK)'s versions, and gradlib (-e .)"
	@$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)" $(QUIET_PIP)
	@$(PIP) install -q $(TORCH_PIP_ARGS) -r requirements.txt -c $(LOCK) $(QUIET_PIP)
	@$(PIP) install -q --no-deps -e . $(QUIET_PIP)
	@mkdir -p $(VENV)/etc/ipython && cp tools/kernel/ipython_kernel_config.py $(VENV)/etc/ipython/
	@$(PY) -c 'import sys, torch; sys.exit(f"error: torch {torch.__version__} is a CUDA build" if torch.version.cuda else 0)'
	@if $(PIP) list 2>/dev/null | grep -i '^nvidia-'; then echo "error: CUDA wheels were installed" >&2; exit 1; fi
	@touch $@

vendor: install
	@$(PY) tools/fetch_vendor.py

# Debian packages the build and the checks use: graphviz (the closing chapter's map, sphinx.ext.graphviz),
# chromium (browser checks) and a CJK font (screenshots). Installed with apt-get when run as root (CI).
DEBS := chromium fonts-wqy-microhei graphviz
system:
	@missing=""; [ -x $(CHROMIUM) ] || missing="$$missing chromium"; command -v dot >/dev/null || missing="$$missing graphviz"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's $(DEBS) (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	else \
	  echo "error: missing Debian packages:$$missing (the build needs graphviz's dot; the browser checks $(CHROMIUM))." >&2; \
	  echo "       Install them as root: apt-get update && apt-get install -y $(DEBS)" >&2; \
	  exit 1; \
	fi

book: install vendor system
	@$(call timed,build,$(JB) build . --all -n --keep-going)
	@echo
	@echo "Open file://$(CURDIR)/$(SITE)/index.html"
	@echo "  or serve it: $(PY) -m http.server --directory $(SITE) 8000  ->  http://localhost:8000/"

test: install vendor system
	@$(call timed,1/5 unit tests,$(PY) -m pytest tests -m "not site" -q)
	@$(call timed,2/5 notebooks (nbval),$(PY) -m pytest $(NBVAL_ARGS) book/ -q)
	@$(call timed,3/5 clean strict build,rm -rf _build && $(JB) build . -W -n --keep-going)
	@$(call timed,4/5 browser checks,GH_SITE_DIR=$(SITE) $(PY) -m pytest tests/test_site.py -q)
	@$(call timed,5/5 Colab profile (ipywidgets 7),$(MAKE) colab)
	@echo "all checks passed; screenshots in _build/screenshots/"

bench: install
	$(PY) benchmarks/bench.py

# Re-resolve the ranges of requirements.txt from scratch (nothing constrained), freeze the result into the lock
# and Binder's pins. Then run `make test` (which reinstalls .venv from the new lock) and commit both files.
lock:
	rm -rf .venv-lock && $(PYTHON_SYS) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)" $(QUIET_PIP)
	.venv-lock/bin/python -m pip install -q $(TORCH_PIP_ARGS) -r requirements.txt $(QUIET_PIP)
	.venv-lock/bin/python tools/lock.py .venv-lock/bin/python
	rm -rf .venv-lock

# Colab profile: the lock with Colab's own widget pins (tools/lock.py --colab), in a second venv; then the tests
# that touch widgets and every notebook under nbval. Run by `make test`.
$(COLAB_VENV)/.gh-installed: requirements.txt $(LOCK) pyproject.toml tools/lock.py
	@test -x $(COLAB_PY) || { echo "creating $(COLAB_VENV) (Colab's pins)"; $(PYTHON_SYS) -m venv $(COLAB_VENV); }
	@$(PY) tools/lock.py --colab > $(COLAB_VENV)/constraints.txt
	@$(COLAB_PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)" $(QUIET_PIP)
	@$(COLAB_PY) -m pip install -q $(TORCH_PIP_ARGS) -r requirements.txt -c $(COLAB_VENV)/constraints.txt $(QUIET_PIP)
	@$(COLAB_PY) -m pip install -q --no-deps -e . $(QUIET_PIP)
	@mkdir -p $(COLAB_VENV)/etc/ipython && cp tools/kernel/ipython_kernel_config.py $(COLAB_VENV)/etc/ipython/
	@touch $@

colab: install $(COLAB_VENV)/.gh-installed
	@$(COLAB_PY) -c 'import ipywidgets; print("Colab profile: ipywidgets", ipywidgets.__version__)'
	@# ipywidgets 7 calls ipykernel.comm.Comm, which the lock's ipykernel deprecates (Colab's older one does not)
	@PATH=$(CURDIR)/$(COLAB_VENV)/bin:$$PATH $(COLAB_PY) -m pytest -q -W "ignore::DeprecationWarning:ipywidgets" \
	  $(wildcard tests/test_controls.py tests/test_explorer*.py tests/test_static.py tests/test_exercise*.py)
	@PATH=$(CURDIR)/$(COLAB_VENV)/bin:$$PATH $(COLAB_PY) -m pytest $(NBVAL_ARGS) book/ -q

clean:
	rm -rf _build book/_static/vendor .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(COLAB_VENV)
