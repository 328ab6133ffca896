/*
 * glue.c: the C side of py-in-mem. Ownership of every pointer is documented
 * on each function in glue.h; the notes here say why the code is shaped so.
 */
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include "glue.h"

#include <numpy/arrayobject.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The capsule every borrowed array points at as its base. It has no buffer,
 * so numpy refuses `flags.writeable = True` on the array and on its views. */
static const char BORROW_CAPSULE_NAME[] = "py_in_mem.borrowed";

/* A malloc'ed copy of s. s: borrowed. Returns an owned string or NULL. */
static char *dup_cstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

/* A malloc'ed UTF-8 copy of str(obj); characters UTF-8 cannot carry (lone
 * surrogates) are backslash-escaped. obj: borrowed. GIL held. Returns an
 * owned string, or NULL with no exception set. */
static char *dup_str(PyObject *obj) {
    char *copy = NULL;
    PyObject *text = PyObject_Str(obj);
    PyObject *bytes = NULL;
    if (text != NULL) {
        bytes = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
    }
    if (bytes != NULL) {
        copy = dup_cstr(PyBytes_AS_STRING(bytes));
    }
    Py_XDECREF(bytes);
    Py_XDECREF(text);
    PyErr_Clear();
    return copy;
}

/* "ValueError" for builtins, "module.Qualname" otherwise: what a traceback's
 * last line shows. type: borrowed. GIL held. Returns an owned string. */
static char *dup_type_name(PyObject *type) {
    char *name = NULL;
    PyObject *module = PyObject_GetAttrString(type, "__module__");
    PyObject *qualname = PyObject_GetAttrString(type, "__qualname__");
    if (qualname != NULL && module != NULL && PyUnicode_Check(module) &&
        PyUnicode_CompareWithASCIIString(module, "builtins") != 0) {
        PyObject *full = PyUnicode_FromFormat("%U.%S", module, qualname);
        if (full != NULL) {
            name = dup_str(full);
            Py_DECREF(full);
        }
    } else if (qualname != NULL) {
        name = dup_str(qualname);
    }
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    PyErr_Clear();
    return name != NULL ? name : dup_cstr(((PyTypeObject *)type)->tp_name);
}

/* The whole formatted traceback, as Python would print it. type, value, tb:
 * borrowed (tb may be NULL). GIL held. Returns an owned string or NULL. */
static char *dup_traceback(PyObject *type, PyObject *value, PyObject *tb) {
    char *text = NULL;
    PyObject *module = PyImport_ImportModule("traceback");
    PyObject *lines = NULL;
    PyObject *empty = NULL;
    PyObject *joined = NULL;
    if (module != NULL) {
        lines = PyObject_CallMethod(module, "format_exception", "OOO", type,
                                    value != NULL ? value : Py_None,
                                    tb != NULL ? tb : Py_None);
    }
    if (lines != NULL) {
        empty = PyUnicode_FromString("");
    }
    if (empty != NULL) {
        joined = PyUnicode_Join(empty, lines);
    }
    if (joined != NULL) {
        text = dup_str(joined);
    }
    Py_XDECREF(joined);
    Py_XDECREF(empty);
    Py_XDECREF(lines);
    Py_XDECREF(module);
    PyErr_Clear();
    return text;
}

void py_last_error(py_error *err) {
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    memset(err, 0, sizeof *err);
#if PY_VERSION_HEX >= 0x030C0000
    value = PyErr_GetRaisedException();
    if (value != NULL) {
        type = (PyObject *)Py_TYPE(value);
        Py_INCREF(type);
        tb = PyException_GetTraceback(value);
    }
#else
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
#endif
    if (type == NULL) {
        err->type_name = dup_cstr("SystemError");
        err->message = dup_cstr("a call failed without setting a Python exception");
        return;
    }
    err->type_name = dup_type_name(type);
    err->message = value != NULL ? dup_str(value) : dup_cstr("");
    err->traceback = dup_traceback(type, value, tb);
    /* Releasing the exception releases its traceback, and with it the frames
     * that still refer to the call's arguments. */
    Py_XDECREF(tb);
    Py_XDECREF(value);
    Py_DECREF(type);
    PyErr_Clear();
}

