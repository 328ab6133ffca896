/*
 * guards.h: what guards.c gives the other files of csrc/ (start.c installs
 * the guard once). GIL and ownership per function, as in glue.h.
 */
#ifndef PY_IN_MEM_GUARDS_H
#define PY_IN_MEM_GUARDS_H

#include "internal.h"

/* Puts the glue's `ufunc.at` and `ufunc.accumulate` in place of numpy's on
 * numpy's ufunc type, once (a second call, a host's Python prepared again,
 * keeps the first): the same methods, which first refuse a read-only array
 * where numpy's would write into it. Leaves numpy's method as it is where
 * numpy's type has no such method descriptor. GIL held. (guards.c) */
PIM_INTERNAL void pim_guard_ufuncs(void);

#endif
