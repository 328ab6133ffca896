//! Thin unsafe-inside, typed-outside wrappers over the C glue in [`crate::raw`].
//!
//! Each wrapper turns C conventions (NULL, status codes, malloc'ed strings)
//! into Rust ones (`Result`, owned `String`s, RAII) and nothing more. The GIL
//! is a value here: functions that need it take `&Gil`.

use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use pyo3_ffi::{PyGILState_Ensure, PyGILState_Release, PyGILState_STATE, PyObject};

use crate::error::PyException;
use crate::raw;

/// Proof that Python runs in this process. Only [`crate::runtime`] makes one,
/// after `init_python` succeeded; Python is never finalized after that.
#[derive(Clone, Copy)]
pub(crate) struct Python {
    _private: (),
}

impl Python {
    /// # Safety
    /// Python must have been initialized in this process.
    pub(crate) unsafe fn assume_started() -> Python {
        Python { _private: () }
    }

    /// Takes the GIL on this thread, whichever thread it is.
    pub(crate) fn gil(self) -> Gil {
        // SAFETY: `self` proves Python is initialized and never finalized;
        // PyGILState_Ensure may be called from any thread and nests.
        let state = unsafe { PyGILState_Ensure() };
        Gil {
            state,
            _not_send: PhantomData,
        }
    }
}

/// The GIL, held by this thread until the guard drops. Not `Send`: it must be
/// released on the thread that took it.
pub(crate) struct Gil {
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
pub(crate) struct PyRef {
    ptr: NonNull<PyObject>,
}

// SAFETY: the reference is only used, and released, with the GIL held (see
// `Drop`), which serializes all access across threads.
unsafe impl Send for PyRef {}
// SAFETY: `&PyRef` only hands out the pointer; using it needs the GIL.
unsafe impl Sync for PyRef {}

impl PyRef {
    /// # Safety
    /// `ptr` is a new (owned) reference, or NULL; Python is initialized.
    pub(crate) unsafe fn from_owned(ptr: *mut PyObject) -> Option<PyRef> {
        NonNull::new(ptr).map(|ptr| PyRef { ptr })
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ptr.as_ptr()
    }
}

impl Drop for PyRef {
    fn drop(&mut self) {
        // SAFETY: a PyRef exists only once Python is initialized.
        let gil = unsafe { Python::assume_started() }.gil();
        // SAFETY: we own this reference and hold the GIL.
        unsafe { raw::py_decref(self.ptr.as_ptr()) };
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
fn take_error(mut raw_err: raw::PyErrorRaw) -> PyException {
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
    unsafe { raw::py_error_free(&mut raw_err) };
    exception
}

/// Fetches and clears the exception the last glue call left set.
pub(crate) fn last_error(_gil: &Gil) -> PyException {
    let mut raw_err = raw::PyErrorRaw::default();
    // SAFETY: the GIL is held; py_last_error fills raw_err with owned strings.
    unsafe { raw::py_last_error(&mut raw_err) };
    take_error(raw_err)
}

/// Starts Python without signal handlers, with `program`'s prefix and
/// site-packages and `module_dir` last on `sys.path`; imports numpy's C API.
///
/// # Safety
/// Call once per process, without the GIL (it is released on return).
pub(crate) unsafe fn init_python(program: &CStr, module_dir: &CStr) -> Result<Python, PyException> {
    let mut raw_err = raw::PyErrorRaw::default();
    // SAFETY: both strings are valid for the call; the caller guarantees the
    // once-per-process, no-GIL contract.
    let status = unsafe { raw::init_python(program.as_ptr(), module_dir.as_ptr(), &mut raw_err) };
    if status == 0 {
        // SAFETY: init_python returned 0, so Python is initialized.
        Ok(unsafe { Python::assume_started() })
    } else {
        Err(take_error(raw_err))
    }
}

/// Puts `dir` first on `sys.path` unless it is already there.
pub(crate) fn add_sys_path(gil: &Gil, dir: &CStr) -> Result<(), PyException> {
    // SAFETY: the GIL is held; dir is a valid C string for the call.
    match unsafe { raw::add_sys_path(dir.as_ptr()) } {
        0 => Ok(()),
        _ => Err(last_error(gil)),
    }
}

/// `import module; module.func`, checked callable.
pub(crate) fn load_func(gil: &Gil, module: &CStr, func: &CStr) -> Result<PyRef, PyException> {
    // SAFETY: the GIL is held; load_func returns a new reference or NULL.
    let func = unsafe { PyRef::from_owned(raw::load_func(module.as_ptr(), func.as_ptr())) };
    func.ok_or_else(|| last_error(gil))
}

/// A Python function's result that passed `detect`'s checks: a 1-D integer
/// numpy array, read in place while `obj` keeps it alive.
pub(crate) struct IntArrayView {
    /// Keeps the array, and so `data`, alive until the view drops.
    _owner: PyRef,
    pub(crate) data: *const u8,
    pub(crate) len: usize,
    pub(crate) stride: isize,
    pub(crate) itemsize: usize,
    pub(crate) is_signed: bool,
    pub(crate) byteswapped: bool,
}

/// How `detect` failed.
pub(crate) enum DetectError {
    /// The function raised.
    Python(PyException),
    /// The function returned this instead of a 1-D integer array.
    BadResult(String),
}

/// Calls `func(arr)` and checks the result is a 1-D integer numpy array.
///
/// # Safety
/// `arr` is a live numpy array (the caller owns a reference to it).
pub(crate) unsafe fn detect(
    gil: &Gil,
    func: &PyRef,
    arr: NonNull<PyObject>,
) -> Result<IntArrayView, DetectError> {
    let mut out = raw::DetectResultRaw::default();
    // SAFETY: the GIL is held, func and arr are live; detect fills `out` and
    // hands us a new reference in out.obj on success and on a bad result.
    let status = unsafe { raw::detect(func.as_ptr(), arr.as_ptr(), &mut out) };
    // SAFETY: out.obj is NULL or a new reference we now own.
    let obj = unsafe { PyRef::from_owned(out.obj) };
    match (status, obj) {
        (raw::DETECT_OK, Some(owner)) => Ok(IntArrayView {
            _owner: owner,
            data: out.data.cast(),
            len: out.len as usize,
            stride: out.stride,
            itemsize: out.itemsize as usize,
            is_signed: out.is_signed != 0,
            byteswapped: out.byteswapped != 0,
        }),
        (raw::DETECT_BAD_RESULT, _) => {
            // SAFETY: `found` is a NUL-terminated buffer written by snprintf.
            let found = unsafe { CStr::from_ptr(out.found.as_ptr()) };
            Err(DetectError::BadResult(found.to_string_lossy().into_owned()))
        }
        // DETECT_PY_ERROR, or a status the glue does not return: either
        // way an exception is set, or py_last_error reports that none was.
        _ => Err(DetectError::Python(last_error(gil))),
    }
}
