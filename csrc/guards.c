/*
 * guards.c: numpy's one known way for Python code to write into a
 * read-only array, closed.
 *
 * `ufunc.at` (`np.add.at(a, indices, b)`) writes into `a` in place without
 * checking that `a` is writeable (numpy 1.26 to 2.4 at least; every other
 * in-place operation of numpy's refuses a read-only array). An array the
 * glue lends is read-only because Rust lent it through a shared borrow (a
 * `&[T]`, maybe of read-only memory): such a write is undefined behaviour
 * in Rust, and a crash in read-only memory (trial 28: `np.add.at(data, 0,
 * 1.0)` changed a `Vec` behind a `&[f64]`, and crashed on a `static`).
 *
 * numpy's ufunc type is a C type, which Python code cannot patch; the glue
 * replaces the method in the type's dictionary with one that refuses a
 * read-only first operand with numpy's own error ("... is read-only") and
 * otherwise calls numpy's. Every read-only array of the process gets the
 * behaviour numpy documents, not only the glue's: no correct program
 * writes into a read-only array.
 *
 * Out of reach: a bound `np.add.at`, or numpy's descriptor `np.ufunc.at`,
 * taken before the glue was prepared (by a host that imported numpy first)
 * and called later.
 *
 * GIL held throughout.
 */
#include "guards.h"

/* numpy's own method descriptor (owned, kept for good), or NULL before
 * the guard is in place. */
static PyObject *numpy_at = NULL;

/* numpy's docstring (owned, kept for good: guard_def's ml_doc points into
 * it), or NULL. */
static PyObject *numpy_at_doc = NULL;

/* The guard: ufunc (borrowed) is the ufunc the method was called on; args
 * and kwargs (borrowed) its arguments. Returns a new reference, or NULL
 * with an exception set. */
static PyObject *guarded_at(PyObject *ufunc, PyObject *args, PyObject *kwargs) {
    Py_ssize_t n = PyTuple_GET_SIZE(args), i;
    PyObject *with_self, *result;
    if (n > 0 && PyArray_Check(PyTuple_GET_ITEM(args, 0)) &&
        PyArray_FailUnlessWriteable((PyArrayObject *)PyTuple_GET_ITEM(args, 0),
                                    "ufunc.at operand") < 0) {
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
    result = PyObject_Call(numpy_at, with_self, kwargs);
    Py_DECREF(with_self);
    return result;
}

static PyMethodDef guard_def = {"at", (PyCFunction)(void (*)(void))guarded_at,
                                METH_VARARGS | METH_KEYWORDS, NULL};

void pim_guard_ufunc_at(void) {
    PyObject *numpy, *type, *dict, *original, *guard = NULL;
    if (numpy_at != NULL) {
        return;
    }
    numpy = PyImport_ImportModule("numpy");
    type = numpy != NULL ? PyObject_GetAttrString(numpy, "ufunc") : NULL;
    dict = type != NULL && PyType_Check(type) ? ((PyTypeObject *)type)->tp_dict : NULL;
    original = dict != NULL ? PyDict_GetItemString(dict, "at") : NULL; /* borrowed */
    if (original != NULL && Py_IS_TYPE(original, &PyMethodDescr_Type)) {
        numpy_at_doc = PyObject_GetAttrString(original, "__doc__");
        if (numpy_at_doc != NULL && PyUnicode_Check(numpy_at_doc)) {
            guard_def.ml_doc = PyUnicode_AsUTF8(numpy_at_doc);
        }
        PyErr_Clear();
        guard = PyDescr_NewMethod((PyTypeObject *)type, &guard_def);
        /* Ours before the dictionary lets go of it. */
        Py_INCREF(original);
        if (guard != NULL && PyDict_SetItemString(dict, "at", guard) == 0) {
            numpy_at = original;
            /* Drops what the interpreter cached of the type's attributes. */
            PyType_Modified((PyTypeObject *)type);
        } else {
            Py_DECREF(original);
        }
    }
    Py_XDECREF(guard);
    Py_XDECREF(type);
    Py_XDECREF(numpy);
    PyErr_Clear();
}
