//! Owned hand-off: a Rust buffer given to Python, which frees it when the
//! last array or view over it goes, on whatever thread that happens.

use std::ffi::c_void;
use std::sync::Arc;

use libc::c_int;
use pyo3_ffi::Py_ssize_t;

use crate::array::element::Element;
use crate::error::PyException;
use crate::raw;
use crate::runtime::glue::{npy_typenum, owned_or_error};
use crate::runtime::{Gil, StrongRef};

pub(super) mod sealed {
    use crate::error::PyException;
    use crate::runtime::{Gil, StrongRef};

    /// The part of [`OwnedArray`](super::OwnedArray) only this crate sees.
    pub trait GiveToNumpy {
        /// Gives the buffer to Python as a 1-D numpy array.
        fn into_numpy(self, gil: &Gil) -> Result<StrongRef, PyException>;
    }
}

/// A buffer that Python can own: `Vec<T>` (handed over writable) or
/// `Arc<[T]>` (shared read-only, since Rust may still read it). See
/// [`Function::call_owned`](crate::Function::call_owned).
///
/// ```
/// use std::sync::Arc;
/// let total = py_in_mem::Function::from_source("doc_owned_array", "def f(a):\n    return a.sum(keepdims=True)\n", "f")?;
/// assert_eq!(total.call_owned::<_, Vec<i64>>(vec![1i64, 2, 3])?, [6]);
/// let shared: Arc<[i64]> = Arc::from(vec![4i64, 5]);
/// assert_eq!(total.call_owned::<_, Vec<i64>>(Arc::clone(&shared))?, [9]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub trait OwnedArray: sealed::GiveToNumpy + Send + 'static {
    /// The element type, which sets the numpy dtype.
    type Elem: Element;
}

/// Drops the boxed owner `B` once Python is done with its buffer.
///
/// # Safety
/// `owner` came from `Box::<B>::into_raw` and is released once (own_array's
/// capsule destructor runs once).
unsafe extern "C" fn release_box<B>(owner: *mut c_void) {
    // SAFETY: guaranteed by the caller.
    drop(unsafe { Box::from_raw(owner.cast::<B>()) });
}

/// Hands `owner`, which keeps `len` elements of `T` alive at `data`, to a new
/// numpy array.
fn give<T: Element, B: Send + 'static>(
    gil: &Gil,
    owner: B,
    data: *const T,
    len: usize,
    writeable: bool,
) -> Result<StrongRef, PyException> {
    let typenum = npy_typenum(T::KIND, std::mem::size_of::<T>()).expect("Element has a numpy type");
    let dims: [Py_ssize_t; 1] = [len as Py_ssize_t];
    let owner = Box::into_raw(Box::new(owner));
    // SAFETY: the GIL is held; `data` stays valid while the box lives (moving
    // a Vec or Arc into a Box does not move its heap buffer); own_array takes
    // the box and calls release_box::<B> exactly once, also on failure.
    unsafe {
        owned_or_error(
            gil,
            raw::pim_own_array(
                data as *mut c_void,
                1,
                dims.as_ptr(),
                typenum,
                c_int::from(writeable),
                owner.cast(),
                release_box::<B>,
            ),
        )
    }
}

impl<T: Element> OwnedArray for Vec<T> {
    type Elem = T;
}
impl<T: Element> sealed::GiveToNumpy for Vec<T> {
    fn into_numpy(mut self, gil: &Gil) -> Result<StrongRef, PyException> {
        let (data, len) = (self.as_mut_ptr(), self.len());
        give::<T, Vec<T>>(gil, self, data, len, true)
    }
}

impl<T: Element> OwnedArray for Arc<[T]> {
    type Elem = T;
}
impl<T: Element> sealed::GiveToNumpy for Arc<[T]> {
    fn into_numpy(self, gil: &Gil) -> Result<StrongRef, PyException> {
        let (data, len) = (self.as_ptr(), self.len());
        give::<T, Arc<[T]>>(gil, self, data, len, false)
    }
}
