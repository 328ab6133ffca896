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


def _array(b, n, data, dtypes=DTYPES):
    dtype = np.dtype(dtypes[b[1] % len(dtypes)])
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


# --- Nested results through the typed conversions (targets 1 to 15) ----------
#
# b[0] >> 4 picks the Rust type the fuzz target asks for (TARGETS; 0 is the
# Outliers path above). The rest of the bytes, read in order by a Cursor,
# build the result: numbers (Python and numpy, every dtype), strings, None,
# n-D arrays, views of the input, and lists, tuples and dicts of those, most
# often shaped like the target so that conversions succeed as well as fail.
# `expect_nested` says, from numpy's and Python's own view of the same
# object, what the crate must return, as a canonical string the fuzz target
# writes for its result too:
#
#   a value       numbers as "i5", "d<hex of the f64's bytes>", "s<f32's>",
#                 "b1", "c(<re>,<im>)"; strings "t<hex of UTF-8>"; Vec
#                 "[a,b]"; NdVec/ResultView "n<shape>[..]"; tuples "(a,b)";
#                 maps "{<hex key>:v,...}" by key; None "none"
#   "BadResult@P"  Error::BadResult at position P ("" for the result itself)
#   "Python"       the builder raised: Error::Python

import struct

TARGETS = [
    None,
    "f64",
    "i64",
    "u8",
    "bool",
    "c128",
    "c64",
    "f32",
    ("vec", "f64"),
    ("vec", "i32"),
    ("nd", "i64"),
    ("nd", "c128"),
    ("tuple", "f64", ("vec", "i64")),
    ("option", ("vec", "f64")),
    ("map", "f64"),
    ("tuple", "str", ("tuple", "bool", ("nd", "f32")), ("view", "f64")),
]

NESTED_DTYPES = [
    "?", "i1", "u1", "<i2", ">u2", "<i4", ">i4", "<u4", "<i8", ">i8", "<u8",
    "<f4", ">f4", "<f8", ">f8", "<c8", ">c8", "<c16", ">c16",
    "<f2", "g", "G", "O", "U2", "M8[s]",
]

SCALAR_TYPES = [
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
    np.int64, np.uint64, np.longlong, np.intc, np.float16, np.float32,
    np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble,
    np.str_, np.bytes_, np.timedelta64,
]

PY_INTS = [0, 1, -1, 255, 256, -129, 2**31, 2**53 + 1, 2**63 - 1, -2**63,
           2**63, 2**64 - 1, 2**64, -2**63 - 1, 2**70]


class Cursor:
    """The fuzz bytes, read in order; zeros once they run out."""

    def __init__(self, b):
        self.b = b
        self.i = 0

    def byte(self):
        v = self.b[self.i] if self.i < len(self.b) else 0
        self.i += 1
        return v

    def take(self, k):
        return bytes(self.byte() for _ in range(k))


def _nd(c, n, data):
    """An n-D array: the header bytes of `_array`, then a short payload."""
    header = c.take(6)
    payload = c.take(1 + c.byte() % 16)
    return _array(bytes([0]) + header + payload, n, data, NESTED_DTYPES)


def _scalar(c):
    kind = SCALAR_TYPES[c.byte() % len(SCALAR_TYPES)]
    raw = c.take(16)
    if kind is np.str_:
        return np.str_("ab"[: raw[0] % 3])
    if kind is np.bytes_:
        return np.bytes_(raw[:2])
    if kind is np.timedelta64:
        return np.timedelta64(raw[0], "s")
    size = np.dtype(kind).itemsize
    return np.frombuffer((raw * 2)[:size], dtype=kind)[0]


def _text(c):
    chars = [chr(0x61 + c.byte() % 26) for _ in range(c.byte() % 4)]
    if c.byte() % 8 == 0:
        chars.append("\udc80")  # a lone surrogate: not UTF-8
    return "".join(chars)


def value(c, n, data, depth):
    """Any result, from the cursor."""
    tag = c.byte() % 16
    if depth >= 3 and tag >= 13:
        tag %= 13
    if tag <= 3:
        return _nd(c, n, data)
    if tag == 4:
        return None
    if tag == 5:
        return PY_INTS[c.byte() % len(PY_INTS)]
    if tag == 6:
        return struct.unpack("<d", c.take(8))[0]
    if tag == 7:
        re, im = struct.unpack("<dd", c.take(16))
        return complex(re, im)
    if tag == 8:
        return bool(c.byte() & 1)
    if tag == 9:
        return _scalar(c)
    if tag == 10:
        return _text(c)
    if tag == 11:
        dtype = np.dtype(NESTED_DTYPES[c.byte() % len(NESTED_DTYPES)])
        if dtype.hasobject:
            return np.array(c.byte(), dtype=object)
        return np.frombuffer((c.take(16) * 2)[: dtype.itemsize], dtype=dtype).reshape(())
    if tag == 12:
        # A view of the input itself (Rust memory, lent for the call).
        view = data.view(np.dtype(["<f8", "<i8", "<u4"][c.byte() % 3]))
        step = c.byte() % 3 + 1
        return view[::step]
    items = [value(c, n, data, depth + 1) for _ in range(c.byte() % 4)]
    if tag == 13:
        return items
    if tag == 14:
        return tuple(items)
    keys = [_text(c) if c.byte() % 5 else c.byte() for _ in items]
    return dict(zip(keys, items))


