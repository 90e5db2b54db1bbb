# One entry point for every routine; CI and people use the same targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install install-samples install-bench install-node install-browser services run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'

# The AWS SAM CLI's sample apps are test data (tests/support/sam_samples.py); installed
# without its pins, which would downgrade ours.
install-samples: install
	$(BIN)/python -m pip install --quiet --no-deps 'aws-sam-cli>=1.100'

install-bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'

run: install
	$(BIN)/triggerfish up --deploy examples/orders

install-node:
	bash scripts/install-node.sh

install-browser:
	bash scripts/install-browser.sh

# Starts the local brokers the broker tests use; a server that cannot start makes its
# tests skip on a developer's machine (and fail in CI).
services:
	-bash scripts/services.sh

# Four pytest-xdist workers, each taking whole test files (a file's tests share its
# module's server): most tests wait on `triggerfish up` processes, so four overlap well on
# two cores. Measured on two cores: 8.7 minutes, against 10.3 with three workers, 9.2 with
# six and 22.5 in one process.
test: install install-samples install-node install-browser services
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -n 4 --dist loadfile

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install-bench
	@command -v wrk >/dev/null || apt-get install -y wrk >/dev/null 2>&1 || \
		echo "wrk is not installed: the synchronous workload falls back to a Python client"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .triggerfish .mypy_cache .ruff_cache
