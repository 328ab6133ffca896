"""Python functions that misbehave on purpose, for py-in-mem's tests.

Every function takes the borrowed input array `data`.
"""
import abc
import collections
import sys
import types

import numpy as np


class CustomError(Exception):
    """An exception type defined outside builtins."""


# --- exceptions ---------------------------------------------------------------

def raise_value(data):
    raise ValueError("boom")


def raise_custom(data):
    raise CustomError(f"custom with {len(data)} values")


def raise_empty_message(data):
    raise RuntimeError()


def raise_system_exit(data):
    sys.exit(3)


def raise_keyboard_interrupt(data):
    raise KeyboardInterrupt("from python")


def raise_after_local_store(data):
    kept_in_frame = data  # the frame holds it, and the traceback holds the frame
    raise RuntimeError(f"failed after storing {kept_in_frame.size} values locally")


# --- results of the wrong kind ----------------------------------------------

def returns_none(data):
    return None


def returns_list(data):
    return [0]


def returns_input(data):
    return data


def returns_floats(data):
    return np.array([0.0, 1.0])


def returns_bools(data):
    return np.array([True, False])


def returns_2d(data):
    return np.zeros((1, 1), dtype=np.int64)


def returns_0d(data):
    return np.array(0)


def returns_scalar(data):
    return np.int64(0)


def returns_len(data):
    return np.array([len(data)])


def returns_python_int(data):
    return 7


def returns_negative(data):
    return np.array([0, -1])


def returns_huge_unsigned(data):
    return np.array([2**64 - 1], dtype=np.uint64)


# --- results of the right kind, in every shape numpy can give ---------------

def returns_int32(data):
    return np.array([0, len(data) - 1], dtype=np.int32)


def returns_uint8(data):
    return np.array([1, 0], dtype=np.uint8)


def returns_big_endian(data):
    return np.array([2, 1], dtype=">i8")


def returns_reversed_stride(data):
    return np.arange(len(data), dtype=np.int16)[::-2]


def returns_zero_stride(data):
    return np.broadcast_to(np.uint32(1), (3,))


def returns_unaligned(data):
    buf = bytearray(1 + 4 * 3)
    arr = np.frombuffer(buf, dtype="<i4", offset=1)
    arr[:] = [2, 0, 1]
    return arr


def returns_empty(data):
    return np.array([], dtype=np.intp)


# --- writes to the read-only input -------------------------------------------

def write_input(data):
    data[0] = -1.0
    return np.array([0])


def write_view(data):
    view = data[1:]
    view[0] = -1.0
    return np.array([0])


def set_writeable(data):
    data.flags.writeable = True
    data[0] = -1.0
    return np.array([0])


def write_through_copyto(data):
    np.copyto(data, 0.0)
    return np.array([0])


# --- reference cycles that are garbage, not retention ------------------------

def dead_cycle(data):
    holder = [data]
    holder.append(holder)  # unreachable after return, freed by gc.collect
    return np.array([0])


# --- retention: the function keeps its input ---------------------------------
# Plain containers: the crate moves the kept array onto a copy and the call
# returns Error::InputRetained.

KEPT = []
KEPT_DICT = {}
KEPT_CLOSURES = []
KEPT_ARRAY = None


def keep_global(data):
    global KEPT_ARRAY
    KEPT_ARRAY = data
    return np.array([0])


def keep_in_list(data):
    KEPT.append(data)
    return np.array([0])


def keep_in_dict(data):
    KEPT_DICT[len(KEPT_DICT)] = data
    return np.array([0])


def keep_in_closure_cycle(data):
    def reader():
        return data

    reader.myself = reader  # a reference cycle, kept alive through KEPT_CLOSURES
    KEPT_CLOSURES.append(reader)
    return np.array([0])


def dead_closure_cycle(data):
    def reader():
        return data

    reader.myself = reader  # a reference cycle nobody can reach: garbage
    return np.array([0])


class _Cache(dict):
    """A dict subclass defined in Python, as a model's cache may be."""


class _History(list):
    """A list subclass defined in Python."""


_Pair = collections.namedtuple("_Pair", "array tag")

KEPT_IN_SUBCLASSES = {"dict": _Cache(), "list": _History(), "namedtuple": []}


def keep_in_dict_subclass(data):
    KEPT_IN_SUBCLASSES["dict"]["x"] = data
    return np.array([0])


def kept_in_dict_subclass(data):
    return KEPT_IN_SUBCLASSES["dict"]["x"].copy()


def keep_in_list_subclass(data):
    KEPT_IN_SUBCLASSES["list"].append(data)
    return np.array([0])


