//! Raw declarations of the C glue in `csrc/glue.h`, one for one.
//!
//! Nothing here checks anything: ownership and the GIL rules are those written
//! on each function in `glue.h`. The thin wrappers in [`crate::glue`],
//! [`crate::borrow`] and [`crate::owned`] are the only callers.

use std::ffi::c_void;

use libc::{c_char, c_int, size_t};
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

/// `array_view`: a numpy array described for reading in place.
#[repr(C)]
pub struct ArrayViewRaw {
    pub obj: *mut PyObject,
    pub data: *const c_char,
    pub ndim: c_int,
    pub shape: [Py_ssize_t; 2],
    pub strides: [Py_ssize_t; 2],
    pub itemsize: c_int,
    pub kind: c_char,
    pub byteswapped: c_int,
    pub sole_owner: c_int,
}

impl Default for ArrayViewRaw {
    fn default() -> Self {
        ArrayViewRaw {
            obj: std::ptr::null_mut(),
            data: std::ptr::null(),
            ndim: 0,
            shape: [0; 2],
            strides: [0; 2],
            itemsize: 0,
            kind: 0,
            byteswapped: 0,
            sole_owner: 0,
        }
    }
}

/// `describe_array` / `detect`: the object is a numpy array.
pub const ARRAY_OK: c_int = 0;
// -2: the object is not a numpy array.

/// `borrow_release`: nothing in Python points into the lent memory.
pub const BORROW_FREE: c_int = 0;
/// `borrow_release`: the kept array was moved onto a private copy.
pub const BORROW_MOVED: c_int = 1;
// BORROW_PINNED (2): anything else the glue returns means pinned.

/// `owner_release_fn`.
pub type OwnerReleaseFn = unsafe extern "C" fn(owner: *mut c_void);

extern "C" {
    pub fn py_last_error(err: *mut PyErrorRaw);
    pub fn py_error_free(err: *mut PyErrorRaw);

    pub fn init_python(
        program: *const c_char,
        module_dir: *const c_char,
        err: *mut PyErrorRaw,
    ) -> c_int;
    pub fn add_sys_path(dir: *const c_char) -> c_int;
    pub fn load_func(
        module: *const c_char,
        func: *const c_char,
        importing: *mut c_int,
    ) -> *mut PyObject;
    pub fn load_source(
        module: *const c_char,
        source: *const c_char,
        func: *const c_char,
        importing: *mut c_int,
    ) -> *mut PyObject;
    pub fn py_decref(obj: *mut PyObject);

    pub fn npy_typenum(kind: c_char, itemsize: c_int) -> c_int;
    pub fn borrow_array(
        data: *const c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        typenum: c_int,
    ) -> *mut PyObject;
    pub fn borrow_release(arr: *mut PyObject) -> c_int;
    pub fn borrow_array_untracked(
        data: *const c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        typenum: c_int,
    ) -> *mut PyObject;
    pub fn own_array(
        data: *mut c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        typenum: c_int,
        writeable: c_int,
        owner: *mut c_void,
        release: OwnerReleaseFn,
    ) -> *mut PyObject;

    pub fn call_function(
        func: *mut PyObject,
        args: *const *mut PyObject,
        nargs: size_t,
        kwnames: *mut PyObject,
    ) -> *mut PyObject;
    pub fn describe_array(obj: *mut PyObject, out: *mut ArrayViewRaw) -> c_int;
    pub fn describe_what(obj: *mut PyObject, what: *mut c_char, size: size_t);
    pub fn detect(func: *mut PyObject, arr: *mut PyObject, out: *mut ArrayViewRaw) -> c_int;
    pub fn array_copy(arr: *mut PyObject) -> *mut PyObject;
}
