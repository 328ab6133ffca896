/*
 * retention.c: after a borrowed call, does anything in Python still point
 * into the Rust memory it was lent? The rules, in order:
 *
 *  1. Our reference is the array's only one, and the array the capsule's
 *     (its base's) only holder: nothing was kept. This is the fast path; the
 *     rest runs only when a count is off, and after a garbage collection, so
 *     that a dead reference cycle is not called retention.
 *  2. The capsule has another holder: numpy points every view of the array
 *     at its base, so a view (or the capsule itself) was kept. Pinned.
 *  3. The array exported a buffer (memoryview, bytes(), a C extension):
 *     numpy records that in _buffer_info, and the holder of the buffer has a
 *     raw pointer. Pinned.
 *  4. Every other reference must come from a plain container (list, tuple,
 *     dict, cell) that the garbage collector can see, and every dict among
 *     them must itself be held only by plain containers, modules, functions
 *     or frames: an instance's __dict__ is not plain, since the instance may
 *     hold a raw pointer (numpy's as_strided does exactly that). If the
 *     references found add up, only the array object was kept: it is moved
 *     onto a private copy of the data. Otherwise pinned.
 *
 * Out of reach, as for any C code: a C extension that keeps a raw pointer to
 * the data while holding the array only through plain containers, and raw
 * addresses taken from Python (ctypes, __array_interface__) kept alone.
 */
#include "internal.h"

#include <frameobject.h> /* PyFrame_Check: not in Python.h before 3.11 */
#include <string.h>

/* How deep to follow untracked containers, and how many untracked holders
 * and dict holders to record; beyond any, the array is pinned. */
#define MAX_DEPTH 4
#define MAX_RECORDED 64

/* The holders of `target` found so far. */
typedef struct {
    PyObject *target;
    int (*allowed)(PyObject *holder);
    Py_ssize_t found; /* references from all holders */
    int rejected;     /* a holder `allowed` refuses */
    int overflow;     /* too deep, or too many to record */
    PyObject *untracked[MAX_RECORDED]; /* borrowed: holders reached by
                                           following, counted once */
    int n_untracked;
    PyObject *dicts[MAX_RECORDED]; /* borrowed: holders that are dicts */
    int n_dicts;
} holders;

typedef struct {
    holders *all;
    Py_ssize_t direct; /* references from the object being traversed */
    int depth;
} visit_state;

static void scan_holder(PyObject *holder, holders *all, int depth);

/* The collector lists only tracked objects; dicts and tuples holding only
 * untracked objects (such as arrays) are untracked, so follow them.
 * obj: borrowed. GIL held (for this and every function below). */
static int is_untracked_container(PyObject *obj) {
    return (PyDict_CheckExact(obj) || PyTuple_CheckExact(obj)) && !PyObject_GC_IsTracked(obj);
}

/* tp_traverse callback. obj: borrowed from the object being traversed; arg:
 * the caller's visit_state. */
static int scan_visit(PyObject *obj, void *arg) {
    visit_state *state = arg;
    if (obj == state->all->target) {
        state->direct++;
    } else if (is_untracked_container(obj)) {
        if (state->depth < MAX_DEPTH) {
            scan_holder(obj, state->all, state->depth + 1);
        } else {
            state->all->overflow = 1;
        }
    }
    return 0;
}

/* Appends obj to list (of n, at most MAX_RECORDED) unless there; returns 1
 * if it was there already. obj: borrowed, and stored borrowed: the scan runs
 * no Python code, so nothing is freed while the list is in use. */
static int record(PyObject **list, int *n, PyObject *obj, int *overflow) {
    int i;
    for (i = 0; i < *n; i++) {
        if (list[i] == obj) {
            return 1;
        }
    }
    if (*n == MAX_RECORDED) {
        *overflow = 1;
    } else {
        list[(*n)++] = obj;
    }
    return 0;
}

/* Counts `holder`'s references to all->target, and judges the holder.
 * holder: borrowed; all: the caller's. */
