"""How much work on one CPU slows a thread calling `outliers.detect` on another.

The async section of `make bench` compares one synchronous thread, whose
sibling vCPU is idle, with a serving thread whose sibling runs the
executor. On a virtual machine two vCPUs may share a physical core or its
caches and power budget on the host, which the guest cannot see. This
measures that directly, in plain Python, without the crate: rounds of
`outliers.detect` calls on the last CPU, alternating between an idle first
CPU and one busy with the same loop in another process (stopped and
continued by its PID between the halves of each round).

    .venv/bin/python bench/python/sibling_load.py [ROUNDS] [CALLS] [--bursts]   # 100 2000

With `--bursts` the other CPU's loop works in short bursts, as the
executor of `make bench`'s async rounds does: five calls (about 100 µs),
then a 0.6 ms sleep, so that its vCPU halts and is woken over a thousand
times a second.

Needs two CPUs or more.
"""

import os
import signal
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import outliers  # noqa: E402


def rate(data, calls):
    started = time.perf_counter()
    for _ in range(calls):
        outliers.detect(data.copy())
    return calls / (time.perf_counter() - started)


def pin_to_last_cpu(script):
    """Pins this process to the last of its CPUs, and returns the first, for
    the other process; exits, naming `script`, unless there are two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit(f"{script}: needs two CPUs or more")
    os.sched_setaffinity(0, {cpus[-1]})
    return cpus[0]


def main():
    bursts = "--bursts" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--bursts"]
    rounds = int(args[0]) if len(args) > 0 else 100
    calls = int(args[1]) if len(args) > 1 else 2000
    other_cpu = pin_to_last_cpu("sibling_load")
    data = np.random.default_rng(0).normal(size=1000)
    rate(data, calls // 10)  # warm up
    busy_code = (
        "import os, sys, time, numpy as np\n"
        f"os.sched_setaffinity(0, {{{other_cpu}}})\n"
        f"sys.path.insert(0, {os.path.join(HERE, '..', '..', 'python')!r})\n"
        "import outliers\n"
        "d = np.random.default_rng(1).normal(size=1000)\n"
        "while True:\n"
        + (
            "    for _ in range(5):\n"
            "        outliers.detect(d.copy())\n"
            "    time.sleep(0.0006)\n"
            if bursts
            else "    outliers.detect(d.copy())\n"
        )
    )
    # The busy process runs throughout; it is stopped (SIGSTOP) during the
    # idle half of each round, so that the halves alternate quickly and
    # the host's own swings in speed hit both alike.
    busy_process = subprocess.Popen([sys.executable, "-c", busy_code])
    ratios = []
    try:
        time.sleep(1.0)  # numpy imported, the loop running
        for _ in range(rounds):
            os.kill(busy_process.pid, signal.SIGSTOP)
            idle = rate(data, calls)
            os.kill(busy_process.pid, signal.SIGCONT)
            busy = rate(data, calls)
            ratios.append(busy / idle)
    finally:
        busy_process.kill()
        busy_process.wait()
    ratios.sort()
    load = "busy in bursts" if bursts else "busy"
    print(
        f"calls/s with the other CPU {load} / idle: median {statistics.median(ratios):.3f}x, "
        f"10th-90th percentiles {ratios[len(ratios) // 10]:.3f}-"
        f"{ratios[len(ratios) * 9 // 10]:.3f}x, over {rounds} alternating rounds "
        f"of {calls} calls each way"
    )


if __name__ == "__main__":
    main()
