# The two commands of the README's quick start:
#   make up     installs crawlfleet in .venv and starts the whole platform
#               (flags of `crawlfleet up` in ARGS: make up ARGS="--port 9000")
#   make test   installs the test dependencies and runs the whole test suite
# Installing is remembered by a stamp file and done again only when
# pyproject.toml changed (the package itself is installed editable).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: up test install install-test services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

up: install
	$(BIN)/crawlfleet up $(ARGS)

services:
	bash scripts/services.sh

browser:
	bash scripts/chromium.sh

test: install-test services browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .crawlfleet build *.egg-info
