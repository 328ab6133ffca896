/*
 * retention.h: what retention.c gives the other files of csrc/ (start.c
 * finds the collector's functions once). GIL and ownership per function,
 * as in glue.h.
 */
#ifndef PY_IN_MEM_RETENTION_H
#define PY_IN_MEM_RETENTION_H

#include "internal.h"

/* Finds gc.collect and gc.get_objects once, as Python started them (C
 * functions of the module gc), and keeps them for good: the retention check
 * calls these, never what Python code may later put in their place. A
 * second call (a host's Python prepared again) keeps the first ones. GIL
 * held. (retention.c) */
PIM_INTERNAL void pim_find_collector(void);

/* Finds numpy's `ndarray.ctypes` interface class once, and keeps it for
 * good: the retention check refuses it as a holder of the input, since it
 * keeps the input's address where no scan sees it. GIL held.
 * (retention.c) */
PIM_INTERNAL void pim_find_numpy_ctypes(void);

/* Finds collections.OrderedDict, defaultdict and deque (from the C module
 * _collections), and types.SimpleNamespace (the type of
 * sys.implementation), once, and keeps them for good: the retention check
 * accepts their instances as holders, as it accepts a list. A class
 * defined in Python in their place is not taken. GIL held.
 * (retention.c) */
PIM_INTERNAL void pim_find_stdlib_holders(void);

#endif
