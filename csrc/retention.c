/*
 * retention.c: after a borrowed call, does anything in Python still point
 * into the Rust memory it was lent? The rules, in order:
 *
 *  1. The array's base is still the glue's capsule, our reference is the
 *     array's only one, and the array the capsule's only holder: nothing was
 *     kept. This is the fast path; the rest runs only when a count is off,
 *     and after a garbage collection, so that a dead reference cycle is not
 *     called retention.
 *  2. The capsule has another holder (`data.base` was kept). Pinned.
 *     (A view does not hold the capsule: numpy collapses a view's base down
 *     to the first array that owns its data or whose base is not an array
 *     of the same type, and the lent array owns none and has a capsule as
 *     its base, so a view's base, and a view of a view's, is the array
 *     itself: rule 4 counts it.)
 *  3. A buffer the array, a view or an element exported and that is still
 *     held (a memoryview, a C extension's Py_buffer) gives its holder a raw
 *     pointer. Every such export holds a reference to its exporter
 *     (Py_buffer.obj), so rule 4 finds it: held by an object of a type written in C (a
 *     memoryview's managed buffer), or by nothing the scan can see. Pinned.
 *     (numpy's _buffer_info records that a buffer was exported once, not
 *     that one is still held: it stays set after `bytes(x)` or a released
 *     memoryview, so it decides nothing here; trial 27 saw such a call
 *     abort where it could have returned InputRetained.)
 *  4. Every other reference to the array must come from a plain container
 *     (list, tuple, dict, cell; a class defined in Python over one; the
 *     standard library's OrderedDict, defaultdict, deque, SimpleNamespace),
 *     a function, an instance of a class defined in Python, an exception of
 *     CPython's own (or of a class defined in Python over one), a generator
 *     or coroutine, an iterator of the builtins, a dict view, a mapping proxy, a numpy
 *     view of it, or an element of a structured view (a numpy.void, which
 *     points into the view's memory and holds the view), each of those
 *     vetted the same way in turn, up to the owners that end a chain: a
 *     module's namespace, a class's, a frame, or Rust (an Object or
 *     Function handle, counted by holds.c).
 *     References are counted: every one must come from an object the
 *     garbage collector can see (or from an untracked dict, tuple or view
 *     such an object, or Rust, holds; a view holds its base, which
 *     ndarray's traversal does not show), so a C object (a numpy iterator) holding the array
 *     or a view shows as a missing reference. A view whose type is a C
 *     subclass, a class, an object of a type
 *     written in C or any other object on a chain may hold a raw pointer
 *     (numpy's as_strided keeps one in an object whose attribute holds the
 *     array): not provably safe. Pinned.
 *  5. While scanning, every numpy array and memoryview the scan meets is
 *     checked not to point into the lent memory (an array built from the
 *     input's address keeps no reference to the input at all), and every
 *     int not to be an address inside it (an __array_interface__ kept by an
 *     instance that rule 4 accepts). Pinned.
 *  If all that holds, only the array object and views of it (and elements
 *  of them) were kept: they are moved onto one private copy of the data
 *  (Moved), so that nothing points into the lent memory any more.
 *
 *  If the array's base is no longer the glue's capsule (numpy 1.x lets
 *  Python assign `data.data`, which drops the capsule and points the array
 *  at another buffer), the array itself no longer reads the lent memory:
 *  rules 3 to 5 still decide whether anything else does, and the verdict is
 *  Free or Pinned (nothing to move; the lent range is not known any more, so
 *  rule 5 cannot run and only rule 4 stands, without views: a view made
 *  before the assignment may still read the lent memory, so it counts as a
 *  missing reference).
 *
 * Out of reach, as for any C code: a C extension that keeps a raw pointer to
 * the data while holding the array only through containers the rules
 * accept, and raw addresses taken from Python (ctypes, __array_interface__)
 * when the call keeps no reference to the array at all (the fast path runs
 * no scan). Rule 5 is a search, not a proof: an address kept in another form
 * than an int (a string, a ctypes pointer, the C counter of an enumerate or
 * itertools.count started at it: trial 32), or an array over the lent memory
 * that holds no reference to the input (numpy's as_strided, its helper's
 * base and interface deleted) kept where the scan does not look (an object
 * array, whose items no traversal shows; a C object), is not found, and the
 * call returns InputRetained (trial 28). All of these take an address by
 * hand, as ctypes does.
 *
 * Every function here reads Python objects: the GIL is held throughout.
 */
#include "retention.h"

#include "arrays.h"
#include "holds.h"

#include <frameobject.h> /* PyFrame_Check: not in Python.h before 3.11 */
#include <numpy/arrayscalars.h> /* PyVoidScalarObject */
#include <stdarg.h>
#include <string.h>

/* How many objects the vetting may visit, and in how many rounds (each a
 * scan of every object the garbage collector tracks); beyond either, the
 * array is pinned. */
#define MAX_VETTED 64
#define MAX_ROUNDS 8
/* How many untracked containers holding a vetted object one round may
 * meet, and how deep untracked containers may nest. */
#define MAX_FOLLOWED 256
#define MAX_NESTING 16

/* One object being vetted: who holds it, as found by the scans. */
typedef struct {
    PyObject *obj;       /* borrowed: the scan runs no Python code, so nothing
                            is freed while the vetting runs */
    Py_ssize_t expected; /* references that must be found: the count less
                            ours and the gc list's */
    Py_ssize_t found;    /* references found this round */
} vetted;

typedef struct {
    vetted items[MAX_VETTED];
    int n;
    int round_start, round_end; /* items[round_start..round_end) are this
                                   round's objects */
    PyObject *arr;              /* borrowed: the lent array */
    const char *lent;           /* the lent memory, or NULL if unknown */
    size_t nbytes;
    PyObject *followed[MAX_FOLLOWED]; /* borrowed: untracked containers
                                         found holding a vetted object this
                                         round (counted once) */
    int n_followed;
    Py_ssize_t n_found;         /* references found this round, all told */
    int nesting;                /* untracked containers being followed */
    PyObject *holder;           /* borrowed: the object being traversed */
    int unsafe;                 /* a rule failed */
} vetting;

