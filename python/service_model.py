"""The model examples/service.rs serves over HTTP (numpy only).

A fitted logistic regression on D = 4 features, with fixed weights so that
a client can check every answer (tests/service.rs computes the same scores
in Rust from the same numbers).

`Model().predict(x)` takes a 2-D float64 array of shape (n, 4) and returns
`(labels, scores)`: the float64 scores `1 / (1 + exp(-(x @ WEIGHTS + BIAS)))`
and the int64 labels `scores >= 0.5`. Any other shape raises ValueError.

`Model().spin(seconds)` is a pure-Python busy loop that runs for `seconds`
and returns how many times it went round: a stand-in for a slow model, for
showing a deadline stopping Python code. A negative or non-finite number of
seconds raises ValueError.
"""
import math
import time

import numpy as np

D = 4
WEIGHTS = (0.5, -1.25, 2.0, 0.75)
BIAS = -0.25


class Model:
    def __init__(self):
        self.weights = np.array(WEIGHTS, dtype=np.float64)
        self.bias = BIAS

    def predict(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != D:
            raise ValueError(f"expected rows of {D} features, got an array of shape {x.shape}")
        scores = 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))
        labels = (scores >= 0.5).astype(np.int64)
        return labels, scores

    def spin(self, seconds):
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
        end = time.monotonic() + seconds
        rounds = 0
        while time.monotonic() < end:
            rounds += 1
        return rounds
