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

#endif
