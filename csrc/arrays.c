/*
 * arrays.c: numpy arrays over Rust memory, lent for a call or given for good,
 * and copies of results. Ownership: see each function in glue.h.
 */
#include "arrays.h"

#include <stdint.h>

int pim_npy_typenum(char kind, int itemsize) {
    switch (kind) {
    case 'b':
        return itemsize == 1 ? NPY_BOOL : -1;
    case 'i':
        return itemsize == 1   ? NPY_INT8
               : itemsize == 2 ? NPY_INT16
               : itemsize == 4 ? NPY_INT32
               : itemsize == 8 ? NPY_INT64
                               : -1;
    case 'u':
        return itemsize == 1   ? NPY_UINT8
               : itemsize == 2 ? NPY_UINT16
               : itemsize == 4 ? NPY_UINT32
               : itemsize == 8 ? NPY_UINT64
                               : -1;
    case 'f':
        return itemsize == 4 ? NPY_FLOAT32 : itemsize == 8 ? NPY_FLOAT64 : -1;
    case 'c':
        return itemsize == 8 ? NPY_COMPLEX64 : itemsize == 16 ? NPY_COMPLEX128 : -1;
    default:
        return -1;
    }
}

/* Rust passes dims and strides as Py_ssize_t, numpy takes npy_intp. */
typedef char pim_intp_is_ssize_t[sizeof(npy_intp) == sizeof(Py_ssize_t) ? 1 : -1];

/* An array over data (borrowed by the array), no base: C order when strides
 * is NULL, else those byte strides, with numpy's contiguity and alignment
 * flags worked out from them. Returns a new reference or NULL with an
 * exception set (numpy refuses a rank above its NPY_MAXDIMS itself). */
static PyObject *array_over(const void *data, int ndim, const Py_ssize_t *dims,
                            const Py_ssize_t *strides, int typenum, int flags) {
    PyObject *arr;
    if (ndim < 0) {
        PyErr_Format(PyExc_ValueError, "py-in-mem cannot lend a %d-D array", ndim);
        return NULL;
    }
    if (strides == NULL) {
        flags |= NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED;
    }
    arr = PyArray_New(&PyArray_Type, ndim, (const npy_intp *)dims, typenum,
                      (const npy_intp *)strides, (void *)data, 0, flags, NULL);
    if (arr != NULL && strides != NULL) {
        PyArray_UpdateFlags((PyArrayObject *)arr, NPY_ARRAY_UPDATE_ALL);
    }
    return arr;
}

int pim_extent(const char *data, int ndim, const npy_intp *shape, const npy_intp *strides,
               npy_intp itemsize, const char **lo, const char **hi) {
    /* Checked arithmetic: the shape and strides may come from any buffer
     * exporter or from numpy.lib.stride_tricks.as_strided, which checks
     * nothing. An extent that overflows is taken as all of memory, which
     * overlaps whatever it is compared with: the cautious answer. */
    npy_intp low = 0, high = itemsize, step;
    uintptr_t base = (uintptr_t)data, below, above;
    int i;
    for (i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            return 0;
        }
    }
    for (i = 0; i < ndim; i++) {
        if (__builtin_mul_overflow(strides[i], shape[i] - 1, &step) ||
            (step < 0 ? __builtin_add_overflow(low, step, &low)
                      : __builtin_add_overflow(high, step, &high))) {
            *lo = (const char *)0;
            *hi = (const char *)UINTPTR_MAX;
            return 1;
        }
    }
    /* low <= 0 < high; the distances as unsigned, without negating
     * NPY_MIN_INTP. */
    below = (uintptr_t)0 - (uintptr_t)low;
    above = (uintptr_t)high;
    *lo = (const char *)(below > base ? 0 : base - below);
    *hi = (const char *)(above > UINTPTR_MAX - base ? UINTPTR_MAX : base + above);
    return 1;
}

/* The memory arr's elements occupy: *low, its lowest address, and *nbytes
 * from there (0 for an array without elements, *low then its data). */
