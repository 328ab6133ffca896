"""Python functions for py-in-mem's life-cycle tests (tests/lifecycle.rs,
tests/host_python.rs): threads Python creates, a GIL held for long, output
at exit, faulthandler, Python's main thread.

Every function takes an array `data` first, as the crate passes one.
"""
import ctypes
import faulthandler
import sys
import threading

import numpy as np


def call_back_from_python_thread(data, addr=0, n=1):
    """Calls the C function at `addr` (no arguments, returns an int64) `n`
    times from a thread made with `threading`, which then exits."""
    callback = ctypes.CFUNCTYPE(ctypes.c_int64)(addr)
    results = []

    def body():
        for _ in range(n):
            results.append(callback())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return np.array(results, dtype=np.int64)


def hold_gil(data):
    """Holds the GIL for many minutes: sum over a range is one C loop that
    never offers the GIL to another thread. Never returns in a test."""
    return np.array([sum(range(10**12))])


def hold_gil_briefly(data):
    """Holds the GIL for tens of milliseconds, in one C loop."""
    sum(range(2 * 10**6))
    return np.array([0])


def print_and_return(data):
    """Writes to sys.stdout and sys.stderr, both buffered when piped."""
    print("printed by Python, flushed at exit")
    sys.stderr.write("written to sys.stderr without a newline")
    return np.array([0])


def faulthandler_enabled(data, enable=False):
    """Whether faulthandler is enabled, after enabling it if asked to."""
    if enable:
        faulthandler.enable()
    return np.array([faulthandler.is_enabled()])


def main_thread(data):
    """threading.main_thread()'s native id, then the caller's."""
    return np.array(
        [threading.main_thread().native_id, threading.get_native_id()], dtype=np.int64
    )
