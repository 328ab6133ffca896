/*
 * guards.c: numpy's known ways for Python code to write into a read-only
 * array, closed.
 *
 * Two methods of numpy's ufuncs write into an array without checking that
 * it is writeable, where every other write of numpy's refuses a read-only
 * array:
 *  - `ufunc.at` (`np.add.at(a, indices, b)`), into `a` (numpy 1.26 to 2.4
 *    at least; trial 28);
 *  - `ufunc.accumulate(..., out=a)`, on its 1-D path, which `np.cumsum`,
 *    `np.cumprod` and `ndarray.cumsum` take too (numpy 1.26 to 2.2;
 *    trial 30).
 * An array the glue lends is read-only because Rust lent it through a
 * shared borrow (a `&[T]`, maybe of read-only memory): such a write is
 * undefined behaviour in Rust, and a crash in read-only memory (both seen:
 * a `Vec` behind a `&[f64]` changed, a `static` crashed the process).
 *
 * numpy's ufunc type is a C type, which Python code cannot patch; the glue
 * replaces each method in the type's dictionary with one that refuses a
 * read-only array where numpy would write, with numpy's own error ("... is
 * read-only"), and otherwise calls numpy's. Every read-only array of the
 * process gets the behaviour numpy documents, not only the glue's: no
 * correct program writes into a read-only array. numpy's own descriptors
 * are kept out of the collector's lists, so `gc.get_objects` does not hand
 * them back (trial 30).
 *
 * Out of reach: a bound `np.add.at`, or numpy's descriptor `np.ufunc.at`,
 * taken before the glue was prepared (by a host that imported numpy first)
 * and called later; and digging numpy's descriptor out by hand (ctypes).
 *
 * GIL held throughout.
 */
#include "guards.h"

/* What a guard checks before numpy's method runs: 0, or -1 with numpy's
 * exception set. args, kwargs: borrowed, the method's arguments. */
typedef int (*guard_check)(PyObject *args, PyObject *kwargs);

/* One method of numpy's ufunc type, guarded. */
typedef struct {
    PyMethodDef def;    /* the guard's; ml_doc numpy's, header included */
    guard_check check;  /* what it refuses */
    PyObject *original; /* numpy's descriptor (owned, kept for good), or
                           NULL before the guard is in place */
} guarded_method;

/* 0 if obj (borrowed, may be NULL) is no read-only ndarray, or -1 with
 * numpy's "<what> is read-only" set. */
static int refuse_read_only(PyObject *obj, const char *what) {
    if (obj != NULL && PyArray_Check(obj)) {
        return PyArray_FailUnlessWriteable((PyArrayObject *)obj, what);
    }
    return 0;
}

/* ufunc.at(a, indices, b=None, /): writes into a. */
static int check_at(PyObject *args, PyObject *kwargs) {
    (void)kwargs; /* numpy takes none */
    return PyTuple_GET_SIZE(args) > 0 ? refuse_read_only(PyTuple_GET_ITEM(args, 0), "ufunc.at operand")
                                      : 0;
}

/* ufunc.accumulate(array, axis=0, dtype=None, out=None): writes into out,
 * given by position or keyword, alone or as a 1-tuple. */
static int check_accumulate(PyObject *args, PyObject *kwargs) {
    PyObject *out = PyTuple_GET_SIZE(args) > 3 ? PyTuple_GET_ITEM(args, 3) : NULL;
    if (out == NULL && kwargs != NULL) {
        out = PyDict_GetItemString(kwargs, "out"); /* borrowed */
    }
    if (out != NULL && PyTuple_Check(out)) {
        Py_ssize_t i;
        for (i = 0; i < PyTuple_GET_SIZE(out); i++) {
            if (refuse_read_only(PyTuple_GET_ITEM(out, i), "output array") < 0) {
                return -1;
            }
        }
        return 0;
    }
    return refuse_read_only(out, "output array");
}

static PyObject *guarded_at(PyObject *ufunc, PyObject *args, PyObject *kwargs);
static PyObject *guarded_accumulate(PyObject *ufunc, PyObject *args, PyObject *kwargs);

