/*
 * call.c: loading a Python function (from a module or from source), calling
 * it, and describing its result for reading in place. Ownership: see each
 * function in glue.h.
 */
#include "arrays.h"
#include "errors.h"

#include <numpy/arrayscalars.h> /* PyArrayScalar_VAL */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* obj.a.b.c for path "a.b.c": a new reference, or NULL with an exception set
 * (an AttributeError naming the part missing). obj, path: borrowed. GIL held. */
static PyObject *get_dotted(PyObject *obj, const char *path) {
    PyObject *current = obj, *next;
    const char *start = path;
    Py_INCREF(current);
    for (;;) {
        const char *dot = strchr(start, '.');
        size_t len = dot ? (size_t)(dot - start) : strlen(start);
        PyObject *name = PyUnicode_FromStringAndSize(start, (Py_ssize_t)len);
        next = name ? PyObject_GetAttr(current, name) : NULL;
        Py_XDECREF(name);
        Py_DECREF(current);
        if (next == NULL || dot == NULL) {
            return next;
        }
        current = next;
        start = dot + 1;
    }
}

PyObject *pim_load_func(const char *module, const char *func, int *importing) {
    PyObject *mod = PyImport_ImportModule(module);
    PyObject *fn;
    *importing = mod == NULL;
    if (mod == NULL) {
        return NULL;
    }
    fn = get_dotted(mod, func);
    Py_DECREF(mod);
    if (fn != NULL && !PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is a %s, which is not callable", module, func,
                     Py_TYPE(fn)->tp_name);
        Py_DECREF(fn);
        return NULL;
    }
    return fn;
}

/* Let tracebacks show the lines of source compiled under `filename`, as they
 * do for files: linecache.cache[filename] = (size, None, lines, filename).
 * filename, source: borrowed. GIL held. Failure is harmless and cleared. */
static void remember_source_lines(PyObject *filename, const char *source) {
    PyObject *linecache = PyImport_ImportModule("linecache");
    PyObject *cache = linecache ? PyObject_GetAttrString(linecache, "cache") : NULL;
    PyObject *text = cache ? PyUnicode_FromString(source) : NULL;
    PyObject *lines = text ? PyObject_CallMethod(text, "splitlines", "O", Py_True) : NULL;
    PyObject *entry = lines ? Py_BuildValue("(nOOO)", PyUnicode_GetLength(text), Py_None,
                                            lines, filename)
                            : NULL;
    if (entry != NULL) {
        (void)PyObject_SetItem(cache, filename, entry);
    }
    Py_XDECREF(entry);
    Py_XDECREF(lines);
    Py_XDECREF(text);
    Py_XDECREF(cache);
    Py_XDECREF(linecache);
    PyErr_Clear();
}

/* The attribute where pim_load_source keeps the source a module was made
 * from: a module name reused with the same source is the same module. */
#define PIM_SOURCE_ATTR "__py_in_mem_source__"

/* Set on a module while pim_load_source runs its body, to the running
 * thread's ident; deleted once the body has run. */
#define PIM_LOADING_ATTR "__py_in_mem_loading__"

/* Waits while another thread runs `mod`'s body (its functions are not all
 * defined yet), giving the GIL up meanwhile as time.sleep would, so that
 * the body can go on: 1 if it waited, 0 if there was nothing to wait for.
 * Not for the loading thread itself (a body that loads its own module again
 * sees it as it is, as a circular import does). mod: borrowed. GIL held. */
static int wait_for_body(PyObject *mod) {
    const struct timespec pause = {0, 100000}; /* 0.1 ms */
    int waited = 0;
    for (;;) {
        PyObject *loading = PyObject_GetAttrString(mod, PIM_LOADING_ATTR);
        unsigned long ident;
        if (loading == NULL) {
            PyErr_Clear();
            return waited; /* the body has run, or failed */
        }
        ident = PyLong_AsUnsignedLong(loading);
        Py_DECREF(loading);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return waited;
        }
        if (ident == PyThread_get_thread_ident()) {
            return waited;
        }
        waited = 1;
        Py_BEGIN_ALLOW_THREADS
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
}

/* sys.modules[name], registered (empty) if it is not there: a new
 * reference, or NULL with an exception set. name: borrowed. GIL held. */
static PyObject *add_module(PyObject *name) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyImport_AddModuleRef(PyUnicode_AsUTF8(name));
#else
    PyObject *mod = PyImport_AddModuleObject(name);
    Py_XINCREF(mod);
    return mod;
