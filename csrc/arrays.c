/*
 * arrays.c: numpy arrays over Rust memory (lent or given), calls, and results
 * described for reading in place. Ownership: see each function in glue.h.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    default:
        return -1;
    }
}

/* A C-ordered array over data with the given flags, no base. data: borrowed
 * by the array. Returns a new reference or NULL with an exception set. */
static PyObject *array_over(const void *data, int ndim, const Py_ssize_t *dims, int typenum,
                            int flags) {
    npy_intp shape[2];
    int i;
    if (ndim < 1 || ndim > 2) {
        PyErr_Format(PyExc_ValueError, "py-in-mem lends 1-D and 2-D arrays, not %d-D", ndim);
        return NULL;
    }
    for (i = 0; i < ndim; i++) {
        shape[i] = (npy_intp)dims[i];
    }
    return PyArray_New(&PyArray_Type, ndim, shape, typenum, NULL, (void *)data, 0, flags, NULL);
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

/* A borrow capsule for data (size nbytes). Returns a new reference, or NULL
 * with an exception set. data: recorded, not owned. */
static PyObject *take_borrow_capsule(const void *data, npy_intp nbytes) {
    PyObject *capsule = spare_borrow_capsule;
    spare_borrow_capsule = NULL;
    /* Only a capsule of ours that nothing else holds is reused: nothing may
     * see it re-pointed at other memory. pim_return_borrow_capsule kept it
     * only after checking it was one of ours, and nothing else holds it, so
     * its type and count are all there is to check again. */
    if (capsule != NULL && (!PyCapsule_CheckExact(capsule) || Py_REFCNT(capsule) != 1)) {
        Py_DECREF(capsule);
        capsule = NULL;
    }
    if (capsule == NULL) {
        /* Rust never lends a NULL pointer, not even for an empty slice. */
        capsule = PyCapsule_New((void *)data, borrow_capsule_name, NULL);
    } else if (PyCapsule_SetPointer(capsule, (void *)data) < 0) {
        Py_DECREF(capsule);
        return NULL;
    }
    if (capsule != NULL && PyCapsule_SetContext(capsule, (void *)(uintptr_t)nbytes) < 0) {
        Py_CLEAR(capsule);
    }
    return capsule;
}

void pim_return_borrow_capsule(PyObject *capsule) {
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

PyObject *pim_borrow_array(const void *data, int ndim, const Py_ssize_t *dims, int typenum) {
    PyObject *base, *arr;
    /* No NPY_ARRAY_WRITEABLE: Python sees the Rust slice read-only. */
    arr = array_over(data, ndim, dims, typenum, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (arr == NULL) {
        return NULL;
    }
    /* The capsule remembers what was lent (data, and its size as context),
     * so retention.c can move a kept array onto a copy. */
    base = take_borrow_capsule(data, PyArray_NBYTES((PyArrayObject *)arr));
    if (base == NULL) {
        Py_DECREF(arr);
        return NULL;
    }
    return with_base(arr, base);
}

PyObject *pim_borrow_array_untracked(const void *data, int ndim, const Py_ssize_t *dims,
                                 int typenum) {
    PyObject *arr;
    if (untracked_base == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "py-in-mem: pim_prepare has not run");
        return NULL;
    }
    arr = array_over(data, ndim, dims, typenum, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (arr == NULL) {
        return NULL;
    }
    Py_INCREF(untracked_base);
    return with_base(arr, untracked_base);
}

/* The owner of a given buffer and how to free it, kept by the array's base. */
typedef struct {
    void *owner;
    pim_release_fn release;
} owned_buffer;

static const char OWNED_CAPSULE[] = "py_in_mem.owned";

int pim_is_owned_capsule(PyObject *obj) {
    return obj != NULL && PyCapsule_CheckExact(obj) && PyCapsule_GetName(obj) == OWNED_CAPSULE;
}

/* Capsule destructor: runs once, with the GIL, when the last array or view
 * over the buffer is gone. capsule: borrowed (being freed); it owns the
 * owned_buffer, freed here after release(owner). */
static void owned_capsule_free(PyObject *capsule) {
    owned_buffer *buffer = PyCapsule_GetPointer(capsule, OWNED_CAPSULE);
    if (buffer != NULL) {
        buffer->release(buffer->owner);
        PyMem_RawFree(buffer);
    }
    PyErr_Clear();
}

PyObject *pim_own_array(void *data, int ndim, const Py_ssize_t *dims, int typenum,
                    int writeable, void *owner, pim_release_fn release) {
    PyObject *base, *arr;
    owned_buffer *buffer = PyMem_RawMalloc(sizeof *buffer);
    int flags = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED;
    if (buffer == NULL) {
        release(owner);
        PyErr_NoMemory();
        return NULL;
    }
    buffer->owner = owner;
    buffer->release = release;
    base = PyCapsule_New(buffer, OWNED_CAPSULE, owned_capsule_free);
    if (base == NULL) {
        release(owner);
        PyMem_RawFree(buffer);
        return NULL;
    }
    if (writeable) {
        flags |= NPY_ARRAY_WRITEABLE;
    }
    arr = array_over(data, ndim, dims, typenum, flags);
    if (arr == NULL) {
        Py_DECREF(base); /* frees the buffer through the destructor */
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)arr, base) < 0) { /* steals base */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyObject *pim_call_function(PyObject *fn, PyObject *const *args, size_t nargs, PyObject *kwnames) {
    return PyObject_Vectorcall(fn, args, nargs, kwnames);
}

void pim_describe_what(PyObject *obj, char *what, size_t size) {
    PyArrayObject *array = (PyArrayObject *)obj;
    char *dtype;
    if (!PyArray_Check(obj)) {
        snprintf(what, size, "an object of type %s", Py_TYPE(obj)->tp_name);
        return;
    }
    dtype = pim_dup_str((PyObject *)PyArray_DESCR(array));
    if (PyArray_NDIM(array) == 1) {
        snprintf(what, size, "a numpy array of dtype %s", dtype ? dtype : "?");
    } else {
        snprintf(what, size, "a %d-D numpy array of dtype %s", PyArray_NDIM(array),
                 dtype ? dtype : "?");
    }
    free(dtype);
}

pim_result_kind pim_describe_array(PyObject *obj, pim_array_view *out) {
    PyArrayObject *array;
    int i;
    /* No memset and no strings: this is on every call's path. */
    out->obj = obj;
    if (!PyArray_Check(obj)) {
        return PIM_NOT_ARRAY;
    }
    array = (PyArrayObject *)obj;
    out->data = PyArray_BYTES(array);
    out->ndim = PyArray_NDIM(array);
    for (i = 0; i < out->ndim && i < 2; i++) {
        out->shape[i] = (Py_ssize_t)PyArray_DIM(array, i);
        out->strides[i] = (Py_ssize_t)PyArray_STRIDE(array, i);
    }
    out->itemsize = (int)PyArray_ITEMSIZE(array);
    out->kind = PyArray_DESCR(array)->kind;
    out->byteswapped = PyArray_ISBYTESWAPPED(array) ? 1 : 0;
    /* The caller's reference is the only one, no weak reference can revive
     * another, and the data is the array's own: no other Python object can
     * reach or write this memory. */
    out->sole_owner = PyArray_CHKFLAGS(array, NPY_ARRAY_OWNDATA) && Py_REFCNT(obj) == 1 &&
                      ((PyArrayObject_fields *)array)->weakreflist == NULL;
    return PIM_ARRAY;
}

pim_result_kind pim_detect(PyObject *fn, PyObject *arr, pim_array_view *out) {
    PyObject *result = PyObject_CallOneArg(fn, arr);
    if (result == NULL) {
        out->obj = NULL;
        return PIM_RAISED;
    }
    return pim_describe_array(result, out); /* out->obj = result: ours to release */
}

PyObject *pim_array_copy(PyObject *arr) {
    return PyArray_NewCopy((PyArrayObject *)arr, NPY_CORDER);
}
