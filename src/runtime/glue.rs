//! Thin unsafe-inside, typed-outside wrappers over the C glue in [`crate::raw`].
//!
//! Each wrapper turns C conventions (NULL, status codes, malloc'ed strings)
//! into Rust ones (`Result`, owned `String`s, RAII) and nothing more. The GIL
//! is a value ([`super::gil`]): functions that need it take `&Gil`.

use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;
use std::sync::OnceLock;

use pyo3_ffi::{PyObject, PyThreadState};

use super::gil::{release_later, this_thread_holds_gil, Gil};
use crate::error::PyException;
use crate::raw;

/// One owned strong reference to a Python object.
pub struct StrongRef {
    ptr: NonNull<PyObject>,
}

// SAFETY: the reference is only used, and released, with the GIL held (see
// `Drop`), which serializes all access across threads.
unsafe impl Send for StrongRef {}
// SAFETY: `&StrongRef` only hands out the pointer; using it needs the GIL.
unsafe impl Sync for StrongRef {}

impl StrongRef {
    /// # Safety
    /// `ptr` is a new (owned) reference, or NULL; Python is initialized.
    pub(crate) unsafe fn from_owned(ptr: *mut PyObject) -> Option<StrongRef> {
        NonNull::new(ptr).map(|ptr| StrongRef { ptr })
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ptr.as_ptr()
    }

