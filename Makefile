# Two commands do all set-up: `make run` and `make test`. Both create the virtualenv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.run-stamp
ARGS   ?=
PYTEST_WORKERS ?= 2

.PHONY: run serve test test-fast lint format bench bench-peers fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make run` installs only what it runs (the server extra); tests and lint add the dev tools.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server]'
	touch $(RUN_STAMP)

## The whole local stack (authority on SQLite in ./.keyless, metadata emulator, guarded demo API).
## Flags go through ARGS: make run ARGS="--authority-port 9443".
run: $(RUN_STAMP)
	$(BIN)/keyless dev $(ARGS)

## All tests (suites needing PostgreSQL, Redis or Node skip with a notice where those are missing).
test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

## The fuzz suite run long (make test runs it briefly): KEYLESS_FUZZ_EXAMPLES examples per target.
fuzz: $(STAMP)
	KEYLESS_FUZZ_PROFILE=long $(BIN)/pytest tests/fuzz --timeout 0 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

## Benchmarks: figures as ratios against the raw `cryptography` ceiling measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench

## keyless and panva/oidc-provider side by side under one load generator (needs Node and npm; see
## docs/performance.md). REPS interleaved rounds; prints the table docs/performance.md quotes.
REPS ?= 3
bench-peers: $(STAMP)
	$(BIN)/python -m bench.peers --reps $(REPS)

clean:
	rm -rf $(VENV) .bench-peers .pytest_cache .mypy_cache .ruff_cache .hypothesis
