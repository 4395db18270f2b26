# The two commands of the README's quick start:
#   make up     installs crawlfleet in .venv and starts the whole platform
#   make test   installs the test dependencies and runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up test install install-test services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

up: install
	$(BIN)/crawlfleet up

services:
	bash scripts/services.sh

browser:
	bash scripts/chromium.sh

test: install-test services browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .crawlfleet build *.egg-info
