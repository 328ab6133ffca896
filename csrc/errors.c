/*
 * errors.c: Python exceptions and start-up failures copied into pim_error,
 * and strings copied out of Python objects. The bottom of csrc/: it calls
 * nothing else of the glue. Ownership: see each function in glue.h and
 * errors.h.
 */
#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'ed copy of s. s: borrowed. Returns an owned string or NULL. */
static char *dup_cstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

char *pim_dup_str(PyObject *obj) {
    char *copy = NULL;
    PyObject *text = PyObject_Str(obj);
    PyObject *bytes = NULL;
    if (text != NULL) {
        bytes = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
    }
    if (bytes != NULL) {
        copy = dup_cstr(PyBytes_AS_STRING(bytes));
    }
    Py_XDECREF(bytes);
    Py_XDECREF(text);
    PyErr_Clear();
    return copy;
}

/* "ValueError" for builtins, "module.Qualname" otherwise: what a traceback's
 * last line shows. type: borrowed. GIL held. Returns an owned string. */
static char *dup_type_name(PyObject *type) {
    char *name = NULL;
    PyObject *module = PyObject_GetAttrString(type, "__module__");
    PyObject *qualname = PyObject_GetAttrString(type, "__qualname__");
    if (qualname != NULL && module != NULL && PyUnicode_Check(module) &&
        PyUnicode_CompareWithASCIIString(module, "builtins") != 0) {
        PyObject *full = PyUnicode_FromFormat("%U.%S", module, qualname);
        if (full != NULL) {
            name = pim_dup_str(full);
            Py_DECREF(full);
        }
    } else if (qualname != NULL) {
        name = pim_dup_str(qualname);
    }
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    PyErr_Clear();
    return name != NULL ? name : dup_cstr(((PyTypeObject *)type)->tp_name);
}

/* The strings of lines joined with separator sep, as a malloc'ed UTF-8
 * string. sep: borrowed UTF-8; lines: borrowed iterable of str (a list, or
 * the generator TracebackException.format gives), or NULL (then NULL is
 * returned). GIL held. Returns an owned string or NULL; may leave an
 * exception set (callers clear it). */
static char *dup_joined(const char *sep, PyObject *lines) {
    char *text = NULL;
    PyObject *separator = lines != NULL ? PyUnicode_FromString(sep) : NULL;
    PyObject *joined = separator != NULL ? PyUnicode_Join(separator, lines) : NULL;
    if (joined != NULL) {
        text = pim_dup_str(joined);
    }
    Py_XDECREF(joined);
    Py_XDECREF(separator);
    return text;
}

/* The exception's message and whole formatted traceback, as Python would
 * print it, into err->message and err->traceback, with the exception's
 * __str__ run once: traceback.TracebackException runs it for the traceback's
 * last line and keeps what it gave (_str, in every Python from 3.8), which is
 * the message. (format_exception after a str() of our own ran it twice: a
 * slow or looping __str__ cost twice, and a call's deadline, which stops
 * Python code once, could stop the first run and not the second.) type,
 * value, tb: borrowed (value and tb may be NULL). GIL held. Fills owned
 * strings or NULL; never leaves an exception set. */
static void dup_message_and_traceback(PyObject *type, PyObject *value, PyObject *tb,
                                      pim_error *err) {
    PyObject *module = PyImport_ImportModule("traceback");
    PyObject *te = NULL, *lines = NULL, *text = NULL;
    int again = 1; /* whether str(value) may still be asked for */
    if (module != NULL) {
        te = PyObject_CallMethod(module, "TracebackException", "OOO", type,
                                 value != NULL ? value : Py_None, tb != NULL ? tb : Py_None);
    }
    if (te != NULL) {
        text = PyObject_GetAttrString(te, "_str");
        if (text == NULL) {
            PyErr_Clear(); /* a Python without _str: ask str() below */
        }
        again = text == NULL;
        /* A generator: the lines are made as dup_joined reads them, and on
         * failure it is NULL with an exception set, which dup_joined leaves. */
        lines = PyObject_CallMethod(te, "format", NULL);
    } else if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
        /* A BaseException out of __str__ (a deadline, KeyboardInterrupt):
         * running __str__ again would run what it stopped. */
        again = 0;
    }
    err->traceback = dup_joined("", lines);
    PyErr_Clear();
    if (value == NULL) {
        err->message = dup_cstr("");
    } else if (text != NULL && PyUnicode_Check(text)) {
        err->message = pim_dup_str(text);
    } else if (again) {
        err->message = pim_dup_str(value);
    }
    Py_XDECREF(text);
    Py_XDECREF(lines);
    Py_XDECREF(te);
    Py_XDECREF(module);
    PyErr_Clear();
}

