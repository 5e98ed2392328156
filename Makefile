# Gradient Highways: build the book, test everything, run the benchmarks.
#
#   make book    set up .venv, vendor MathJax, execute every notebook ONCE, build both editions of the site
#                (English _build/html, Chinese _build/html/zh) and both PDFs (_build/pdf/gradient-highways-{en,zh}.pdf)
#   make html    only the two sites;  make pdf  only the two PDFs (XeLaTeX; reuses the execution cache)
#   make pot     extract the English messages (_build/gettext/*.pot);  make po  merge them into locales/zh_CN
#   make test    set up, then: unit tests -> nbval over book/ -> translations -> clean strict build of both
#                editions -> browser checks of both -> both PDFs, checked -> Colab profile
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
# The Chinese edition: same sources, gettext catalogs in locales/zh_CN/LC_MESSAGES (one .po per document).
# It is built into _build/zh/html (myst-nb puts its jupyter_execute folder NEXT TO the output folder, which
# inside _build/html would be published) and copied to _build/html/zh, so the two editions are one site.
LANGUAGES := zh_CN
ZH_SITE := $(SITE)/zh
SPHINX := $(BIN)/sphinx-build
SPHINXOPTS ?= -n --keep-going
# One execution per edition (the PDFs read it back): myst-nb's "cache" mode stores the executed notebooks in a
# jupyter-cache. The Chinese edition executes with GH_LANGUAGE=zh_CN, which its kernels inherit, so that the
# figures' titles, axes, legends and the explorers' controls are drawn in Chinese (gradlib.i18n); the
# experiments are seeded, so its numbers are the English ones (tests/test_editions.py compares every glued
# value). The cache keys on code only and would miss a changed gradlib, so `make book` and `make test` empty it.
EXEC_CACHE := $(CURDIR)/_build/.jupyter_cache
EXEC_CACHE_ZH := $(CURDIR)/_build/.jupyter_cache_zh
EXEC_CACHES := en=$(EXEC_CACHE),zh_CN=$(EXEC_CACHE_ZH)# (a variable: a comma inside $(call …) splits arguments)
sphinx_exec = -D nb_execution_mode=cache -D nb_execution_cache_path=$(1)
SPHINX_EXEC := $(call sphinx_exec,$(EXEC_CACHE))
# gradlib's own catalog (the strings it draws): Babel extracts them from gradlib/ and the notebooks' code
BABEL := PYTHONPATH=$(CURDIR)/tools $(BIN)/pybabel
GRADLIB_POT := _build/gettext-gradlib/gradlib.pot
# The PDFs: one latex build per language, then Sphinx's own Makefile (latexmk + XeLaTeX + xindy).
PDF_DIR := _build/pdf
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

.PHONY: help install vendor system book html html-en html-zh pdf pot po translations test test-unit test-nbval bench \
  lock colab colab-env clean distclean

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

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
# The PDFs: XeLaTeX with xeCJK (texlive-lang-chinese), Sphinx's LaTeX packages, latexmk and xindy (the index),
# the Noto CJK fonts (Chinese text, also in figures later) and DejaVu (code); poppler-utils for the PDF checks.
DEBS := chromium fonts-wqy-microhei graphviz fonts-noto-cjk fonts-dejavu-core fonts-freefont-otf \
  texlive-xetex texlive-lang-chinese texlive-latex-extra texlive-latex-recommended texlive-fonts-recommended \
  texlive-plain-generic tex-gyre lmodern latexmk xindy poppler-utils
system:
	@missing=""; [ -x $(CHROMIUM) ] || missing="$$missing chromium"; command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v xelatex >/dev/null && kpsewhich xeCJK.sty >/dev/null || missing="$$missing texlive-xetex/texlive-lang-chinese"; \
	command -v latexmk >/dev/null || missing="$$missing latexmk"; command -v xindy >/dev/null || missing="$$missing xindy"; \
	command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	[ -n "$$(fc-list 'Noto Serif CJK SC')" ] || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's $(DEBS) (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; \
	else \
	  echo "error: missing Debian packages:$$missing (the build needs graphviz's dot, the PDFs XeLaTeX; the browser checks $(CHROMIUM))." >&2; \
	  echo "       Install them as root: apt-get update && apt-get install -y $(DEBS)" >&2; \
	  exit 1; \
	fi

