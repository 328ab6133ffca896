# py-in-mem: `make run` and `make test` set everything up themselves.
#
# Every target builds against the interpreter in .venv, which `make setup`
# creates with numpy in it. PYTHON picks the base interpreter. PYO3_PYTHON
# comes from .cargo/config.toml, not from here, so `make test` and a plain
# `cargo test` build and run the same thing.

PYTHON ?= python3
VENV   := $(CURDIR)/.venv
VENV_PYTHON := $(VENV)/bin/python

.PHONY: setup run test lint clean bench bench-quick bench-setup old-numpy matrix soak memcheck fuzz

setup: $(VENV_PYTHON)
	@$(VENV_PYTHON) -c "import numpy" 2>/dev/null || \
		$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r python/requirements.txt

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

run: setup
	cargo run --quiet --example outliers

# The whole suite twice: without features, and with `ndarray`, `serde`
# and `bytes`. It builds
# on the newest pyo3-ffi of Cargo.toml's range; tests/downstream.rs builds
# and runs tests/downstream/beside-pyo3 on the lowest (PyO3 0.26 beside
# py-in-mem, in one process).
test: setup
	cargo test
	cargo test --features ndarray,serde,bytes

# Formatting, clippy (every unsafe block documented; without and with the
# `ndarray`, `serde` and `bytes` features) and rustdoc, warnings as errors; the formatting of the
# downstream fixture (its own workspace, and beside-pyo3's, by rustfmt: no
# resolution of its PyO3); and `cargo publish --dry-run`,
# which packages the crate and builds the package (in target/package/).
# --allow-dirty: a developer lints before committing, and uncommitted changes
# are no lint failure; a real `cargo publish` still refuses a dirty tree.
# Its own target directory: the package's build would otherwise share the
# checkout's build-script output directory (same metadata hash), leaving the
# checkout's build with the package's (its MODULE_DIR, no checkout marker).
lint: setup
	cargo fmt --all --check
	cargo fmt --all --check --manifest-path tests/downstream/Cargo.toml
	rustfmt --edition 2021 --check tests/downstream/beside-pyo3/build.rs tests/downstream/beside-pyo3/src/main.rs
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features ndarray,serde,bytes -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet --features ndarray,serde,bytes
	CARGO_TARGET_DIR=$(CURDIR)/target/publish-dry-run cargo publish --dry-run --allow-dirty --quiet -p py-in-mem

# The bench (bench/, its own workspace member) also needs grpcio and
# grpcio-tools, and FastAPI and uvicorn (with uvloop and httptools) for its
# HTTP section, in the venv; `make test` never builds it.
bench-setup: setup
	@$(VENV_PYTHON) -c "import grpc, grpc_tools, fastapi, uvicorn, uvloop, httptools" 2>/dev/null || \
		$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt

# Writes bench/results.md, bench/results.svg and bench/results-http.svg (the
# HTTP section adds a few minutes: `-- --http-only` runs it alone).
bench: bench-setup
	cargo run --release --quiet -p py-in-mem-bench

# A smoke run: sizes 10 and 1,000, fewer rounds; writes to target/bench-quick/.
bench-quick: bench-setup
	cargo run --release --quiet -p py-in-mem-bench -- --quick

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
# Long (70 to 85 minutes on 2 cores in the runs of 6 December); not part of
# `make test` or CI.
matrix:
	bash scripts/matrix.sh

# 8 threads x 60 s of create/call/drop with RSS every 5 s (tests/soak.rs).
soak: setup
	cargo test --release --test soak -- --ignored --nocapture

# The integration tests under valgrind memcheck (scripts/memcheck.sh), built
# with every optional feature (MEMCHECK_FEATURES= builds without).
memcheck: setup
	bash scripts/memcheck.sh

# The result_shapes fuzz target for FUZZ_SECS seconds (fuzz/). cargo-fuzz
# needs nightly features: RUSTC_BOOTSTRAP=1 lets the stable toolchain use
# them. PYTHONMALLOC=malloc lets AddressSanitizer see every Python object.
# Leaks are checked in a second pass over the corpus: libFuzzer's per-input
# leak check slows the run down 100-fold (Python's caches trip it), and with
# pymalloc LeakSanitizer cannot see pointers kept inside pymalloc's arenas.
FUZZ_SECS ?= 600
FUZZ_ENV := PYTHONMALLOC=malloc RUSTC_BOOTSTRAP=1
fuzz: setup
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && $(FUZZ_ENV) cargo fuzz build result_shapes
	mkdir -p target/fuzz-corpus
	cp fuzz/corpus/result_shapes/* target/fuzz-corpus/
	cd fuzz && $(FUZZ_ENV) cargo fuzz run result_shapes ../target/fuzz-corpus -- \
		-max_total_time=$(FUZZ_SECS) -detect_leaks=0 -print_final_stats=1
	cd fuzz && $(FUZZ_ENV) cargo fuzz run result_shapes ../target/fuzz-corpus -- \
		-runs=0 -detect_leaks=1
	@echo "fuzz: corpus $$(ls target/fuzz-corpus | wc -l) files in target/fuzz-corpus"

clean:
	cargo clean
	rm -rf $(VENV)