static void memory_span(PyArrayObject *arr, char **low, npy_intp *nbytes) {
    const char *lo, *hi;
    if (!pim_extent(PyArray_BYTES(arr), PyArray_NDIM(arr), PyArray_DIMS(arr),
                    PyArray_STRIDES(arr), PyArray_ITEMSIZE(arr), &lo, &hi)) {
        *low = PyArray_BYTES(arr);
        *nbytes = 0;
        return;
    }
    *low = (char *)lo;
    *nbytes = hi - lo;
}

/* The name every borrow capsule is made with. The glue's capsules are told
 * apart by this pointer, not by the text: a capsule Python code makes with
 * the same name (ctypes) is not one of them. */
static const char borrow_capsule_name[] = PIM_BORROW_CAPSULE;

int pim_is_borrow_capsule(PyObject *obj) {
    return obj != NULL && PyCapsule_CheckExact(obj) &&
           PyCapsule_GetName(obj) == borrow_capsule_name;
}

/* One borrow capsule kept for the next call, so the common call does not
 * allocate and free one. Guarded by the GIL, like every function here. */
static PyObject *spare_borrow_capsule = NULL;

/* The span (lowest address, length) last recorded in a borrow capsule, and
 * that capsule (not owned: only compared with). Every borrow capsule's span
 * is set through record_span, so a capsule equal to spanned_capsule records
 * exactly this span: the common call, lending the same buffer again, skips
 * setting it, without asking the capsule (two C-API calls). */
static PyObject *spanned_capsule = NULL;
static const void *spanned_data = NULL;
static npy_intp spanned_nbytes = -1;

/* Records data (not owned) and nbytes in capsule (borrowed, one of ours),
 * unless it records them already. Returns 0, or -1 with an exception set.
 * GIL held. */
static int record_span(PyObject *capsule, const void *data, npy_intp nbytes) {
    if (capsule == spanned_capsule && data == spanned_data && nbytes == spanned_nbytes) {
        return 0;
    }
    spanned_capsule = NULL;
    if (PyCapsule_SetPointer(capsule, (void *)data) < 0 ||
        PyCapsule_SetContext(capsule, (void *)(uintptr_t)nbytes) < 0) {
        return -1;
    }
    spanned_capsule = capsule;
    spanned_data = data;
    spanned_nbytes = nbytes;
    return 0;
}

/* A borrow capsule for data (size nbytes). Returns a new reference, or NULL
 * with an exception set. data: recorded, not owned. */
static PyObject *take_borrow_capsule(const void *data, npy_intp nbytes) {
    PyObject *capsule = spare_borrow_capsule;
    spare_borrow_capsule = NULL;
    /* Only a capsule of ours that nothing else holds is reused: nothing may
     * see it re-pointed at other memory. return_borrow_capsule kept it
     * only after checking it was one of ours, and nothing else holds it, so
     * its type and count are all there is to check again. */
    if (capsule != NULL && (!PyCapsule_CheckExact(capsule) || Py_REFCNT(capsule) != 1)) {
        Py_DECREF(capsule);
        capsule = NULL;
    }
    if (capsule == NULL) {
        /* Rust never lends a NULL pointer, not even for an empty slice. */
        capsule = PyCapsule_New((void *)data, borrow_capsule_name, NULL);
        if (capsule == NULL) {
            return NULL;
        }
        /* A new capsule may have the address of one since freed. */
        if (capsule == spanned_capsule) {
            spanned_capsule = NULL;
        }
    }
    if (record_span(capsule, data, nbytes) < 0) {
        Py_CLEAR(capsule);
    }
    return capsule;
}

/* Gives back a borrow capsule nothing else holds any more, for reuse by the
 * next pim_borrow_array. capsule: owned, consumed. GIL held. */
static void return_borrow_capsule(PyObject *capsule) {
    if (spare_borrow_capsule == NULL && Py_REFCNT(capsule) == 1) {
        spare_borrow_capsule = capsule;
    } else {
        Py_DECREF(capsule);
    }
}

/* The base of every untracked array: one capsule, made once and kept for
 * good, so an untracked array costs no allocation. It points at itself only
 * because a capsule's pointer must not be NULL; nothing reads it. */
static const char untracked_capsule_name[] = "py_in_mem.untracked";
static PyObject *untracked_base = NULL;

int pim_make_untracked_base(void) {
    if (untracked_base == NULL) {
        untracked_base = PyCapsule_New(&untracked_base, untracked_capsule_name, NULL);
    }
    return untracked_base == NULL ? -1 : 0;
}