def kept_in_list_subclass(data):
    return KEPT_IN_SUBCLASSES["list"][-1].copy()


def keep_in_namedtuple(data):
    KEPT_IN_SUBCLASSES["namedtuple"].append(_Pair(data, 1))
    return np.array([0])


def kept_in_namedtuple(data):
    return KEPT_IN_SUBCLASSES["namedtuple"][-1].array.copy()


class _Recent(collections.deque):
    """A deque subclass defined in Python."""


KEPT_IN_STDLIB = {
    "OrderedDict": collections.OrderedDict(),
    "defaultdict": collections.defaultdict(list),
    "deque": collections.deque(maxlen=4),
    "deque_subclass": _Recent(),
    "SimpleNamespace": [],
}


def keep_in_stdlib_holders(data):
    """Keeps the input in the C containers of the standard library."""
    KEPT_IN_STDLIB["OrderedDict"]["x"] = data
    KEPT_IN_STDLIB["defaultdict"]["x"].append(data[1:])
    KEPT_IN_STDLIB["deque"].append(data)
    KEPT_IN_STDLIB["deque_subclass"].append(data)
    import types

    KEPT_IN_STDLIB["SimpleNamespace"].append(types.SimpleNamespace(x=data))
    return np.array([0])


def kept_in_stdlib_holders(data):
    kept = KEPT_IN_STDLIB["OrderedDict"]["x"]
    assert kept is KEPT_IN_STDLIB["deque"][-1] is KEPT_IN_STDLIB["deque_subclass"][-1]
    assert kept is KEPT_IN_STDLIB["SimpleNamespace"][-1].x
    assert np.array_equal(kept[1:], KEPT_IN_STDLIB["defaultdict"]["x"][-1])
    return kept.copy()


class _History:
    history = []  # a class attribute: the class's namespace holds it


class _AbcHistory(abc.ABC):
    history = []


def keep_in_class(data):
    """Keeps the input and a view of it in class attributes, of a plain class
    and of an ABC (whose metaclass, ABCMeta, is defined in Python)."""
    _History.history.append(data[:2])
    _History.last = data
    _AbcHistory.history.append(data)
    return np.array([0])


def kept_in_class(data):
    kept = _History.last
    assert kept is _AbcHistory.history[-1]
    assert np.array_equal(kept[:2], _History.history[-1])
    return kept.copy()


KEPT_ITERATING = []


def _batches(x, k):
    for i in range(0, len(x), k):
        yield x[i:i + k]


def keep_iterating(data):
    """Keeps the input in generators, builtin iterators and a mapping
    proxy."""
    started = _batches(data, 2)
    assert next(started).tolist() == data[:2].tolist()
    KEPT_ITERATING[:] = [
        _batches(data, 2), started, iter(data), enumerate(data), zip(data, data[1:]),
        map(float, data), reversed(data), filter(None, data), iter([data]),
        types.MappingProxyType({"x": data}), reversed([data[:1]]), {"v": data}.values(),
        iter({"i": data}.items()), reversed({"r": data}.values()),
    ]
    return np.array([0])


def kept_iterating(data):
    fresh, started, it, en, zi, ma, rev, fi, listed, proxy = KEPT_ITERATING[:10]
    list_rev, dict_values, dict_items, dict_rev = KEPT_ITERATING[10:]
    kept = proxy["x"]
    assert next(listed) is kept
    assert next(dict_items)[1] is kept and next(dict_rev) is kept
    assert next(iter(dict_values)) is kept
    assert next(list_rev).tolist() == kept[:1].tolist()
    values = kept.tolist()
    assert [b.tolist() for b in fresh] == [values[:2], values[2:]]
    assert [b.tolist() for b in started] == [values[2:]]
    assert [float(v) for v in it] == values
    assert [(i, float(v)) for i, v in en] == list(enumerate(values))
    assert [(float(a), float(b)) for a, b in zi] == list(zip(values, values[1:]))
    assert list(ma) == values
    assert [float(v) for v in rev] == values[::-1]
    assert [float(v) for v in fi] == [v for v in values if v]
    return kept.copy()


KEPT_AFTER_EXPORT = []


def keep_after_exports(data):
    """Exports buffers of its input and lets them go (numpy still remembers
    that it exported one), then keeps the input and a view of it."""
    assert bytes(data) == data.tobytes()
    with memoryview(data) as view:
        assert view.nbytes == data.nbytes
    tail = data[1:]
    with memoryview(tail):
        pass
    element = data.view([("a", data.dtype)])[0]
    with memoryview(element):
        pass
    KEPT_AFTER_EXPORT.append((data, tail, element))
    return np.array([0])


