# py-in-mem: `make run` and `make test` set everything up themselves.
#
# Every target builds against the interpreter in .venv (PYO3_PYTHON), which
# `make setup` creates with numpy in it. PYTHON picks the base interpreter.

PYTHON ?= python3
VENV   := $(CURDIR)/.venv
VENV_PYTHON := $(VENV)/bin/python

export PYO3_PYTHON := $(VENV_PYTHON)

.PHONY: setup run test lint clean bench bench-quick bench-setup

setup: $(VENV_PYTHON)
	@$(VENV_PYTHON) -c "import numpy" 2>/dev/null || \
		$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r python/requirements.txt

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

run: setup
	cargo run --quiet --example outliers

test: setup
	cargo test

# Formatting, clippy (every unsafe block documented) and rustdoc, warnings as errors.
lint: setup
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

# The bench (bench/, its own workspace member) also needs grpcio and
# grpcio-tools in the venv; `make test` never builds it.
bench-setup: setup
	@$(VENV_PYTHON) -c "import grpc, grpc_tools" 2>/dev/null || \
		$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt

# Writes bench/results.md and bench/results.svg (under 5 minutes on 2 cores).
bench: bench-setup
	cargo run --release --quiet -p py-in-mem-bench

# A smoke run: sizes 10 and 1,000, fewer rounds; writes to target/bench-quick/.
bench-quick: bench-setup
	cargo run --release --quiet -p py-in-mem-bench -- --quick

clean:
	cargo clean
	rm -rf $(VENV)