# Sphinx's conf.py, generated from _config.yml (the one source of configuration) and never edited by hand.
# jupyter-book config leaves out the path of `local_extensions`, hence the line appended.
conf.py: _config.yml _toc.yml $(STAMP)
	@$(JB) config sphinx . >/dev/null
	@echo 'import os, sys; sys.path.insert(0, os.path.abspath("tools"))  # local_extensions (see _config.yml)' >> $@

build_en = $(SPHINX) -b html $(SPHINX_EXEC) -d _build/.doctrees/en $(SPHINXOPTS) . $(SITE)
# (`;`, not `&&`: under `set -e` only the last command of an && list stops the recipe when it fails)
build_zh = GH_LANGUAGE=zh_CN $(SPHINX) -b html $(call sphinx_exec,$(EXEC_CACHE_ZH)) -D language=zh_CN \
  -d _build/.doctrees/zh $(SPHINXOPTS) . _build/zh/html; \
  rm -rf $(ZH_SITE); cp -a _build/zh/html $(ZH_SITE)

html-en: install vendor system conf.py
	@$(call timed,build (English; executes the notebooks unless cached),$(build_en))

html-zh: install vendor system conf.py
	@$(call timed,build (Chinese; executes the notebooks in Chinese unless cached),$(build_zh))

html: install vendor system conf.py
	@rm -rf $(EXEC_CACHE) $(EXEC_CACHE_ZH)
	@$(MAKE) -j2 -O html-en html-zh

# latex -> PDF for one language: $(call pdf_of,en|zh_CN,en|zh,execution cache)
pdf_of = GH_LANGUAGE=$(1) $(SPHINX) -q -b latex $(call sphinx_exec,$(3)) -D language=$(1) -d _build/.doctrees/latex-$(1) \
  $(SPHINXOPTS) . _build/latex/$(1); \
  $(MAKE) -C _build/latex/$(1) all-pdf LATEXMKOPTS="-silent" >_build/latex/$(1).log 2>&1 \
  || { grep -A5 '^!' _build/latex/$(1)/gradienthighways.log >&2; echo "see _build/latex/$(1).log" >&2; exit 1; }; \
  mkdir -p $(PDF_DIR); cp _build/latex/$(1)/gradienthighways.pdf $(PDF_DIR)/gradient-highways-$(2).pdf

pdf: install system conf.py
	@$(call timed,PDF (English),$(call pdf_of,en,en,$(EXEC_CACHE)))
	@$(call timed,PDF (Chinese),$(call pdf_of,zh_CN,zh,$(EXEC_CACHE_ZH)))
	@ls -l $(PDF_DIR)

book: install vendor system conf.py
	@$(MAKE) html pdf
	@echo
	@echo "Open file://$(CURDIR)/$(SITE)/index.html  (中文版: file://$(CURDIR)/$(ZH_SITE)/index.html)"
	@echo "  or serve it: $(PY) -m http.server --directory $(SITE) 8000  ->  http://localhost:8000/  (and /zh/)"
	@echo "PDFs: $(PDF_DIR)/gradient-highways-en.pdf, $(PDF_DIR)/gradient-highways-zh.pdf"

# Translation workflow after changing the English (README, "Translating"): `make po`, then fill in the empty
# and "#, fuzzy" entries of locales/zh_CN/LC_MESSAGES/<doc>.po (the prose) and gradlib/locales/zh_CN/
# LC_MESSAGES/gradlib.po (what gradlib draws), and `make translations` (the check) + `make html`.
# Extraction needs no execution: msgids are the MyST source of each paragraph (glue roles stay roles) and
# the literal strings of gradlib's _() / N_() calls (tools/babel.cfg).
pot: install conf.py
	@rm -rf _build/gettext _build/gettext-gradlib
	@$(call timed,extract messages (gettext),$(SPHINX) -q -b gettext -D nb_execution_mode=off -d _build/.doctrees/gettext $(SPHINXOPTS) . _build/gettext)
	@mkdir -p $(dir $(GRADLIB_POT))
	@$(BABEL) -q extract -F tools/babel.cfg -w 100 --sort-by-file --project=gradlib -o $(GRADLIB_POT) . 

