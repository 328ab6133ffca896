/*
 * holds.h: what holds.c gives the other files of csrc/. GIL and ownership
 * per function, as in glue.h.
 */
#ifndef PY_IN_MEM_HOLDS_H
#define PY_IN_MEM_HOLDS_H

#include "internal.h"

/* How many references to obj Rust holds (pim_hold): references no Python
 * object makes, which retention.c's scan cannot see. obj: borrowed, only
 * compared. GIL held. (holds.c) */
PIM_INTERNAL Py_ssize_t pim_holds_of(PyObject *obj);

/* The objects Rust holds, one a call: *pos starts at 0; returns a held
 * object (borrowed) and advances *pos, or NULL when there are no more.
 * Python code must not run between the calls (a hold made or let go
 * meanwhile may be missed or met twice). GIL held. (holds.c) */
PIM_INTERNAL PyObject *pim_holds_next(size_t *pos);

#endif /* PY_IN_MEM_HOLDS_H */