/* subtype_traverse, CPython's traversal of classes defined in Python (it is
 * not exported), read from a class made once; NULL until then. GIL held. */
static traverseproc python_class_traverse;

/* The first type on the chain from `type` (borrowed) up its bases that is
 * not a class defined in Python (by a class statement), or NULL past 64 of
 * them. Borrowed. An instance of such a class keeps all its state in Python
 * objects (its __dict__, its slots) that its tp_traverse visits, so the scan
 * sees everything it holds, down to what the type returned keeps. */
static PyTypeObject *first_base_not_in_python(PyTypeObject *type) {
    int depth;
    for (depth = 0; type != NULL && depth < 64; depth++) {
        if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || python_class_traverse == NULL ||
            type->tp_traverse != python_class_traverse) {
            return type;
        }
        type = type->tp_base;
    }
    return NULL;
}

/* Is `type` (borrowed) `root`, or a class defined in Python over it with
 * only such classes between them? A C type may keep a raw pointer out of
 * sight. */
static int is_python_class_over(PyTypeObject *type, PyTypeObject *root) {
    return first_base_not_in_python(type) == root;
}

/* Is `type` (borrowed) an exception class of CPython's own (ValueError,
 * OSError, ...), or a class defined in Python over one, with only such
 * classes between them? CPython's exceptions keep all their state in Python
 * objects (args, __dict__, the traceback, cause and context, and their own
 * fields: OSError's filename, UnicodeError's object) that their tp_traverse
 * visits. An exception type a C extension defines statically (its tp_name
 * dotted, "module.Name") may keep a raw pointer out of sight. */