    /// Gives up ownership, for an API that steals the reference.
    pub(crate) fn into_raw(self) -> *mut PyObject {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for StrongRef {
    /// Released at once on a thread that holds the GIL (nearly every drop:
    /// inside a call or a conversion); on any other, handed to the
    /// releasing thread ([`super::gil::release_later`]), never waited for
    /// here: another thread may hold the GIL for a long time, or for a
    /// held-GIL scope that waits on this very thread. Left as it is in a
    /// forked child or once a host has finalized Python.
    fn drop(&mut self) {
        if this_thread_holds_gil() {
            // SAFETY: we own this reference, and this thread holds the GIL
            // (so Python runs).
            unsafe { raw::pim_decref(self.ptr.as_ptr()) };
        } else {
            release_later(self.ptr);
        }
    }
}

/// Python's `sys.getswitchinterval()` in seconds, as start-up read it (0
/// before).
pub(super) fn switch_interval() -> f64 {
    // SAFETY: reads a double the glue wrote under the GIL at start-up; both
    // callers (in runtime/mod.rs) read it after that start-up handed over, or
    // holding the GIL, so the read does not race the write.
    unsafe { raw::pim_switch_interval() }
}

/// An owned C string from the glue, copied into a `String` (None for NULL).
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for reads.
unsafe fn owned_c_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL, so NUL-terminated and readable, as the caller promised.
    let text = unsafe { CStr::from_ptr(ptr) };
    Some(text.to_string_lossy().into_owned())
}

/// Copies a `py_error` into an owned exception and frees the C strings.
fn take_error(mut raw_err: raw::pim_error) -> PyException {
    // SAFETY: the glue fills each field with NULL or a malloc'ed,
    // NUL-terminated string that stays valid until py_error_free.
    let exception = unsafe {
        PyException::raised(
            owned_c_string(raw_err.type_name).unwrap_or_default(),
            owned_c_string(raw_err.message).unwrap_or_default(),
            owned_c_string(raw_err.traceback),
            owned_c_string(raw_err.classes).as_deref(),
        )
    };
    // SAFETY: the strings were malloc'ed by the glue and are freed once here.
    unsafe { raw::pim_error_free(&mut raw_err) };
    exception
}

/// Fetches and clears the exception the last glue call left set.
pub(crate) fn last_error(_gil: &Gil) -> PyException {
    let mut raw_err = raw::pim_error::default();
    // SAFETY: the GIL is held; pim_last_error fills raw_err with owned strings.
    unsafe { raw::pim_last_error(&mut raw_err) };
    take_error(raw_err)
}

/// Starts Python on this thread (its main thread from now on), without its
/// signal handlers or faulthandler, with `program`'s prefix and
/// site-packages and `module_dir` last on `sys.path`, and prepares it
/// ([`prepare`]). Returns with the GIL released.
///
/// # Safety
/// Call once per process, before Python runs, without the GIL.
pub(super) unsafe fn start_python(program: &CStr, module_dir: &CStr) -> Result<(), PyException> {
    let mut raw_err = raw::pim_error::default();
    // SAFETY: both strings are valid for the call; the caller guarantees the
    // once-per-process, no-GIL contract.
    let status =
        unsafe { raw::pim_start_python(program.as_ptr(), module_dir.as_ptr(), &mut raw_err) };
    match status {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(take_error(raw_err)),
    }
}

/// Imports numpy's C API and puts `module_dir` last on `sys.path`, in a
/// Python that a host program started. Idempotent.
pub(super) fn prepare(gil: &Gil, module_dir: &CStr) -> Result<(), PyException> {
    // SAFETY: the GIL is held; module_dir is a valid C string for the call.
    match unsafe { raw::pim_prepare(module_dir.as_ptr()) } {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(last_error(gil)),
    }
}

/// Registers `hook` with Python's `atexit` (see `pim_register_at_exit`).
pub(super) fn register_at_exit(gil: &Gil, hook: extern "C" fn()) -> Result<(), PyException> {
    // SAFETY: the GIL is held; `hook` is a function, which lives for the
    // process.
    match unsafe { raw::pim_register_at_exit(hook) } {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(last_error(gil)),
    }
}

/// Registers `hook` with Python's `atexit` from a thread of the glue's own,
/// which waits for the GIL and calls `done` once it registered (see
/// `pim_register_at_exit_aside`). False if that thread could not start.
pub(super) fn register_at_exit_aside(
    hook: extern "C" fn(),
    done: extern "C" fn(raw::pim_status),
) -> bool {
    // SAFETY: Python runs (a host started it); `hook` and `done` are
    // functions, which live for the process, and `done` does not unwind.
    // The glue's thread takes the GIL itself, so the caller need not hold
    // it (the caller checks that it does not).
    let started = unsafe { raw::pim_register_at_exit_aside(hook, done) };
    started == raw::pim_status::PIM_OK
}

/// The classes of `type(obj).__mro__`, as an exception's are named
/// ([`crate::error`]'s class lines); None if they cannot be read.
pub(crate) fn type_classes(_gil: &Gil, obj: *mut PyObject) -> Option<String> {
    // SAFETY: the GIL is held and `obj` is live (the caller holds it); the
    // glue returns NULL or a malloc'ed string, copied and freed once here.
    unsafe {
        let classes = raw::pim_type_classes(obj);
        let text = owned_c_string(classes);
        libc::free(classes.cast());
        text
    }
}

/// `<sys.prefix>/bin/pythonX.Y` of the running Python, for messages.
pub(super) fn running_python(_gil: &Gil) -> Option<String> {
    // SAFETY: the GIL is held; the glue returns NULL or a malloc'ed string,
    // which is copied and freed once here.
    unsafe {
        let path = raw::pim_running_python();
        let text = owned_c_string(path);
        libc::free(path.cast());
        text
    }
}

/// Puts `dir` first on `sys.path` unless it is already there.
pub(super) fn add_sys_path(gil: &Gil, dir: &CStr) -> Result<(), PyException> {
    // SAFETY: the GIL is held; dir is a valid C string for the call.
    match unsafe { raw::pim_add_sys_path(dir.as_ptr()) } {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(last_error(gil)),
    }
}

/// Why loading a function failed: the exception, and whether it came from
/// importing the module (rather than from getting the function).
pub(crate) struct LoadError {
    pub(crate) exception: PyException,
    pub(crate) importing: bool,
}

/// Turns a load's result and its `importing` flag into a `Result`.
///
/// # Safety
/// As for [`owned_or_error`].
unsafe fn loaded(gil: &Gil, ptr: *mut PyObject, importing: c_int) -> Result<StrongRef, LoadError> {
    // SAFETY: guaranteed by the caller.
    unsafe { owned_or_error(gil, ptr) }.map_err(|exception| LoadError {
        exception,
        importing: importing != 0,
    })
}

/// `import module; module.func`, checked callable.
pub(crate) fn load_func(gil: &Gil, module: &CStr, func: &CStr) -> Result<StrongRef, LoadError> {
    let mut importing = 0;
    // SAFETY: the GIL is held; the strings are valid for the call; load_func
    // returns a new reference or NULL, and sets `importing`.
    unsafe {
        let func = raw::pim_load_func(module.as_ptr(), func.as_ptr(), &mut importing);
        loaded(gil, func, importing)
    }
}

/// `import module`: the module itself.
pub(crate) fn import(gil: &Gil, module: &CStr) -> Result<StrongRef, LoadError> {
    // SAFETY: the GIL is held; the string is valid for the call;
    // PyImport_ImportModule returns a new reference, or NULL with an
    // exception set (which comes from importing, whatever it is).
    unsafe { loaded(gil, pyo3_ffi::PyImport_ImportModule(module.as_ptr()), 1) }
}

/// Compiles `source` as module `module` and returns `module.func`.
pub(crate) fn load_source(
    gil: &Gil,
    module: &CStr,
    source: &CStr,
    func: &CStr,
) -> Result<StrongRef, LoadError> {
    let mut importing = 0;
    // SAFETY: the GIL is held; the strings are valid for the call;
    // load_source returns a new reference or NULL, and sets `importing`.
    unsafe {
        let func = raw::pim_load_source(
            module.as_ptr(),
            source.as_ptr(),
            func.as_ptr(),
            &mut importing,
        );
        loaded(gil, func, importing)
    }
}

/// Turns a glue call's new reference (or NULL with an exception set) into a
/// `Result`.
///
/// # Safety
/// `ptr` is a new reference or NULL, returned with `gil` held.
pub(crate) unsafe fn owned_or_error(
    gil: &Gil,
    ptr: *mut PyObject,
) -> Result<StrongRef, PyException> {
    // SAFETY: guaranteed by the caller.
    unsafe { StrongRef::from_owned(ptr) }.ok_or_else(|| last_error(gil))
}

/// A glue call failed and left its Python exception set on this thread, to
/// be fetched ([`Raised::fetch`]) while the GIL is held: a call with a
/// deadline looks at its watchdog between the call's end and the fetch,
/// which runs Python code (the exception's `__str__`, the traceback
/// module). Dropped unfetched, it clears the exception.
#[must_use]
pub(crate) struct Raised<'g>(&'g Gil);

