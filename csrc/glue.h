/*
 * glue.h: the C side of py-in-mem, the article's glue.h made safe to call.
 *
 * Conventions that hold for every function below:
 *  - "GIL held" means the caller holds the GIL (PyGILState_Ensure) for the
 *    whole call; the Rust side takes it with an RAII guard.
 *  - A function that fails leaves a Python exception set; the caller fetches
 *    and clears it with pim_last_error while still holding the GIL.
 *  - "new reference" means the caller owns one reference and must give it back
 *    with pim_decref; "borrowed" means the caller owns nothing.
 */
#ifndef PY_IN_MEM_GLUE_H
#define PY_IN_MEM_GLUE_H

#include <stddef.h>
#include <stdint.h>

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

/* ---- Names and codes ------------------------------------------------------ */

/* Every symbol the glue exports starts with pim_ (types and constants too),
 * and every helper not called from Rust is static, so a host program's own C
 * functions (detect, init_python, ...) never collide with the glue's.
 * Return codes are enums, declared one for one in src/raw.rs as #[repr(C)]
 * enums of the same names: a function returns only the values listed. */

/* Success or failure of a call that reports nothing else. */
typedef enum {
    PIM_OK = 0,
    PIM_ERR = -1 /* see the function: an exception is set, or err is filled */
} pim_status;

/* ---- Errors ------------------------------------------------------------- */

/* An exception turned into owned C strings.
 * Every non-NULL field is malloc'ed and owned by the struct's holder; free
 * them all with pim_error_free. */
typedef struct {
    char *type_name; /* "ValueError", or "module.Class" outside builtins */
    char *message;   /* str(exception) */
    char *traceback; /* traceback.format_exception(...), or NULL */
    char *classes;   /* type(exc).__mro__, most derived first: one line per
                      * class, "module\tqualname", lines joined by '\n'
                      * ("builtins\tValueError"); NULL when not an exception
                      * or not readable. For Error::is_instance_of. */
} pim_error;

/* Fetch and clear the current exception into err. GIL held.
 * err: out; filled with owned strings (free with pim_error_free). If no
 * exception is set, fills a generic one. Never leaves an exception set. */
void pim_last_error(pim_error *err);

/* Free the strings of err and set them to NULL. No GIL needed. */
void pim_error_free(pim_error *err);

/* The classes of type(obj).__mro__, as pim_error's `classes` names them
 * ("module\tqualname" lines, most derived first): for Object::is_instance_of,
 * which matches them as Error::is_instance_of does. obj: borrowed. GIL
 * held. Returns an owned (malloc'ed) string, or NULL; never leaves an
 * exception set. */
char *pim_type_classes(PyObject *obj);

/* ---- Start-up and life cycle ---------------------------------------------- */

/* Start Python, which must not be running yet, on the calling thread (which
 * becomes Python's main thread), then prepare it as pim_prepare does.
 * Start-up leaves every signal disposition the host had (Python's SIGINT
 * handler, and faulthandler's handlers that PYTHONFAULTHANDLER or
 * PYTHONDEVMODE would install, are kept out: faulthandler starts disabled
 * whatever the environment says), and imports threading here, so that
 * threading.main_thread() is this thread.
 * program: borrowed UTF-8 path of the interpreter whose prefix and
 *          site-packages to use (a virtualenv's bin/python works); may be NULL.
 * module_dir: borrowed UTF-8 directory; may be NULL.
 * err: out; on failure filled with owned strings (free with pim_error_free).
 * Call without the GIL, once per process. On return the GIL is released;
 * the main thread state is kept for good (Python is never finalized by the
 * crate). A failed start returns PIM_ERR with err filled and does not exit:
 * Python itself failed (err->type_name NULL, and Python does not run), or
 * preparing it failed (Python runs).
 * Returns PIM_OK, or PIM_ERR. */
pim_status pim_start_python(const char *program, const char *module_dir, pim_error *err);

/* What the crate needs of a running Python, done once for either starter (the
 * crate, or a host program that started Python itself): numpy's C API
 * imported, module_dir last on sys.path, the shared base of untracked
 * arrays made, and threading imported on this thread (on another than
 * Python's main thread, before 3.13, one whose state the exit does not
 * wait for). Idempotent. GIL held.
 * module_dir: borrowed UTF-8 directory; may be NULL.
 * Returns PIM_OK, or PIM_ERR with an exception set. */
pim_status pim_prepare(const char *module_dir);

