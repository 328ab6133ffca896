#!/usr/bin/env bash
# `make matrix`: build the crate and run the whole test suite against every
# CPython 3.9-3.13 on this machine, with numpy 1.26 and the newest numpy 2.x,
# then print a grid: Python x numpy, pass or fail, and the failing tests.
#
# Per Python (found under $PYENV_ROOT/versions, else as python3.X on PATH;
# a missing one gets a line saying so), one venv under target/matrix/, and:
#   np2       build against numpy 2.x headers, run on numpy 2.x
#   2.x->1.26 the same build, run after numpy is downgraded to 1.26 in the
#             venv (NPY_TARGET_VERSION: numpy 2 headers, numpy 1.26 at run
#             time); the log is checked to show that nothing was rebuilt
#   np1.26    build against numpy 1.26 headers, run on numpy 1.26
#   old numpy a numpy < 1.25 on PYTHONPATH is refused at start-up with a
#             message (tests/startup.rs, ignored by default)
# Each build has its own CARGO_TARGET_DIR. Cells run one after another (the
# machine has two cores). A cell is "n/a" when PyPI has no wheel for it.
#
# MATRIX_PYTHONS="3.11 3.12" limits the rows.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/matrix"
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
VERSIONS=${MATRIX_PYTHONS:-"3.9 3.10 3.11 3.12 3.13"}
PIP_FLAGS=(--quiet --disable-pip-version-check --only-binary=:all:)
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

say() { echo "matrix: $*"; }

# The newest python3.X: pyenv's, else the one on PATH.
find_python() {
    local minor=$1 dir
    dir=$(ls -d "$PYENV_ROOT/versions/$minor".* 2>/dev/null | grep -E "/$minor\.[0-9]+$" | sort -V | tail -1)
    if [[ -n $dir && -x $dir/bin/python$minor ]]; then
        echo "$dir/bin/python$minor"
    else
        command -v "python$minor" 2>/dev/null
    fi
}

# Failing test names from a cargo test log, or the build error.
failures() {
    local log=$1 names
    names=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort -u | tr '\n' ' ')
    if [[ -z $names ]]; then
        names=$(grep -m1 -E '^error' "$log")
    fi
    echo "${names:-see $log}"
}