def value_for(spec, c, n, data, depth=0):
    """Most often a result shaped like `spec`, sometimes anything."""
    if c.byte() % 4 == 0 or depth > 3:
        return value(c, n, data, depth)
    if isinstance(spec, str):
        if spec == "str":
            return _text(c)
        choice = c.byte() % 4
        if choice == 0:
            return PY_INTS[c.byte() % len(PY_INTS)] if c.byte() & 1 else bool(c.byte() & 1)
        if choice == 1:
            return _scalar(c)
        if choice == 2:
            return struct.unpack("<d", c.take(8))[0] if c.byte() & 1 else complex(c.byte(), c.byte())
        return value(c, n, data, depth)
    kind = spec[0]
    if kind in ("vec", "nd", "view"):
        if kind == "vec" and c.byte() % 2:
            items = [value_for(spec[1], c, n, data, depth + 1) for _ in range(c.byte() % 4)]
            return items if c.byte() % 2 else tuple(items)
        return _nd(c, n, data)
    if kind == "tuple":
        parts = list(spec[1:])
        if c.byte() % 8 == 0:
            parts = parts[: c.byte() % (len(parts) + 1)]  # the wrong arity
        return tuple(value_for(part, c, n, data, depth + 1) for part in parts)
    if kind == "option":
        return None if c.byte() % 3 == 0 else value_for(spec[1], c, n, data, depth + 1)
    if kind == "map":
        return {
            (_text(c) if c.byte() % 6 else c.byte()): value_for(spec[1], c, n, data, depth + 1)
            for _ in range(c.byte() % 4)
        }
    raise AssertionError(spec)


def build_nested(data):
    b = _bytes(data)
    spec = TARGETS[b[0] >> 4]
    c = Cursor(b[1:])
    if c.byte() == 255:
        raise ValueError("raised on purpose")
    return value_for(spec, c, len(data), data)


# The oracle: numpy's and Python's own view of what the crate must make.

class Mismatch(Exception):
    def __init__(self, position=""):
        super().__init__(position)
        self.path = [position] if position else []

    def within(self, step):
        self.path.insert(0, step)
        return self


READABLE = {("b", 1), ("i", 1), ("i", 2), ("i", 4), ("i", 8), ("u", 1), ("u", 2),
            ("u", 4), ("u", 8), ("f", 4), ("f", 8), ("c", 8), ("c", 16)}
SCALAR_KINDS = {np.bool_, np.byte, np.ubyte, np.short, np.ushort, np.intc, np.uintc,
                np.int_, np.uint, np.longlong, np.ulonglong, np.float16, np.float32,
                np.float64, np.complex64, np.complex128}
KIND_OF = {"bool": "b", "i64": "iu", "i32": "iu", "u8": "iu", "f64": "f", "f32": "f",
           "c128": "c", "c64": "c"}
INT_RANGE = {"i64": (-2**63, 2**63 - 1), "i32": (-2**31, 2**31 - 1), "u8": (0, 255)}


def kind_converts(kind, target):
    """Element's rule: bool to bool; integers to integers, floats, complex;
    floats to floats and complex; complex to complex."""
    if target == "bool":
        return kind == "b"
    if target in INT_RANGE:
        return kind in "iu"
    if target in ("f64", "f32"):
        return kind in "iuf"
    return kind in "iufc"


def d(v):
    return "dnan" if v != v else "d" + struct.pack("<d", v).hex()


def f32_exact(v):
    """v (an int or a float) as float32 bits, or None if not exact."""
    if isinstance(v, float) and v != v:
        return "snan"
    with np.errstate(over="ignore"):
        f = np.float32(v)
    if isinstance(v, int):
        if not np.isfinite(f) or int(f) != v:
            return None
    elif float(f) != v:
        return None
    return "s" + struct.pack("<f", float(f)).hex()


def f64_of_int(v):
    f = float(v)
    return d(f) if int(f) == v else None


def number(kind, v, target):
    """One element (kind, Python value) as `target`, or None if lossy."""
    if target == "bool":
        return "b1" if v else "b0"
    if target in INT_RANGE:
        lo, hi = INT_RANGE[target]
        return f"i{v}" if lo <= v <= hi else None
    if target == "f64":
        return d(v) if kind == "f" else f64_of_int(v)
    if target == "f32":
        return f32_exact(v)
    if target == "c128":
        if kind == "c":
            return f"c({d(v[0])},{d(v[1])})"
        re = d(v) if kind == "f" else f64_of_int(v)
        return None if re is None else f"c({re},{d(0.0)})"
    # c64
    parts = v if kind == "c" else (v, 0.0)
    re, im = f32_exact(parts[0]), f32_exact(parts[1])
    return None if re is None or im is None else f"c({re},{im})"


