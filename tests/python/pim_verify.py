"""Python helpers for py-in-mem's verification tests (property, soak, fuzz).

Every function takes the borrowed input array `data` and returns a 1-D numpy
array of indices into it, as the crate requires.
"""
import numpy as np


def numpy_version(data):
    """[major, minor] of the running numpy, as indices (len(data) > 100)."""
    major, minor = (int(part) for part in np.__version__.split(".")[:2])
    return np.array([major, minor], dtype=np.int64)


def raise_sometimes(data):
    """Raises, after touching the data, so the exception path holds a frame."""
    total = float(data.sum())
    raise ValueError(f"raised on purpose after summing {data.size} values to {total}")
