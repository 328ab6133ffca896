# py-in-mem: `make run` and `make test` set everything up themselves.
#
# Every target builds against the interpreter in .venv (PYO3_PYTHON), which
# `make setup` creates with numpy in it. PYTHON picks the base interpreter.

PYTHON ?= python3
VENV   := $(CURDIR)/.venv
VENV_PYTHON := $(VENV)/bin/python

export PYO3_PYTHON := $(VENV_PYTHON)

.PHONY: setup run test clean old-numpy matrix soak

setup: $(VENV_PYTHON)
	@$(VENV_PYTHON) -c "import numpy" 2>/dev/null || \
		$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r python/requirements.txt

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

run: setup
	cargo run --quiet --example outliers

test: setup
	cargo test

# A numpy older than the glue's C API (numpy < 1.25) must be refused at
# start-up with a message: installs one beside the venv and runs that test.
OLD_NUMPY := $(CURDIR)/target/old-numpy
old-numpy: setup
	@$(VENV_PYTHON) -c "import sys; sys.path.insert(0, '$(OLD_NUMPY)'); import numpy" 2>/dev/null || \
		$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check \
		--only-binary=:all: --target $(OLD_NUMPY) 'numpy<1.25'
	PIM_OLD_NUMPY_DIR=$(OLD_NUMPY) cargo test --test startup -- --ignored --exact \
		a_numpy_older_than_compiled_against_is_an_init_error_that_says_to_upgrade

# Every CPython 3.9-3.13 here x numpy 1.26 / 2.x: the whole suite per cell.
# Long (about 20 minutes); not part of `make test` or CI.
matrix:
	bash scripts/matrix.sh

# 8 threads x 60 s of create/call/drop with RSS every 5 s (tests/soak.rs).
soak: setup
	cargo test --release --test soak -- --ignored --nocapture

clean:
	cargo clean
	rm -rf $(VENV)
