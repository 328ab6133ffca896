"""Python helpers for `make bench`: the call-only function and Python's own timer."""
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
