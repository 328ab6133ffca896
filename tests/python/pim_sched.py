"""Python functions for py-in-mem's scheduler and held-GIL scope tests
(tests/scheduler.rs, tests/scope.rs).

Every function takes an array `data` first, as the crate passes one.
"""
import threading
import time

import numpy as np

# ---- Python threads beside the crate's calls -----------------------------------

SPINS = [0]
SPINNING = [False]


def start_spinning(data):
    """Starts a Python thread that counts in a loop until stop_spinning."""
    SPINNING[0] = True

    def spin():
        while SPINNING[0]:
            SPINS[0] += 1

    threading.Thread(target=spin, daemon=True).start()
    return np.array([0])


def spins(data):
    return np.array([SPINS[0]], dtype=np.int64)


def stop_spinning(data):
    SPINNING[0] = False
    return np.array([0])


# ---- Long calls -----------------------------------------------------------------

CALLS = []
CALLS_LOCK = threading.Lock()


def sleepy(data, seconds=0.003):
    """A long call that gives the GIL up (as numpy does in its loops):
    records its thread and when it ran."""
    began = time.perf_counter()
    time.sleep(seconds)
    ended = time.perf_counter()
    with CALLS_LOCK:
        CALLS.append((threading.get_ident(), began, ended))
    return np.array([0])


def overlapping_calls(data):
    """How many pairs of recorded calls of different threads overlapped in
    time; clears the record."""
    with CALLS_LOCK:
        calls = sorted(CALLS, key=lambda call: call[1])
        CALLS.clear()
    pairs = 0
    for i, (thread, began, ended) in enumerate(calls):
        for other, other_began, _ in calls[i + 1:]:
            if other_began >= ended:
                break
            if other != thread:
                pairs += 1
    return np.array([pairs, len(calls)], dtype=np.int64)


# ---- A call that waits for another thread's call ----------------------------------

EVENT = threading.Event()


def wait_for_other_call(data, timeout=30.0):
    """Waits (the GIL given up) until set_event is called from another call."""
    return np.array([EVENT.wait(timeout)])


def set_event(data):
    EVENT.set()
    return np.array([0])


# ---- Plain work -------------------------------------------------------------------

def busy_python(data, n=2000):
    """Some Python bytecode (the eval loop offers the GIL to waiting
    threads as it runs), then the sum of data."""
    total = 0
    for i in range(n):
        total += i
    return float(np.sum(data)) + 0 * total


def fail(data):
    raise ValueError("failed on purpose")


def switch_interval(data):
    import sys

    return sys.getswitchinterval()


KEPT = []


def keep(data):
    """Keeps its input (the retention rule moves it onto a copy)."""
    KEPT.append(data)
    return float(data.sum())


def kept_sum(data):
    return float(KEPT[-1].sum())


def keep_view(data):
    """Keeps a view of its input (moved onto a copy with the input)."""
    KEPT.append(data[1:])
    return 0.0


# ---- Changes to an input's view of its memory, in place -------------------------


def reshape_in_place(data):
    """numpy lets any array's shape be set in place, as `x.shape = (-1, 1)`."""
    data.shape = (data.size, 1)
    return 0.0


def retype_in_place(data):
    data.dtype = np.int64
    return 0.0


def swap_byte_order_in_place(data):
    data.dtype = data.dtype.newbyteorder()
    return 0.0


def restride_in_place(data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy 2.3 deprecates setting strides
        data.strides = (0,) * data.ndim
    return 0.0


def unalign_in_place(data):
    data.flags.aligned = False
    return 0.0


WEAK = {}


def take_weak_reference(data):
    import weakref

    WEAK["input"] = weakref.ref(data)
    return 0.0


def retype_through_weak_reference(data):
    """Changes the array another call was given, reached by a weak reference."""
    held = WEAK["input"]()
    if held is not None:
        held.dtype = np.int8
    return 0.0


def describe(data):
    """Shape, sum, and whether the dtype is native float64."""
    native = data.dtype == np.float64 and data.dtype.isnative and data.flags.aligned
    return np.array([*map(float, data.shape), float(data.sum()), float(native)])
