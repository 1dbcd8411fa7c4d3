# The README's two commands: `make demo` and `make test`. Both install first.
# The newest Python tally runs on (3.13, 3.12, 3.11), on PATH or under pyenv; `make PYTHON=...` picks one.
PYTHON ?= $(shell for v in 3.13 3.12 3.11; do for p in python$$v $$HOME/.pyenv/versions/$$v*/bin/python$$v; do \
	  $$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; exit 0; }; done; done; echo python3.11)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser js demo smoke test test-unit lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's chromium for the page test (tests/e2e/test_page.py), installed where missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The official ClickHouse JS client (npm registry), a reader tally did not write: tests/js, run by
# tests/e2e/test_api.py with the machine's Node.js.
js: tests/js/node_modules/.installed

tests/js/node_modules/.installed: tests/js/package-lock.json
	@command -v npm >/dev/null || { echo "need Node.js and npm on PATH for tests/js"; exit 1; }
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(BIN)/tally demo

# The demo's job, small and without the page, in a data dir of its own (CI runs it on a second Python).
smoke: install
	$(BIN)/tally demo --no-serve --tps 1000 --data-dir $(VENV)/smoke; status=$$?; \
	  $(BIN)/tally down --data-dir $(VENV)/smoke >/dev/null; exit $$status

# The fast suite while coding: no broker, no ClickHouse, no browser (seconds). `make test` runs it and
# tests/e2e/ (real Tansu, chDB and Chromium).
test-unit: install
	$(BIN)/pytest -q tests/unit

test: install browser js
	$(BIN)/ruff check streams tests benchmarks scripts schemas
	$(BIN)/lint-imports --no-logo
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check streams tests benchmarks scripts schemas
	$(BIN)/lint-imports --no-logo
	$(BIN)/ruff format --check streams tests benchmarks scripts schemas

clean:
	-$(BIN)/tally down
	rm -rf $(VENV) .tally
