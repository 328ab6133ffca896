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
 * bytes, element 0 at data, can reach. Returns 1, or 0 (lo and hi left
 * alone) for an array without elements. data, shape, strides: borrowed.
 * No GIL needed. (arrays.c) */
PIM_INTERNAL int pim_extent(const char *data, int ndim, const npy_intp *shape,
                            const npy_intp *strides, npy_intp itemsize, const char **lo,
                            const char **hi);

#endif /* PY_IN_MEM_ARRAYS_H */