def kept_after_exports(data):
    kept, tail, element = KEPT_AFTER_EXPORT[-1]
    assert np.array_equal(kept[1:], tail)
    assert element["a"] == kept[0]
    return kept.copy()


KEPT_FROMBUFFER = []


def keep_frombuffer(data):
    """np.frombuffer over the input itself: an array over the input's memory
    whose base is the input, as a view's is."""
    arr = np.frombuffer(data)
    assert arr.base is data, type(arr.base)
    KEPT_FROMBUFFER.append(arr)
    return np.array([0])


def kept_frombuffer(data):
    return KEPT_FROMBUFFER[-1].copy()


KEPT_BEFORE_RAISING = []  # not KEPT: tests running at the same time read KEPT[-1]


def keep_then_raise(data):
    KEPT_BEFORE_RAISING.append(data)
    raise ValueError("kept, then raised")


def kept_global(data):
    return KEPT_ARRAY.copy()


def kept_in_list(data):
    return KEPT[-1].copy()


def kept_in_dict(data):
    return KEPT_DICT[len(KEPT_DICT) - 1].copy()


def kept_in_closure(data):
    return KEPT_CLOSURES[-1]().copy()


# Kept under a tag, so tests running at once do not read each other's.
KEPT_TAGGED = {}


def keep_tagged(data, tag):
    KEPT_TAGGED[tag] = data
    return np.array([0])


def kept_tagged(data, tag):
    return KEPT_TAGGED[tag].copy()


def write_kept_tagged(data, tag):
    KEPT_TAGGED[tag][...] = 0
    return np.array([0])


# Numpy views of the input, kept: moved onto a copy with the input.

KEPT_VIEWS = {}

def _caught(x):
    """A ValueError carrying a view, caught as `except ... as e` catches it:
    its traceback holds this frame, whose locals hold the input."""
    try:
        raise ValueError("bad row", x[1:])
    except ValueError as e:
        return e


class RowError(KeyError):
    """An exception class defined in Python over one of CPython's."""


def _row_error(x):
    error = RowError("rows")
    error.rows = x[::-1]
    return error


VIEWS = {
    "tail": lambda x: x[1:],
    "reshape": lambda x: x.reshape(-1, 1),
    "view_of_view": lambda x: x[::-1][1:],
    "view_of_view_of_view": lambda x: x.T.view()[::2],
    "array_and_view": lambda x: (x, x[1:]),
    # np.matrix is an ndarray subclass: a view of a matrix view has that
    # view as its base, a chain the check follows.
    "matrix_view": lambda x: np.asmatrix(x.reshape(1, -1))[:, 1:],
    "broadcast": lambda x: np.broadcast_to(x, (2, 3)),
    # Exceptions kept (a log of the errors seen): seen whole by the check.
    "exception": _caught,
    "exception_subclass": _row_error,
    # An element of a structured view points into the input's memory
    # (numpy.void), as does a record of a recarray over it (numpy.record,
    # a class defined in Python over numpy.void).
    "element": lambda x: x.view([("a", "f8")])[1],
    "record": lambda x: x.view([("a", "f8")]).view(np.recarray)[2],
    "elements_in_list": lambda x: [x.view([("a", "f8")])[i] for i in (2, 0)],
}


def keep_view_global(data):
    """x[1:] in a module global."""
    global KEPT_VIEW
    KEPT_VIEW = data[1:]
    return np.array([0])


def kept_view_global(data):
    return KEPT_VIEW.copy()


def write_kept_view_global(data):
    KEPT_VIEW[...] = 0
    return np.array([0])


def keep_view_tagged(data, how):
    KEPT_VIEWS[how] = VIEWS[how](data)
    return np.array([0])


def kept_view_tagged(data, how):
    kept = KEPT_VIEWS[how]
    if isinstance(kept, BaseException):
        kept = kept.args[1] if len(kept.args) > 1 else kept.rows
    if isinstance(kept, np.void):
        return np.array(kept.tolist(), dtype=np.float64)
    if isinstance(kept, list):
        return np.array([k.tolist() for k in kept], dtype=np.float64).ravel()
    if isinstance(kept, tuple):
        return np.concatenate([np.asarray(a).ravel() for a in kept]).astype(np.float64)
    return np.asarray(kept).ravel().astype(np.float64)


class Model:
    """A model keeping part of its training data, as scikit-learn's do."""

    def fit(self, X):
        self.X_ = X[:, :2]
        return self


MODEL = Model()