void py_error_free(py_error *err) {
    free(err->type_name);
    free(err->message);
    free(err->traceback);
    err->type_name = NULL;
    err->message = NULL;
    err->traceback = NULL;
}

/* Fill err from a failed PyStatus (start-up errors are not exceptions). */
static void status_error(py_error *err, PyStatus status) {
    char text[512];
    if (PyStatus_IsExit(status)) {
        snprintf(text, sizeof text, "Python start-up asked to exit with code %d",
                 status.exitcode);
    } else {
        snprintf(text, sizeof text, "%s%s%s", status.func ? status.func : "",
                 status.func ? ": " : "",
                 status.err_msg ? status.err_msg : "unknown error");
    }
    err->type_name = NULL;
    err->message = dup_cstr(text);
    err->traceback = NULL;
}

/* Insert dir into sys.path at the front or the back unless it is there.
 * dir: borrowed. GIL held. Returns 0, or -1 with an exception set. */
static int sys_path_add(const char *dir, int front) {
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    PyObject *entry;
    int present, rc;
    if (path == NULL || !PyList_Check(path)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        return -1;
    }
    entry = PyUnicode_FromString(dir);
    if (entry == NULL) {
        return -1;
    }
    present = PySequence_Contains(path, entry);
    if (present != 0) {
        rc = present < 0 ? -1 : 0;
    } else if (front) {
        rc = PyList_Insert(path, 0, entry);
    } else {
        rc = PyList_Append(path, entry);
    }
    Py_DECREF(entry);
    return rc;
}

int add_sys_path(const char *dir) { return sys_path_add(dir, 1); }

int init_python(const char *program, const char *module_dir, py_error *err) {
    int started_here = 0;
    int rc = 0;
    PyGILState_STATE gil = PyGILState_UNLOCKED;
    struct sigaction host_sigint;
    memset(err, 0, sizeof *err);
    memset(&host_sigint, 0, sizeof host_sigint);

    if (!Py_IsInitialized()) {
        PyConfig config;
        PyStatus status;
        /* The host's SIGINT disposition, put back below. */
        (void)sigaction(SIGINT, NULL, &host_sigint);
        /* The Python configuration, so PYTHONPATH and PYTHONHOME still work;
         * but no signal handlers: Ctrl-C must keep stopping the host. */
        PyConfig_InitPythonConfig(&config);
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        if (program != NULL) {
            /* Python finds its prefix, and a virtualenv's pyvenv.cfg, from
             * the program path, not from the host binary's. */
            status = PyConfig_SetBytesString(&config, &config.program_name, program);
            if (PyStatus_Exception(status)) {
                PyConfig_Clear(&config);
                status_error(err, status);
                return -1;
            }
        }
        status = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(status)) {
            status_error(err, status);
            return -1;
        }
        started_here = 1;
    } else {
        /* The host (PyO3, say) started Python: share it. */
        gil = PyGILState_Ensure();
    }

    if (module_dir != NULL && sys_path_add(module_dir, 0) < 0) {
        rc = -1;
    }
    /* _import_array, unlike import_array, reports failure (numpy missing, or
     * its C API older than the headers) instead of returning from us. */
    if (rc == 0 && _import_array() < 0) {
        rc = -1;
    }
    if (rc < 0) {
        py_last_error(err);
    }

    if (started_here) {
        /* install_signal_handlers = 0 is not enough before Python 3.10: the
         * first import of _signal (which site or numpy may do) installs
         * Python's SIGINT handler anyway, and Ctrl-C then only sets a flag
         * nobody checks. Import it now, so that happens here and only once,
         * then give the host its own disposition back. */
        PyObject *signal_module = PyImport_ImportModule("_signal");
        Py_XDECREF(signal_module);
        PyErr_Clear();
        (void)sigaction(SIGINT, &host_sigint, NULL);
        /* Hand the GIL back so any thread can take it; the thread state is
         * kept for good because Python is never finalized. */
        (void)PyEval_SaveThread();
    } else {
        PyGILState_Release(gil);
    }
    return rc;
}