impl Raised<'_> {
    /// The exception, fetched and cleared.
    pub(crate) fn fetch(self) -> PyException {
        let exception = last_error(self.0);
        std::mem::forget(self);
        exception
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        // Made only where a glue call returned NULL with an exception set
        // (lazily: a token made for a success would fetch nothing, at the
        // cost of an error's strings, on every call).
        // SAFETY: the GIL is held (self.0); PyErr_Occurred only reads.
        debug_assert!(!unsafe { pyo3_ffi::PyErr_Occurred() }.is_null());
        let _ = last_error(self.0);
    }
}

/// What a call calls: a callable, or a method looked up by name on its
/// receiver as it is called (no bound method made).
#[derive(Clone, Copy)]
pub(crate) enum Callable {
    /// A function, a class, any callable object.
    Object(*mut PyObject),
    /// `receiver.name`, `name` a `str`.
    Method {
        receiver: *mut PyObject,
        name: *mut PyObject,
    },
}

impl Callable {
    /// The object a method is called on, which goes before the arguments.
    pub(crate) fn receiver(self) -> Option<*mut PyObject> {
        match self {
            Callable::Object(_) => None,
            Callable::Method { receiver, .. } => Some(receiver),
        }
    }
}

/// `func(*args[..nargs], **dict(zip(kwnames, args[nargs..])))`; for a
/// method, `args[0]` is its receiver ([`Callable::receiver`]), counted in
/// `nargs`.
///
/// # Safety
/// The callable's objects and every pointer in `args` are live; `kwnames`
/// is NULL or a tuple of `args.len() - nargs` strings.
pub(crate) unsafe fn call<'g>(
    gil: &'g Gil,
    callable: Callable,
    args: &[*mut PyObject],
    nargs: usize,
    kwnames: *mut PyObject,
) -> Result<StrongRef, Raised<'g>> {
    // SAFETY: the GIL is held, the objects are live (caller), and the glue
    // borrows them for the call only; a method's receiver is args[0]. The
    // glue returns a new reference, or NULL with an exception set.
    unsafe {
        let result = match callable {
            Callable::Object(func) => raw::pim_call_function(func, args.as_ptr(), nargs, kwnames),
            Callable::Method { name, receiver } => {
                debug_assert_eq!(args.first(), Some(&receiver));
                raw::pim_call_method(name, args.as_ptr(), nargs, kwnames)
            }
        };
        StrongRef::from_owned(result).ok_or_else(|| Raised(gil))
    }
}

