# cnnlens: every target does its own set-up (.venv, torch, JS bundle, Chromium).
# `make help` lists the targets; CI runs `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The torch/torchvision pair known to work together (a local copy on the reference machine).
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1
JS_SOURCES := $(shell find js -name '*.js' -not -path 'js/node_modules/*' -not -path 'js/tests/*') js/package.json js/build.mjs
BUNDLE := cnnlens/static/activation_grid.js cnnlens/static/vendor/html-manager/embed-amd.js
NOTEBOOK ?= notebooks/01_quickstart.ipynb

.PHONY: help setup demo test test-py test-js test-ui bench lint chromium clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  make demo HEADLESS=1   execute the quickstart without a browser (a check)"

# the Voila template is copied into .venv on install: a change to it reinstalls
$(VENV)/.installed: pyproject.toml $(wildcard share/jupyter/voila/templates/cnnlens/*)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PAIR)
	$(PIP) install -q -e '.[dev]'
	touch $@

js/node_modules/.package-lock.json: js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund --loglevel=error

$(BUNDLE) &: $(JS_SOURCES) js/node_modules/.package-lock.json
	cd js && npm run --silent build

setup: $(VENV)/.installed $(BUNDLE) ## create .venv, install the package with its extras, build the JS

chromium: ## install Debian's chromium for the browser tests (as root, when missing)
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install -y chromium'"; fi; fi

demo: setup ## train/load the demo models and open the quickstart in JupyterLab
	$(PY) -m cnnlens.demo
ifdef HEADLESS
	@$(VENV)/bin/jupyter execute $(NOTEBOOK) 2>/dev/null && \
	  echo "make demo: OK - demo models ready, $(NOTEBOOK) executed without error" || \
	  { echo "make demo: $(NOTEBOOK) failed; rerun: $(VENV)/bin/jupyter execute $(NOTEBOOK)"; exit 1; }
else
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(NOTEBOOK)
endif

test: setup chromium ## run every tier: Python, JS units, real browser
	$(MAKE) --no-print-directory --keep-going test-py test-js test-ui

test-py: setup ## tier 1: core, widget state, notebooks (pytest)
	@time $(PY) -m pytest -q -m "not browser" -p no:cacheprovider

test-js: setup ## tier 2: JS units (node --test + happy-dom)
	@time (cd js && npm test --silent)

test-ui: setup chromium ## tier 3: real JupyterLab, Voila and exported pages in Chromium
	@time PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q -m browser -p no:cacheprovider tests/ui

bench: setup ## benchmarks: tables of timings and ratios against peers measured in the same run
	$(PIP) install -q -e '.[dev,bench]'
	$(PY) bench/similarity.py
	$(PY) bench/floors.py

lint: setup ## ruff
	$(VENV)/bin/ruff check cnnlens tests bench

clean: ## remove build outputs (keeps .venv)
	rm -rf cnnlens/static js/node_modules .ci-artifacts
