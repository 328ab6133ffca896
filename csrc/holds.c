/*
 * holds.c: the references Rust holds for good (an Object's, a Function's),
 * counted per object, for retention.c.
 *
 * Why: after a call that kept its lent input, retention.c accounts for every
 * reference to each object on the way from the input to an owner (a
 * module, a frame), so that nothing out of its sight (C state, an iterator)
 * can hold a raw pointer into the lent memory. A model held by Rust as an
 * Object (`model.method("fit")?.call(&x)`, where fit keeps `x[:, :2]`) has
 * one reference no Python object makes: Rust's. Counted here, it is found,
 * and Rust is an owner that ends the chain, as a module is: it holds the
 * object, never a pointer into the lent memory.
 *
 * An open-addressing table of (object, count), linear probing, deletion by
 * backward shift; every use holds the GIL, which serializes them. A table
 * that cannot grow (no memory) leaves the hold uncounted: retention.c then
 * finds a reference it cannot account for, and pins the input, which is
 * safe.
 */
#include "holds.h"

typedef struct {
    PyObject *obj; /* borrowed: compared only (the count is of Rust's own
                      references, which keep it alive) */
    Py_ssize_t count;
} hold;

static hold *table;   /* PyMem_Raw; NULL until the first hold */
static size_t slots;  /* a power of two, or 0 */
static size_t filled; /* slots in use */

static size_t slot_of(PyObject *obj) {
    uintptr_t h = (uintptr_t)obj;
    h ^= h >> 17; /* objects are 16-byte aligned: mix the high bits in */
    h *= (uintptr_t)0x9E3779B97F4A7C15u;
    return (size_t)(h >> 7) & (slots - 1);
}

/* The slot of obj, or of the empty slot where it would go. slots > 0. */
static size_t find(PyObject *obj) {
    size_t i = slot_of(obj);
    while (table[i].obj != NULL && table[i].obj != obj) {
        i = (i + 1) & (slots - 1);
    }
    return i;
}

/* Doubles the table (or makes it). Returns 0, or -1 out of memory (the
 * table is unchanged). */
static int grow(void) {
    size_t old_slots = slots, i, n = slots ? 2 * slots : 64;
    hold *old = table, *made = PyMem_RawCalloc(n, sizeof *made);
    if (made == NULL) {
        return -1;
    }
    table = made;
    slots = n;
    for (i = 0; i < old_slots; i++) {
        if (old[i].obj != NULL) {
            table[find(old[i].obj)] = old[i];
        }
    }
    PyMem_RawFree(old);
    return 0;
}

void pim_hold(PyObject *obj) {
    size_t i;
    if (2 * (filled + 1) > slots && grow() < 0) {
        return; /* uncounted: see the top */
    }
    i = find(obj);
    if (table[i].obj == NULL) {
        table[i].obj = obj;
        table[i].count = 0; /* an emptied slot keeps nothing */
        filled++;
    }
    table[i].count++;
}

void pim_unhold(PyObject *obj) {
    size_t i, j, home;
    if (slots == 0) {
        return;
    }
    i = find(obj);
    if (table[i].obj == NULL || --table[i].count > 0) {
        return; /* never counted (no memory then), or held still */
    }
    /* Backward shift: move up the entries after it whose probe passed it. */
    table[i].obj = NULL;
    filled--;
    for (j = (i + 1) & (slots - 1); table[j].obj != NULL; j = (j + 1) & (slots - 1)) {
        home = slot_of(table[j].obj);
        if (((j - home) & (slots - 1)) >= ((j - i) & (slots - 1))) {
            table[i] = table[j];
            table[j].obj = NULL;
            table[j].count = 0;
            i = j;
        }
    }
}

Py_ssize_t pim_holds_of(PyObject *obj) {
    size_t i;
    if (slots == 0) {
        return 0;
    }
    i = find(obj);
    return table[i].obj == obj ? table[i].count : 0;
}

PyObject *pim_holds_next(size_t *pos) {
    while (*pos < slots) {
        PyObject *obj = table[(*pos)++].obj;
        if (obj != NULL) {
            return obj;
        }
    }
    return NULL;
}

Py_ssize_t pim_hold_count(PyObject *obj) { return pim_holds_of(obj); }
