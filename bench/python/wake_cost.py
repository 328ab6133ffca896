"""What waking a sleeping thread on another CPU costs the thread that wakes it.

A serving thread wakes the callers' executor once for each batch of
results: a system call that wakes a thread asleep on the other vCPU. This
measures that cost directly, in plain Python, without the crate: rounds of
`outliers.detect` calls on the last CPU, alternating between three kinds
of round, each with one action every EVERY calls:

- none: nothing;
- null: one `write` of a byte to /dev/null (a system call that wakes
  nobody);
- wake: one `write` of a byte to a pipe that another process, pinned to the
  first CPU, waits to read (a system call that wakes a thread asleep on the
  other CPU, as the serving thread's wake-ups do).

    .venv/bin/python bench/python/wake_cost.py [ROUNDS] [CALLS] [EVERY]   # 60 3000 5

It prints each kind's calls/s over the same round's "none" calls/s
(median and quartiles) and, from the "wake" median, what one wake-up cost
the calling thread in µs.

Needs two CPUs or more.
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import outliers  # noqa: E402
from sibling_load import pin_to_last_cpu, rate as rate_alone  # noqa: E402


def rate(data, calls, every, fd):
    """Calls/s of `calls` calls, writing a byte to `fd` every `every` calls
    (nothing if `fd` is None)."""
    if fd is None:
        return rate_alone(data, calls)
    started = time.perf_counter()
    for i in range(calls):
        outliers.detect(data.copy())
        if i % every == 0:
            os.write(fd, b"x")
    return calls / (time.perf_counter() - started)


def main():
    args = sys.argv[1:]
    rounds = int(args[0]) if len(args) > 0 else 60
    calls = int(args[1]) if len(args) > 1 else 3000
    every = int(args[2]) if len(args) > 2 else 5
    other_cpu = pin_to_last_cpu("wake_cost")
    data = np.random.default_rng(0).normal(size=1000)
    read_end, write_end = os.pipe()
    reader_code = (
        "import os, sys\n"
        f"os.sched_setaffinity(0, {{{other_cpu}}})\n"
        "fd = int(sys.argv[1])\n"
        "while os.read(fd, 4096):\n"
        "    pass\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", reader_code, str(read_end)], pass_fds=(read_end,)
    )
    os.close(read_end)
    null = os.open(os.devnull, os.O_WRONLY)
    kinds = {"none": None, "null": null, "wake": write_end}
    ratios = {"null": [], "wake": []}
    try:
        for fd in kinds.values():  # warm up
            rate(data, calls // 10, every, fd)
        base = []
        for _ in range(rounds):
            got = {kind: rate(data, calls, every, fd) for kind, fd in kinds.items()}
            base.append(got["none"])
            for kind in ratios:
                ratios[kind].append(got[kind] / got["none"])
    finally:
        os.close(write_end)  # the reader sees the end of the pipe and exits
        os.close(null)
        try:
            reader.wait(timeout=5)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
    call_us = 1e6 / statistics.median(base)
    for kind, values in ratios.items():
        values.sort()
        median = statistics.median(values)
        print(
            f"{kind}: calls/s with one write every {every} calls / none: median "
            f"{median:.3f}x (quartiles {values[len(values) // 4]:.3f}-"
            f"{values[len(values) * 3 // 4]:.3f}x), about "
            f"{(1 / median - 1) * every * call_us:.1f} µs a write"
        )
    print(
        f"over {rounds} rounds of {calls} calls of each kind; a call alone "
        f"{call_us:.1f} µs (median)"
    )


if __name__ == "__main__":
    main()
