#!/usr/bin/env bash
# `make memcheck`: every integration test binary under valgrind memcheck,
# children included, with PYTHONMALLOC=malloc (so every Python object is a
# malloc block valgrind tracks, not a piece of a pymalloc arena), and the
# suppressions in scripts/memcheck.supp. Fails on any error valgrind counts
# (invalid reads or writes, uses of uninitialised values, ...) and on any
# definitely-lost block.
#
# Not run under valgrind, and why:
# - tests/memory.rs and tests/thread_states.rs measure resident memory:
#   valgrind's own allocator makes the numbers meaningless, and the leaks
#   they guard against are what memcheck's leak check finds directly.
# - tests/downstream.rs and tests/docs_rs.rs run cargo (to build the fixture
#   binaries, and to package the crate and document it): under
#   --trace-children, cargo and rustc would run under valgrind.
# - tests/soak.rs is ignored by default (make soak).
# - doc tests are compiled by rustdoc at test time, not integration tests.
#
# Two kinds of process have their leak record left out of the count (their
# other errors still count), each with the reason where it is recognized
# below: a copy forked without exec, and a host that finalized Python.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/memcheck"
rm -rf "$OUT"
mkdir -p "$OUT/logs"
cd "$ROOT"

# MEMCHECK_FEATURES: cargo features to build the tests with; every optional
# feature by default, so that the feature-gated tests (tests/serde.rs,
# tests/bytes.rs, the ndarray cases) run under valgrind too (an empty value
# builds without features, as the first pass of `make test` does);
# MEMCHECK_ONLY: a space-separated list of test binaries to run (all of them
# by default), for a quicker check of a few.
MEMCHECK_FEATURES=${MEMCHECK_FEATURES-ndarray,serde,bytes}
FEATURES=(${MEMCHECK_FEATURES:+--features "$MEMCHECK_FEATURES"})
cargo test --no-run "${FEATURES[@]}" --message-format=json 2>/dev/null >"$OUT/build.json" || {
    cargo test --no-run "${FEATURES[@]}"
    exit 1
}
mapfile -t BINARIES < <("$ROOT/.venv/bin/python" - "$OUT/build.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    msg = json.loads(line)
    target = msg.get("target", {})
    if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
            and "test" in target.get("kind", []) and target.get("name") not in ("memory", "soak", "thread_states", "downstream", "docs_rs")):
        print(msg["executable"])
PY
)

status=0
for bin in "${BINARIES[@]}"; do
    name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
    if [[ -n ${MEMCHECK_ONLY:-} && " $MEMCHECK_ONLY " != *" $name "* ]]; then
        continue
    fi
    echo "memcheck: $name"
    # --trace-children: the child-process tests run the same binary again;
    # the interpreters they start only to make a virtualenv are skipped.
    # perl: a shell started in the background ignores SIGINT, and the
    # Ctrl-C test needs the default (see scripts/matrix.sh).
    # --fair-sched: valgrind runs one thread at a time, and without it a
    # thread looping on calls can starve the one that is exiting.
    # PIM_MEMCHECK: tells tests/host_python.rs that valgrind's exit code 99
    # may stand for the leaks of Py_FinalizeEx, judged below.
    PYTHONMALLOC=malloc PROPTEST_CASES=32 PIM_HANG_SECS=300 PIM_MEMCHECK=1 perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!"' \
        valgrind --tool=memcheck --error-exitcode=99 --fair-sched=yes \
        --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
        --suppressions="$ROOT/scripts/memcheck.supp" --gen-suppressions=all \
        --trace-children=yes --trace-children-skip='*/python*,*/venv/bin/*' \
        --log-file="$OUT/logs/$name.%p.log" \
        "$bin" --test-threads=1 >"$OUT/$name.out" 2>&1
    rc=$?
    tail -n 3 "$OUT/$name.out" | grep -E 'test result' || true
    if [[ $rc != 0 ]]; then
        echo "memcheck: $name exited $rc (see $OUT/$name.out)"
        status=1
    fi
