/*
 * errors.h: what errors.c gives the other files of csrc/. GIL and ownership
 * per function, as in glue.h.
 */
#ifndef PY_IN_MEM_ERRORS_H
#define PY_IN_MEM_ERRORS_H

#include "internal.h"

/* A malloc'ed UTF-8 copy of str(obj), lone surrogates backslash-escaped.
 * obj: borrowed. GIL held. Returns an owned string, or NULL; never leaves an
 * exception set. (errors.c) */
PIM_INTERNAL char *pim_dup_str(PyObject *obj);

/* Fills err from a failed PyStatus (start-up errors are not exceptions).
 * err: out, filled with owned strings; status: by value, its strings
 * static. No GIL needed. (errors.c) */
PIM_INTERNAL void pim_status_error(pim_error *err, PyStatus status);

#endif /* PY_IN_MEM_ERRORS_H */
