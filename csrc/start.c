/*
 * start.c: start-up and the interpreter's life cycle: starting Python (its
 * signal handlers kept off the host's signals), preparing a Python a host
 * started (numpy's C API, sys.path), the switch interval, thread states,
 * flushing at exit. Ownership of every pointer is documented on each
 * function in glue.h; the notes here say why the code is shaped so.
 */
#define PY_IN_MEM_DEFINE_ARRAY_API /* numpy's API table lives here */
#include "arrays.h"
#include "errors.h"
#include "guards.h"
#include "retention.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h> /* PR_SET_NAME: pthread_setname_np needs _GNU_SOURCE first */
#endif

/* Insert dir into sys.path at the front or the back unless it is there.
 * dir: borrowed. GIL held. Returns 0, or -1 with an exception set. */
static int sys_path_add(const char *dir, int front) {
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    PyObject *entry;
    int present, rc;
    if (path == NULL || !PyList_Check(path)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        return -1;
    }
    entry = PyUnicode_FromString(dir);
    if (entry == NULL) {
        return -1;
    }
    present = PySequence_Contains(path, entry);
    if (present != 0) {
        rc = present < 0 ? -1 : 0;
    } else if (front) {
        rc = PyList_Insert(path, 0, entry);
    } else {
        rc = PyList_Append(path, entry);
    }
    Py_DECREF(entry);
    return rc;
}

pim_status pim_add_sys_path(const char *dir) {
    return sys_path_add(dir, 1) < 0 ? PIM_ERR : PIM_OK;
}

/* Every signal's disposition, as the host has it. Filled and used once, by
 * pim_start_python (one thread, before Python runs), so static storage
 * needs no lock. */
static struct sigaction host_signals[NSIG];

/* Records every disposition into host_signals. No GIL needed (Python does
 * not run yet). */
static void save_host_signals(void) {
    int sig;
    for (sig = 1; sig < NSIG; sig++) {
        /* Fails harmlessly for numbers glibc reserves (32, 33). */
        if (sigaction(sig, NULL, &host_signals[sig]) != 0) {
            memset(&host_signals[sig], 0, sizeof host_signals[sig]);
            host_signals[sig].sa_handler = SIG_DFL;
        }
    }
}

/* glibc sets SA_RESTORER (its own return trampoline) on every disposition
 * it installs; it says nothing of the disposition itself. */
#ifdef SA_RESTORER
#define PIM_SA_IGNORED_FLAGS SA_RESTORER
#else
#define PIM_SA_IGNORED_FLAGS 0
#endif

/* Do two dispositions differ in handler, flags or mask? The mask is
 * compared signal by signal: the kernel fills only part of a sigset_t. */
static int disposition_differs(const struct sigaction *a, const struct sigaction *b) {
    int sig;
    if (a->sa_handler != b->sa_handler ||
        (a->sa_flags & ~PIM_SA_IGNORED_FLAGS) != (b->sa_flags & ~PIM_SA_IGNORED_FLAGS)) {
        return 1;
    }
    for (sig = 1; sig < NSIG; sig++) {
        if (sigismember(&a->sa_mask, sig) != sigismember(&b->sa_mask, sig)) {
            return 1;
        }
    }
    return 0;
}

/* Put back every disposition save_host_signals recorded that start-up
 * changed. SIGKILL and SIGSTOP never change; reserved numbers refuse. */
static void restore_host_signals(void) {
    struct sigaction now;
    int sig;
    for (sig = 1; sig < NSIG; sig++) {
        memset(&now, 0, sizeof now);
        if (sigaction(sig, NULL, &now) == 0 && disposition_differs(&now, &host_signals[sig])) {
            (void)sigaction(sig, &host_signals[sig], NULL);
        }
    }
}

/* Import module (borrowed UTF-8) for its side effect only. GIL held.
 * Failure is harmless and cleared. */
static void import_for_effect(const char *module) {
    PyObject *imported = PyImport_ImportModule(module);
    Py_XDECREF(imported);
    PyErr_Clear();
}

/* Python's own record of SIGINT made true to the host's disposition. On
 * importing _signal, Python installs its SIGINT handler where the
 * disposition is the default, and records default_int_handler; once
 * restore_host_signals has put the host's default back, that record is
 * false, and Python code that restores what signal.getsignal() reports
 * (asyncio.run on Python's main thread does, on leaving) installs Python's
 * handler for good: Ctrl-C then raises KeyboardInterrupt in the next call
 * instead of stopping the host. signal.signal(SIGINT, SIG_DFL) makes the
 * record SIG_DFL and the disposition the default it was. Only when the
 * host's SIGINT was the default (Python records a handler of the host's as
 * None, and leaves it alone). Python's main thread, GIL held; failure is
 * cleared. */