static void scan_holder(PyObject *holder, holders *all, int depth) {
    visit_state state = {all, 0, depth};
    traverseproc traverse = Py_TYPE(holder)->tp_traverse;
    if (traverse != NULL) {
        (void)traverse(holder, scan_visit, &state);
    }
    if (state.direct == 0) {
        return;
    }
    /* Tracked objects come once from the collector's list; an untracked
     * container may be reached from several of them. */
    if (depth > 0 && record(all->untracked, &all->n_untracked, holder, &all->overflow)) {
        return;
    }
    if (!all->allowed(holder)) {
        all->rejected = 1;
    }
    if (PyDict_CheckExact(holder)) {
        (void)record(all->dicts, &all->n_dicts, holder, &all->overflow);
    }
    all->found += state.direct;
}

/* Finds every holder of `target` among `objects` (gc.get_objects(): a list
 * the caller owns) and the untracked containers they hold. target: borrowed;
 * all: the caller's, overwritten. Returns 1 when each passes `allowed` and
 * together they account for every reference but `ours` (references held
 * outside Python objects). */
static int holders_account_for(PyObject *target, PyObject *objects, Py_ssize_t ours,
                               int (*allowed)(PyObject *), holders *all) {
    Py_ssize_t k;
    memset(all, 0, sizeof *all);
    all->target = target;
    all->allowed = allowed;
    for (k = 0; k < PyList_GET_SIZE(objects) && !all->rejected; k++) {
        scan_holder(PyList_GET_ITEM(objects, k), all, 0);
    }
    return !all->rejected && !all->overflow && all->found == Py_REFCNT(target) - ours;
}

/* May `holder` (borrowed) hold the array directly? */
static int plain_referrer(PyObject *holder) {
    return PyList_CheckExact(holder) || PyTuple_CheckExact(holder) ||
           PyDict_CheckExact(holder) || PyCell_Check(holder);
}

/* May `holder` (borrowed) hold a dict that holds the array? */
static int plain_dict_owner(PyObject *holder) {
    return plain_referrer(holder) || PyModule_CheckExact(holder) || PyFunction_Check(holder) ||
           PyFrame_Check(holder);
}

/* Rule 4: is every reference to arr, but ours, from plain containers, and
 * every dict among them held only by plain owners? arr: borrowed. Never
 * leaves an exception set. */
static int only_plain_holders(PyObject *arr) {
    PyObject *gc, *objects;
    holders *of_arr, *of_dict;
    int plain = 0, i;

    gc = PyImport_ImportModule("gc");
    objects = gc ? PyObject_CallMethod(gc, "get_objects", NULL) : NULL;
    of_arr = PyMem_RawMalloc(sizeof *of_arr);
    of_dict = PyMem_RawMalloc(sizeof *of_dict);
    if (objects == NULL || !PyList_Check(objects) || of_arr == NULL || of_dict == NULL) {
        goto done;
    }
    /* arrays are not tracked, so the list holds none of arr: ours is 1. */
    if (!holders_account_for(arr, objects, 1, plain_referrer, of_arr)) {
        goto done;
    }
    for (i = 0; i < of_arr->n_dicts; i++) {
        PyObject *dict = of_arr->dicts[i];
        /* The list from gc.get_objects() holds one more of a tracked dict. */
        if (!holders_account_for(dict, objects, PyObject_GC_IsTracked(dict) ? 1 : 0,
                                 plain_dict_owner, of_dict)) {
            goto done;
        }
    }
    plain = 1;
done:
    PyMem_RawFree(of_dict);
    PyMem_RawFree(of_arr);
    Py_XDECREF(objects);
    Py_XDECREF(gc);
    PyErr_Clear();
    return plain;
}

static const char RETAINED_COPY_CAPSULE[] = "py_in_mem.retained_copy";

static void free_retained_copy(PyObject *capsule);

/* Copies each element arr reaches along axes axis.. from `from` (inside the
 * lent memory starting at lent) to the same offset in copy. arr: borrowed. */
static void copy_elements(PyArrayObject *arr, int axis, const char *from, const char *lent,
                          char *copy) {
    npy_intp k, n = PyArray_DIM(arr, axis), stride = PyArray_STRIDE(arr, axis);
    for (k = 0; k < n; k++, from += stride) {
        if (axis + 1 < PyArray_NDIM(arr)) {
            copy_elements(arr, axis + 1, from, lent, copy);
        } else {
            memcpy(copy + (from - lent), from, (size_t)PyArray_ITEMSIZE(arr));
        }
    }
}