def element_value(kind, x):
    if kind == "b":
        return bool(x)
    if kind in "iu":
        return int(x)
    if kind == "f":
        return float(x)
    return (float(x.real), float(x.imag))


def array_elements(arr, target):
    """The elements of an array in C order as `target`, or Mismatch."""
    kind = arr.dtype.kind
    if not kind_converts(kind, target):
        raise Mismatch()
    out = []
    for x in arr.ravel(order="C"):
        if (kind, arr.dtype.itemsize) not in READABLE:
            raise Mismatch()
        got = number(kind, element_value(kind, x), target)
        if got is None:
            raise Mismatch()
        out.append(got)
    return out


def as_array(obj):
    """What the crate reads as an array of numbers: an ndarray, or a number
    (a numpy scalar of a readable kind, a Python bool, int within 64 bits,
    float or complex) as a 0-D array; None for anything else."""
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, np.generic):
        return np.array(obj) if type(obj) in SCALAR_KINDS else None
    if isinstance(obj, bool):
        return np.array(obj)
    if isinstance(obj, int):
        if -2**63 <= obj < 2**63:
            return np.array(obj, dtype=np.int64)
        if 0 <= obj < 2**64:
            return np.array(obj, dtype=np.uint64)
        return None
    if isinstance(obj, float):
        return np.array(obj, dtype=np.float64)
    if isinstance(obj, complex):
        return np.array(obj, dtype=np.complex128)
    return None


def shape_text(shape):
    return ",".join(str(n) for n in shape)


def conv(obj, spec):
    """`obj` as the Rust type `spec`, canonical; raises Mismatch."""
    if spec == "str":
        if isinstance(obj, str):  # numpy's str_ too
            try:
                return "t" + obj.encode("utf-8").hex()
            except UnicodeEncodeError:
                raise Mismatch()
        raise Mismatch()
    if isinstance(spec, str):
        arr = as_array(obj)
        if arr is None or arr.ndim != 0:
            raise Mismatch()
        return array_elements(arr, spec)[0]
    kind = spec[0]
    if kind == "vec":
        if isinstance(obj, np.ndarray):
            if obj.ndim != 1:
                raise Mismatch()
            return "[" + ",".join(array_elements(obj, spec[1])) + "]"
        if isinstance(obj, (list, tuple)):
            container = "tuple" if isinstance(obj, tuple) else "list"
            out = []
            for i, item in enumerate(obj):
                try:
                    out.append(conv(item, spec[1]))
                except Mismatch as m:
                    raise m.within(f"element {i} of the {container}")
            return "[" + ",".join(out) + "]"
        raise Mismatch()
    if kind == "nd":
        arr = as_array(obj)
        if arr is None:
            raise Mismatch()
        return f"n{shape_text(arr.shape)}[" + ",".join(array_elements(arr, spec[1])) + "]"
    if kind == "view":
        if not isinstance(obj, np.ndarray) or obj.dtype.kind != "f" or obj.dtype.itemsize != 8 \
                or not obj.dtype.isnative:
            raise Mismatch()
        return f"n{shape_text(obj.shape)}[" + ",".join(array_elements(obj, "f64")) + "]"
    if kind == "tuple":
        parts = spec[1:]
        if not isinstance(obj, tuple) or len(obj) != len(parts):
            raise Mismatch()
        out = []
        for i, (item, part) in enumerate(zip(obj, parts)):
            try:
                out.append(conv(item, part))
            except Mismatch as m:
                raise m.within(f"element {i} of the tuple")
        return "(" + ",".join(out) + ")"
    if kind == "option":
        return "none" if obj is None else conv(obj, spec[1])
    if kind == "map":
        if not isinstance(obj, dict):
            raise Mismatch()
        out = {}
        for position, (key, item) in enumerate(obj.items()):
            if not isinstance(key, str):
                raise Mismatch(f"key {position} of the dict")
            try:
                text = key.encode("utf-8")
            except UnicodeEncodeError:
                raise Mismatch(f"key {position} of the dict")
            try:
                out[text] = conv(item, spec[1])
            except Mismatch as m:
                raise m.within(f"value of key '{key}' of the dict")
        return "{" + ",".join(f"{k.hex()}:{v}" for k, v in sorted(out.items())) + "}"
    raise AssertionError(spec)


def expect_nested(data):
    spec = TARGETS[_bytes(data)[0] >> 4]
    try:
        result = build_nested(data)
    except Exception:
        return "Python"
    try:
        return conv(result, spec)
    except Mismatch as m:
        return "BadResult@" + ", ".join(m.path)