static void record_host_sigint_default(void) {
    PyObject *signal_module, *dfl, *done;
    if ((host_signals[SIGINT].sa_flags & SA_SIGINFO) != 0 ||
        host_signals[SIGINT].sa_handler != SIG_DFL) {
        return;
    }
    signal_module = PyImport_ImportModule("signal");
    dfl = signal_module ? PyObject_GetAttrString(signal_module, "SIG_DFL") : NULL;
    done = dfl ? PyObject_CallMethod(signal_module, "signal", "iO", SIGINT, dfl) : NULL;
    Py_XDECREF(done);
    Py_XDECREF(dfl);
    Py_XDECREF(signal_module);
    PyErr_Clear();
}

/* Before Python 3.13, threading's main_thread() is the thread that first
 * imports threading, and at the host's Py_FinalizeEx threading._shutdown()
 * waits for that thread's state to go unless it is Python's main thread.
 * The crate keeps the thread states it makes for the threads' lives, so a
 * thread that imported threading inside a crate call (a serving thread, a
 * worker of the host's) would hang the host's exit. So threading is
 * imported here, on the thread of the crate's first contact with Python;
 * if that is not Python's main thread, the thread is treated as Python
 * treats a C library's thread that imported threading (bpo-1596321): the
 * exit does not wait for it, and threading.current_thread() there is a
 * dummy. Run first of all that prepare does (numpy's import may import
 * threading). If threading was imported before, by another thread,
 * whoever did chose. Best effort: every exception is cleared. GIL held. */
static void import_threading_here(void) {
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        PyErr_Clear();
        return;
    }
#if PY_VERSION_HEX < 0x030D0000
    if (!_PyOS_IsMainThread()) {
        PyObject *main = PyObject_GetAttrString(threading, "_main_thread");
        PyObject *ident = main ? PyObject_GetAttrString(main, "_ident") : NULL;
        PyObject *here = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
        /* Only if threading took this thread for its main thread. */
        int mine = ident != NULL && here != NULL &&
                   PyObject_RichCompareBool(ident, here, Py_EQ) == 1;
        if (mine) {
            PyObject *lock = PyObject_GetAttrString(main, "_tstate_lock");
            PyObject *locks = PyObject_GetAttrString(threading, "_shutdown_locks");
            PyObject *active = PyObject_GetAttrString(threading, "_active");
            PyObject *discarded = NULL;
            if (lock != NULL && locks != NULL) {
                discarded = PyObject_CallMethod(locks, "discard", "O", lock);
            }
            if (active != NULL && PyDict_Check(active)) {
                (void)PyDict_DelItem(active, ident);
            }
            Py_XDECREF(discarded);
            Py_XDECREF(active);
            Py_XDECREF(locks);
            Py_XDECREF(lock);
        }
        Py_XDECREF(here);
        Py_XDECREF(ident);
        Py_XDECREF(main);
        PyErr_Clear();
    }
#endif
    Py_DECREF(threading);
}

/* sys.getswitchinterval() as pim_prepare found it, in seconds; 0 before.
 * Written under the GIL, once per prepare (see pim_switch_interval). */
static volatile double switch_interval_s = 0.0;

double pim_switch_interval(void) { return switch_interval_s; }

/* Records sys.getswitchinterval() for pim_switch_interval. GIL held. Never
 * leaves an exception set. */
static void record_switch_interval(void) {
    PyObject *sys = PyImport_ImportModule("sys");
    PyObject *seconds = sys ? PyObject_CallMethod(sys, "getswitchinterval", NULL) : NULL;
    double value = seconds ? PyFloat_AsDouble(seconds) : -1.0;
    if (value > 0.0) {
        switch_interval_s = value;
    }
    Py_XDECREF(seconds);
    Py_XDECREF(sys);
    PyErr_Clear();
}

pim_status pim_prepare(const char *module_dir) {
    import_threading_here();
    record_switch_interval();
    if (module_dir != NULL && sys_path_add(module_dir, 0) < 0) {
        return PIM_ERR;
    }
    /* _import_array, unlike import_array, reports failure (numpy missing, or
     * its C API older than the headers) instead of returning from us. Doing
     * it again fills the table with the same pointers. */
    if (_import_array() < 0) {
        return PIM_ERR;
    }
    pim_find_plain_subclasses();
    pim_find_collector();
    pim_find_numpy_ctypes();
    pim_find_stdlib_holders();
    pim_guard_ufuncs();
    return pim_make_untracked_base() < 0 ? PIM_ERR : PIM_OK;
}

