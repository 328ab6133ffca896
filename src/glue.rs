//! Thin unsafe-inside, typed-outside wrappers over the C glue in [`crate::raw`].
//!
//! Each wrapper turns C conventions (NULL, status codes, malloc'ed strings)
//! into Rust ones (`Result`, owned `String`s, RAII) and nothing more. The GIL
//! is a value here: functions that need it take `&Gil`.

use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use pyo3_ffi::{
    PyEval_RestoreThread, PyEval_SaveThread, PyGILState_Ensure, PyGILState_GetThisThreadState,
    PyGILState_Release, PyGILState_STATE, PyObject,
};

use crate::error::PyException;
use crate::raw;

/// Proof that Python runs in this process. Only [`crate::runtime`] makes one,
/// after `pim_init_python` succeeded; Python is never finalized after that.
#[derive(Clone, Copy)]
pub(crate) struct Interpreter {
    _private: (),
}

impl Interpreter {
    /// # Safety
    /// Python must have been initialized in this process.
    pub(crate) unsafe fn assume_started() -> Interpreter {
        Interpreter { _private: () }
    }

    /// Takes the GIL on this thread, whichever thread it is.
    pub(crate) fn gil(self) -> Gil {
        // Keep this thread's Python thread state from its first call on (a
        // no-op after that; during the thread's exit, calls go on without).
        let _ = KEPT_THREAD_STATE.try_with(|_| ());
        // SAFETY: `self` proves Python is initialized and never finalized;
        // PyGILState_Ensure may be called from any thread and nests.
        let state = unsafe { PyGILState_Ensure() };
        Gil {
            state,
            _not_send: PhantomData,
        }
    }
}

/// A Python thread state kept for this thread until it exits.
///
/// PyGILState_Ensure on a thread Python has never seen makes a thread state,
/// and the matching Release destroys it: about 10 µs a call (with its frame
/// stack chunk mapped and unmapped again). One outer Ensure held for the
/// thread's life makes every later Ensure/Release a plain GIL take and give.
struct KeptThreadState(PyGILState_STATE);

thread_local! {
    static KEPT_THREAD_STATE: Option<KeptThreadState> = {
        // SAFETY: only reached from Interpreter::gil, so Python is initialized.
        let state = unsafe { PyGILState_Ensure() };
        if matches!(state, PyGILState_STATE::PyGILState_UNLOCKED) {
            // SAFETY: we took the GIL just now; give it back, keeping the
            // thread state (and its Ensure count) for this thread.
            unsafe { PyEval_SaveThread() };
            Some(KeptThreadState(state))
        } else {
            // The thread already held the GIL (a host such as PyO3 keeps its
            // own thread state): there is nothing to keep.
            // SAFETY: releases the Ensure above, on this thread.
            unsafe { PyGILState_Release(state) };
            None
        }
    };
}

impl Drop for KeptThreadState {
    fn drop(&mut self) {
        // SAFETY: this thread's state was saved (GIL released) in the
        // initializer and no Gil guard is alive (they cannot outlive a call);
        // restoring it takes the GIL again, and the matching Release drops
        // the Ensure count, destroying a thread state Ensure created.
        unsafe {
            PyEval_RestoreThread(PyGILState_GetThisThreadState());
            PyGILState_Release(self.0);
        }
    }
}

/// The GIL, held by this thread until the guard drops. Not `Send`: it must be
/// released on the thread that took it.
pub struct Gil {
    state: PyGILState_STATE,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Gil {
    fn drop(&mut self) {
        // SAFETY: `state` came from PyGILState_Ensure on this thread (Gil is
        // not Send), and guards drop in reverse order of creation.
        unsafe { PyGILState_Release(self.state) }
    }
}

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
    fn drop(&mut self) {
        // SAFETY: a StrongRef exists only once Python is initialized.
        let gil = unsafe { Interpreter::assume_started() }.gil();
        // SAFETY: we own this reference and hold the GIL.
        unsafe { raw::pim_decref(self.ptr.as_ptr()) };
        drop(gil);
    }
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
        PyException {
            type_name: owned_c_string(raw_err.type_name).unwrap_or_default(),
            message: owned_c_string(raw_err.message).unwrap_or_default(),
            traceback: owned_c_string(raw_err.traceback),
        }
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

/// Starts Python without signal handlers, with `program`'s prefix and
/// site-packages and `module_dir` last on `sys.path`; imports numpy's C API.
///
/// # Safety
/// Call once per process, without the GIL (it is released on return).
pub(crate) unsafe fn init_python(
    program: &CStr,
    module_dir: &CStr,
) -> Result<Interpreter, PyException> {
    let mut raw_err = raw::pim_error::default();
    // SAFETY: both strings are valid for the call; the caller guarantees the
    // once-per-process, no-GIL contract.
    let status =
        unsafe { raw::pim_init_python(program.as_ptr(), module_dir.as_ptr(), &mut raw_err) };
    if status == raw::pim_status::PIM_OK {
        // SAFETY: pim_init_python returned PIM_OK, so Python is initialized.
        Ok(unsafe { Interpreter::assume_started() })
    } else {
        Err(take_error(raw_err))
    }
}

/// Puts `dir` first on `sys.path` unless it is already there.
pub(crate) fn add_sys_path(gil: &Gil, dir: &CStr) -> Result<(), PyException> {
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

/// `func(*args[..nargs], **dict(zip(kwnames, args[nargs..])))`.
///
/// # Safety
/// Every pointer in `args` is a live object; `kwnames` is NULL or a tuple of
/// `args.len() - nargs` strings.
pub(crate) unsafe fn call(
    gil: &Gil,
    func: &StrongRef,
    args: &[*mut PyObject],
    nargs: usize,
    kwnames: *mut PyObject,
) -> Result<StrongRef, PyException> {
    // SAFETY: the GIL is held, the objects are live (caller), and
    // pim_call_function borrows them for the call only.
    unsafe {
        let result = raw::pim_call_function(func.as_ptr(), args.as_ptr(), nargs, kwnames);
        owned_or_error(gil, result)
    }
}

/// The article's call: `func(arg)`, with one argument.
///
/// # Safety
/// `arg` is a live object.
pub(crate) unsafe fn detect(
    gil: &Gil,
    func: &StrongRef,
    arg: *mut PyObject,
) -> Result<StrongRef, PyException> {
    let mut out = raw::pim_array_view::default();
    // SAFETY: the GIL is held; func and arg are live; on success pim_detect
    // returns with out.obj a new reference we own; on PIM_RAISED it is NULL.
    unsafe {
        raw::pim_detect(func.as_ptr(), arg, &mut out);
        owned_or_error(gil, out.obj)
    }
}

/// numpy's type number for elements of `kind` and `itemsize`, if any.
pub(crate) fn npy_typenum(kind: u8, itemsize: usize) -> Option<libc::c_int> {
    // SAFETY: a pure lookup of numpy's constants; no Python state involved.
    let typenum = unsafe { raw::pim_npy_typenum(kind as c_char, itemsize as libc::c_int) };
    (typenum >= 0).then_some(typenum)
}