/// The article's call: `func(arg)`, with one argument.
///
/// # Safety
/// The callable's objects and `arg` are live.
pub(crate) unsafe fn call_one(
    gil: &Gil,
    callable: Callable,
    arg: *mut PyObject,
) -> Result<StrongRef, Raised<'_>> {
    // SAFETY: the GIL is held; the objects are live; the glue returns a new
    // reference, or NULL with an exception set.
    unsafe {
        let result = match callable {
            Callable::Object(func) => raw::pim_call_one(func, arg),
            Callable::Method { receiver, name } => {
                raw::pim_call_method(name, [receiver, arg].as_ptr(), 2, std::ptr::null_mut())
            }
        };
        StrongRef::from_owned(result).ok_or_else(|| Raised(gil))
    }
}

/// This thread's Python thread ident, the id a thread state made on it
/// records (what [`raise_deadline`] and [`clear_deadline`] take).
pub(super) fn thread_ident() -> libc::c_ulong {
    // SAFETY: reads the calling thread's id (pthread_self); no Python state.
    unsafe { raw::pim_thread_ident() }
}

/// This thread's current Python thread state, as a number: what
/// [`raise_deadline`] and [`clear_deadline`] compare with. Called holding
/// the GIL, when it is this thread's own state.
pub(super) fn thread_state() -> usize {
    // SAFETY: reads the calling thread's current state pointer; no call
    // into Python.
    unsafe { raw::pim_current_thread_state() as usize }
}

/// Raises `py_in_mem.DeadlineExceeded` asynchronously in thread state
/// `tstate` (of the thread whose ident is `thread`), at its next bytecode
/// check. Ok(false) if not raised: another state carries the ident before
/// it (a thread it is starting, on CPython 3.11 and earlier), to ask again.
pub(super) fn raise_deadline(
    gil: &Gil,
    thread: libc::c_ulong,
    tstate: usize,
) -> Result<bool, PyException> {
    // SAFETY: the GIL is held; `tstate` is the live state of a thread inside
    // an armed call (the caller's), only compared with the list's states.
    match unsafe { raw::pim_raise_deadline(thread, tstate as *mut PyThreadState) } {
        1 => Ok(true),
        0 => Ok(false),
        _ => Err(last_error(gil)),
    }
}

/// Takes back a `DeadlineExceeded` raised in thread state `tstate` (of the
/// thread `thread`) that Python has not raised yet; false if another state
/// carries the ident before it, and nothing was done.
pub(super) fn clear_deadline(_gil: &Gil, thread: libc::c_ulong, tstate: usize) -> bool {
    // SAFETY: the GIL is held; `tstate` as for raise_deadline; never leaves
    // an exception set.
    unsafe { raw::pim_clear_deadline(thread, tstate as *mut PyThreadState) == 1 }
}

/// numpy's type number for elements of `kind` and `itemsize`, if any.
/// Looked up in the glue once per kind and size (every lend needs one).
pub(crate) fn npy_typenum(kind: u8, itemsize: usize) -> Option<libc::c_int> {
    const KINDS: [u8; 5] = [b'b', b'i', b'u', b'f', b'c'];
    const SIZES: usize = 17; // itemsizes 0..=16
    static TABLE: OnceLock<[[libc::c_int; SIZES]; KINDS.len()]> = OnceLock::new();
    let k = KINDS.iter().position(|&known| known == kind)?;
    if itemsize >= SIZES {
        return None;
    }
    let table = TABLE.get_or_init(|| {
        KINDS.map(|kind| {
            std::array::from_fn(|size| {
                // SAFETY: a pure lookup of numpy's constants; no Python
                // state involved.
                unsafe { raw::pim_npy_typenum(kind as c_char, size as libc::c_int) }
            })
        })
    });
    let typenum = table[k][itemsize];
    (typenum >= 0).then_some(typenum)
}
