"""Outlier detection, the Python side of py-in-mem (the article's outliers.py)."""
import numpy as np


def detect(data):
    """Return the indices of values more than 2 standard deviations from the mean."""
    out = np.where(np.abs(data - data.mean()) > 2 * data.std())
    # np.where returns a tuple of index arrays, one per dimension; data is 1-D.
    return out[0]
