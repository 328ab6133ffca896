"""The model every service of the "Serving over HTTP" section serves.

A fitted logistic regression on D = 16 features: weights and bias made from
a seed by splitmix64 (the same generator as bench/src/http/model.rs, which
computes the answers the bench checks every service against).

`Model().predict(x)` takes a 2-D float64 array of shape (n, 16) and returns
`(labels, scores)`: int64 labels (score >= 0.5) and float64 scores
(the logistic of x @ w + b). Any other shape raises ValueError.
"""
import numpy as np

D = 16
SEED = 19
MASK = (1 << 64) - 1


def splitmix64(state):
    """The next (state, value) of splitmix64, both 64-bit unsigned ints."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def parameters(seed=SEED, d=D):
    """d weights and a bias, each uniform in [-1, 1): (z >> 11) / 2**53 * 2 - 1."""
    state = seed
    values = []
    for _ in range(d + 1):
        state, z = splitmix64(state)
        values.append((z >> 11) / float(1 << 53) * 2.0 - 1.0)
    return np.array(values[:d], dtype=np.float64), values[d]


class Model:
    def __init__(self, seed=SEED):
        self.weights, self.bias = parameters(seed)

    def predict(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != D:
            raise ValueError(f"expected rows of {D} features, got an array of shape {x.shape}")
        scores = 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))
        labels = (scores >= 0.5).astype(np.int64)
        return labels, scores