/* Python's switch interval (sys.getswitchinterval()) in seconds, as the
 * last pim_prepare read it; 0 before any. pim_prepare writes it under the
 * GIL: call holding the GIL, or after the thread that ran pim_prepare has
 * handed its result over. */
double pim_switch_interval(void);

/* The path of the running interpreter's python executable, as
 * "<sys.prefix>/bin/pythonX.Y", for messages about a Python the host program
 * started. GIL held. Returns an owned (malloc'ed) string, or NULL; never
 * leaves an exception set. */
char *pim_running_python(void);

/* Flush sys.stdout and sys.stderr, as Python's own finalization would.
 * GIL held. Never leaves an exception set. */
void pim_flush_stdio(void);

/* Has Python's finalization begun (Py_FinalizeEx past its atexit
 * callbacks: a thread that takes the GIL from now on is ended)? 1 or 0.
 * Any thread; the GIL need not be held (one field of the runtime read). */
int pim_is_finalizing(void);

/* Register hook with Python's atexit module, for a Python a host started:
 * Py_FinalizeEx calls it (on the finalizing thread, GIL held) after the
 * host's non-daemon threads are joined and before finalization begins.
 * Once per process. hook: a function that lives for the process. GIL held.
 * Returns PIM_OK, or PIM_ERR with an exception set. */
pim_status pim_register_at_exit(void (*hook)(void));

/* Register hook as pim_register_at_exit does, from a thread of the glue's
 * own ("pim-at-exit", detached, pure C), which waits for the GIL
 * (PyGILState_Ensure), registers, releases it, then calls done with
 * PIM_OK, or PIM_ERR (the exception cleared), and ends. So a caller waits
 * for the registration, not for the GIL: a thread that takes the GIL once
 * the host's finalization has begun is ended by Python, and this one has
 * no frame to unwind; done is then never called. Once per process.
 * hook, done: functions that live for the process; done must not unwind.
 * Any thread, the GIL not held by it (or it would wait for itself).
 * Returns PIM_OK once the thread started, or PIM_ERR if it could not start
 * (nothing called then). */
pim_status pim_register_at_exit_aside(void (*hook)(void), void (*done)(pim_status));

/* Delete the thread state of a thread that has exited: take the GIL with it,
 * clear it, delete it and release the GIL. tstate: owned, consumed; made by
 * PyGILState_Ensure on the exited thread, its GIL released
 * (PyEval_SaveThread), and used by nothing since.
 * Call without the GIL, on a thread that has no Python thread state of its
 * own and never will (Python 3.12 and later unbind a deleted state from the
 * *calling* thread's PyGILState slot). Waits for the GIL. */
void pim_thread_state_delete(PyThreadState *tstate);

/* This thread's current Python thread state, or NULL: PyThreadState_GetUnchecked
 * (3.13 and later), _PyThreadState_UncheckedGet before; a function here
 * because pyo3-ffi declares it under one name or the other depending on its
 * own version, and the crate builds with several. Never fails, never a fatal
 * error on NULL. Returns a borrowed pointer, only to compare (the state may
 * be another thread's before 3.12: the GIL holder's). GIL not needed. */
PyThreadState *pim_current_thread_state(void);

/* Put dir first on sys.path unless it is there already. GIL held.
 * dir: borrowed UTF-8. Returns PIM_OK, or PIM_ERR with an exception set. */
pim_status pim_add_sys_path(const char *dir);

/* import module; return module.func if it is callable (a function, a
 * class, any object with __call__); a dotted func ("EST.predict") is
 * followed attribute by attribute. GIL held.
 * module, func: borrowed UTF-8. importing: out; on failure, 1 if the import
 * itself failed, 0 if getting func did. Returns a new reference, or NULL with
 * an exception set. */
PyObject *pim_load_func(const char *module, const char *func, int *importing);

/* Compile source as the module `module` (registered in sys.modules, its
 * tracebacks showing the source's lines) and return module.func if callable.
 * A module of that name made here before from the same source is reused (its
 * body is not run again; while another thread runs the body, this one waits
 * for it, giving the GIL up meanwhile); any other module of that name is a
 * ValueError saying to pick another name. GIL held. module, source, func: borrowed
 * UTF-8. importing: out, as for pim_load_func (0 for a name in use). Returns
 * a new reference, or NULL with an exception set (a SyntaxError names the
 * module and line). */
PyObject *pim_load_source(const char *module, const char *source, const char *func,
                      int *importing);

/* Release one reference. GIL held. obj: owned, consumed; may be NULL. */
void pim_decref(PyObject *obj);