static int is_builtin_exception_over(PyTypeObject *type) {
    PyTypeObject *own = first_base_not_in_python(type);
    return own != NULL && !(own->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
           PyType_FastSubclass(own, Py_TPFLAGS_BASE_EXC_SUBCLASS) &&
           strchr(own->tp_name, '.') == NULL;
}

static int vet_visit(PyObject *obj, void *arg);
static void follow_untracked(vetting *v, PyObject *obj);

/* Why the last pim_borrow_release pinned its array, for the message of the
 * abort that follows (pim_borrow_pinned_why): the first reason found, or ""
 * if none was. Written and read with the GIL held. */
static char pinned_why[256];

/* Records `why` (printf-style) as the reason, unless one is recorded. */
static void pin_because(const char *why, ...) {
    va_list args;
    if (pinned_why[0] != '\0') {
        return;
    }
    va_start(args, why);
    (void)PyOS_vsnprintf(pinned_why, sizeof pinned_why, why, args);
    va_end(args);
}

/* The vetting fails, for `why` (printf-style). */
#define REFUSE(v, ...)                                                                             \
    do {                                                                                           \
        pin_because(__VA_ARGS__);                                                                  \
        (v)->unsafe = 1;                                                                           \
    } while (0)

/* The longest type name a reason shows, in bytes. */
#define NAME_MAX_SHOWN 80

/* The name of obj's type (borrowed), cut to at most NAME_MAX_SHOWN bytes
 * at the start of a character (a name is UTF-8), into buf. Returns buf. */
static const char *type_name(PyObject *obj, char buf[NAME_MAX_SHOWN + 1]) {
    const char *name = Py_TYPE(obj)->tp_name;
    size_t n = strlen(name);
    if (n > NAME_MAX_SHOWN) {
        n = NAME_MAX_SHOWN;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(buf, name, n);
    buf[n] = '\0';
    return buf;
}

const char *pim_borrow_pinned_why(void) {
    return pinned_why[0] != '\0' ? pinned_why : "no reason recorded";
}

/* Does [lo, hi) overlap the lent memory? */
static int overlaps_lent(const vetting *v, const char *lo, const char *hi) {
    return v->lent != NULL && lo < v->lent + v->nbytes && v->lent < hi;
}

/* The object whose memory an array reads: its base, past any arrays
 * (views) in between. array: borrowed; returns borrowed, or NULL. */
static PyObject *memory_owner(PyArrayObject *array) {
    PyObject *base = PyArray_BASE(array);
    int depth;
    for (depth = 0; depth < 16 && base != NULL && PyArray_Check(base); depth++) {
        base = PyArray_BASE((PyArrayObject *)base);
    }
    return base;
}

/* Rule 5 for one object (borrowed). Arrays over memory lent to a call in
 * flight (ours, whose views the counts catch, or another thread's, which
 * its own call checks) and over memory given to Python with call_owned
 * (which Python keeps alive, even if a lent slice overlaps it) are left
 * out. */
static void check_pointer(vetting *v, PyObject *obj) {
    const char *lo, *hi;
    if (obj == v->arr) {
        return;
    }
    if (PyArray_Check(obj)) {
        PyArrayObject *array = (PyArrayObject *)obj;
        PyObject *owner = memory_owner(array);
        if (pim_is_borrow_capsule(owner) || pim_is_owned_capsule(owner)) {
            return;
        }
        if (pim_extent(PyArray_BYTES(array), PyArray_NDIM(array), PyArray_DIMS(array),
                   PyArray_STRIDES(array), PyArray_ITEMSIZE(array), &lo, &hi) &&
            overlaps_lent(v, lo, hi)) {
            char name[NAME_MAX_SHOWN + 1];
            REFUSE(v, "an array of type %s over the input's memory that is no view of the input "
                      "(built from its address)",
                   type_name(obj, name));
        }
    } else if (PyMemoryView_Check(obj)) {
        Py_buffer *view = PyMemoryView_GET_BUFFER(obj);
#ifdef _Py_MEMORYVIEW_RELEASED
        if (((PyMemoryViewObject *)obj)->flags & _Py_MEMORYVIEW_RELEASED) {
            return;
        }
#endif
        if (view->buf == NULL) {
            return;
        }
        if (view->ndim == 0 || view->shape == NULL || view->strides == NULL) {
            lo = view->buf;
            hi = lo + view->len;
        } else if (!pim_extent(view->buf, view->ndim, view->shape, view->strides, view->itemsize,
                           &lo, &hi)) {
            return;
        }
        if (overlaps_lent(v, lo, hi)) {
            REFUSE(v, "a memoryview over the input's memory, still held");
        }
    } else if (PyLong_Check(obj) && v->lent != NULL) {
        /* A raw address (an __array_interface__'s data, x.ctypes.data):
         * np.asarray turns it back into an array over the lent memory
         * later, which no move can re-point. */
        const char *address = PyLong_AsVoidPtr(obj);
        if (address == NULL && PyErr_Occurred()) {
            PyErr_Clear(); /* too large or negative: not an address */
        } else if (address != NULL && overlaps_lent(v, address, address + 1)) {
            REFUSE(v, "an int that is an address inside the input's memory "
                      "(data.ctypes.data, an __array_interface__)");
        }
    }
}

/* The base of a numpy view (arr, borrowed), if an array, else NULL.
 * Borrowed. Views of the lent array, and views of views, have the lent
 * array as their base (numpy collapses view chains down to it); a view of
 * an ndarray subclass view has that view as its base. */
static PyObject *view_base(PyObject *arr) {
    PyObject *base = PyArray_BASE((PyArrayObject *)arr);
    return base != NULL && PyArray_Check(base) ? base : NULL;
}

/* The array an element of a structured array reads (borrowed), if obj
 * (borrowed) is one, else NULL. Such an element (`x.view([('a', 'f8')])[0]`,
 * a numpy.void, or a numpy.record, a class defined in Python over it) points
 * into the array's memory and holds the array as its base, which its type's
 * traversal (numpy.void has none) does not show. */
static PyObject *element_base(PyObject *obj) {
    PyObject *base;
    if (!PyObject_TypeCheck(obj, &PyVoidArrType_Type)) {
        return NULL;
    }
    base = ((PyVoidScalarObject *)obj)->base;
    return base != NULL && PyArray_Check(base) ? base : NULL;
}

/* The bytes an element (borrowed; element_base is not NULL) reads. */
static size_t element_size(PyObject *element) {
    PyArray_Descr *descr = ((PyVoidScalarObject *)element)->descr;
#if NPY_ABI_VERSION >= 0x02000000
    return (size_t)PyDataType_ELSIZE(descr);
#else
    return (size_t)descr->elsize;
#endif
}

/* The collector lists only tracked objects; dicts and tuples holding only
 * untracked objects (such as arrays) are untracked, and so are exact
 * ndarrays and numpy.void elements, whose only reference is to their base:
 * the scan follows them. obj: borrowed. */
static int is_untracked_container(PyObject *obj) {
    if (PyObject_GC_IsTracked(obj)) {
        return 0;
    }
    return PyDict_CheckExact(obj) || PyTuple_CheckExact(obj) ||
           (PyArray_Check(obj) && view_base(obj) != NULL) || element_base(obj) != NULL;
}

/* Traverses `holder` (borrowed), counting its references to this round's
 * objects and checking what it holds. */
static void traverse_holder(vetting *v, PyObject *holder) {
    traverseproc traverse = Py_TYPE(holder)->tp_traverse;
    PyObject *outer = v->holder;
    check_pointer(v, holder);
    v->holder = holder;
    if (traverse != NULL) {
        (void)traverse(holder, vet_visit, v);
    }
    if (PyArray_Check(holder) && view_base(holder) != NULL) {
        /* A view holds its base, which ndarray's (absent) tp_traverse does
         * not show. */
        (void)vet_visit(view_base(holder), v);
    } else if (element_base(holder) != NULL) {
        /* So does an element of a structured array. */
        (void)vet_visit(element_base(holder), v);
    }
    v->holder = outer;
}

/* Can a view (borrowed) of the lent array be re-pointed at a copy? Not if
 * its type is a C subclass of ndarray (which may keep a raw pointer out of
 * sight). A buffer it exported and that is still held is a reference rule 4
 * judges (rule 3). */
static int is_movable_view(PyObject *view) {
    return is_python_class_over(Py_TYPE(view), &PyArray_Type);
}

/* Can an element (borrowed; element_base is not NULL) be re-pointed at a
 * copy? Not if its type is written in C (other than numpy.void itself). A
 * buffer it exported and that is still held is a reference rule 4 judges
 * (rule 3). */
static int is_movable_element(PyObject *element) {
    return is_python_class_over(Py_TYPE(element), &PyVoidArrType_Type);
}

/* numpy's `ndarray.ctypes` interface class (owned, kept for good), or NULL
 * where not found: found once (pim_find_numpy_ctypes, from pim_prepare). */
static PyObject *numpy_ctypes_class = NULL;

void pim_find_numpy_ctypes(void) {
    static const char *const modules[2] = {"numpy._core._internal", "numpy.core._internal"};
    size_t i;
    if (numpy_ctypes_class != NULL) {
        return; /* a host's Python prepared again: the same class */
    }
    for (i = 0; i < 2 && numpy_ctypes_class == NULL; i++) {
        PyObject *module = PyImport_ImportModule(modules[i]);
        PyObject *type = module != NULL ? PyObject_GetAttrString(module, "_ctypes") : NULL;
        if (type != NULL && PyType_Check(type)) {
            numpy_ctypes_class = type;
        } else {
            Py_XDECREF(type);
        }
        Py_XDECREF(module);
        PyErr_Clear();
    }
}

/* Types of the standard library written in C whose instances hold only
 * Python objects, every one shown by their traversal, and no raw pointer:
 * collections.OrderedDict (its nodes' keys, then its dict), defaultdict
 * (its factory, then its dict), deque (every item), and
 * types.SimpleNamespace (its dict). Found once (pim_find_stdlib_holders,
 * from pim_prepare); owned, kept for good; NULL where not found. */
static PyObject *stdlib_holders[4];

/* Is `type` (borrowed) a type of the C module `module` (borrowed): a static
 * type, or (Python 3.12 on, where _collections makes its types from specs)
 * a heap type made for that module? A class defined in Python is neither. */
static int is_c_type_of(PyObject *type, PyObject *module) {
    PyObject *owner;
    if (!(((PyTypeObject *)type)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return 1;
    }
    owner = PyType_GetModule((PyTypeObject *)type); /* borrowed; NULL for a class */
    PyErr_Clear();
    return owner != NULL && owner == module;
}

void pim_find_stdlib_holders(void) {
    static const char *const names[3] = {"OrderedDict", "defaultdict", "deque"};
    PyObject *implementation;
    if (stdlib_holders[0] != NULL || stdlib_holders[3] != NULL) {
        return; /* a host's Python prepared again: the same types */
    }
    /* From the C module itself: what Python code may have put in
     * `collections` in their place is not taken. */
    pim_find_types("_collections", names, 3, stdlib_holders, is_c_type_of);
    /* types.SimpleNamespace is the type of sys.implementation. */
    implementation = PySys_GetObject("implementation"); /* borrowed */
    if (implementation != NULL && !(Py_TYPE(implementation)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        Py_INCREF(Py_TYPE(implementation));
        stdlib_holders[3] = (PyObject *)Py_TYPE(implementation);
    }
    PyErr_Clear();
}

/* Is `type` (borrowed) one of stdlib_holders, or a class defined in Python
 * over one? */
static int is_stdlib_holder(PyTypeObject *type) {
    PyTypeObject *own = first_base_not_in_python(type);
    size_t i;
    for (i = 0; own != NULL && i < 4; i++) {
        if (stdlib_holders[i] != NULL && (PyObject *)own == stdlib_holders[i]) {
            return 1;
        }
    }
    return 0;
}

/* Is `holder` (borrowed) an object of CPython's own that holds only Python
 * objects, all shown by its traversal: a generator or coroutine (its frame's
 * locals, `for batch in batches(x)`), a read-only view of a mapping
 * (`types.MappingProxyType`), a dict's views (`d.values()`), or an iterator
 * of the builtins (`iter(x)`, `enumerate`, `zip`, `map`, `filter`,
 * `reversed`, a list's, a tuple's or a dict's, forwards or backwards).
 * Vetted as a list is (trial 31: each stopped the process). */
static int is_seen_whole(PyObject *holder) {
    static PyTypeObject *const types[] = {
        &PyDictProxy_Type,       &PySeqIter_Type,          &PyCallIter_Type,
        &PyListIter_Type,        &PyListRevIter_Type,      &PyTupleIter_Type,
        &PyEnum_Type,            &PyReversed_Type,         &PyZip_Type,
        &PyMap_Type,             &PyFilter_Type,           &PyDictKeys_Type,
        &PyDictValues_Type,      &PyDictItems_Type,        &PyDictIterKey_Type,
        &PyDictIterValue_Type,   &PyDictIterItem_Type,     &PyDictRevIterKey_Type,
        &PyDictRevIterValue_Type, &PyDictRevIterItem_Type,
    };
    size_t i;
    if (PyGen_CheckExact(holder) || PyCoro_CheckExact(holder) || PyAsyncGen_CheckExact(holder)) {
        return 1;
    }
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (Py_IS_TYPE(holder, types[i])) {
            return 1;
        }
    }
    return 0;
}

/* May `holder` (borrowed) hold `held` (this round's item) and pass the
 * vetting on to its own holders? lent_known: the lent memory is known (so
 * a view can be moved). Returns 1 to vet the holder next round, 0 when it
 * ends the chain safely, -1 when it is not provably safe. */
static int judge_holder(PyObject *holder, PyObject *held, int lent_known) {
    if (PyFrame_Check(holder)) {
        return 0;
    }
    if (PyArray_Check(holder)) {
        /* A view of the lent array (or of such a view): moved with it. */
        return lent_known && is_movable_view(holder) ? 1 : -1;
    }
    if (element_base(holder) != NULL) {
        /* An element of a structured view (or of the lent array): moved
         * with it. */
        return lent_known && is_movable_element(holder) ? 1 : -1;
    }
    if (PyModule_CheckExact(holder)) {
        /* A module holds its namespace; any other reference from a module
         * comes from C state, which may hold a raw pointer. */
        return PyModule_GetDict(holder) == held ? 0 : -1;
    }
    if (PyType_Check(holder)) {
        /* A class holds its namespace as a module does (a model's
         * `history = []` at class level, trial 31), if its metaclass is
         * `type` or a class defined in Python over it (ABCMeta): a class
         * object keeps no state of its own beyond Python objects. Any other
         * reference from a class (its bases, its MRO) is not expected. */
        PyTypeObject *type = (PyTypeObject *)holder;
        return (type->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
                       is_python_class_over(Py_TYPE(holder), &PyType_Type) &&
                       type->tp_dict == held
                   ? 0
                   : -1;
    }
    if (is_seen_whole(holder)) {
        return 1;
    }
    if (PyList_CheckExact(holder) || PyTuple_CheckExact(holder) || PyDict_CheckExact(holder) ||
        PyCell_Check(holder) || Py_IS_TYPE(holder, &PyFunction_Type)) {
        return 1;
    }
    if (is_python_class_over(Py_TYPE(holder), &PyList_Type) ||
        is_python_class_over(Py_TYPE(holder), &PyDict_Type) ||
        is_python_class_over(Py_TYPE(holder), &PyTuple_Type)) {
        /* A class defined in Python over list, dict or tuple (a cache that
         * subclasses dict): its traversal shows its own state and then the
         * container's items, so it is seen whole, as the container is. */
        return 1;
    }
    if (is_stdlib_holder(Py_TYPE(holder))) {
        /* An OrderedDict, defaultdict, deque or SimpleNamespace (a model's
         * `deque(maxlen=100)` of recent inputs): seen whole, as a list is. */
        return 1;
    }
    if (numpy_ctypes_class != NULL &&
        PyObject_TypeCheck(holder, (PyTypeObject *)numpy_ctypes_class)) {
        /* `x.ctypes` (a class defined in Python) holds the input's address
         * in a ctypes object (`c_void_p`), which neither moves with the
         * input nor shows as an int (trial 27: kept, it read the freed
         * memory after InputRetained). Not safe, whoever holds it. */
        return -1;
    }
    if (is_python_class_over(Py_TYPE(holder), &PyBaseObject_Type)) {
        /* An instance of a class defined in Python (a model's
         * `self.X_ = X[:, :2]`): everything it holds is visible to the
         * scan, so a raw address in it is caught (rule 5). */
        return 1;
    }
    if (is_builtin_exception_over(Py_TYPE(holder))) {
        /* An exception kept with the input or a view in its args or
         * attributes (`errors.append(e)`): seen whole, as such an instance
         * is. */
        return 1;
    }
    return -1;
}

/* The index of obj among the vetted objects, or -1. */
static int vetted_index(const vetting *v, PyObject *obj) {
    int i;
    for (i = 0; i < v->n; i++) {
        if (v->items[i].obj == obj) {
            return i;
        }
    }
    return -1;
}

/* Is dict (borrowed) the namespace of a module in sys.modules? */
static int is_module_namespace(PyObject *dict) {
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *key, *module;
    Py_ssize_t pos = 0;
    if (!PyDict_CheckExact(dict) || modules == NULL || !PyDict_Check(modules)) {
        return 0;
    }
    while (PyDict_Next(modules, &pos, &key, &module)) {
        if (PyModule_Check(module) && PyModule_GetDict(module) == dict) {
            return 1;
        }
    }
    return 0;
}

/* Adds obj (borrowed) to be vetted next round, once, unless it ends a chain
 * (a module's namespace, which is held by functions, frames and the import
 * system, all beyond any raw pointer). */
static void vet_later(vetting *v, PyObject *obj) {
    vetted *item;
    if (vetted_index(v, obj) >= 0 || is_module_namespace(obj)) {
        return;
    }
    if (v->n == MAX_VETTED) {
        REFUSE(v, "more than %d holders and views in all, past the check's bound", MAX_VETTED - 1);
        return;
    }
    item = &v->items[v->n++];
    memset(item, 0, sizeof *item);
    item->obj = obj;
    /* The list from gc.get_objects() holds one more of a tracked object;
     * Rust's holds (an Object's) are owners, found without a scan. */
    item->expected = Py_REFCNT(obj) - (PyObject_GC_IsTracked(obj) ? 1 : 0) - pim_holds_of(obj);
}

/* tp_traverse callback. obj: borrowed from v->holder. */
static int vet_visit(PyObject *obj, void *arg) {
    vetting *v = arg;
    int i;
    if (obj == NULL) {
        return 0;
    }
    for (i = v->round_start; i < v->round_end; i++) {
        if (v->items[i].obj == obj) {
            int verdict = judge_holder(v->holder, obj, v->lent != NULL);
            v->items[i].found++;
            v->n_found++;
            if (verdict < 0) {
                char holder[NAME_MAX_SHOWN + 1], held[NAME_MAX_SHOWN + 1];
                int input = obj == v->arr;
                REFUSE(v, "an object of type %s, which may keep a raw pointer out of sight, "
                          "holds %s%s%s",
                       type_name(v->holder, holder), input ? "the input" : "an object of type ",
                       input ? "" : type_name(obj, held),
                       input ? "" : " on the input's chain of holders");
            } else if (verdict > 0) {
                vet_later(v, v->holder);
            }
        }
    }
    check_pointer(v, obj);
    follow_untracked(v, obj);
    return 0;
}

/* If obj (borrowed) is an untracked container, which no scan lists,
 * traverses it as a holder, once a round. */
static void follow_untracked(vetting *v, PyObject *obj) {
    Py_ssize_t before = v->n_found;
    int i;
    if (!is_untracked_container(obj)) {
        return;
    }
    for (i = 0; i < v->n_followed; i++) {
        if (v->followed[i] == obj) {
            return; /* its references are counted already */
        }
    }
    if (v->nesting == MAX_NESTING) {
        REFUSE(v, "containers nested more than %d deep, past the check's bound", MAX_NESTING);
        return;
    }
    v->nesting++;
    traverse_holder(v, obj);
    v->nesting--;
    if (v->n_found != before) {
        /* Reached again from another holder, it must not count twice. */
        if (v->n_followed == MAX_FOLLOWED) {
            REFUSE(v, "more than %d untracked containers, past the check's bound", MAX_FOLLOWED);
        } else {
            v->followed[v->n_followed++] = obj;
        }
    }
}

/* Rules 4 and 5: vets every holder of arr up to the owners that end a
 * chain, scanning `objects` (gc.get_objects(): a list the caller owns) once
 * a round. arr: borrowed; lent, nbytes: the lent memory (lent NULL if
 * unknown). Returns 1 if every rule held, with the views of arr and the
 * elements of them found (new references, the caller's to release) in
 * views[0..*n_views), at most MAX_VETTED. */
static int vet_holders(PyObject *arr, PyObject *objects, const char *lent, size_t nbytes,
                       PyObject **views, int *n_views) {
    vetting *v = PyMem_RawMalloc(sizeof *v);
    int round, i, ok = 0;
    Py_ssize_t k;
    size_t pos;
    PyObject *held;
    if (v == NULL) {
        return 0;
    }
    memset(v, 0, sizeof *v);
    v->arr = arr;
    v->lent = lent;
    v->nbytes = nbytes;
    v->items[0].obj = arr;
    /* arrays are not tracked, so the list holds none of arr: ours is 1
     * (and Rust's holds, if an Object of it was made). */
    v->items[0].expected = Py_REFCNT(arr) - 1 - pim_holds_of(arr);
    v->n = 1;
    for (round = 0; round < MAX_ROUNDS && !v->unsafe; round++) {
        v->round_start = round == 0 ? 0 : v->round_end;
        v->round_end = v->n;
        if (v->round_start == v->round_end) {
            ok = 1; /* every chain ended at an owner */
            break;
        }
        v->n_followed = 0;
        for (k = 0; k < PyList_GET_SIZE(objects) && !v->unsafe; k++) {
            traverse_holder(v, PyList_GET_ITEM(objects, k));
        }
        /* Rust's holds are roots too: an untracked object Rust holds (a
         * view of the input returned as an Object) is in no list, and what
         * it holds would otherwise be a reference nobody made. Tracked
         * ones were traversed above. */
        for (pos = 0; !v->unsafe && (held = pim_holds_next(&pos)) != NULL;) {
            follow_untracked(v, held);
        }
        for (i = v->round_start; i < v->round_end; i++) {
            if (v->items[i].found != v->items[i].expected) {
                /* A holder nobody can see: an iterator, C state, a view
                 * held by one of those. */
                char held[NAME_MAX_SHOWN + 1];
                int input = v->items[i].obj == arr;
                REFUSE(v, "%s%s%s has %zd holder(s) the garbage collector does not show (an "
                          "object of a type written in C, such as a numpy iterator, a "
                          "functools.partial or a bound method)",
                       input ? "the input" : "an object of type ",
                       input ? "" : type_name(v->items[i].obj, held),
                       input ? "" : " on the input's chain of holders",
                       v->items[i].expected - v->items[i].found);
            }
        }
    }
    if (!ok && !v->unsafe) {
        pin_because("a chain of more than %d holders, past the check's bound", MAX_ROUNDS - 1);
    }
    *n_views = 0;
    if (ok) {
        for (i = 1; i < v->n; i++) {
            if (PyArray_Check(v->items[i].obj) || element_base(v->items[i].obj) != NULL) {
                Py_INCREF(v->items[i].obj);
                views[(*n_views)++] = v->items[i].obj;
            }
        }
    }
    PyMem_RawFree(v);
    return ok;
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

/* Is [lo, hi) inside the lent memory [lent, lent + nbytes)? */
static int inside_lent(const char *lo, const char *hi, const char *lent, size_t nbytes) {
    uintptr_t start = (uintptr_t)lent;
    return (uintptr_t)lo >= start && (uintptr_t)hi >= (uintptr_t)lo &&
           (uintptr_t)hi - start <= nbytes;
}

/* Copies the elements `a` (borrowed: the lent array or a view of it)
 * reaches, as it is now (Python may have reshaped it in place), from the
 * lent memory to the same offsets in copy. Returns 0, or -1 if some element
 * lies outside the lent memory (nothing numpy makes as a view does that). */
static int copy_reached(PyArrayObject *a, const char *lent, size_t nbytes, char *copy) {
    const char *lo, *hi;
    if (!pim_extent(PyArray_BYTES(a), PyArray_NDIM(a), PyArray_DIMS(a), PyArray_STRIDES(a),
                    PyArray_ITEMSIZE(a), &lo, &hi)) {
        return 0; /* no elements */
    }
    if (!inside_lent(lo, hi, lent, nbytes)) {
        return -1;
    }
    if ((PyArray_IS_C_CONTIGUOUS(a) || PyArray_IS_F_CONTIGUOUS(a)) &&
        (uintptr_t)PyArray_NBYTES(a) == (uintptr_t)(hi - lo)) {
        memcpy(copy + (lo - lent), lo, (size_t)(hi - lo)); /* no gaps */
    } else if (PyArray_NDIM(a) == 0) {
        memcpy(copy + (lo - lent), lo, (size_t)PyArray_ITEMSIZE(a));
    } else {
        copy_elements(a, 0, PyArray_BYTES(a), lent, copy);
    }
    return 0;
}

/* copy_reached for an element of a structured array (borrowed): its bytes,
 * if they lie in the lent memory. Returns 0, or -1 if they straddle its
 * edge. */
static int copy_element(PyObject *element, const char *lent, size_t nbytes, char *copy) {
    const char *lo = ((PyVoidScalarObject *)element)->obval;
    const char *hi = lo + element_size(element);
    if (inside_lent(lo, hi, lent, nbytes)) {
        memcpy(copy + (lo - lent), lo, (size_t)(hi - lo));
        return 0;
    }
    /* Its own bytes (numpy copied them), not the lent memory's. */
    return (uintptr_t)hi <= (uintptr_t)lent || (uintptr_t)lo >= (uintptr_t)(lent + nbytes) ? 0
                                                                                          : -1;
}

/* repoint for an element (borrowed; copied by copy_element). */
static void repoint_element(PyObject *element, const char *lent, size_t nbytes, char *copy) {
    PyVoidScalarObject *fields = (PyVoidScalarObject *)element;
    if (inside_lent(fields->obval, fields->obval + element_size(element), lent, nbytes)) {
        fields->obval = copy + (fields->obval - lent);
    }
}

/* Points `a` (borrowed; copied by copy_reached) at the same offset in copy. */
static void repoint(PyArrayObject *a, const char *lent, size_t nbytes, char *copy) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)a;
    if (inside_lent(fields->data, fields->data, lent, nbytes)) {
        fields->data = copy + (fields->data - lent);
    } else {
        fields->data = copy; /* no elements, and past the span: any address */
    }
}

/* The kept array, and every view of it (and element of one) Python kept,
 * read a private copy from now on. arr: borrowed; base: the borrow capsule,
 * held only by arr, whose reference this call releases on success; views:
 * borrowed, n_views arrays and elements whose memory lies in the lent
 * memory (checked: -1 if not). The
 * copy spans what the capsule says was lent, at the same offsets, so every
 * array keeps its strides (negative ones too); only the elements the
 * arrays reach are read from the lent memory, so a strided lend never
 * reads the bytes between its elements, which Rust may be using elsewhere.
 * The copy is owned by a new capsule that arr holds as its base; the views
 * hold arr. Returns 0, or -1 (out of memory, or a view outside the lent
 * memory: nothing is changed). */
static int move_to_copy(PyArrayObject *arr, PyObject *base, PyObject *const *views,
                        int n_views) {
    PyArrayObject_fields *fields = (PyArrayObject_fields *)arr;
    char *lent = PyCapsule_GetPointer(base, PIM_BORROW_CAPSULE);
    size_t nbytes = (size_t)(uintptr_t)PyCapsule_GetContext(base);
    PyObject *owner;
    char *copy;
    int i;
    if (lent == NULL) {
        PyErr_Clear();
        return -1;
    }
    /* PyMem_RawCalloc: any thread may free it, with or without the GIL. */
    copy = PyMem_RawCalloc(1, nbytes > 0 ? nbytes : 1);
    if (copy == NULL) {
        pin_because("no memory for a copy of %zu bytes", nbytes);
        return -1;
    }
    for (i = -1; i < n_views; i++) {
        PyObject *a = i < 0 ? (PyObject *)arr : views[i];
        if ((PyArray_Check(a) ? copy_reached((PyArrayObject *)a, lent, nbytes, copy)
                              : copy_element(a, lent, nbytes, copy)) < 0) {
            char name[NAME_MAX_SHOWN + 1];
            pin_because("a view of type %s reaches outside the lent memory", type_name(a, name));
            PyMem_RawFree(copy);
            return -1;
        }
    }
    owner = PyCapsule_New(copy, RETAINED_COPY_CAPSULE, free_retained_copy);
    if (owner == NULL) {
        PyMem_RawFree(copy);
        PyErr_Clear();
        return -1;
    }
    /* numpy offers no API to re-point an array; the fields are public in
     * its headers and stable since 1.7. The offset keeps every element each
     * array reaches. */
    for (i = 0; i < n_views; i++) {
        if (PyArray_Check(views[i])) {
            repoint((PyArrayObject *)views[i], lent, nbytes, copy);
        } else {
            repoint_element(views[i], lent, nbytes, copy);
        }
    }
    repoint(arr, lent, nbytes, copy);
    fields->base = owner;
    Py_DECREF(base);
    return 0;
}

/* Capsule destructor of a moved array's copy (capsule: borrowed, being
 * freed): the last view is gone, so the copy is freed. An exception being
 * raised as it runs is kept, as owned_capsule_free (arrays.c) keeps it. */
static void free_retained_copy(PyObject *capsule) {
    pim_raised aside;
    pim_set_raised_aside(&aside);
    PyMem_RawFree(PyCapsule_GetPointer(capsule, RETAINED_COPY_CAPSULE));
    pim_restore_raised(&aside);
}

/* Rule 1: is anything but our reference left? arr: borrowed; base: arr's
 * base when it is the glue's capsule, else NULL. */
static int is_retained(PyObject *arr, PyObject *base) {
    return Py_REFCNT(arr) != 1 || (base != NULL && Py_REFCNT(base) != 1);
}

/* Reads subtype_traverse from a class made for it, once (runs Python code:
 * before any scan). On failure it stays NULL and no instance nor subclass
 * view is accepted. */
static void learn_python_class_traverse(void) {
    PyObject *probe;
    if (python_class_traverse != NULL) {
        return;
    }
    probe = PyObject_CallFunction((PyObject *)&PyType_Type, "s(){}", "pim_probe");
    if (probe != NULL && PyType_Check(probe)) {
        python_class_traverse = ((PyTypeObject *)probe)->tp_traverse;
    }
    Py_XDECREF(probe);
    PyErr_Clear();
}

/* gc.collect and gc.get_objects as Python started them (owned, kept for
 * good), or NULL where not found: found once (pim_find_collector, from
 * pim_prepare, before any code of the caller's runs when the crate starts
 * Python), not looked up at each release, so that Python code cannot hand
 * the scan a list that hides a holder (a get_objects of its own put in
 * the module, or another module in sys.modules). Without them the scan
 * fails, and the array is pinned. */
static PyObject *gc_collect = NULL;
static PyObject *gc_get_objects = NULL;

/* gc's function `name` (a new reference), if the module's attribute is that
 * C function of the module gc; else NULL, no exception set. gc: borrowed. */
static PyObject *gc_function(PyObject *gc, const char *name) {
    PyObject *f = PyObject_GetAttrString(gc, name);
    if (f != NULL && PyCFunction_Check(f)) {
        PyObject *self = PyCFunction_GET_SELF(f);
        const char *module = self != NULL && PyModule_Check(self) ? PyModule_GetName(self) : NULL;
        const char *own = ((PyCFunctionObject *)f)->m_ml->ml_name;
        if (module != NULL && strcmp(module, "gc") == 0 && own != NULL && strcmp(own, name) == 0) {
            return f;
        }
    }
    Py_XDECREF(f);
    PyErr_Clear();
    return NULL;
}

void pim_find_collector(void) {
    PyObject *gc;
    if (gc_collect != NULL || gc_get_objects != NULL) {
        return;
    }
    gc = PyImport_ImportModule("gc");
    if (gc != NULL) {
        gc_collect = gc_function(gc, "collect");
        gc_get_objects = gc_function(gc, "get_objects");
    }
    Py_XDECREF(gc);
    PyErr_Clear();
}

/* gc.collect(generation): 0 the youngest, 2 all. gc.collect, unlike
 * PyGC_Collect, runs even when the collector is disabled. Never leaves an
 * exception set. */
static void collect(int generation) {
    PyObject *collected = gc_collect ? PyObject_CallFunction(gc_collect, "i", generation) : NULL;
    Py_XDECREF(collected);
    PyErr_Clear();
}

/* Rules 3 to 5, with gc.get_objects(). arr: borrowed; base as for
 * is_retained; views, n_views: as for vet_holders. Never leaves an
 * exception set. */
static int only_safe_holders(PyObject *arr, PyObject *base, PyObject **views, int *n_views) {
    const char *lent = NULL;
    size_t nbytes = 0;
    PyObject *objects;
    int safe = 0;
    *n_views = 0;
    if (base != NULL) {
        lent = PyCapsule_GetPointer(base, PIM_BORROW_CAPSULE);
        nbytes = (size_t)(uintptr_t)PyCapsule_GetContext(base);
    }
    learn_python_class_traverse();
    objects = gc_get_objects ? PyObject_CallObject(gc_get_objects, NULL) : NULL;
    if (objects != NULL && PyList_CheckExact(objects) && (base == NULL || lent != NULL)) {
        safe = vet_holders(arr, objects, lent, nbytes, views, n_views);
    } else {
        pin_because("the garbage collector's objects could not be listed (gc.get_objects)");
    }
    Py_XDECREF(objects);
    PyErr_Clear();
    return safe;
}

int pim_borrow_is_kept(PyObject *arr) {
    PyObject *base = PyArray_BASE((PyArrayObject *)arr);
    return !pim_is_borrow_capsule(base) || is_retained(arr, base);
}

/* The array's base when it is the glue's capsule, else NULL (replaced by
 * Python, numpy 1.x: see the top; or dropped, by `__setstate__`).
 * Borrowed. */
static PyObject *borrow_base(PyArrayObject *array) {
    PyObject *base = PyArray_BASE(array);
    return pim_is_borrow_capsule(base) ? base : NULL;
}

/* is_retained, with a reference of the caller's own to `base` (if not
 * NULL) counted out. arr: borrowed (the caller's reference is its one
 * expected); base: borrowed from the caller, who owns one reference to it
 * besides the array's. GIL held. */
static int is_retained_here(PyObject *arr, PyObject *base) {
    return Py_REFCNT(arr) != 1 || (base != NULL && Py_REFCNT(base) != 2);
}

/* How many times the rare path looks again when the array's base changed
 * under its scan, before it pins the array. */
#define LOOKS 3

pim_borrow_verdict pim_borrow_release(PyObject *arr) {
    PyArrayObject *array = (PyArrayObject *)arr;
    PyObject *base;              /* owned while set: see below */
    PyObject *views[MAX_VETTED]; /* owned, n_views of them */
    int n_views = 0, i, look;
    pim_borrow_verdict verdict = PIM_BORROW_PINNED;
    if (!pim_borrow_is_kept(arr)) {
        /* The common case: the array, or its capsule, is kept for reuse. */
        pim_return_borrowed(arr);
        return PIM_BORROW_FREE;
    }
    /* Rare path. Python code runs in it (the class probe, once; finalizers,
     * in the collections; any collection an allocation starts), and may
     * change the array's base: numpy's `__setstate__` drops it, and the
     * capsule may go with it (trial 27: its freed memory was read). So the
     * base is read after them, and a reference of this function's keeps
     * it while it is used (counted in is_retained_here below).
     *
     * The youngest generation first: a cycle the call made (a list holding
     * the input and itself, a traceback kept in a frame) is in it, unless
     * the call allocated enough to promote it, and collecting it costs
     * microseconds, where a full collection costs milliseconds, more the
     * larger Python's heap (2 to 5 ms here). */
    pinned_why[0] = '\0';
    learn_python_class_traverse();
    collect(0);
    if (is_retained(arr, borrow_base(array))) {
        collect(2);
    }
    for (look = 0; look < LOOKS; look++) {
        base = borrow_base(array);
        Py_XINCREF(base);
        if (!is_retained_here(arr, base)) {
            verdict = PIM_BORROW_FREE;
        } else if (base != NULL && Py_REFCNT(base) != 2) {
            pin_because("its capsule (data.base), the crate's record of the lent memory, is held");
            verdict = PIM_BORROW_PINNED;
        } else if (!only_safe_holders(arr, base, views, &n_views)) {
            verdict = PIM_BORROW_PINNED;
        } else if (borrow_base(array) != base) {
            /* Changed during the scan (a collection it started): again. */
            for (i = 0; i < n_views; i++) {
                Py_DECREF(views[i]);
            }
            n_views = 0;
            Py_XDECREF(base);
            verdict = PIM_BORROW_PINNED;
            continue;
        } else if (base == NULL) {
            verdict = PIM_BORROW_FREE; /* kept, but it reads another buffer */
        } else if (move_to_copy(array, base, views, n_views) < 0) {
            verdict = PIM_BORROW_PINNED;
        } else {
            verdict = PIM_BORROW_MOVED;
        }
        Py_XDECREF(base);
        break;
    }
    if (look == LOOKS) {
        pin_because("its base changed while the check ran, %d times", LOOKS);
    }
    for (i = 0; i < n_views; i++) {
        Py_DECREF(views[i]);
    }
    Py_DECREF(arr);
    return verdict;
}
