# The README's two commands: `make demo` and `make test`. Both install first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's chromium for the page test (tests/test_page.py), installed where missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: install
	$(BIN)/tally demo

test: install browser
	$(BIN)/ruff check streams tests benchmarks
	$(BIN)/lint-imports --no-logo
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check streams tests benchmarks
	$(BIN)/lint-imports --no-logo
	$(BIN)/ruff format --check streams tests benchmarks

clean:
	-$(BIN)/tally down
	rm -rf $(VENV) .tally
