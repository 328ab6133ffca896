/*
 * internal.h: what the files of csrc/ share and nobody else sees: numpy's C
 * API, included the same way everywhere, and a few helpers.
 *
 * numpy's C API is a table of function pointers filled by import_array. With
 * several translation units they must share one table: glue.c defines it
 * (PY_IN_MEM_DEFINE_ARRAY_API) and fills it in pim_prepare; the others see
 * it as extern.
 */
#ifndef PY_IN_MEM_INTERNAL_H
#define PY_IN_MEM_INTERNAL_H

#include "glue.h"

#define PY_ARRAY_UNIQUE_SYMBOL pim_ARRAY_API
#ifndef PY_IN_MEM_DEFINE_ARRAY_API
#define NO_IMPORT_ARRAY
#endif
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
/* NPY_TARGET_VERSION comes from build.rs (numpy 1.25's C API); it must stay
 * at 1.20 or later, the first that declares PyArrayObject_fields._buffer_info,
 * which retention.c reads. */
#if !defined(NPY_TARGET_VERSION)
#error "build.rs defines NPY_TARGET_VERSION"
#endif
#include <numpy/arrayobject.h>

/* The name of the capsule every borrowed array has as its base (arrays.c,
 * retention.c). It has no buffer, so numpy refuses to make the array or its
 * views (whose base is the array) writable. pim_is_borrow_capsule tells the
 * glue's own capsules from any other object, a capsule of the same name made
 * elsewhere included. */
#define PIM_BORROW_CAPSULE "py_in_mem.borrowed"

/* Helpers shared between the files of csrc/ (never called from Rust): not
 * static, since another file calls them, but prefixed like every export and
 * hidden from any shared object the glue ends up in. */
#define PIM_INTERNAL __attribute__((visibility("hidden")))

/* Gives back a lent array that nothing else holds, nor its capsule (checked
 * by the caller, pim_borrow_release's fast path): kept, with its capsule,
 * for the next 1-D lend if it can be re-pointed, else freed (its capsule
 * kept for reuse). arr: owned, consumed. GIL held. (arrays.c) */
PIM_INTERNAL void pim_return_borrowed(PyObject *arr);

/* 1 if obj (borrowed; may be NULL) is a borrow capsule the glue made, else 0.
 * GIL held. (arrays.c) */
PIM_INTERNAL int pim_is_borrow_capsule(PyObject *obj);

/* 1 if obj (borrowed; may be NULL) is the base capsule of a buffer given to
 * Python with pim_own_array, else 0. GIL held. (arrays.c) */
PIM_INTERNAL int pim_is_owned_capsule(PyObject *obj);

/* Makes the capsule every untracked array shares as its base, once. GIL
 * held. Returns 0, or -1 with an exception set. (arrays.c) */
PIM_INTERNAL int pim_make_untracked_base(void);

/* Looks up the ndarray subclasses that are plain data (numpy.matrix,
 * numpy.memmap), read like ndarray itself; any other subclass is refused as a
 * result. GIL held. Never fails: a type not found is refused too. Never
 * leaves an exception set. (arrays.c) */
PIM_INTERNAL void pim_find_plain_subclasses(void);

/* The lowest (*lo) and one-past-highest (*hi) byte an array of ndim
 * dimensions of shape and byte strides (any sign), elements of itemsize
 * bytes, element 0 at data, can reach; all of memory (0 to UINTPTR_MAX) if
 * that overflows. Returns 1, or 0 (lo and hi left alone) for an array
 * without elements. data, shape, strides: borrowed.
 * No GIL needed. (arrays.c) */
PIM_INTERNAL int pim_extent(const char *data, int ndim, const npy_intp *shape,
                            const npy_intp *strides, npy_intp itemsize, const char **lo,
                            const char **hi);

/* A malloc'ed UTF-8 copy of str(obj), lone surrogates backslash-escaped.
 * obj: borrowed. GIL held. Returns an owned string, or NULL; never leaves an
 * exception set. (glue.c) */
PIM_INTERNAL char *pim_dup_str(PyObject *obj);

#endif /* PY_IN_MEM_INTERNAL_H */