/* Count one reference to obj as Rust's for good (an Object's, a
 * Function's), which the retention check then finds (holds.c). GIL held.
 * obj: borrowed (the caller owns the reference counted); not NULL. */
void pim_hold(PyObject *obj);

/* Stop counting one reference pim_hold counted, before the caller
 * releases it. GIL held. obj: borrowed; not NULL. */
void pim_unhold(PyObject *obj);

/* How many references to obj pim_hold counts now (what the retention check
 * reads; for the test of the count). GIL held. obj: borrowed, only
 * compared. */
Py_ssize_t pim_hold_count(PyObject *obj);

/* ---- Arrays in: Rust memory lent or given to numpy ------------------------ */

/* numpy's type number for an element of kind 'b' (bool), 'i' (signed), 'u'
 * (unsigned), 'f' (float) or 'c' (complex) and itemsize bytes; -1 if numpy
 * has none. No GIL needed. */
int pim_npy_typenum(char kind, int itemsize);

/* A read-only numpy array over data, without a copy. GIL held.
 * data: borrowed: the address of element [0, 0, ...]; the caller keeps every
 * byte the array reaches alive and unchanged until it has passed the array
 * to pim_borrow_release. dims: borrowed, ndim entries (0 up to numpy's
 * NPY_MAXDIMS). strides: borrowed, ndim byte strides (any numpy can express,
 * zero and negative included, each element inside the caller's memory), or
 * NULL for C order, data then aligned for the dtype (as a Rust slice is).
 * numpy works out the contiguity flags. A 1-D C-order lend reuses the array
 * object (and capsule) of an earlier one that nothing kept, re-pointed.
 * The array's base is a capsule the glue owns, recording the span of memory
 * the array reaches (lowest address and length) for retention.c, which can
 * then count what Python kept and move a kept array onto a copy. A capsule
 * exposes no buffer, so numpy refuses to make the array writable, and the
 * views of the array (whose base is the array itself: numpy stops collapsing
 * bases at a non-array base) too.
 * Returns a new reference, or NULL with an exception set. */
PyObject *pim_borrow_array(const void *data, int ndim, const Py_ssize_t *dims,
                           const Py_ssize_t *strides, int typenum);

/* What pim_borrow_release found. */
typedef enum {
    PIM_BORROW_FREE = 0,  /* nothing in Python points into data any more */
    PIM_BORROW_MOVED = 1, /* only the array object and numpy views of it
                             were kept: they now read one private copy of
                             their elements, taken at release */
    PIM_BORROW_PINNED = 2 /* a buffer, a raw address, or an unknown holder
                             still points into data: the caller must not let
                             data be freed */
} pim_borrow_verdict;

/* Give back the reference from pim_borrow_array and tell whether Python kept the
 * array. GIL held. arr: owned; consumed. Retention is decided after a garbage
 * collection (dead cycles do not count); see retention.c for the rules. The
 * array's base is checked to be the glue's capsule before anything is taken
 * from it (numpy 1.x lets Python replace it: `data.data = ...`). */
pim_borrow_verdict pim_borrow_release(PyObject *arr);

/* Why the last pim_borrow_release said PIM_BORROW_PINNED: what kept a
 * pointer into the lent memory that the check could not move ("an object of
 * type generator holds the input, an array of type numpy.ndarray, ..."), for
 * the message of the abort that follows. GIL held, as for that release; the
 * string is static (not to be freed), valid until the next release. */
const char *pim_borrow_pinned_why(void);

/* Does anything but the caller hold arr (from pim_borrow_array, which the
 * caller still holds) or its capsule, or was its base replaced? The first,
 * fast test of pim_borrow_release, for an array lent across several calls:
 * after a call that returns 0, nothing was kept; after 1, the caller gives
 * the array back with pim_borrow_release, which judges. GIL held. arr:
 * borrowed. Returns 1 or 0. */
int pim_borrow_is_kept(PyObject *arr);

/* Does arr (from pim_borrow_array with these arguments, which the caller
 * still holds) still show what it was lent as: the same address, shape,
 * strides and numpy's own descriptor of typenum, aligned and read-only,
 * with no weak reference to it? Python may
 * change an array's shape, strides or dtype in place (`a.shape = (-1, 1)`,
 * `a.dtype = np.int64`), and an array lent across several calls must not
 * carry that to the next one: on 0 the caller gives it back and lends anew.
 * GIL held. arr, dims, strides: borrowed (strides NULL as for
 * pim_borrow_array). Returns 1 or 0. */