/* Gives arr, just made and without a base, the capsule `base` (owned,
 * consumed). Returns arr. What PyArray_SetBaseObject does for a base that is
 * not an array, without its checks and its search for an array base, on
 * every call's path: the fields are public in numpy's headers and stable
 * since 1.7, as retention.c's move_to_copy relies on too. */
static PyObject *with_base(PyObject *arr, PyObject *base) {
    ((PyArrayObject_fields *)arr)->base = base;
    return arr;
}

/* One lent 1-D array kept, with its capsule, for the next 1-D lend of the
 * same dtype, so the common call neither makes nor frees an array object
 * (about 500 instructions of its 2,500); and one untracked array, with the
 * shared untracked base, for call_unchecked. numpy has no API to re-point an
 * array at other memory; its fields are public in numpy's headers and
 * stable since 1.7, as move_to_copy relies on too. Guarded by the GIL. */
static PyObject *spare_array = NULL;
static PyObject *spare_untracked = NULL;

/* numpy's own descriptor of type_num (borrowed, kept for good: numpy's
 * builtin descriptors are never freed), looked up once; NULL for a type
 * number outside numpy's builtin ones. GIL held. */
static PyArray_Descr *builtin_descr(int type_num) {
    /* Type numbers below NPY_USERDEF are numpy's own (in 1.x and 2.x). */
    static PyArray_Descr *known[NPY_USERDEF];
    if (type_num < 0 || type_num >= NPY_USERDEF) {
        return NULL;
    }
    if (known[type_num] == NULL) {
        known[type_num] = PyArray_DescrFromType(type_num); /* a reference kept */
        PyErr_Clear();
    }
    return known[type_num];
}

/* Does an array lent as `typenum` (fields: its own, borrowed) carry nothing
 * Python may have hung on it since: no weak reference (through which a later
 * call could reach it, trial 28), and one of numpy's own descriptors of that
 * type, not one Python set (`a.dtype = np.dtype('>f8')`)? The GIL held. */
static int is_unadorned(PyArrayObject_fields *fields, int typenum) {
    PyArray_Descr *builtin = builtin_descr(typenum);
    return fields->weakreflist == NULL && builtin != NULL && fields->descr == builtin;
}

/* Can arr (borrowed; a 1-D lend nothing else holds) be re-pointed for the
 * next lend? Not if Python reshaped it to another rank, gave it a dtype that
 * is not one of numpy's own descriptors (`a.dtype = np.dtype('>f8')`), or
 * left a weak reference or a buffer export. (A builtin dtype of another type,
 * `a.dtype = np.int32`, passes here: take_spare checks the type number.) */
static int can_repoint(PyObject *arr) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)arr;
    return fields->nd == 1 && fields->_buffer_info == NULL &&
           is_unadorned(fields, fields->descr->type_num);
}

/* Points arr (a spare, nothing else holds it) at `len` elements at data,
 * as numpy would make a new 1-D array over aligned data (a Rust slice's
 * always is): contiguous both ways, aligned, and read-only. */
static void repoint(PyObject *arr, const void *data, npy_intp len) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)arr;
    fields->data = (char *)data;
    fields->dimensions[0] = len;
    fields->strides[0] = PyArray_ITEMSIZE((PyArrayObject *)arr);
    fields->flags = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_F_CONTIGUOUS | NPY_ARRAY_ALIGNED;
}

/* The spare *spare if it is of `typenum` (taken: *spare becomes NULL),
 * else NULL. Returns a new reference. */
static PyObject *take_spare(PyObject **spare, int typenum) {
    PyObject *arr = *spare;
    if (arr == NULL || PyArray_DESCR((PyArrayObject *)arr)->type_num != typenum) {
        return NULL;
    }
    *spare = NULL;
    return arr;
}

void pim_return_borrowed(PyObject *arr) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)arr;
    PyObject *base = fields->base;
    if (spare_array == NULL && can_repoint(arr)) {
        spare_array = arr; /* keeps its reference, and its capsule */
        return;
    }
    /* Keep the capsule past the array, for reuse. */
    Py_INCREF(base);
    Py_DECREF(arr);
    return_borrow_capsule(base);
}