def fit_model(data):
    MODEL.fit(data)
    return np.array([0])


def model_kept(data):
    return MODEL.X_.copy()


# Views, buffers and unknown holders point into the memory itself: abort.

class Holder:
    pass


HOLDERS = []


def keep_view(data):
    KEPT.append(data[1:])
    return np.array([0])


def keep_memoryview(data):
    KEPT.append(memoryview(data))
    return np.array([0])


def keep_as_attribute(data):
    holder = Holder()
    holder.data = data
    HOLDERS.append(holder)
    return np.array([0])


def kept_as_attribute(data):
    return HOLDERS[-1].data.copy()


def keep_view_memoryview(data):
    KEPT.append(memoryview(data[1:]))
    return np.array([0])


def keep_element_memoryview(data):
    """A buffer of an element of a structured view: a raw pointer."""
    KEPT.append(memoryview(data.view([("a", "f8")])[1]))
    return np.array([0])


def keep_element_in_partial(data):
    import functools

    KEPT.append(functools.partial(print, data.view([("a", "f8")])[1]))
    return np.array([0])


def keep_view_flat_iterator(data):
    KEPT.append(data[1:].flat)
    return np.array([0])


def keep_view_in_partial(data):
    import functools

    KEPT.append(functools.partial(print, data[1:]))
    return np.array([0])


def keep_in_long_named_partial(data):
    """The input held by a functools.partial of a class whose name is long
    and not ASCII: the abort's message cuts the name whole."""
    import functools

    named = type("L" + "\u00e9" * 60, (functools.partial,), {})
    KEPT.append(named(print, data))
    return np.array([0])


def keep_interface_object(data):
    # The object alone, its __array_interface__ holding the input's address:
    # np.asarray(HOLDERS[-1]) later would read the lent memory.
    HOLDERS.append(ArrayInterface(data, [data[1:]]))
    return np.array([0])


def keep_flat_iterator(data):
    KEPT.append(data.flat)
    return np.array([0])


def keep_sliding_window(data):
    KEPT.append(np.lib.stride_tricks.sliding_window_view(data, (2,) * data.ndim))
    return np.array([0])


def keep_base(data):
    KEPT.append(data.base)
    return np.array([0])


def keep_ctypes(data):
    # numpy's ctypes interface: the address in a c_void_p, with the array.
    KEPT.append(data.ctypes)
    return np.array([0])


# An object that hands the input's memory to np.asarray by address, as a
# zero-copy wrapper does, and keeps the input alive through `base`: the
# array np.asarray makes reads the Rust memory without holding the input.

class ArrayInterface:
    def __init__(self, data, base):
        self.__array_interface__ = dict(data.__array_interface__)
        self.base = base


def keep_interface_with_list_base(data):
    KEPT.append(np.asarray(ArrayInterface(data, [data])))
    return np.array([0])


def keep_interface_with_closure_base(data):
    KEPT.append(np.asarray(ArrayInterface(data, lambda: data)))
    return np.array([0])


def keep_interface_with_module_base(data):
    import types

    holder = types.ModuleType("pim_holder")  # a module, but not in sys.modules
    holder.__array_interface__ = dict(data.__array_interface__)
    holder.kept = data
    KEPT.append(np.asarray(holder))
    return np.array([0])


def views_base_is_the_input(data):
    """numpy stops collapsing bases at the first non-array base."""
    view = data[1:]
    return np.array([view.base is data, view[1:].base is data, data.base is not None])


# numpy 1.x lets Python point an array at another buffer (deprecated since
# 1.12); numpy 2 refuses with AttributeError.

def replace_data(data):
    data.data = memoryview(bytearray(data.nbytes))
    return np.array([0])


REPLACED = []  # not KEPT: tests running at the same time read KEPT[-1]


def replace_data_and_keep(data):
    data.data = memoryview(bytearray(data.nbytes))
    REPLACED.append(data)
    return np.array([0])


# --- typed calls ---------------------------------------------------------------

def identity(x):
    return x


def view_of_input(x):
    return x[::2]


def shape_of(m):
    return np.array(m.shape, dtype=np.int64)


def row_sums(m):
    return m.sum(axis=1)


def first_row(m):
    return m[0].copy()


def add(a, b):
    return a + b


def kwarg_kinds(a, flag=False, n=0, x=0.0, s=""):
    return np.array([flag is True, n == 7, x == 2.5, s == "hi", len(a) == 3])


def no_args(n=3):
    return np.arange(n)


def returns_complex(x):
    return np.array([1 + 2j])


def returns_float16(x):
    return np.array([1.0], dtype=np.float16)