#endif
}

/* The module `name` that pim_load_source made before from the same `text`
 * (a new reference); NULL with no exception if there is no module of that
 * name; NULL with a ValueError if the name is taken by another module.
 * name, text: borrowed. GIL held. */
static PyObject *same_source_module(PyObject *name, PyObject *text, const char *module) {
    PyObject *mod = PyImport_GetModule(name);
    PyObject *kept;
    int same;
    if (mod == NULL) {
        return NULL; /* absent, or an exception set */
    }
    kept = PyObject_GetAttrString(mod, PIM_SOURCE_ATTR);
    if (kept == NULL) {
        PyErr_Clear();
    }
    same = kept != NULL && PyUnicode_Check(kept) ? PyUnicode_Compare(kept, text) == 0 : 0;
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    if (!same) {
        PyErr_Format(PyExc_ValueError,
                     "the module name '%s' is already used by %s: pick another name for this "
                     "source (the same source under the same name is the same module)",
                     module,
                     kept != NULL ? "a module made by from_source from a different source"
                                  : "a module that from_source did not make");
        Py_CLEAR(mod);
    }
    Py_XDECREF(kept);
    return mod;
}

/* The body of `mod` has run, or failed (with the exception kept): threads
 * waiting for it go on. mod: borrowed. GIL held. */
static void loaded(PyObject *mod) {
    pim_raised aside;
    pim_set_raised_aside(&aside);
    /* Fails if the body deleted it itself: pim_restore_raised clears that. */
    (void)PyObject_DelAttrString(mod, PIM_LOADING_ATTR);
    pim_restore_raised(&aside);
}

/* Marks `mod` as made from `text`, its body running on this thread. mod,
 * text: borrowed. GIL held. 0, or -1 with an exception set. */
static int set_loading(PyObject *mod, PyObject *text) {
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    int failed = ident == NULL || PyObject_SetAttrString(mod, PIM_SOURCE_ATTR, text) < 0 ||
                 PyObject_SetAttrString(mod, PIM_LOADING_ATTR, ident) < 0;
    Py_XDECREF(ident);
    return failed ? -1 : 0;
}

PyObject *pim_load_source(const char *module, const char *source, const char *func,
                      int *importing) {
    PyObject *name, *text, *filename = NULL, *code = NULL, *mod = NULL, *fn = NULL;
    *importing = 0;
    name = PyUnicode_FromString(module);
    text = name ? PyUnicode_FromString(source) : NULL;
    if (text != NULL) {
        mod = same_source_module(name, text, module);
    }
    while (mod != NULL && wait_for_body(mod)) {
        /* Another thread ran its body: the module is the same one now (its
         * functions all defined) or, if the body failed, gone (or made again
         * by a third thread, whose body may be running in turn). */
        Py_DECREF(mod);
        mod = same_source_module(name, text, module);
    }
    if (mod == NULL && text != NULL && !PyErr_Occurred()) {
        /* A name no file has, so tracebacks take the lines from linecache. */
        filename = PyUnicode_FromFormat("<py-in-mem:%s>", module);
        if (filename != NULL) {
            code = Py_CompileStringObject(source, filename, Py_file_input, NULL, -1);
        }
        if (code != NULL) {
            remember_source_lines(filename, source);
            /* Registered, and marked with its source, before its body runs,
             * so another thread loading the same source meanwhile finds it
             * (and waits for the body: wait_for_body). */
            mod = add_module(name);
            if (mod != NULL && set_loading(mod, text) < 0) {
                Py_CLEAR(mod);
            }
        }
        if (mod != NULL) {
            /* Runs the body in sys.modules[name] (the module just added);
             * on failure, removes it from sys.modules. */
            PyObject *added = mod;
            mod = PyImport_ExecCodeModuleObject(name, code, filename, NULL);
            loaded(added);
            Py_DECREF(added);
        }
        *importing = mod == NULL;
    }
    if (mod != NULL) {
        fn = get_dotted(mod, func);
    }
    if (fn != NULL && !PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is a %s, which is not callable", module, func,
                     Py_TYPE(fn)->tp_name);
        Py_CLEAR(fn);
    }
    Py_XDECREF(mod);
    Py_XDECREF(code);
    Py_XDECREF(filename);
    Py_XDECREF(text);
    Py_XDECREF(name);
    return fn;
}

void pim_decref(PyObject *obj) { Py_XDECREF(obj); }

PyObject *pim_call_function(PyObject *fn, PyObject *const *args, size_t nargs, PyObject *kwnames) {
    return PyObject_Vectorcall(fn, args, nargs, kwnames);
}

