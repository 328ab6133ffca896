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

int pim_raise_deadline(unsigned long thread) {
    PyObject *exc = deadline_class();
    if (exc == NULL) {
        return -1;
    }
    return PyThreadState_SetAsyncExc(thread, exc) > 0 ? 1 : 0;
}

void pim_clear_deadline(unsigned long thread) { (void)PyThreadState_SetAsyncExc(thread, NULL); }
