/*
 * internal.h: what the files of csrc/ share and nobody else sees: numpy's C
 * API, included the same way everywhere, and the marking of helpers one file
 * of csrc/ calls in another. Those helpers are declared in the header of
 * the file that defines them (errors.h, arrays.h), so a file's #includes
 * name the files it calls; tests/layers.rs checks they form no circle.
 *
 * numpy's C API is a table of function pointers filled by import_array. With
 * several translation units they must share one table: start.c defines it
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

/* The exception being raised, if any, set aside while a destructor runs
 * (a capsule's, which numpy may run as it drops an operand during the
 * raise of an exception): whatever the destructor's code raises is cleared,
 * and the exception in flight put back, so that Python code's `except`
 * still sees it and a failed call still names it. GIL held. */
typedef struct {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *raised;
#else
    PyObject *type, *value, *traceback;
#endif
} pim_raised;

static inline void pim_set_raised_aside(pim_raised *aside) {
#if PY_VERSION_HEX >= 0x030C0000
    aside->raised = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&aside->type, &aside->value, &aside->traceback);
#endif
}

/* Clears what was raised since pim_set_raised_aside, and restores what was
 * set aside (owned by `aside`, consumed). */
static inline void pim_restore_raised(pim_raised *aside) {
    PyErr_Clear();
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(aside->raised);
#else
    PyErr_Restore(aside->type, aside->value, aside->traceback);
#endif
}

/* Looks up each of names[0..n) in the module `module_name`, once as Python
 * is prepared, and keeps in found[i] (owned, for good) each that is a type
 * `accept` takes (accept(type, module), both borrowed; NULL: any type);
 * found[i] stays as it was otherwise. GIL held; leaves no exception set. */
static inline void pim_find_types(const char *module_name, const char *const *names, size_t n,
                                  PyObject **found, int (*accept)(PyObject *, PyObject *)) {
    PyObject *module = PyImport_ImportModule(module_name);
    size_t i;
    for (i = 0; module != NULL && i < n; i++) {
        PyObject *type = PyObject_GetAttrString(module, names[i]);
        if (type != NULL && PyType_Check(type) && (accept == NULL || accept(type, module))) {
            found[i] = type;
        } else {
            Py_XDECREF(type);
        }
        PyErr_Clear();
    }
    Py_XDECREF(module);
    PyErr_Clear();
}

#endif /* PY_IN_MEM_INTERNAL_H */