/* The spare array over `len` elements of `typenum` at data, with its
 * capsule recording them; NULL (and the spare left) if there is none of
 * that dtype. Returns a new reference. */
static PyObject *reuse_spare_array(const void *data, npy_intp len, int typenum) {
    PyObject *arr = take_spare(&spare_array, typenum);
    PyObject *capsule;
    npy_intp nbytes;
    if (arr == NULL) {
        return NULL;
    }
    capsule = PyArray_BASE((PyArrayObject *)arr);
    nbytes = len * PyArray_ITEMSIZE((PyArrayObject *)arr);
    /* A loop over one buffer lends the same span each call: the capsule
     * records it already. (What the capsule records, the lowest address and
     * length of its last lend whatever its strides, not the array's data and
     * length: a backwards lend's data is its highest element.) */
    if (record_span(capsule, data, nbytes) < 0) {
        /* Not reachable (the capsule is ours, and data not NULL): the array
         * goes, and one is made anew. */
        PyErr_Clear();
        Py_DECREF(arr);
        return NULL;
    }
    repoint(arr, data, len);
    return arr;
}

PyObject *pim_borrow_array(const void *data, int ndim, const Py_ssize_t *dims,
                           const Py_ssize_t *strides, int typenum) {
    PyObject *base, *arr;
    char *low;
    npy_intp nbytes;
    if (ndim == 1 && strides == NULL) {
        arr = reuse_spare_array(data, dims[0], typenum);
        if (arr != NULL) {
            return arr;
        }
    }
    /* No NPY_ARRAY_WRITEABLE: Python sees the Rust memory read-only. */
    arr = array_over(data, ndim, dims, strides, typenum, 0);
    if (arr == NULL) {
        return NULL;
    }
    /* The capsule remembers what was lent (the span's lowest address, and
     * its length as context), so retention.c can move a kept array onto a
     * copy, whatever its strides. */
    memory_span((PyArrayObject *)arr, &low, &nbytes);
    base = take_borrow_capsule(low, nbytes);
    if (base == NULL) {
        Py_DECREF(arr);
        return NULL;
    }
    return with_base(arr, base);
}

int pim_borrow_is_as_lent(PyObject *arr, const void *data, int ndim, const Py_ssize_t *dims,
                          const Py_ssize_t *strides, int typenum) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)arr;
    npy_intp itemsize = PyArray_ITEMSIZE((PyArrayObject *)arr);
    int axis;
    /* An adorned one is given back now instead, and a weak reference dies
     * with it. */
    if (fields->data != (char *)data || fields->nd != ndim || !is_unadorned(fields, typenum) ||
        (fields->flags & (NPY_ARRAY_WRITEABLE | NPY_ARRAY_ALIGNED)) != NPY_ARRAY_ALIGNED) {
        return 0;
    }
    for (axis = 0; axis < ndim; axis++) {
        /* NULL strides: a 1-D C-order lend, whose one stride numpy made the
         * item size. */
        npy_intp stride = strides != NULL ? strides[axis] : itemsize;
        if (fields->dimensions[axis] != dims[axis] || fields->strides[axis] != stride) {
            return 0;
        }
    }
    return 1;
}

PyObject *pim_borrow_array_untracked(const void *data, int ndim, const Py_ssize_t *dims,
                                     const Py_ssize_t *strides, int typenum) {
    PyObject *arr;
    if (untracked_base == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "py-in-mem: pim_prepare has not run");
        return NULL;
    }
    if (ndim == 1 && strides == NULL) {
        arr = take_spare(&spare_untracked, typenum);
        if (arr != NULL) {
            repoint(arr, data, dims[0]);
            return arr;
        }
    }
    arr = array_over(data, ndim, dims, strides, typenum, 0);
    if (arr == NULL) {
        return NULL;
    }
    Py_INCREF(untracked_base);
    return with_base(arr, untracked_base);
}

void pim_release_untracked(PyObject *arr) {
    if (spare_untracked == NULL && Py_REFCNT(arr) == 1 &&
        PyArray_BASE((PyArrayObject *)arr) == untracked_base && can_repoint(arr)) {
        spare_untracked = arr; /* keeps its reference */
        return;
    }
    Py_DECREF(arr);
}

