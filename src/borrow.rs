//! A Rust slice lent to Python as a read-only numpy array, for one call.
//!
//! This is the Rust form of the article's `runtime.KeepAlive(data)`: the
//! lifetime `'a` ties the array to the slice's borrow, so the slice cannot be
//! freed or changed while the array exists. What the lifetime cannot see is
//! Python keeping the array (or a view of it) after the call; `release`
//! counts the references and stops the process before Rust could free memory
//! that Python still points at.

use std::marker::PhantomData;
use std::ptr::NonNull;

use pyo3_ffi::{PyObject, Py_ssize_t};

use crate::error::PyException;
use crate::glue::{last_error, Gil, Python};
use crate::raw;

/// A read-only numpy array over `&'a [f64]`, owned by the crate.
pub(crate) struct BorrowedArray<'a> {
    arr: NonNull<PyObject>,
    /// Who the array was lent to, for the retention message.
    lent_to: &'a str,
    _slice: PhantomData<&'a [f64]>,
}

impl<'a> BorrowedArray<'a> {
    /// Lends `data` to Python, without a copy, until the value is dropped.
    pub(crate) fn new(gil: &Gil, data: &'a [f64], lent_to: &'a str) -> Result<Self, PyException> {
        // Rust allocations never exceed isize::MAX bytes, so this holds.
        let len = data.len() as Py_ssize_t;
        // SAFETY: the GIL is held; data is valid for `'a`, which outlives the
        // array because BorrowedArray<'a> releases it on drop.
        let arr = unsafe { raw::borrow_f64(data.as_ptr(), len) };
        match NonNull::new(arr) {
            Some(arr) => Ok(BorrowedArray {
                arr,
                lent_to,
                _slice: PhantomData,
            }),
            None => Err(last_error(gil)),
        }
    }

    /// The array, for passing to a call.
    pub(crate) fn as_ptr(&self) -> NonNull<PyObject> {
        self.arr
    }
}

impl Drop for BorrowedArray<'_> {
    fn drop(&mut self) {
        // SAFETY: a BorrowedArray exists only once Python is initialized.
        let gil = unsafe { Python::assume_started() }.gil();
        // SAFETY: the GIL is held and we give up our own reference here.
        let retained = unsafe { raw::borrow_release(self.arr.as_ptr()) } != 0;
        drop(gil);
        if retained {
            retention_abort(self.lent_to);
        }
    }
}

/// Python kept a pointer into memory Rust is about to reuse. Going on would
/// let Python read freed memory; stopping the process is the safe choice.
#[cold]
fn retention_abort(lent_to: &str) -> ! {
    eprintln!(
        "py-in-mem: fatal: the Python function {lent_to} kept a reference to its \
         borrowed input array (or a view or buffer of it) after returning. The array \
         points into Rust memory that is valid only during the call, so the process \
         is aborted rather than let Python read freed memory. A function must not \
         store its argument; store data.copy() instead."
    );
    std::process::abort();
}
