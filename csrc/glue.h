/*
 * glue.h: the C side of py-in-mem, the article's glue.h made safe to call.
 *
 * Conventions that hold for every function below:
 *  - "GIL held" means the caller holds the GIL (PyGILState_Ensure) for the
 *    whole call; the Rust side takes it with an RAII guard.
 *  - A function that fails leaves a Python exception set; the caller fetches
 *    and clears it with py_last_error while still holding the GIL.
 *  - "new reference" means the caller owns one reference and must give it back
 *    with py_decref; "borrowed" means the caller owns nothing.
 */
#ifndef PY_IN_MEM_GLUE_H
#define PY_IN_MEM_GLUE_H

#include <stddef.h>
#include <stdint.h>

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

/* An exception turned into owned C strings.
 * Every non-NULL field is malloc'ed and owned by the struct's holder; free
 * them all with py_error_free. */
typedef struct {
    char *type_name; /* "ValueError", or "module.Class" outside builtins */
    char *message;   /* str(exception) */
    char *traceback; /* traceback.format_exception(...), or NULL */
} py_error;

/* What detect found in the Python function's result. */
typedef struct {
    PyObject *obj;        /* new reference to the result (set on success and on
                             DETECT_BAD_RESULT), or NULL */
    const char *data;     /* borrowed from obj: address of element 0 */
    Py_ssize_t len;       /* number of elements */
    Py_ssize_t stride;    /* bytes between elements; may be 0 or negative */
    int itemsize;         /* 1, 2, 4 or 8 */
    int is_signed;        /* 1 for int8..int64, 0 for uint8..uint64 */
    int byteswapped;      /* 1 when not in the machine's byte order */
    char found[160];      /* on DETECT_BAD_RESULT: what the result was */
} detect_result;

enum {
    DETECT_OK = 0,
    DETECT_PY_ERROR = -1,  /* the call raised: fetch it with py_last_error */
    DETECT_BAD_RESULT = -2 /* not a 1-D integer array: see found */
};

/* Start Python once per process, without its signal handlers (the host's
 * SIGINT disposition is restored even where Python < 3.10 installs its own
 * on importing _signal), import numpy's C API, and put module_dir last on
 * sys.path. A failed start returns -1 with err filled; it does not exit.
 * program: borrowed UTF-8 path of the interpreter whose prefix and
 *          site-packages to use (a virtualenv's bin/python works); may be NULL.
 * module_dir: borrowed UTF-8 directory; may be NULL.
 * err: out; on failure filled with owned strings (free with py_error_free).
 * Call without the GIL, from one thread, once. On return the GIL is released.
 * Returns 0 on success, -1 on failure. */
int init_python(const char *program, const char *module_dir, py_error *err);

/* Put dir first on sys.path unless it is there already. GIL held.
 * dir: borrowed UTF-8. Returns 0, or -1 with an exception set. */
int add_sys_path(const char *dir);

/* import module; return module.func if it is callable. GIL held.
 * module, func: borrowed UTF-8. Returns a new reference, or NULL with an
 * exception set. */
PyObject *load_func(const char *module, const char *func);

/* A read-only 1-D float64 array over data, without a copy. GIL held.
 * data: borrowed; the caller keeps it alive and unchanged until it has passed
 * the array to borrow_release. The array's base is a capsule the glue owns, so
 * every numpy view of the array points at it and retention can be counted.
 * Returns a new reference, or NULL with an exception set. */
PyObject *borrow_f64(const double *data, Py_ssize_t len);

/* Give back the reference from borrow_f64 and tell whether Python kept the
 * array or a view of it. GIL held. arr: owned; this call consumes it.
 * Returns 0 when Python holds nothing that points into data, 1 when it does
 * (checked again after a garbage collection, so dead cycles do not count). */
int borrow_release(PyObject *arr);

/* Call fn(arr) and check that the result is a 1-D integer numpy array. GIL
 * held. fn, arr: borrowed. out: filled as documented on detect_result; on
 * DETECT_OK and DETECT_BAD_RESULT out->obj is a new reference. */
int detect(PyObject *fn, PyObject *arr, detect_result *out);

/* Fetch and clear the current exception into err. GIL held.
 * err: out; filled with owned strings (free with py_error_free). If no
 * exception is set, fills a generic one. Never leaves an exception set. */
void py_last_error(py_error *err);

/* Free the strings of err and set them to NULL. No GIL needed. */
void py_error_free(py_error *err);

/* Release one reference. GIL held. obj: owned, consumed; may be NULL. */
void py_decref(PyObject *obj);

#endif /* PY_IN_MEM_GLUE_H */