def returns_strings(x):
    return np.array(["a"])


def returns_objects(x):
    return np.array([1, "a"], dtype=object)


def returns_big_endian_floats(x):
    return np.array([1.5, 2.5], dtype=">f8")


def returns_bool_bytes(x):
    return np.array([0, 1, 2], dtype=np.uint8).view(np.bool_)


def returns_nan(x):
    return np.array([np.nan, np.inf, -np.inf])


def clear_kept(x):
    KEPT.clear()
    return np.array([len(KEPT)])


def keep_owned(x):
    KEPT.append(x)
    return x.cumsum()


def sum_kept_owned(x):
    return np.array([KEPT[-1].sum()])


def mutate_owned(x):
    x[0] = 100
    return x.copy()


WEAK = []


def result_with_weakref(x):
    import weakref

    result = x * 2
    WEAK.append(weakref.ref(result))
    return result


def write_through_weakref(x):
    target = WEAK[-1]()
    if target is not None:
        target[:] = -1.0
    return np.array([target is None])


# --- results of every kind, and arguments of every kind (tests/results.rs) ---

def total(x):
    return float(x.sum())


def as_list(x):
    return [float(v) for v in x]


def nothing(x):
    return None


def as_text(x):
    return f"{x.size} values"


def kinds_of(*args, **kwargs):
    """The type of every argument, and whether each array is read-only."""
    def kind(value):
        if isinstance(value, np.ndarray):
            return f"ndarray {value.dtype} {value.shape} {'ro' if not value.flags.writeable else 'rw'}"
        return type(value).__name__
    return [kind(a) for a in args] + [f"{k}={kind(v)}" for k, v in sorted(kwargs.items())]


def echo(value):
    return value


def stats(x):
    return {"mean": x.mean(), "min": float(x.min()), "max": np.float32(x.max())}


def scalars(x):
    return (np.int8(-5), np.uint64(2**64 - 1), np.float32(0.5), np.complex64(1.5 - 2j),
            np.bool_(True), True, 7, 2.5, 3 - 4j, np.float64(0.25), np.array(9, dtype=np.int16))


def big_int(x):
    return 2**70


def tiny_tuple(x):
    return (1.0, [1, 2])


def nested(x):
    return ([1.0, 2.0], {"a": [1, 2, 3], "b": [4, "five"]})


def dict_with_int_key(x):
    return {"a": 1.0, 2: 2.0}


def lone_surrogate(x):
    return "bad \udc80 text"


def address_and_strides(x):
    """Where numpy sees the input, in bytes: address of element [0, ...] and strides."""
    return (x.__array_interface__["data"][0], list(x.strides), x.flags.writeable,
            x.flags.c_contiguous, x.flags.f_contiguous)


# --- the lent array itself: what a call sees, reused or new -----------------------


def describe_lent(x):
    """Everything about the lent array a call could depend on."""
    f = x.flags
    return repr(
        (
            x.shape,
            x.strides,
            str(x.dtype),
            x.__array_interface__["data"][0],
            f.c_contiguous,
            f.f_contiguous,
            f.writeable,
            f.aligned,
            f.owndata,
            type(x.base).__name__,
            x.tolist(),
        )
    )


def reshape_in_place(x):
    """Changes the lent array's shape in place (numpy allows it)."""
    x.shape = (1, x.size)
    return 0


def retype_in_place(x):
    """Gives the lent array another dtype in place (numpy allows it)."""
    x.dtype = np.dtype(x.dtype).newbyteorder()
    return 0


def keywords_seen(x, **kw):
    """The keyword arguments a call got, sorted, as text."""
    return repr(sorted(kw.items()))


def add_at(data):
    """`ufunc.at` writes in place, and numpy forgets to check that its
    operand is writeable: the glue's guard refuses it."""
    np.add.at(data, [0], 1.0)
    return data


def add_at_view(data):
    np.multiply.at(data[1:], 0, 2.0)
    return data


def add_at_unbound(data):
    np.ufunc.at(np.subtract, data, [0], 1.0)
    return data


def cumsum_out(data):
    """`accumulate` into `out` on its 1-D path, as np.cumsum takes it: numpy
    1.26 to 2.2 forget to check that `out` is writeable."""
    np.cumsum(np.full(data.shape, 7.0), out=data)
    return data


def accumulate_out(data):
    np.multiply.accumulate(np.full(data.shape, 7.0), 0, None, data)
    return data


def accumulate_out_tuple(data):
    np.maximum.accumulate(np.full(data.shape, 7.0), out=(data,))
    return data
