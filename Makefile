# The README's two commands: `make demo` and `make test`. Both install first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/tally demo

test: install
	$(BIN)/ruff check streams tests benchmarks
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check streams tests benchmarks
	$(BIN)/ruff format --check streams tests benchmarks

clean:
	-$(BIN)/tally down
	rm -rf $(VENV) .tally
