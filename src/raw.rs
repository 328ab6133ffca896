//! Raw declarations of the C glue in `csrc/glue.h`, one for one.
//!
//! Nothing here checks anything: ownership and the GIL rules are those written
//! on each function in `glue.h`. The thin wrappers in [`crate::glue`] are the
//! only callers.

use libc::{c_char, c_int};
use pyo3_ffi::{PyObject, Py_ssize_t};

/// `py_error`: an exception as owned C strings; free with [`py_error_free`].
#[repr(C)]
pub struct PyErrorRaw {
    pub type_name: *mut c_char,
    pub message: *mut c_char,
    pub traceback: *mut c_char,
}

impl Default for PyErrorRaw {
    fn default() -> Self {
        PyErrorRaw {
            type_name: std::ptr::null_mut(),
            message: std::ptr::null_mut(),
            traceback: std::ptr::null_mut(),
        }
    }
}

/// `detect_result`: what `detect` found in the Python function's result.
#[repr(C)]
pub struct DetectResultRaw {
    pub obj: *mut PyObject,
    pub data: *const c_char,
    pub len: Py_ssize_t,
    pub stride: Py_ssize_t,
    pub itemsize: c_int,
    pub is_signed: c_int,
    pub byteswapped: c_int,
    pub found: [c_char; 160],
}

impl Default for DetectResultRaw {
    fn default() -> Self {
        DetectResultRaw {
            obj: std::ptr::null_mut(),
            data: std::ptr::null(),
            len: 0,
            stride: 0,
            itemsize: 0,
            is_signed: 0,
            byteswapped: 0,
            found: [0; 160],
        }
    }
}

/// `detect` succeeded.
pub const DETECT_OK: c_int = 0;
// DETECT_PY_ERROR (-1): the call raised; any status but these two means so.
/// `detect`: the result is not a 1-D integer array.
pub const DETECT_BAD_RESULT: c_int = -2;

extern "C" {
    pub fn init_python(
        program: *const c_char,
        module_dir: *const c_char,
        err: *mut PyErrorRaw,
    ) -> c_int;
    pub fn add_sys_path(dir: *const c_char) -> c_int;
    pub fn load_func(module: *const c_char, func: *const c_char) -> *mut PyObject;
    pub fn borrow_f64(data: *const f64, len: Py_ssize_t) -> *mut PyObject;
    pub fn borrow_release(arr: *mut PyObject) -> c_int;
    pub fn detect(func: *mut PyObject, arr: *mut PyObject, out: *mut DetectResultRaw) -> c_int;
    pub fn py_last_error(err: *mut PyErrorRaw);
    pub fn py_error_free(err: *mut PyErrorRaw);
    pub fn py_decref(obj: *mut PyObject);
}
