//! Raw declarations of the C glue in `csrc/glue.h`, one for one and under
//! the same names (as a `-sys` crate's bindings are).
//!
//! Nothing here checks anything: ownership and the GIL rules are those
//! written on each function in `glue.h`. The thin wrappers in
//! [`crate::runtime::glue`], [`crate::array::borrow`] and
//! [`crate::array::owned`] are the only callers. The test at the bottom
//! holds every type here to the C compiler's layout of glue.h.
#![allow(non_camel_case_types)]

use std::ffi::c_void;

use libc::{c_char, c_int, c_ulong, size_t};
use pyo3_ffi::{PyObject, PyThreadState, Py_ssize_t};

/// `pim_status`: success or failure of a call that reports nothing else.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // the values are made by the C side
pub enum pim_status {
    PIM_OK = 0,
    PIM_ERR = -1,
}

/// `pim_borrow_verdict`: what `pim_borrow_release` found.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // the values are made by the C side
pub enum pim_borrow_verdict {
    /// Nothing in Python points into the lent memory.
    PIM_BORROW_FREE = 0,
    /// The kept array was moved onto a private copy.
    PIM_BORROW_MOVED = 1,
    /// Something still points into the lent memory.
    PIM_BORROW_PINNED = 2,
}

/// `pim_result_kind`: what `pim_describe_result` found.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // the values are made by the C side
pub enum pim_result_kind {
    PIM_ARRAY = 0,
    PIM_OTHER = -2,
    PIM_SCALAR = 1,
    PIM_NONE = 2,
    PIM_STR = 3,
    PIM_TUPLE = 4,
    PIM_LIST = 5,
    PIM_DICT = 6,
    PIM_BIG_INT = 7,
    PIM_ARRAY_SUBCLASS = 8,
}

/// `pim_error`: an exception as owned C strings; free with [`pim_error_free`].
#[repr(C)]
pub struct pim_error {
    pub type_name: *mut c_char,
    pub message: *mut c_char,
    pub traceback: *mut c_char,
    pub classes: *mut c_char,
}

impl Default for pim_error {
    fn default() -> Self {
        pim_error {
            type_name: std::ptr::null_mut(),
            message: std::ptr::null_mut(),
            traceback: std::ptr::null_mut(),
            classes: std::ptr::null_mut(),
        }
    }
}

/// `pim_array_view`: a result described for reading (an array in place, a
/// number copied into `scalar`).
#[repr(C)]
pub struct pim_array_view {
    pub obj: *mut PyObject,
    pub data: *const c_char,
    pub ndim: c_int,
    pub shape: *const Py_ssize_t,
    pub strides: *const Py_ssize_t,
    pub itemsize: c_int,
    pub kind: c_char,
    pub byteswapped: c_int,
    pub sole_owner: c_int,
    /// The C union of 16 bytes, aligned as a double.
    pub scalar: [u64; 2],
}

impl Default for pim_array_view {
    fn default() -> Self {
        pim_array_view {
            obj: std::ptr::null_mut(),
            data: std::ptr::null(),
            ndim: 0,
            shape: std::ptr::null(),
            strides: std::ptr::null(),
            itemsize: 0,
            kind: 0,
            byteswapped: 0,
            sole_owner: 0,
            scalar: [0; 2],
        }
    }
}

/// `pim_release_fn`.
pub type pim_release_fn = unsafe extern "C" fn(owner: *mut c_void);

