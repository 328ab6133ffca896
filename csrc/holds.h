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

#endif /* PY_IN_MEM_HOLDS_H */