/* The array's base is a capsule: its pointer the buffer's owner, its context
 * the function that frees it (as an integer, which C lets a function pointer
 * round-trip through; no allocation of their own). */
static const char OWNED_CAPSULE[] = "py_in_mem.owned";

int pim_is_owned_capsule(PyObject *obj) {
    return obj != NULL && PyCapsule_CheckExact(obj) && PyCapsule_GetName(obj) == OWNED_CAPSULE;
}

/* Capsule destructor: runs once, with the GIL, when the last array or view
 * over the buffer is gone. capsule: borrowed (being freed); release(owner)
 * frees the owner and its buffer. It often runs while an exception is
 * raised (numpy drops the operands of a failed operation, numpy refuses an
 * array the glue was making): that exception is kept (trial 29: it was
 * cleared, and Python code's `except` missed it). */
static void owned_capsule_free(PyObject *capsule) {
    pim_raised aside;
    void *owner;
    pim_release_fn release;
    pim_set_raised_aside(&aside);
    owner = PyCapsule_GetPointer(capsule, OWNED_CAPSULE);
    release = (pim_release_fn)(uintptr_t)PyCapsule_GetContext(capsule);
    if (owner != NULL && release != NULL) {
        release(owner);
    }
    pim_restore_raised(&aside);
}

PyObject *pim_own_array(void *data, int ndim, const Py_ssize_t *dims, int typenum,
                    int writeable, void *owner, pim_release_fn release) {
    PyObject *base, *arr;
    int flags = 0;
    base = PyCapsule_New(owner, OWNED_CAPSULE, NULL);
    if (base == NULL) {
        release(owner);
        return NULL;
    }
    /* The destructor only once the context is set: it finds both or none.
     * Neither call fails on the valid capsule just made. */
    if (PyCapsule_SetContext(base, (void *)(uintptr_t)release) < 0 ||
        PyCapsule_SetDestructor(base, owned_capsule_free) < 0) {
        Py_DECREF(base);
        release(owner);
        return NULL;
    }
    if (writeable) {
        flags |= NPY_ARRAY_WRITEABLE;
    }
    arr = array_over(data, ndim, dims, NULL, typenum, flags);
    if (arr == NULL) {
        Py_DECREF(base); /* frees the owner through the destructor */
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)arr, base) < 0) { /* steals base */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyObject *pim_array_copy(PyObject *arr) {
    /* ENSUREARRAY: a base-class ndarray even from a subclass instance (a
     * numpy.matrix), so the copy can be read in place. FromArray steals the
     * (NULL) descriptor. */
    return PyArray_FromArray((PyArrayObject *)arr, NULL,
                             NPY_ARRAY_DEFAULT | NPY_ARRAY_ENSURECOPY | NPY_ARRAY_ENSUREARRAY);
}

/* numpy.matrix and numpy.memmap (owned references, kept for good), or NULL
 * where not found. */
static PyObject *plain_subclasses[2] = {NULL, NULL};

void pim_find_plain_subclasses(void) {
    static const char *const names[2] = {"matrix", "memmap"};
    if (plain_subclasses[0] != NULL || plain_subclasses[1] != NULL) {
        return; /* a host's Python prepared again: the same types */
    }
    pim_find_types("numpy", names, 2, plain_subclasses, NULL);
}

int pim_is_plain_array(PyObject *obj) {
    size_t i;
    if (PyArray_CheckExact(obj)) {
        return 1;
    }
    for (i = 0; i < 2; i++) {
        if (plain_subclasses[i] != NULL &&
            PyObject_TypeCheck(obj, (PyTypeObject *)plain_subclasses[i])) {
            return 1;
        }
    }
    return 0;
}

int pim_is_masked_array(PyObject *obj) {
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    PyObject *ma, *masked;
    int found = 0;
    if (modules == NULL || !PyDict_Check(modules)) {
        return 0;
    }
    ma = PyDict_GetItemString(modules, "numpy.ma"); /* borrowed */
    if (ma == NULL) {
        return 0;
    }
    masked = PyObject_GetAttrString(ma, "MaskedArray");
    if (masked != NULL && PyType_Check(masked)) {
        found = PyObject_TypeCheck(obj, (PyTypeObject *)masked);
    }
    Py_XDECREF(masked);
    PyErr_Clear();
    return found;
}