PyObject *load_func(const char *module, const char *func) {
    PyObject *mod = PyImport_ImportModule(module);
    PyObject *fn;
    if (mod == NULL) {
        return NULL;
    }
    fn = PyObject_GetAttrString(mod, func);
    Py_DECREF(mod);
    if (fn != NULL && !PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is a %s, not a function", module, func,
                     Py_TYPE(fn)->tp_name);
        Py_DECREF(fn);
        return NULL;
    }
    return fn;
}

PyObject *borrow_f64(const double *data, Py_ssize_t len) {
    npy_intp dims[1];
    PyObject *base, *arr;
    dims[0] = (npy_intp)len;
    base = PyCapsule_New((void *)data, BORROW_CAPSULE_NAME, NULL);
    if (base == NULL) {
        return NULL;
    }
    /* No NPY_ARRAY_WRITEABLE: Python sees the Rust slice read-only. */
    arr = PyArray_New(&PyArray_Type, 1, dims, NPY_FLOAT64, NULL, (void *)data, 0,
                      NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
    if (arr == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    /* Steals base, even on failure. */
    if (PyArray_SetBaseObject((PyArrayObject *)arr, base) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* Does anything but our own reference hold arr, or a view of it? Views made
 * by numpy point at the array's base (the capsule), not at the array. */
static int borrow_is_retained(PyObject *arr, PyObject *base) {
    return Py_REFCNT(arr) != 1 || Py_REFCNT(base) != 1;
}

int borrow_release(PyObject *arr) {
    PyObject *base = PyArray_BASE((PyArrayObject *)arr);
    int retained = borrow_is_retained(arr, base);
    if (retained) {
        /* Rare path: a dead reference cycle (a frame kept by a traceback kept
         * by a local, say) is not retention, so collect before deciding.
         * gc.collect(), unlike PyGC_Collect, runs even if gc is disabled. */
        PyObject *gc = PyImport_ImportModule("gc");
        PyObject *collected = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
        Py_XDECREF(collected);
        Py_XDECREF(gc);
        PyErr_Clear();
        retained = borrow_is_retained(arr, base);
    }
    Py_DECREF(arr);
    return retained;
}

int detect(PyObject *fn, PyObject *arr, detect_result *out) {
    PyObject *result;
    PyArrayObject *array;
    memset(out, 0, sizeof *out);

    result = PyObject_CallOneArg(fn, arr);
    if (result == NULL) {
        return DETECT_PY_ERROR;
    }
    out->obj = result;
    if (!PyArray_Check(result)) {
        snprintf(out->found, sizeof out->found, "an object of type %s",
                 Py_TYPE(result)->tp_name);
        return DETECT_BAD_RESULT;
    }
    array = (PyArrayObject *)result;
    if (PyArray_NDIM(array) != 1) {
        snprintf(out->found, sizeof out->found, "a %d-D numpy array", PyArray_NDIM(array));
        return DETECT_BAD_RESULT;
    }
    out->itemsize = (int)PyArray_ITEMSIZE(array);
    if (!PyArray_ISINTEGER(array) ||
        (out->itemsize != 1 && out->itemsize != 2 && out->itemsize != 4 &&
         out->itemsize != 8)) {
        char *dtype = dup_str((PyObject *)PyArray_DESCR(array));
        snprintf(out->found, sizeof out->found, "a numpy array of dtype %s",
                 dtype ? dtype : "?");
        free(dtype);
        return DETECT_BAD_RESULT;
    }
    out->data = PyArray_BYTES(array);
    out->len = (Py_ssize_t)PyArray_DIM(array, 0);
    out->stride = (Py_ssize_t)PyArray_STRIDE(array, 0);
    out->is_signed = PyArray_ISSIGNED(array) ? 1 : 0;
    out->byteswapped = PyArray_ISBYTESWAPPED(array) ? 1 : 0;
    return DETECT_OK;
}

void py_decref(PyObject *obj) { Py_XDECREF(obj); }
