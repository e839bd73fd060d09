# flowtide: `make run` starts the example app, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit node-test bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	cd examples/shop && ../../$(BIN)/flowtide dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck node-test
	$(BIN)/pytest -q

# npm ci installs sdks/node's devDependencies (tsx, for the .ts handler test) when they are missing;
# without network it is skipped and that test skips with a reason.
node-test:
	cd sdks/node && { test ! -f package-lock.json || test -d node_modules/tsx || npm ci --no-audit --no-fund --silent || echo "npm ci failed: the .ts handler test will be skipped"; } && node --test

# Retake the dashboard screenshots in docs/images (the e2e tests take them; needs chromium).
screenshots: $(STAMP)
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