pim_status pim_start_python(const char *program, const char *module_dir, pim_error *err) {
    PyConfig config;
    PyStatus status;
    pim_status rc = PIM_OK;
    memset(err, 0, sizeof *err);

    save_host_signals();
    /* The Python configuration, so PYTHONPATH and PYTHONHOME still work; but
     * no signal handlers (Ctrl-C must keep stopping the host), and
     * faulthandler off even when PYTHONFAULTHANDLER, -X faulthandler or
     * PYTHONDEVMODE ask for it: it would replace the host's handlers of
     * SIGSEGV, SIGFPE, SIGABRT, SIGBUS and SIGILL. Python code may still
     * call faulthandler.enable(). */
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.faulthandler = 0;
    config.parse_argv = 0;
    if (program != NULL) {
        /* Python finds its prefix, and a virtualenv's pyvenv.cfg, from the
         * program path, not from the host binary's. */
        status = PyConfig_SetBytesString(&config, &config.program_name, program);
        if (PyStatus_Exception(status)) {
            PyConfig_Clear(&config);
            pim_status_error(err, status);
            return PIM_ERR;
        }
    }
    status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        restore_host_signals();
        pim_status_error(err, status);
        return PIM_ERR;
    }

    if (pim_prepare(module_dir) < 0) {
        rc = PIM_ERR;
        pim_last_error(err);
    }
    /* install_signal_handlers = 0 is not enough before Python 3.10: the
     * first import of _signal (which site or numpy may do) installs Python's
     * SIGINT handler anyway, and Ctrl-C then only sets a flag nobody checks.
     * Import it now, so that happens here and only once, then give the host
     * every disposition back. (threading, whose main_thread() must be this
     * thread, pim_prepare imported first of all.) */
    import_for_effect("_signal");
    record_host_sigint_default();
    restore_host_signals();
    /* Hand the GIL back so any thread can take it; the main thread state is
     * kept for good because the crate never finalizes Python. */
    (void)PyEval_SaveThread();
    return rc;
}

char *pim_running_python(void) {
    PyObject *prefix = PySys_GetObject("prefix"); /* borrowed */
    PyObject *path;
    char *text = NULL;
    if (prefix == NULL || !PyUnicode_Check(prefix)) {
        PyErr_Clear();
        return NULL;
    }
    path = PyUnicode_FromFormat("%U/bin/python%d.%d", prefix, PY_MAJOR_VERSION,
                                PY_MINOR_VERSION);
    if (path != NULL) {
        text = pim_dup_str(path);
        Py_DECREF(path);
    }
    PyErr_Clear();
    return text;
}

int pim_is_finalizing(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* The hook pim_register_at_exit registered, called by at_exit_function. */
static void (*at_exit_hook)(void);

static PyObject *at_exit_function(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    at_exit_hook();
    Py_RETURN_NONE;
}

static PyMethodDef at_exit_def = {"py_in_mem_at_exit", at_exit_function, METH_NOARGS,
                                  "py-in-mem's calls drained before Python finalizes."};

pim_status pim_register_at_exit(void (*hook)(void)) {
    PyObject *atexit, *function, *registered;
    at_exit_hook = hook;
    atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL) {
        return PIM_ERR;
    }
    function = PyCFunction_New(&at_exit_def, NULL);
    registered = function ? PyObject_CallMethod(atexit, "register", "O", function) : NULL;
    Py_XDECREF(registered);
    Py_XDECREF(function);
    Py_DECREF(atexit);
    return registered == NULL ? PIM_ERR : PIM_OK;
}

/* What pim_register_at_exit_aside hands its thread. */
static void (*aside_hook)(void);
static void (*aside_done)(pim_status);

/* The registering thread: pure C, so that Python may end it (pthread_exit,
 * before 3.14) when it takes the GIL once finalization has begun: there is
 * no frame of Rust's or C++'s to unwind. No signal is delivered to it. */
static void *register_aside(void *unused) {
    sigset_t all;
    PyGILState_STATE gil;
    pim_status status;
    (void)unused;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
#ifdef __linux__
    prctl(PR_SET_NAME, "pim-at-exit", 0, 0, 0);
#endif
    gil = PyGILState_Ensure();
    status = pim_register_at_exit(aside_hook);
    if (status != PIM_OK) {
        PyErr_Clear();
    }
    PyGILState_Release(gil);
    aside_done(status);
    return NULL;
}

pim_status pim_register_at_exit_aside(void (*hook)(void), void (*done)(pim_status)) {
    pthread_attr_t attr;
    pthread_t thread;
    int rc;
    aside_hook = hook;
    aside_done = done;
    if (pthread_attr_init(&attr) != 0) {
        return PIM_ERR;
    }
    rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0) {
        rc = pthread_create(&thread, &attr, register_aside, NULL);
    }
    pthread_attr_destroy(&attr);
    return rc == 0 ? PIM_OK : PIM_ERR;
}

void pim_flush_stdio(void) {
    const char *const names[] = {"stdout", "stderr"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        PyObject *stream = PySys_GetObject(names[i]); /* borrowed */
        if (stream != NULL && stream != Py_None) {
            PyObject *done = PyObject_CallMethod(stream, "flush", NULL);
            Py_XDECREF(done);
        }
        PyErr_Clear();
    }
}

PyThreadState *pim_current_thread_state(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

void pim_thread_state_delete(PyThreadState *tstate) {
    /* The state becomes this thread's current one for the time it takes to
     * clear it (its dict, context and exception may hold objects whose
     * release runs Python code, which needs a current thread state), then
     * PyThreadState_DeleteCurrent deletes it and releases the GIL, as
     * PyGILState_Release does on the thread that made it. */
    PyEval_RestoreThread(tstate);
    PyThreadState_Clear(tstate);
    PyThreadState_DeleteCurrent();
}
