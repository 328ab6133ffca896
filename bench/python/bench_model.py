"""The model `make bench` serves ("Serving a model"): a small fitted scaler
held by Rust, its methods called per request. Its numpy work is cheap, so
that the cost of the call itself shows."""
import collections

import numpy as np

LABELS = ("low", "mid", "high", "peak")


class Scaler:
    """A fitted scaler with a one-number "prediction"."""

    def __init__(self, mean=0.25, scale=2.0, keep=4):
        self.mean_ = mean
        self.scale_ = scale
        # The last few batches `observe` was given: Python keeps its inputs.
        self.recent = collections.deque(maxlen=keep)

    def predict(self, x):
        """The sum of the scaled values, as a float."""
        return float(((x - self.mean_) * self.scale_).sum())

    def observe(self, batch):
        """Keeps a 2-D batch (rows x features) and returns its last column's sum."""
        self.recent.append(batch)
        return float(batch[:, -1].sum())

    def classify(self, x):
        """The largest value, where it is and its label, as a dict."""
        index = int(np.argmax(x))
        return {"label": LABELS[index % len(LABELS)], "score": float(x[index]), "index": index}