/* The kept array reads a private copy from now on. arr: borrowed; base: the
 * borrow capsule, held only by arr, whose reference this call releases on
 * success. The copy spans what the capsule says was lent, at the same
 * offsets, so arr keeps its strides (negative ones too); only the elements
 * arr reaches (as it is now: Python may have reshaped it in place) are read
 * from the lent memory, so a strided lend never reads the bytes between its
 * elements, which Rust may be using elsewhere. The copy is owned by a new
 * capsule that arr holds as its base.
 * Returns 0, or -1 (out of memory: arr is unchanged). */
static int move_to_copy(PyArrayObject *arr, PyObject *base) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)arr;
    char *lent = PyCapsule_GetPointer(base, PIM_BORROW_CAPSULE);
    size_t nbytes = (size_t)(uintptr_t)PyCapsule_GetContext(base);
    PyObject *owner;
    char *copy;
    if (lent == NULL) {
        PyErr_Clear();
        return -1;
    }
    /* PyMem_RawCalloc: any thread may free it, with or without the GIL. */
    copy = PyMem_RawCalloc(1, nbytes > 0 ? nbytes : 1);
    if (copy == NULL) {
        return -1;
    }
    if (PyArray_SIZE(arr) > 0) {
        if ((size_t)PyArray_NBYTES(arr) == nbytes &&
            (PyArray_IS_C_CONTIGUOUS(arr) || PyArray_IS_F_CONTIGUOUS(arr))) {
            memcpy(copy, lent, nbytes); /* the elements are the whole span */
        } else if (PyArray_NDIM(arr) == 0) {
            memcpy(copy + (fields->data - lent), fields->data, (size_t)PyArray_ITEMSIZE(arr));
        } else {
            copy_elements(arr, 0, fields->data, lent, copy);
        }
    }
    owner = PyCapsule_New(copy, RETAINED_COPY_CAPSULE, free_retained_copy);
    if (owner == NULL) {
        PyMem_RawFree(copy);
        PyErr_Clear();
        return -1;
    }
    /* numpy offers no API to re-point an array; the fields are public in
     * its headers and stable since 1.7. The offset keeps every element the
     * array reaches. */
    fields->data = copy + (fields->data - lent);
    fields->base = owner;
    Py_DECREF(base);
    return 0;
}

/* Capsule destructor of a moved array's copy (capsule: borrowed, being
 * freed): the last view is gone, so the copy is freed. */
static void free_retained_copy(PyObject *capsule) {
    PyMem_RawFree(PyCapsule_GetPointer(capsule, RETAINED_COPY_CAPSULE));
    PyErr_Clear();
}

/* Rule 1, the fast path. arr, base: borrowed. */
static int is_retained(PyObject *arr, PyObject *base) {
    return Py_REFCNT(arr) != 1 || Py_REFCNT(base) != 1;
}

pim_borrow_verdict pim_borrow_release(PyObject *arr) {
    PyArrayObject *array = (PyArrayObject *)arr;
    PyObject *base = PyArray_BASE(array);
    PyObject *gc, *collected;
    pim_borrow_verdict verdict;
    if (!is_retained(arr, base)) {
        /* The common case: keep the capsule past the array, for reuse. */
        Py_INCREF(base);
        Py_DECREF(arr);
        pim_return_borrow_capsule(base);
        return PIM_BORROW_FREE;
    }
    /* Rare path. gc.collect(), unlike PyGC_Collect, runs even when the
     * collector is disabled. */
    gc = PyImport_ImportModule("gc");
    collected = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(collected);
    Py_XDECREF(gc);
    PyErr_Clear();
    if (!is_retained(arr, base)) {
        verdict = PIM_BORROW_FREE;
    } else if (Py_REFCNT(base) != 1 || ((PyArrayObject_fields *)arr)->_buffer_info != NULL ||
               !only_plain_holders(arr) || move_to_copy(array, base) < 0) {
        verdict = PIM_BORROW_PINNED;
    } else {
        verdict = PIM_BORROW_MOVED;
    }
    Py_DECREF(arr);
    return verdict;
}
