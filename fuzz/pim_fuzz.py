"""The Python side of the `result_shapes` fuzz target (fuzz/fuzz_targets/).

The input array holds one fuzz byte per value (0.0 to 255.0). `build` turns
those bytes into what a detect function returns: a numpy array of any dtype,
byte order, dimensions, strides, alignment and values, a view of the input
itself, a non-array object, or an exception. `expect` says, from numpy's
own high-level view of the same object, what the crate must make of it:

    [0, i0, i1, ...]  a valid result: the crate must return [i0, i1, ...]
    [1]               not a 1-D integer array of indices: Error::BadResult
    [2]               build raised: Error::Python

Byte layout: b[0] kind, b[1] dtype, b[2] ndim and value mode, b[3:6] dims,
b[6] strides and alignment, b[7:] values (cycled).
"""
import numpy as np

INTEGER_DTYPES = [
    "i1", "u1", "<i2", ">i2", "<u2", ">u2", "<i4", ">i4",
    "<u4", ">u4", "<i8", ">i8", "<u8", ">u8", "intc", "uintp",
]
OTHER_DTYPES = [
    "?", "<f2", "<f4", ">f8", "<c8", "O", "M8[s]", "m8[s]", "U2", "S3", "V4",
    "<i4,<i2", "f16",
]
DTYPES = INTEGER_DTYPES * 2 + OTHER_DTYPES


def _bytes(data):
    return data.astype(np.uint8).tobytes()


def _array(b, n, data):
    dtype = np.dtype(DTYPES[b[1] % len(DTYPES)])
    ndim = b[2] % 4
    shape = tuple(b[3 + i] % 9 for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    layout = b[6]
    nbytes = count * dtype.itemsize
    # Raw bytes, cycled: any bit pattern, so any value of the dtype.
    payload = b[7:] or b"\0"
    raw = (payload * (nbytes // len(payload) + 1))[:nbytes]
    if dtype.hasobject:
        arr = np.array(list(raw[:count]), dtype=object).reshape(shape)
    elif layout & 0x40:
        # Stored one byte off the dtype's alignment.
        store = np.zeros(nbytes + 1, dtype=np.uint8)
        store[1:] = np.frombuffer(raw, dtype=np.uint8)
        arr = store[1:].view(dtype).reshape(shape)
    else:
        arr = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
    if (b[2] >> 4) & 1 and dtype.kind in "iu" and count:
        # In-range indices more often: values modulo n, cast back (a small
        # dtype wraps, which is a valid, if surprising, value too).
        arr = (arr.astype(np.int64) % n).astype(dtype)
    if ndim >= 1:
        step = (layout % 5) - 2  # -2, -1, 0, 1, 2
        if step == 0:
            # Stride 0: one element repeated.
            arr = np.broadcast_to(arr[:1], arr.shape)
        else:
            arr = arr[::step]
    if ndim == 2 and layout & 0x80:
        arr = arr.T
    if ndim >= 1 and layout & 0x20:
        arr = np.asfortranarray(arr)
    return arr


def build(data):
    b = _bytes(data)
    n = len(data)
    kind = b[0] % 16
    if kind <= 9:
        return _array(b, n, data)
    if kind == 10:
        return None
    if kind == 11:
        return [int(x) % n for x in b[7:]]
    if kind == 12:
        return int(b[1])
    if kind == 13:
        return np.int64(b[1] % n)
    if kind == 14:
        # A view of the input (Rust memory) as integers: read while the input
        # is still lent, released before the crate checks for retention.
        view = data.view(np.dtype(INTEGER_DTYPES[b[1] % len(INTEGER_DTYPES)]))
        step = (b[6] % 4) + 1
        return view[:: -step if b[6] & 0x80 else step]
    raise ValueError(f"raised on purpose for kind {kind}")


def expect(data):
    n = len(data)
    try:
        result = build(data)
    except Exception:
        return np.array([2], dtype=np.int64)
    if (
        isinstance(result, np.ndarray)
        and result.ndim == 1
        and result.dtype.kind in "iu"
    ):
        values = [int(v) for v in result]
        if all(0 <= v < n for v in values):
            return np.array([0] + values, dtype=np.int64)
    return np.array([1], dtype=np.int64)
