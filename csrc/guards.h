/*
 * guards.h: what guards.c gives the other files of csrc/ (start.c installs
 * the guard once). GIL and ownership per function, as in glue.h.
 */
#ifndef PY_IN_MEM_GUARDS_H
#define PY_IN_MEM_GUARDS_H

#include "internal.h"

/* Puts the glue's `ufunc.at` in place of numpy's on numpy's ufunc type,
 * once (a second call, a host's Python prepared again, keeps the first):
 * the same method, which first refuses a read-only first operand. Leaves
 * numpy's as it is, and sets nothing, where numpy's type has no such method
 * descriptor. GIL held. (guards.c) */
PIM_INTERNAL void pim_guard_ufunc_at(void);

#endif
