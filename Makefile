# Gradient Highways: build the book, test everything, run the benchmarks.
#
#   make book    set up .venv, vendor MathJax, execute every notebook, (re)build the site into _build/html
#   make test    set up, then: unit tests -> nbval over book/ -> clean strict build -> browser checks
#   make bench   python benchmarks/bench.py
#   make clean   remove _build, the vendored assets and caches (make distclean also removes .venv)
#
# Set-up is shared and stamped (.venv/.gh-installed): it reruns only when requirements.txt or
# pyproject.toml change. torch is installed FIRST, pinned, so that the range in requirements.txt is
# already satisfied and pip never pulls a CUDA build. Elsewhere, point pip at PyTorch's CPU index:
#   make book TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

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
TORCH_SPEC ?= torch==2.13.0
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

.PHONY: help install vendor chromium book test bench clean distclean

help:
	@sed -n '3,7p' Makefile | sed 's/^# \{0,1\}//'

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON_SYS)"; $(PYTHON_SYS) -m venv $(VENV); }
	@echo "installing $(TORCH_SPEC) (CPU) first, then requirements.txt and gradlib (-e .)"
	@$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)" $(QUIET_PIP)
	@$(PIP) install -q -r requirements.txt $(QUIET_PIP)
	@$(PIP) install -q -e . $(QUIET_PIP)
	@$(PY) -c 'import sys, torch; sys.exit(f"error: torch {torch.__version__} is a CUDA build" if torch.version.cuda else 0)'
	@if $(PIP) list 2>/dev/null | grep -i '^nvidia-'; then echo "error: CUDA wheels were installed" >&2; exit 1; fi
	@touch $@

vendor: install
	@$(PY) tools/fetch_vendor.py

chromium:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser checks (apt-get), and a CJK font for the screenshots"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	else \
	  echo "error: the browser checks drive Debian's chromium at $(CHROMIUM), which is missing." >&2; \
	  echo "       Install it as root: apt-get update && apt-get install -y chromium" >&2; \
	  exit 1; \
	fi

book: install vendor
	@$(call timed,build,$(JB) build . --all -n --keep-going)
	@echo
	@echo "Open file://$(CURDIR)/$(SITE)/index.html"
	@echo "  or serve it: $(PY) -m http.server --directory $(SITE) 8000  ->  http://localhost:8000/"

test: install vendor chromium
	@$(call timed,1/4 unit tests,$(PY) -m pytest tests -m "not site" -q)
	@$(call timed,2/4 notebooks (nbval),$(PY) -m pytest $(NBVAL_ARGS) book/ -q)
	@$(call timed,3/4 clean strict build,rm -rf _build && $(JB) build . -W -n --keep-going)
	@$(call timed,4/4 browser checks,GH_SITE_DIR=$(SITE) $(PY) -m pytest tests/test_site.py -q)
	@echo "all checks passed; screenshots in _build/screenshots/"

bench: install
	$(PY) benchmarks/bench.py

clean:
	rm -rf _build book/_static/vendor .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