PyObject *pim_call_method(PyObject *name, PyObject *const *args, size_t nargs, PyObject *kwnames) {
    return PyObject_VectorcallMethod(name, args, nargs, kwnames);
}

PyObject *pim_array_row(PyObject *obj, Py_ssize_t index) {
    PyObject *plain, *row;
    if (PyArray_CheckExact(obj)) {
        return PySequence_GetItem(obj, index);
    }
    /* A subclass's item may be of another shape (numpy.matrix: a 1 x n
     * matrix for a row): the row of a plain view of the same data. */
    plain = PyArray_View((PyArrayObject *)obj, NULL, &PyArray_Type);
    if (plain == NULL) {
        return NULL;
    }
    row = PySequence_GetItem(plain, index);
    Py_DECREF(plain);
    return row;
}

void pim_describe_what(PyObject *obj, char *what, size_t size) {
    PyArrayObject *array = (PyArrayObject *)obj;
    char *dtype;
    if (PyCoro_CheckExact(obj)) {
        /* The call made an `async def` function's coroutine and ran none of
         * it; Python warns later that it was never awaited. */
        snprintf(what, size,
                 "a coroutine (the function is `async def`, and nothing runs it: py-in-mem does "
                 "not run an event loop; call a plain function that returns asyncio.run() of it)");
        return;
    }
    if (PyAsyncGen_CheckExact(obj)) {
        snprintf(what, size,
                 "an async generator (the function is `async def` with `yield`; call a plain "
                 "function that collects it with asyncio.run())");
        return;
    }
    if (PyGen_Check(obj)) {
        snprintf(what, size,
                 "a generator (the function yields its values; call a plain function that "
                 "returns list() of it)");
        return;
    }
    if (PyArray_IsScalar(obj, Datetime) || PyArray_IsScalar(obj, Timedelta)) {
        snprintf(what, size,
                 "an object of type %s (dates and durations are not read: return "
                 ".astype('int64') of it, a count of its unit, or str() of it)",
                 Py_TYPE(obj)->tp_name);
        return;
    }
    if (!PyArray_Check(obj)) {
        /* pandas' Series and DataFrame, xarray's and torch's arrays: numpy
         * reads them through __array__, which may drop what they are
         * besides their values (an index, column names), so they are not
         * read as arrays; the message says how. Looked up on the type, as
         * Python looks up special methods; an error is cleared. */
        int has_array = !PyArray_IsScalar(obj, Generic) &&
                        PyObject_HasAttrString((PyObject *)Py_TYPE(obj), "__array__");
        PyErr_Clear();
        if (has_array == 1) {
            snprintf(what, size,
                     "an object of type %s (it converts to a numpy array, which may drop "
                     "what it holds besides its values: return numpy.asarray() of it, or its "
                     ".to_numpy(), to read its values as an array)",
                     Py_TYPE(obj)->tp_name);
        } else {
            snprintf(what, size, "an object of type %s", Py_TYPE(obj)->tp_name);
        }
        return;
    }
    dtype = pim_dup_str((PyObject *)PyArray_DESCR(array));
    if (PyArray_DESCR(array)->kind == 'M' || PyArray_DESCR(array)->kind == 'm') {
        snprintf(what, size,
                 "a %d-D numpy array of dtype %s (dates and durations are not read: return "
                 ".astype('int64') of it, counts of its unit, or .astype(str))",
                 PyArray_NDIM(array), dtype ? dtype : "?");
        free(dtype);
        return;
    }
    if (!pim_is_plain_array(obj)) {
        if (pim_is_masked_array(obj)) {
            snprintf(what, size,
                     "a masked array (numpy.ma.MaskedArray) of dtype %s, whose mask would be lost "
                     "(return its .filled(value), or its .data and .mask apart)",
                     dtype ? dtype : "?");
        } else {
            snprintf(what, size,
                     "a %s of dtype %s, an ndarray subclass whose meaning may be more than its "
                     "data (return numpy.asarray() of it for the data alone)",
                     Py_TYPE(obj)->tp_name, dtype ? dtype : "?");
        }
    } else if (PyArray_NDIM(array) == 1) {
        snprintf(what, size, "a numpy array of dtype %s", dtype ? dtype : "?");
    } else {
        snprintf(what, size, "a %d-D numpy array of dtype %s", PyArray_NDIM(array),
                 dtype ? dtype : "?");
    }
    free(dtype);
}