done

echo
echo "== make memcheck: valgrind summaries, one line per process =="
untraced=0 errors=0 lost_bytes=0
for log in "$OUT"/logs/*.log; do
    name_of_log=$(basename "$log" .log)
    name_of_log=${name_of_log%.*}
    summary=$(grep -h 'ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //')
    lost=$(grep -h 'definitely lost:' "$log" | sed 's/^==[0-9]*== *//')
    if [[ -z $summary ]]; then
        # valgrind opens the log at fork; a child that then execs a program
        # it does not trace (python -m venv) leaves only the header.
        printf '%-36s %s\n' "$(basename "$log" .log)" "not traced: $(grep -h -o 'Command: .*' "$log" | head -1)"
        untraced=$((untraced + 1))
        continue
    fi
    # A copy forked without exec (tests/lifecycle.rs forks to test fork):
    # the same command as its parent. It has the parent's memory but not
    # its other threads, so what only they pointed to shows as definitely
    # lost, and its error count starts from the parent's at the fork. Only
    # the errors it reports itself count.
    parent=$(grep -h -o 'Parent PID: [0-9]*' "$log" | head -1 | awk '{print $3}')
    parent_log="$OUT/logs/$name_of_log.$parent.log"
    command=$(grep -h -o 'Command: .*' "$log" | head -1)
    if [[ -n $parent && -f $parent_log && $command == "$(grep -h -o 'Command: .*' "$parent_log" | head -1)" ]]; then
        others=$(grep -c -E '^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)' "$log")
        printf '%-36s forked copy of %s: %s errors of its own (leak record not counted) | %s\n' \
            "$(basename "$log" .log)" "$parent" "$others" "${lost:-definitely lost: 0 bytes in 0 blocks}"
        errors=$((errors + others))
        continue
    fi
    if [[ $command == *" child_host_finalizes_python "* ]]; then
        # A host finalizing Python (tests/host_python.rs): CPython and numpy
        # leave objects behind at Py_FinalizeEx by design (numpy's static
        # references; CPython's caches), none allocated by the crate (each
        # record checked when this rule was written). Its other errors count.
        others=$(grep -c -E '^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)' "$log")
        printf '%-36s after Py_FinalizeEx: %s errors other than leaks (leak record not counted) | %s\n' \
            "$(basename "$log" .log)" "$others" "${lost:-definitely lost: 0 bytes in 0 blocks}"
        errors=$((errors + others))
        continue
    fi
    signal=$(grep -h -o 'Process terminating with default action of signal [0-9]* ([A-Z]*)' "$log" | head -1)
    if [[ -n $signal ]]; then
        # Killed on purpose by its test (Ctrl-C, or the retention abort)
        # in the middle of a call: the objects of that call are held only by
        # the killed thread's registers, so a leak record says nothing of
        # the crate. Its errors other than leaks still count.
        others=$(grep -c -E '^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)' "$log")
        printf '%-36s %s: %s errors other than leaks (leak record not counted) | %s\n' \
            "$(basename "$log" .log)" "${signal#Process terminating with default action of }" "$others" "${lost:-definitely lost: 0 bytes in 0 blocks}"
        errors=$((errors + others))
        continue
    fi
    printf '%-36s %s | %s\n' "$(basename "$log" .log)" "$summary" "${lost:-definitely lost: 0 bytes in 0 blocks}"
    errors=$((errors + $(echo "$summary" | awk '{print $3}')))
    lost_bytes=$((lost_bytes + $(echo "${lost:-definitely lost: 0 bytes}" | awk '{gsub(",", "", $3); print $3}')))
done
echo "memcheck: $(ls "$OUT"/logs/*.log | wc -l) processes ($untraced forked only to exec an untraced program), $errors errors, $lost_bytes bytes definitely lost"
if [[ $errors != 0 || $lost_bytes != 0 ]]; then
    status=1
fi
exit $status