extern "C" {
    pub fn pim_last_error(err: *mut pim_error);
    pub fn pim_error_free(err: *mut pim_error);
    pub fn pim_type_classes(obj: *mut PyObject) -> *mut c_char;

    pub fn pim_start_python(
        program: *const c_char,
        module_dir: *const c_char,
        err: *mut pim_error,
    ) -> pim_status;
    pub fn pim_switch_interval() -> f64;
    pub fn pim_prepare(module_dir: *const c_char) -> pim_status;
    pub fn pim_running_python() -> *mut c_char;
    pub fn pim_flush_stdio();
    pub fn pim_register_at_exit(hook: extern "C" fn()) -> pim_status;
    pub fn pim_is_finalizing() -> c_int;
    pub fn pim_register_at_exit_aside(
        hook: extern "C" fn(),
        done: extern "C" fn(pim_status),
    ) -> pim_status;
    pub fn pim_thread_state_delete(tstate: *mut PyThreadState);
    pub fn pim_current_thread_state() -> *mut PyThreadState;
    pub fn pim_add_sys_path(dir: *const c_char) -> pim_status;
    pub fn pim_load_func(
        module: *const c_char,
        func: *const c_char,
        importing: *mut c_int,
    ) -> *mut PyObject;
    pub fn pim_load_source(
        module: *const c_char,
        source: *const c_char,
        func: *const c_char,
        importing: *mut c_int,
    ) -> *mut PyObject;
    pub fn pim_decref(obj: *mut PyObject);
    pub fn pim_hold(obj: *mut PyObject);
    pub fn pim_unhold(obj: *mut PyObject);
    #[cfg(test)]
    pub fn pim_hold_count(obj: *mut PyObject) -> Py_ssize_t;

    pub fn pim_npy_typenum(kind: c_char, itemsize: c_int) -> c_int;
    pub fn pim_borrow_array(
        data: *const c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        strides: *const Py_ssize_t,
        typenum: c_int,
    ) -> *mut PyObject;
    pub fn pim_borrow_release(arr: *mut PyObject) -> pim_borrow_verdict;
    pub fn pim_borrow_pinned_why() -> *const c_char;
    pub fn pim_borrow_is_kept(arr: *mut PyObject) -> c_int;
    pub fn pim_borrow_is_as_lent(
        arr: *mut PyObject,
        data: *const c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        strides: *const Py_ssize_t,
        typenum: c_int,
    ) -> c_int;
    pub fn pim_borrow_array_untracked(
        data: *const c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        strides: *const Py_ssize_t,
        typenum: c_int,
    ) -> *mut PyObject;
    pub fn pim_release_untracked(arr: *mut PyObject);
    pub fn pim_own_array(
        data: *mut c_void,
        ndim: c_int,
        dims: *const Py_ssize_t,
        typenum: c_int,
        writeable: c_int,
        owner: *mut c_void,
        release: pim_release_fn,
    ) -> *mut PyObject;

    pub fn pim_call_function(
        func: *mut PyObject,
        args: *const *mut PyObject,
        nargs: size_t,
        kwnames: *mut PyObject,
    ) -> *mut PyObject;
    pub fn pim_call_method(
        name: *mut PyObject,
        args: *const *mut PyObject,
        nargs: size_t,
        kwnames: *mut PyObject,
    ) -> *mut PyObject;
    pub fn pim_describe_result(obj: *mut PyObject, out: *mut pim_array_view) -> pim_result_kind;
    pub fn pim_array_row(obj: *mut PyObject, index: Py_ssize_t) -> *mut PyObject;
    pub fn pim_describe_what(obj: *mut PyObject, what: *mut c_char, size: size_t);
    pub fn pim_call_one(func: *mut PyObject, arg: *mut PyObject) -> *mut PyObject;
    pub fn pim_array_copy(arr: *mut PyObject) -> *mut PyObject;

    pub fn pim_thread_ident() -> c_ulong;
    pub fn pim_raise_deadline(thread: c_ulong, target: *mut PyThreadState) -> c_int;
    pub fn pim_clear_deadline(thread: c_ulong, target: *mut PyThreadState) -> c_int;

    #[cfg(test)]
    pub fn pim_layout(name: *const c_char) -> size_t;
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::mem::{offset_of, size_of};

    use super::*;

    /// What the C compiler says of `name` (a type, `type.field`, or an
    /// enumerator).
    fn raw_layout(name: &str) -> usize {
        let name = CString::new(name).unwrap();
        // SAFETY: pim_layout only reads the NUL-terminated name.
        unsafe { pim_layout(name.as_ptr()) }
    }

    /// The size or offset of `name`, which pim_layout must know.
    fn c_layout(name: &str) -> usize {
        let value = raw_layout(name);
        assert_ne!(value, usize::MAX, "pim_layout does not know {name:?}");
        value
    }

    /// The value of the enumerator `name`, as C gives it.
    fn pim_layout_value(name: &str) -> isize {
        raw_layout(name) as isize
    }

    /// An enum's size and each of its values, as in glue.h.
    macro_rules! same_enum {
        ($t:ident: $($variant:ident),*) => {{
            assert_eq!(size_of::<$t>(), c_layout(stringify!($t)), "size of {}", stringify!($t));
            $(assert_eq!(
                $t::$variant as isize,
                pim_layout_value(stringify!($variant)),
                "value of {}", stringify!($variant),
            );)*
        }};
    }

    /// Each type's size, and each field's offset, as in glue.h.
    macro_rules! same_layout {
        ($t:ident $(, $field:ident)*) => {{
            assert_eq!(size_of::<$t>(), c_layout(stringify!($t)), "size of {}", stringify!($t));
            $(assert_eq!(
                offset_of!($t, $field),
                c_layout(concat!(stringify!($t), ".", stringify!($field))),
                "offset of {}.{}", stringify!($t), stringify!($field),
            );)*
        }};
    }

    #[test]
    fn every_type_is_laid_out_as_in_glue_h() {
        same_enum!(pim_status: PIM_OK, PIM_ERR);
        same_enum!(pim_borrow_verdict: PIM_BORROW_FREE, PIM_BORROW_MOVED, PIM_BORROW_PINNED);
        same_enum!(
            pim_result_kind: PIM_ARRAY,
            PIM_OTHER,
            PIM_SCALAR,
            PIM_NONE,
            PIM_STR,
            PIM_TUPLE,
            PIM_LIST,
            PIM_DICT,
            PIM_BIG_INT,
            PIM_ARRAY_SUBCLASS
        );
        same_layout!(pim_error, type_name, message, traceback, classes);
        same_layout!(
            pim_array_view,
            obj,
            data,
            ndim,
            shape,
            strides,
            itemsize,
            kind,
            byteswapped,
            sole_owner,
            scalar
        );
    }

    #[test]
    fn an_unknown_name_is_reported_as_such() {
        assert_eq!(raw_layout("pim_error.nope"), usize::MAX);
    }
}