# run_tests LOG TARGET_DIR VENV [cargo test args...]: 0 when all passed.
# A shell started in the background (`make matrix &`, nohup) ignores SIGINT
# and its children inherit that; the Ctrl-C test needs the default, which
# perl restores before exec'ing cargo.
run_tests() {
    local log=$1 tdir=$2 venv=$3
    shift 3
    (cd "$ROOT" && PYO3_PYTHON="$venv/bin/python" CARGO_TARGET_DIR="$tdir" \
        perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!"' \
        cargo test --no-fail-fast "$@") >"$log" 2>&1
}

# cell LOG TARGET_DIR [cargo test args...]: runs the tests with $venv and
# sets r (PASS or FAIL) and d (tests passed, or the failing tests).
cell() {
    local log=$1 tdir=$2
    shift 2
    if run_tests "$log" "$tdir" "$venv" "$@"; then r=PASS d=$(passed "$log"); else r=FAIL d=$(failures "$log"); fi
}

# startup_cell LOG TARGET_DIR VAR DIR TEST: cell for one ignored start-up
# test that takes the numpy installed in DIR from the variable VAR.
startup_cell() {
    local log=$1 tdir=$2 var=$3 dir=$4 test=$5
    local -x "$var=$dir"
    cell "$log" "$tdir" --test startup -- --ignored --exact "$test"
}

# How many tests passed, from a cargo test log.
passed() {
    grep -o 'ok\. [0-9]* passed' "$1" | awk '{s += $2} END {print s + 0 " passed"}'
}

record() { # python column result detail
    printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" >>"$SUMMARY"
    say "Python $1, $2: $3 $4"
}

for minor in $VERSIONS; do
    python=$(find_python "$minor")
    if [[ -z $python ]]; then
        say "Python $minor: not installed on this machine, skipped"
        record "$minor" "all" "SKIP" "not installed"
        continue
    fi
    shared=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED"))')
    full=$("$python" -c 'import platform; print(platform.python_version())')
    say "Python $minor: $python ($full, Py_ENABLE_SHARED=$shared)"
    cell="$OUT/py$minor"
    venv="$cell/venv"
    mkdir -p "$cell"
    [[ -x $venv/bin/python ]] || "$python" -m venv "$venv" || {
        record "$minor" "all" "FAIL" "could not create a venv"
        continue
    }
    vpy="$venv/bin/python"
    npver() { "$vpy" -c 'import numpy; print(numpy.__version__)'; }

    # numpy 2.x headers, numpy 2.x at run time.
    if "$vpy" -m pip install "${PIP_FLAGS[@]}" 'numpy>=2,<3'; then
        cell "$cell/np2.log" "$cell/target-np2"
        record "$minor" "numpy $(npver)" "$r" "$d"
        have_np2=1
    else
        record "$minor" "numpy 2.x" "n/a" "no wheel"
        have_np2=0
    fi

    # numpy 1.26: run the numpy-2 build on it, then build against its headers.
    if "$vpy" -m pip install "${PIP_FLAGS[@]}" 'numpy>=1.26,<1.27'; then
        v126=$(npver)
        if [[ $have_np2 == 1 ]]; then
            PIM_REPORT_FILE="$cell/np2-on-126.versions" cell "$cell/np2-on-126.log" "$cell/target-np2"
            # What the test binary itself says it was compiled against and ran on.
            ran=$(cat "$cell/np2-on-126.versions" 2>/dev/null)
            case $ran in
            "compiled against numpy 2."*", ran on numpy 1.26") ;;
            *) r=FAIL d="not a numpy-2-headers-on-1.26 run: ${ran:-no report} $d" ;;
            esac
            record "$minor" "${ran:-numpy 2 build on $v126}" "$r" "$d"
        fi
        cell "$cell/np126.log" "$cell/target-np126"
        record "$minor" "numpy $v126" "$r" "$d"
        # numpy 2 on PYTHONPATH under this numpy 1.26 build: another ABI.
        np2dir="$cell/numpy2"
        if [[ -d $np2dir/numpy ]] || "$vpy" -m pip install "${PIP_FLAGS[@]}" --target "$np2dir" 'numpy>=2,<3'; then
            startup_cell "$cell/np126-abi.log" "$cell/target-np126" PIM_NUMPY2_DIR "$np2dir" \
                a_numpy_of_another_abi_is_an_init_error_that_says_to_rebuild
            record "$minor" "numpy $(PYTHONPATH="$np2dir" npver) under a 1.26 build refused" "$r" "$d"
        fi
    else
        record "$minor" "numpy 1.26" "n/a" "no numpy 1.26 wheel for Python $minor on PyPI"
    fi

    # A numpy older than the glue's C API, on PYTHONPATH: refused with a message.
    old="$cell/old-numpy"
    if [[ -d $old/numpy ]] || "$vpy" -m pip install "${PIP_FLAGS[@]}" --target "$old" 'numpy<1.25'; then
        tdir="$cell/target-np126"
        [[ -d $tdir ]] || tdir="$cell/target-np2"
        startup_cell "$cell/old-numpy.log" "$tdir" PIM_OLD_NUMPY_DIR "$old" \
            a_numpy_older_than_compiled_against_is_an_init_error_that_says_to_upgrade
        record "$minor" "numpy $(PYTHONPATH="$old" npver) refused" "$r" "$d"
    else
        record "$minor" "numpy <1.25 refused" "n/a" "no numpy <1.25 wheel for Python $minor"
    fi
done

echo
echo "== make matrix: Python x numpy (each cell: the whole cargo test suite) =="
printf '%-7s %-52s %-6s %s\n' "Python" "numpy" "result" "tests passed / failing tests"
while IFS='|' read -r py col res detail; do
    printf '%-7s %-52s %-6s %s\n' "$py" "$col" "$res" "$detail"
done <"$SUMMARY"
if grep -q '|FAIL|' "$SUMMARY"; then
    echo "matrix: some cells FAILED (logs under $OUT)"
    exit 1
fi
echo "matrix: all cells that could run passed (logs under $OUT)"