int pim_borrow_is_as_lent(PyObject *arr, const void *data, int ndim, const Py_ssize_t *dims,
                          const Py_ssize_t *strides, int typenum);

/* Like pim_borrow_array, but without retention accounting: the base is one
 * capsule shared by every untracked array (made by pim_prepare), so nothing
 * can tell afterwards whether Python kept the array. The base still exposes
 * no buffer, so numpy (1.x too) refuses to make the array writable. For
 * callers that guarantee Python keeps nothing. GIL held. Release the result
 * with pim_release_untracked. */
PyObject *pim_borrow_array_untracked(const void *data, int ndim, const Py_ssize_t *dims,
                                     const Py_ssize_t *strides, int typenum);

/* Give back an array from pim_borrow_array_untracked, after the call it was
 * passed to. GIL held. arr: owned, consumed: kept for the next untracked
 * 1-D lend if nothing else holds it (re-pointed then), else released. */
void pim_release_untracked(PyObject *arr);

/* Called with the GIL held, on whatever thread drops the last reference. */
typedef void (*pim_release_fn)(void *owner);

/* A C-ordered numpy array over data that Python owns from now on. GIL held.
 * data: owned by `owner` (opaque, not NULL); release(owner) frees both, once, when the
 * array and all its views are gone. dims: borrowed, ndim entries.
 * On failure release(owner) has been called. Returns a new reference, or NULL
 * with an exception set. */
PyObject *pim_own_array(void *data, int ndim, const Py_ssize_t *dims, int typenum,
                    int writeable, void *owner, pim_release_fn release);

/* ---- Calls and results --------------------------------------------------- */

/* fn(*args[:nargs], **dict(zip(kwnames, args[nargs:]))). GIL held.
 * fn, args, kwnames (a tuple of str, or NULL): borrowed.
 * Returns a new reference, or NULL with an exception set. */
PyObject *pim_call_function(PyObject *fn, PyObject *const *args, size_t nargs, PyObject *kwnames);

/* args[0].name(*args[1:nargs], **dict(zip(kwnames, args[nargs:]))): the
 * method looked up and called at once, with no bound method made (as
 * Python's own obj.name(...) does). nargs counts args[0]. GIL held.
 * name (a str), args, kwnames (a tuple of str, or NULL): borrowed.
 * Returns a new reference, or NULL with an exception set. */
PyObject *pim_call_method(PyObject *name, PyObject *const *args, size_t nargs, PyObject *kwnames);

/* A result as a caller can read it: a numpy array in place, or a number
 * copied out. What is set depends on the pim_result_kind returned with it. */
typedef struct {
    PyObject *obj;             /* see each function */
    const char *data;          /* (PIM_ARRAY) borrowed from obj: element [0, 0, ...] */
    int ndim;                  /* 0 for PIM_SCALAR */
    const Py_ssize_t *shape;   /* (PIM_ARRAY) ndim entries, borrowed from obj */
    const Py_ssize_t *strides; /* (PIM_ARRAY) ndim entries, bytes; may be 0 or
                                  negative; borrowed from obj */
    int itemsize;
    char kind;                 /* numpy's dtype.kind: 'b', 'i', 'u', 'f', 'c', ... */
    int byteswapped;           /* 1 when not in the machine's byte order */
    int sole_owner;            /* 1 when obj is an exact numpy.ndarray (never
                                  tracked by the garbage collector, so reachable
                                  only through references) that owns its data,
                                  and the caller holds the only reference and no
                                  weak one exists: nothing else can reach or
                                  write the data while that stays so */
    union {
        unsigned char bytes[16];
        double align;
    } scalar;                  /* (PIM_SCALAR) the value, in the machine's byte
                                  order: itemsize bytes of kind `kind` */
} pim_array_view;

/* What pim_describe_result found. */
typedef enum {
    PIM_ARRAY = 0,    /* a numpy array: obj, data, ndim, shape, strides, itemsize,
                         kind, byteswapped and sole_owner are set */
    PIM_OTHER = -2,   /* none of the kinds below: only obj is set */
    PIM_SCALAR = 1,   /* a numpy scalar of a bool, integer, float or complex
                         dtype, or a Python bool, int (within int64 or uint64),
                         float or complex: obj, ndim (0), itemsize, kind and
                         scalar are set, as for a 0-D array of the value */
    PIM_NONE = 2,     /* None */
    PIM_STR = 3,      /* a str (numpy's str_ too) */
    PIM_TUPLE = 4,    /* a tuple (a named tuple too) */
    PIM_LIST = 5,     /* a list */
    PIM_DICT = 6,     /* a dict */
    PIM_BIG_INT = 7,  /* a Python int outside both int64 and uint64 */
    PIM_ARRAY_SUBCLASS = 8 /* an instance of an ndarray subclass whose meaning
                              may be more than its data (a masked array's
                              mask, a quantity's units): only obj is set. The
                              subclasses numpy.matrix and numpy.memmap are
                              plain data, and PIM_ARRAY */
} pim_result_kind;