static guarded_method guarded[2] = {
    {{"at", (PyCFunction)(void (*)(void))guarded_at, METH_VARARGS | METH_KEYWORDS, NULL},
     check_at,
     NULL},
    {{"accumulate", (PyCFunction)(void (*)(void))guarded_accumulate,
      METH_VARARGS | METH_KEYWORDS, NULL},
     check_accumulate,
     NULL},
};

/* Runs method's check, then numpy's method on ufunc (borrowed) with args
 * and kwargs (borrowed). Returns a new reference, or NULL with an exception
 * set. */
static PyObject *call_guarded(guarded_method *method, PyObject *ufunc, PyObject *args,
                              PyObject *kwargs) {
    Py_ssize_t n = PyTuple_GET_SIZE(args), i;
    PyObject *with_self, *result;
    if (method->check(args, kwargs) < 0) {
        return NULL;
    }
    /* numpy's descriptor, called with the ufunc first, as a method. */
    with_self = PyTuple_New(n + 1);
    if (with_self == NULL) {
        return NULL;
    }
    Py_INCREF(ufunc);
    PyTuple_SET_ITEM(with_self, 0, ufunc);
    for (i = 0; i < n; i++) {
        PyObject *arg = PyTuple_GET_ITEM(args, i);
        Py_INCREF(arg);
        PyTuple_SET_ITEM(with_self, i + 1, arg);
    }
    result = PyObject_Call(method->original, with_self, kwargs);
    Py_DECREF(with_self);
    return result;
}

static PyObject *guarded_at(PyObject *ufunc, PyObject *args, PyObject *kwargs) {
    return call_guarded(&guarded[0], ufunc, args, kwargs);
}

static PyObject *guarded_accumulate(PyObject *ufunc, PyObject *args, PyObject *kwargs) {
    return call_guarded(&guarded[1], ufunc, args, kwargs);
}

/* Puts method's guard in the dictionary `dict` (borrowed) of the ufunc
 * type `type` (borrowed), in place of numpy's method descriptor; leaves
 * numpy's where it is none. */
static void guard(PyTypeObject *type, PyObject *dict, guarded_method *method) {
    PyObject *original = PyDict_GetItemString(dict, method->def.ml_name); /* borrowed */
    PyObject *descr;
    if (original == NULL || !Py_IS_TYPE(original, &PyMethodDescr_Type)) {
        return;
    }
    /* numpy's doc as it wrote it, with the signature header that
     * inspect.signature reads (`__doc__` has it cut off); numpy's
     * PyMethodDef lives as long as numpy. */
    method->def.ml_doc = ((PyMethodDescrObject *)original)->d_method->ml_doc;
    descr = PyDescr_NewMethod(type, &method->def);
    if (descr == NULL) {
        return;
    }
    /* Ours before the dictionary lets go of it. */
    Py_INCREF(original);
    if (PyDict_SetItemString(dict, method->def.ml_name, descr) == 0) {
        method->original = original;
        if (PyObject_GC_IsTracked(original)) {
            PyObject_GC_UnTrack(original);
        }
    } else {
        Py_DECREF(original);
    }
    Py_DECREF(descr);
}

void pim_guard_ufuncs(void) {
    PyObject *numpy, *type, *dict;
    size_t i;
    if (guarded[0].original != NULL || guarded[1].original != NULL) {
        return; /* a host's Python prepared again: guarded already */
    }
    numpy = PyImport_ImportModule("numpy");
    type = numpy != NULL ? PyObject_GetAttrString(numpy, "ufunc") : NULL;
    dict = type != NULL && PyType_Check(type) ? ((PyTypeObject *)type)->tp_dict : NULL;
    if (dict != NULL) {
        for (i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
            guard((PyTypeObject *)type, dict, &guarded[i]);
        }
        /* Drops what the interpreter cached of the type's attributes. */
        PyType_Modified((PyTypeObject *)type);
    }
    Py_XDECREF(type);
    Py_XDECREF(numpy);
    PyErr_Clear();
}
