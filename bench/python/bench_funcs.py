"""Python helpers for `make bench`: the call-only function, Python's own timer, and its own threads."""
import array
import threading
import time

import numpy as np

_EMPTY = np.empty(0, dtype=np.int64)
_EMPTY.flags.writeable = False


def const(data):
    """Return a constant empty int64 array: the cost of the call, without the work."""
    return _EMPTY


def time_calls(func, data, calls):
    """Call func(data) `calls` times from Python; return the nanoseconds taken.

    This is Python's own time for the function on an array already in Python:
    the floor for any way of calling it from outside.
    """
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(calls):
        func(data)
    return clock() - start


def time_calls_args(func, args, calls):
    """Call func(*args) `calls` times from Python; return the nanoseconds taken."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(calls):
        func(*args)
    return clock() - start


def contend(func, arrays, expected, seconds):
    """Call func(a) nonstop from one Python thread per array in `arrays`.

    Each thread checks its first result against `expected`, then all start
    together and call for `seconds`, timing every call on their own clock.
    Returns (wall_ns, latencies_ns): the time from the start to the end of
    the last call, and every call's latency as an int64 array.
    """
    n = len(arrays)
    start = threading.Barrier(n + 1)
    running = [True]
    latencies = [array.array("q") for _ in range(n)]
    ends = [0] * n
    errors = []

    def worker(i):
        data, out = arrays[i], latencies[i]
        clock, append = time.perf_counter_ns, out.append
        try:
            got = func(data)
            if not np.array_equal(got, expected):
                raise AssertionError(f"returned {got[:5]}..., expected {expected[:5]}...")
        except BaseException as error:  # reported below, after the start
            errors.append(error)
            start.wait()
            return
        start.wait()
        try:
            while running[0]:
                began = clock()
                func(data)
                append(clock() - began)
        except BaseException as error:
            errors.append(error)
        ends[i] = clock()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter_ns()
    time.sleep(seconds)
    running[0] = False
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    merged = np.concatenate([np.frombuffer(out, dtype=np.int64) for out in latencies])
    return max(ends) - began, merged