/* The classes of type.__mro__, most derived first, one line per class,
 * "module\tqualname", joined by '\n': the exception's classes named when the
 * error is made, so Rust can match a superclass without Python (a
 * qualname with a tab or newline in it, which only an assignment to
 * __qualname__ makes, reads wrong for that class alone). A class whose names
 * cannot be read is left out. type: borrowed. GIL held. Returns an owned
 * string, or NULL; never leaves an exception set. */
static char *dup_classes(PyObject *type) {
    char *text;
    PyObject *mro = PyObject_GetAttrString(type, "__mro__");
    PyObject *lines = NULL;
    if (mro != NULL && PyTuple_Check(mro)) {
        lines = PyList_New(0);
    }
    for (Py_ssize_t i = 0; lines != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *cls = PyTuple_GET_ITEM(mro, i); /* borrowed from mro */
        PyObject *module = PyObject_GetAttrString(cls, "__module__");
        PyObject *qualname = PyObject_GetAttrString(cls, "__qualname__");
        PyObject *line = NULL;
        if (module != NULL && qualname != NULL && PyUnicode_Check(module) &&
            PyUnicode_Check(qualname)) {
            line = PyUnicode_FromFormat("%U\t%U", module, qualname);
        }
        if (line != NULL && PyList_Append(lines, line) != 0) {
            Py_CLEAR(lines); /* out of memory: give up on the classes */
        }
        Py_XDECREF(line);
        Py_XDECREF(qualname);
        Py_XDECREF(module);
        PyErr_Clear();
    }
    text = dup_joined("\n", lines);
    Py_XDECREF(lines);
    Py_XDECREF(mro);
    PyErr_Clear();
    return text;
}

char *pim_type_classes(PyObject *obj) { return dup_classes((PyObject *)Py_TYPE(obj)); }

void pim_last_error(pim_error *err) {
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    memset(err, 0, sizeof *err);
#if PY_VERSION_HEX >= 0x030C0000
    value = PyErr_GetRaisedException();
    if (value != NULL) {
        type = (PyObject *)Py_TYPE(value);
        Py_INCREF(type);
        tb = PyException_GetTraceback(value);
    }
#else
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
#endif
    if (type == NULL) {
        err->type_name = dup_cstr("SystemError");
        err->message = dup_cstr("a call failed without setting a Python exception");
        return;
    }
    err->type_name = dup_type_name(type);
    err->classes = dup_classes(type);
    dup_message_and_traceback(type, value, tb, err);
    /* Releasing the exception releases its traceback, and with it the frames
     * that still refer to the call's arguments. */
    Py_XDECREF(tb);
    Py_XDECREF(value);
    Py_DECREF(type);
    PyErr_Clear();
}

void pim_error_free(pim_error *err) {
    free(err->type_name);
    free(err->message);
    free(err->traceback);
    free(err->classes);
    err->type_name = NULL;
    err->message = NULL;
    err->traceback = NULL;
    err->classes = NULL;
}

/* Fill err from a failed PyStatus (start-up errors are not exceptions).
 * err: out, filled with owned strings; status: by value, its strings static. */
void pim_status_error(pim_error *err, PyStatus status) {
    char text[512];
    if (PyStatus_IsExit(status)) {
        snprintf(text, sizeof text, "Python start-up asked to exit with code %d",
                 status.exitcode);
    } else {
        snprintf(text, sizeof text, "%s%s%s", status.func ? status.func : "",
                 status.func ? ": " : "",
                 status.err_msg ? status.err_msg : "unknown error");
    }
    err->type_name = NULL;
    err->message = dup_cstr(text);
    err->traceback = NULL;
    err->classes = NULL;
}