/* A numpy scalar's kind and itemsize, from its type number: the bool,
 * integer, float and complex types this glue reads (float16 included, for
 * its message); 0 for any other. */
static int scalar_kind(int type_num, char *kind, int *itemsize) {
#define PIM_KIND(num, k, ctype)                                                                    \
    case num:                                                                                      \
        *kind = k;                                                                                 \
        *itemsize = (int)sizeof(ctype);                                                            \
        return 1;
    switch (type_num) {
        PIM_KIND(NPY_BOOL, 'b', npy_bool)
        PIM_KIND(NPY_BYTE, 'i', npy_byte)
        PIM_KIND(NPY_SHORT, 'i', npy_short)
        PIM_KIND(NPY_INT, 'i', npy_int)
        PIM_KIND(NPY_LONG, 'i', npy_long)
        PIM_KIND(NPY_LONGLONG, 'i', npy_longlong)
        PIM_KIND(NPY_UBYTE, 'u', npy_ubyte)
        PIM_KIND(NPY_USHORT, 'u', npy_ushort)
        PIM_KIND(NPY_UINT, 'u', npy_uint)
        PIM_KIND(NPY_ULONG, 'u', npy_ulong)
        PIM_KIND(NPY_ULONGLONG, 'u', npy_ulonglong)
        PIM_KIND(NPY_HALF, 'f', npy_half)
        PIM_KIND(NPY_FLOAT, 'f', npy_float)
        PIM_KIND(NPY_DOUBLE, 'f', npy_double)
        PIM_KIND(NPY_CFLOAT, 'c', npy_cfloat)
        PIM_KIND(NPY_CDOUBLE, 'c', npy_cdouble)
    default:
        return 0;
    }
#undef PIM_KIND
}

/* out as a 0-D view of one value of kind and itemsize, already copied into
 * out->scalar. */
static pim_result_kind scalar_view(pim_array_view *out, char kind, int itemsize) {
    out->data = NULL;
    out->ndim = 0;
    out->shape = NULL;
    out->strides = NULL;
    out->itemsize = itemsize;
    out->kind = kind;
    out->byteswapped = 0;
    out->sole_owner = 0;
    return PIM_SCALAR;
}

/* A numpy scalar of a kind this glue reads, copied into out. obj: borrowed,
 * a numpy scalar. Returns PIM_SCALAR, or PIM_OTHER for any other scalar type
 * (str_ is then told apart as a str by the caller). */
static pim_result_kind numpy_scalar(PyObject *obj, pim_array_view *out) {
    PyArray_Descr *descr;
    char kind = 0;
    int itemsize = 0, known;
    /* The exact numpy types first: a type compare and a copy of the value
     * each, where PyArray_DescrFromScalar looks the type up (twice, with
     * PyArray_ScalarAsCtype). */
#define PIM_EXACT(cls, k)                                                                          \
    if (Py_IS_TYPE(obj, &Py##cls##ArrType_Type)) {                                                 \
        memcpy(out->scalar.bytes, &PyArrayScalar_VAL(obj, cls), sizeof PyArrayScalar_VAL(obj, cls)); \
        return scalar_view(out, k, (int)sizeof PyArrayScalar_VAL(obj, cls));                       \
    }
    PIM_EXACT(Double, 'f')
    PIM_EXACT(Long, 'i')
    PIM_EXACT(Bool, 'b')
    PIM_EXACT(Float, 'f')
    PIM_EXACT(CDouble, 'c')
    PIM_EXACT(CFloat, 'c')
    PIM_EXACT(LongLong, 'i')
    PIM_EXACT(Int, 'i')
    PIM_EXACT(Short, 'i')
    PIM_EXACT(Byte, 'i')
    PIM_EXACT(ULong, 'u')
    PIM_EXACT(ULongLong, 'u')
    PIM_EXACT(UInt, 'u')
    PIM_EXACT(UShort, 'u')
    PIM_EXACT(UByte, 'u')
    PIM_EXACT(Half, 'f')
#undef PIM_EXACT
    /* A subclass of one of them, or another scalar type. */
    descr = PyArray_DescrFromScalar(obj); /* new reference */
    if (descr == NULL) {
        PyErr_Clear();
        return PIM_OTHER;
    }
    known = scalar_kind(descr->type_num, &kind, &itemsize) &&
            (size_t)itemsize <= sizeof out->scalar.bytes;
    Py_DECREF(descr);
    if (!known) {
        return PIM_OTHER;
    }
    /* Copies the value (itemsize bytes, native byte order) into the buffer. */
    PyArray_ScalarAsCtype(obj, out->scalar.bytes);
    return scalar_view(out, kind, itemsize);
}

/* A Python int as int64 or uint64 in out, or PIM_BIG_INT. obj: borrowed. */
static pim_result_kind python_int(PyObject *obj, pim_array_view *out) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0 && !(value == -1 && PyErr_Occurred())) {
        int64_t v = (int64_t)value;
        memcpy(out->scalar.bytes, &v, sizeof v);
        return scalar_view(out, 'i', (int)sizeof v);
    }
    PyErr_Clear();
    if (overflow > 0) {
        unsigned long long big = PyLong_AsUnsignedLongLong(obj);
        if (!(big == (unsigned long long)-1 && PyErr_Occurred())) {
            uint64_t v = (uint64_t)big;
            memcpy(out->scalar.bytes, &v, sizeof v);
            return scalar_view(out, 'u', (int)sizeof v);
        }
        PyErr_Clear();
    }
    return PIM_BIG_INT;
}