po: pot
	@$(BIN)/sphinx-intl update -p _build/gettext -d locales $(addprefix -l ,$(LANGUAGES)) -w 100
	@$(BIN)/sphinx-intl stat -d locales $(addprefix -l ,$(LANGUAGES)) | grep -v ": 0 translated" || true
	@for lang in $(LANGUAGES); do \
	  if [ -f gradlib/locales/$$lang/LC_MESSAGES/gradlib.po ]; then \
	    $(BABEL) -q update -i $(GRADLIB_POT) -d gradlib/locales -D gradlib -l $$lang -w 100 --ignore-obsolete; \
	  else $(BABEL) -q init -i $(GRADLIB_POT) -d gradlib/locales -D gradlib -l $$lang -w 100; fi; done

# Fails on an untranslated or fuzzy entry of a document declared translated (tests/test_translations.py),
# and on a catalog that lags behind the English (the .pot extracted from the sources right now).
translations: pot
	@$(call timed,translations,GH_POT_DIR=_build/gettext $(PY) -m pytest tests/test_translations.py tests/test_i18n.py -q)

# Two cores, and each of these steps runs one torch thread: independent steps go in pairs (-j2; -O keeps each
# step's output together), which is what keeps the whole run well under 30 minutes.
test: install vendor system conf.py
	@$(MAKE) -j2 -O test-unit test-nbval  # 1/8 and 2/8, side by side
	@$(MAKE) translations  # 3/8
	@rm -rf _build
	@$(MAKE) -j2 -O html-en html-zh SPHINXOPTS="-W -n --keep-going"  # 4/8 and 5/8, side by side
	@$(call timed,6/8 same numbers in both editions,GH_EXEC_CACHES="$(EXEC_CACHES)" $(PY) -m pytest tests/test_editions.py -q)
	@$(call timed,6/8 browser checks (English),GH_SITE_DIR=$(SITE) $(PY) -m pytest tests/test_site.py -q)
	@$(call timed,6/8 browser checks (Chinese),GH_SITE_DIR=$(ZH_SITE) GH_LANGUAGE=zh_CN \
	  GH_SCREENSHOTS=_build/screenshots/zh $(PY) -m pytest tests/test_site.py -q)
	@$(MAKE) -j2 -O pdf SPHINXOPTS="-W -n --keep-going" colab-env  # the Colab venv installs meanwhile
	@$(call timed,7/8 PDF checks,GH_PDF_DIR=$(PDF_DIR) $(PY) -m pytest tests/test_pdf.py -q)
	@$(call timed,8/8 Colab profile (ipywidgets 7),$(MAKE) colab)
	@echo "all checks passed; screenshots in _build/screenshots/ (Chinese: _build/screenshots/zh/), PDF pages in _build/pdf/"

test-unit: install
	@$(call timed,1/8 unit tests,$(PY) -m pytest tests -m "not site" -q)

test-nbval: install
	@$(call timed,2/8 notebooks (nbval),$(PY) -m pytest $(NBVAL_ARGS) book/ -q)

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

colab-env: install $(COLAB_VENV)/.gh-installed

colab: install $(COLAB_VENV)/.gh-installed
	@$(COLAB_PY) -c 'import ipywidgets; print("Colab profile: ipywidgets", ipywidgets.__version__)'
	@# ipywidgets 7 calls ipykernel.comm.Comm, which the lock's ipykernel deprecates (Colab's older one does not)
	@PATH=$(CURDIR)/$(COLAB_VENV)/bin:$$PATH $(COLAB_PY) -m pytest -q -W 'ignore:The `ipykernel.comm.Comm` class has been deprecated:DeprecationWarning' \
	  $(wildcard tests/test_controls.py tests/test_explorer*.py tests/test_static.py tests/test_exercise*.py)
	@PATH=$(CURDIR)/$(COLAB_VENV)/bin:$$PATH $(COLAB_PY) -m pytest $(NBVAL_ARGS) book/ -q

clean:
	rm -rf _build book/_static/vendor .pytest_cache conf.py
	find locales -name '*.mo' -delete
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(COLAB_VENV)
