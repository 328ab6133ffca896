"""Classes for tests/object.rs: a model as a user would write one (numpy
only), stateful counters, objects that record their finalization, and a
method that keeps its input."""

import threading

import numpy as np


class Model:
    """Ridge regression, thresholded into 0/1 labels."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, x, y):
        d = x.shape[1]
        self.coef_ = np.linalg.solve(x.T @ x + self.alpha * np.eye(d), x.T @ y)
        return self

    def predict(self, x):
        return (x @ self.coef_ > 0.5).astype(np.int64)

    def configure(self, *, alpha):
        self.alpha = alpha
        return self.alpha

    def describe(self):
        return f"Model(alpha={self.alpha})"

    def weighted(self, x, w, bias=0.0):
        return float((x * w).sum() + bias)

    def count(self, batch):
        """Keeps every batch it is given (owned inputs only) and returns how
        many rows it has seen."""
        if not hasattr(self, "batches"):
            self.batches = []
        self.batches.append(batch)
        return sum(b.shape[0] for b in self.batches)

    def batch_sums(self):
        return [float(b.sum()) for b in self.batches]


NOT_CALLABLE = 42


def info():
    """A result of mixed kinds, read as HashMap<String, Value>."""
    return {
        "name": "digits",
        "n": 64,
        "classes": [0, 1, 2],
        "scale": 0.5,
        "fitted": True,
        "weights": np.arange(6, dtype=np.float32).reshape(2, 3),
        "shape": (8, 8),
        "raw": b"\x00\x01",
        "none": None,
    }


class Counter:
    """A running total, safe across threads."""

    def __init__(self, step):
        self.step = step
        self.total = 0
        self.lock = threading.Lock()

    def add(self, x):
        with self.lock:
            self.total += self.step * int(x.sum())
            return self.total


FINALIZED = []


class Tracked:
    """Records its tag when it is finalized."""

    def __init__(self, tag):
        self.tag = tag

    def __del__(self):
        FINALIZED.append(self.tag)


def finalized():
    return list(FINALIZED)


SLOW_DELS = []


class SlowDel:
    """Takes `seconds` to finalize (asleep, without the GIL), or for ever
    (seconds < 0)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __del__(self):
        import time

        SLOW_DELS.append("started")
        while True:
            time.sleep(abs(self.seconds))
            if self.seconds >= 0:
                break
        SLOW_DELS.append("ended")


def slow_dels():
    return list(SLOW_DELS)


def same(a, b):
    return a is b


def ident(x):
    return x


KEPT = []


class Keeper:
    def keep(self, x):
        KEPT.append(x)
        return len(KEPT)


# A model made as the module is imported, reached through Object::import.
DEFAULT = Model(alpha=3.0)