pim_result_kind pim_describe_result(PyObject *obj, pim_array_view *out) {
    PyArrayObject *array;
    /* No memset and no strings: this is on every call's path, arrays first. */
    out->obj = obj;
    if (PyArray_Check(obj)) {
        int exact = PyArray_CheckExact(obj);
        if (!exact && !pim_is_plain_array(obj)) {
            return PIM_ARRAY_SUBCLASS;
        }
        array = (PyArrayObject *)obj;
        out->data = PyArray_BYTES(array);
        out->ndim = PyArray_NDIM(array);
        out->shape = (const Py_ssize_t *)PyArray_DIMS(array);
        out->strides = (const Py_ssize_t *)PyArray_STRIDES(array);
        out->itemsize = (int)PyArray_ITEMSIZE(array);
        out->kind = PyArray_DESCR(array)->kind;
        out->byteswapped = PyArray_ISBYTESWAPPED(array) ? 1 : 0;
        /* The caller's reference is the only one, no weak reference can
         * revive another, the data is the array's own, and the array is an
         * exact ndarray, which the garbage collector never tracks: no other
         * Python object can reach or write this memory, and no Python code
         * can find it (gc.get_objects() lists only tracked objects; a
         * subclass instance is tracked, and its __array_finalize__ may keep
         * it). */
        out->sole_owner = exact && PyArray_CHKFLAGS(array, NPY_ARRAY_OWNDATA) &&
                          Py_REFCNT(obj) == 1 && PyArray_BASE(array) == NULL &&
                          ((PyArrayObject_fields *)array)->weakreflist == NULL &&
                          !PyObject_GC_IsTracked(obj);
        return PIM_ARRAY;
    }
    /* numpy's own scalars first: float64 and complex128 are also Python
     * floats and complexes, bool_ and the integers are not ints. */
    if (PyArray_IsScalar(obj, Generic)) {
        pim_result_kind kind = numpy_scalar(obj, out);
        if (kind != PIM_OTHER || !PyUnicode_Check(obj)) {
            return kind;
        }
    }
    if (obj == Py_None) {
        return PIM_NONE;
    }
    if (PyBool_Check(obj)) { /* before int: bool is an int */
        out->scalar.bytes[0] = obj == Py_True;
        return scalar_view(out, 'b', 1);
    }
    if (PyLong_Check(obj)) {
        return python_int(obj, out);
    }
    if (PyFloat_Check(obj)) {
        double v = PyFloat_AS_DOUBLE(obj);
        memcpy(out->scalar.bytes, &v, sizeof v);
        return scalar_view(out, 'f', (int)sizeof v);
    }
    if (PyComplex_Check(obj)) {
        double parts[2];
        parts[0] = PyComplex_RealAsDouble(obj);
        parts[1] = PyComplex_ImagAsDouble(obj);
        memcpy(out->scalar.bytes, parts, sizeof parts);
        return scalar_view(out, 'c', (int)sizeof parts);
    }
    if (PyUnicode_Check(obj)) {
        return PIM_STR;
    }
    if (PyTuple_Check(obj)) {
        return PIM_TUPLE;
    }
    if (PyList_Check(obj)) {
        return PIM_LIST;
    }
    if (PyDict_Check(obj)) {
        return PIM_DICT;
    }
    return PIM_OTHER;
}

PyObject *pim_call_one(PyObject *fn, PyObject *arg) { return PyObject_CallOneArg(fn, arg); }
