# The two commands of the README's quick start:
#   make up     installs crawlfleet in .venv and starts the whole platform
#               (flags of `crawlfleet up` in ARGS: make up ARGS="--port 9000")
#   make test   installs the test dependencies, type-checks, runs the whole test suite
# and the developer's fast tier:
#   make test-fast   type-checks, then every test not marked slow (starts no master or node)
# Installing is remembered by a stamp file and done again only when
# pyproject.toml changed (the package itself is installed editable).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: up test test-fast typecheck install install-test services browser frontend clean translations translations-compile

# The browser editor's CodeMirror 6 bundle: npm packages pinned by
# web/frontend/package-lock.json, bundled once by esbuild into static/vendor.
# The bundle is committed (the build is deterministic), so this rebuilds it
# only when it is missing or its sources are newer, and only where npm exists.
FRONTEND      := web/frontend
EDITOR_BUNDLE := web/static/vendor/codemirror/editor.js

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed frontend

install-test: $(VENV)/.installed-test frontend

frontend:
	@if [ -f $(FRONTEND)/package-lock.json ] && command -v npm >/dev/null 2>&1 && \
	   { [ ! -f $(EDITOR_BUNDLE) ] || [ -n "$$(find $(FRONTEND)/package-lock.json $(FRONTEND)/editor.js -newer $(EDITOR_BUNDLE))" ]; }; then \
	  cd $(FRONTEND) && npm ci --no-audit --no-fund && npm run build; fi

up: install
	$(BIN)/crawlfleet up $(ARGS)

services:
	bash scripts/services.sh

browser:
	bash scripts/chromium.sh
	bash scripts/axe.sh

typecheck: install-test
	$(BIN)/mypy

# Most tests wait on subprocesses (nodes, crawls, Chromium) more than they
# compute, and each has its own database, broker prefix, ports and folders, so
# they run TEST_WORKERS at a time (pytest-xdist, a test file per worker). The
# fault suite restarts the shared Redis and RabbitMQ, and the multihost tests
# build network namespaces: those run alone afterwards.
TEST_WORKERS ?= 3
SERIAL_TIERS = faults or multihost

test: install-test services browser typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not ($(SERIAL_TIERS))" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "$(SERIAL_TIERS)" $(PYTEST_ARGS)

test-fast: install-test services typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

# The UI's translations (README "Languages"): `make translations` extracts the
# marked strings of web/ into the catalog template and merges them into every
# web/translations/<locale>/LC_MESSAGES/messages.po; after translating, compile
# the .mo files (committed, so `pip install` and the image need no Babel step).
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ -o web/translations/messages.pot --sort-by-file \
		--project crawlfleet --no-wrap .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --no-wrap \
		--no-fuzzy-matching

translations-compile: install
	$(BIN)/pybabel compile -d web/translations --statistics

clean:
	rm -rf $(VENV) .crawlfleet build *.egg-info $(FRONTEND)/node_modules