/* Describe obj. GIL held. obj: borrowed; out->obj = obj (borrowed); the
 * other fields as the kind returned says. Never leaves an exception set.
 * Returns one of the kinds above. */
pim_result_kind pim_describe_result(PyObject *obj, pim_array_view *out);

/* Row index of the numpy array obj (of 2 dimensions or more), as
 * obj[index] gives it for a plain ndarray: for a subclass (numpy.matrix,
 * whose rows are 1 x n matrices), the row of a plain view of the same data.
 * GIL held. obj: borrowed, a numpy array; index within its first
 * dimension (the caller checks). Returns a new reference, or NULL with an
 * exception set. */
PyObject *pim_array_row(PyObject *obj, Py_ssize_t index);

/* What obj is, for a message: "a numpy array of dtype float64", "a 2-D numpy
 * array of dtype int64", "an object of type list", or for an ndarray
 * subclass read as PIM_ARRAY_SUBCLASS, an object that converts to an array
 * (__array__: a pandas Series), a coroutine, a generator or an async
 * generator, what it is and what to return instead. GIL held. obj: borrowed;
 * what: caller's buffer of size bytes, always NUL-terminated on return. */
void pim_describe_what(PyObject *obj, char *what, size_t size);

/* The article's entry point, detect(fn, arr), as a plain call: fn(arg),
 * without an argument tuple (the result is described by the caller, with
 * pim_describe_result, as whatever kind it is). GIL held. fn, arg: borrowed.
 * Returns a new reference, or NULL with an exception set. */
PyObject *pim_call_one(PyObject *fn, PyObject *arg);

/* A C-ordered copy of arr that owns its data. GIL held. arr: borrowed.
 * Returns a new reference, or NULL with an exception set. */
PyObject *pim_array_copy(PyObject *arr);

/* ---- Deadlines ------------------------------------------------------------- */

/* The calling thread's Python thread ident (PyThread_get_thread_ident), the
 * id PyThreadState_SetAsyncExc takes: what a thread state made on this
 * thread records. No GIL needed. */
unsigned long pim_thread_ident(void);

/* Raise py_in_mem.DeadlineExceeded asynchronously in `target`, the thread
 * state of the thread whose ident is `thread` (PyThreadState_SetAsyncExc):
 * Python raises it there at that thread's next bytecode check (a long C
 * loop, numpy's included, ends first). The class (made here on first use,
 * kept for good) derives from BaseException, so `except Exception:` does
 * not catch it. GIL held, by any thread. target: borrowed, the current
 * state of a thread inside an armed call. Returns 1 if target was marked; 0
 * if not, because another state carries the ident before it (a thread that
 * target's thread is starting, on CPython 3.11 and earlier: ask again once
 * it runs); or -1 with an exception set if the class could not be made. */
int pim_raise_deadline(unsigned long thread, PyThreadState *target);

/* Take back what pim_raise_deadline set in `target` (of the thread whose
 * ident is `thread`) and Python has not raised yet
 * (PyThreadState_SetAsyncExc with NULL). GIL held. target: borrowed, as for
 * pim_raise_deadline. Returns 1 if done (nothing was pending, or it was
 * taken back), 0 if another state carries the ident before target (nothing
 * done). Never leaves an exception set. */
int pim_clear_deadline(unsigned long thread, PyThreadState *target);

/* ---- Layout ----------------------------------------------------------------- */

/* The size of a type of this header ("pim_error", "pim_status", ...), the
 * offset of one of its fields ("pim_array_view.ndim"), or the value of an
 * enumerator ("PIM_ERR", as (size_t)-1), as this C compiler lays them out;
 * (size_t)-1 also for a name it does not know (no enumerator needs telling
 * apart from that: the test asks only for names it knows are there). For the test that
 * ties src/raw.rs to this header. name: borrowed UTF-8. No GIL needed. */
size_t pim_layout(const char *name);

#endif /* PY_IN_MEM_GLUE_H */
