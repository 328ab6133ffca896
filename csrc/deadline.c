/*
 * deadline.c: stopping Python code that runs past a call's deadline. The
 * crate's watchdog thread raises py_in_mem.DeadlineExceeded in the calling
 * thread (PyThreadState_SetAsyncExc), which Python raises at that thread's
 * next bytecode check; the calling thread clears it again if its call
 * returned first. Ownership of every pointer is documented on each function
 * in glue.h; the notes here say why the code is shaped so.
 */
#include "glue.h" /* Python.h, and with it pythread.h */

/* The exception class, made on first use and kept for good (Python is never
 * finalized by the crate; after a host finalizes it nothing here runs).
 * Written and read only with the GIL held, which orders both. */
static PyObject *deadline_exceeded = NULL;

/* py_in_mem.DeadlineExceeded, made once: a borrowed reference, or NULL with
 * an exception set. GIL held. */
static PyObject *deadline_class(void) {
    if (deadline_exceeded == NULL) {
        /* A BaseException, as KeyboardInterrupt is: a bare
         * `except Exception:` in user code does not swallow it. */
        deadline_exceeded = PyErr_NewExceptionWithDoc(
            "py_in_mem.DeadlineExceeded",
            "Raised by py-in-mem in Python code that runs past its call's deadline. Derives "
            "from BaseException, so `except Exception:` does not catch it.",
            PyExc_BaseException, NULL);
    }
    return deadline_exceeded;
}

unsigned long pim_thread_ident(void) { return PyThread_get_thread_ident(); }

/* Whether PyThreadState_SetAsyncExc(thread, ...) reaches target: it marks
 * the first thread state of the interpreter's list (newest first) whose id
 * is `thread`. CPython 3.11 and earlier give the state made for a new
 * thread (threading.Thread.start() makes it) the id of the thread that made
 * it, until the new thread runs: for that moment two states carry the id,
 * the new one first, and an exception raised by id goes to a thread not yet
 * started, which dies of it while its starter waits for it for ever. target:
 * borrowed, live (its thread is inside an armed call). GIL held, so no state
 * is deleted meanwhile; one made without the GIL (PyGILState_Ensure on a new
 * thread) carries that thread's own id. */
static int reaches(unsigned long thread, PyThreadState *target) {
    PyThreadState *ts = PyInterpreterState_ThreadHead(target->interp);
    for (; ts != NULL; ts = PyThreadState_Next(ts)) {
        if (ts->thread_id == thread) {
            return ts == target;
        }
    }
    return 0;
}

int pim_raise_deadline(unsigned long thread, PyThreadState *target) {
    PyObject *exc = deadline_class();
    if (exc == NULL) {
        return -1;
    }
    if (!reaches(thread, target)) {
        return 0;
    }
    return PyThreadState_SetAsyncExc(thread, exc) > 0 ? 1 : 0;
}

int pim_clear_deadline(unsigned long thread, PyThreadState *target) {
    if (!reaches(thread, target)) {
        return 0;
    }
    (void)PyThreadState_SetAsyncExc(thread, NULL);
    return 1;
}
