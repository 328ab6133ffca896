/*
 * arrays.h: what arrays.c gives the other files of csrc/ (start.c prepares
 * the untracked base; retention.c needs the borrow capsules and extents).
 * GIL and ownership per function, as in glue.h.
 */
#ifndef PY_IN_MEM_ARRAYS_H
#define PY_IN_MEM_ARRAYS_H

#include "internal.h"

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

/* The lowest (*lo) and one-past-highest (*hi) byte an array of ndim
 * dimensions of shape and byte strides (any sign), elements of itemsize
 * bytes, element 0 at data, can reach; all of memory (0 to UINTPTR_MAX) if
 * that overflows. Returns 1, or 0 (lo and hi left alone) for an array
 * without elements. data, shape, strides: borrowed.
 * No GIL needed. (arrays.c) */
PIM_INTERNAL int pim_extent(const char *data, int ndim, const npy_intp *shape,
                            const npy_intp *strides, npy_intp itemsize, const char **lo,
                            const char **hi);

/* Looks up the ndarray subclasses that are plain data (numpy.matrix,
 * numpy.memmap), read like ndarray itself; any other subclass is refused as a
 * result. GIL held. Never fails: a type not found is refused too. Never
 * leaves an exception set. (arrays.c) */
PIM_INTERNAL void pim_find_plain_subclasses(void);

/* 1 if obj (borrowed, a numpy array) is an exact ndarray or an instance of
 * a plain-data subclass (see pim_find_plain_subclasses), else 0. GIL held.
 * (arrays.c) */
PIM_INTERNAL int pim_is_plain_array(PyObject *obj);

/* 1 if obj (borrowed) is a numpy.ma.MaskedArray, looked up only if numpy.ma
 * was imported (a masked array cannot exist before), else 0. GIL held; never
 * leaves an exception set. (arrays.c) */
PIM_INTERNAL int pim_is_masked_array(PyObject *obj);

#endif /* PY_IN_MEM_ARRAYS_H */
