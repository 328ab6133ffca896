//! Owned hand-off: a Rust buffer given to Python, which frees it when the
//! last array or view over it goes, on whatever thread that happens.

use std::ffi::c_void;
use std::sync::Arc;

use libc::c_int;
use pyo3_ffi::Py_ssize_t;

use crate::array::element::Element;
use crate::array::nd::NdVec;
use crate::error::PyException;
use crate::raw;
use crate::runtime::glue::{npy_typenum, owned_or_error};
use crate::runtime::{Gil, StrongRef};

pub(crate) mod sealed {
    use crate::error::PyException;
    use crate::runtime::{Gil, StrongRef};

    /// The part of [`OwnedArray`](super::OwnedArray) only this crate sees.
    pub trait GiveToNumpy {
        /// Gives the buffer to Python as a numpy array. Boxed: the argument
        /// waits in its box for the call, and the box itself becomes the
        /// array's owner where it can ([`super::give`]), one allocation for
        /// both.
        fn into_numpy(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException>;
    }
}

/// A buffer that Python can own, given without a copy: `Vec<T>` (handed
/// over writable), `Arc<[T]>` (shared read-only, since Rust may still read
/// it), [`NdVec<T>`] (n-D, writable), `ndarray::Array<T, D>` (feature
/// `ndarray`; n-D, writable) and, with the `bytes` feature,
/// [`BytesArray`](crate::BytesArray) (read-only). Python may keep it, or
/// views of it, as long as it likes; the Rust allocation is freed when the
/// last Python reference to it goes, on whatever thread that happens.
///
/// Give one with [`Call::arg_owned`](crate::Call::arg_owned) (any
/// position, among other arguments), [`Call::kwarg_owned`](crate::Call::kwarg_owned),
/// or [`Function::call_owned`](crate::Function::call_owned) (the only
/// argument).
///
/// ```
/// use std::sync::Arc;
/// use py_in_mem::{Function, NdVec};
/// let total = Function::from_source("doc_owned_array", "def f(a):\n    return a.sum(keepdims=True)\n", "f")?;
/// assert_eq!(total.call_owned::<_, Vec<i64>>(vec![1i64, 2, 3])?, [6]);
/// let shared: Arc<[i64]> = Arc::from(vec![4i64, 5]);
/// assert_eq!(total.call_owned::<_, Vec<i64>>(Arc::clone(&shared))?, [9]);
///
/// let kept = Function::from_source("doc_owned_nd", "KEPT = []\ndef f(a, scale):\n    KEPT.append(a)\n    return a.shape, float(a.sum()) * scale\n", "f")?;
/// let batch = NdVec::new(vec![1.0; 6], vec![2, 3])?;
/// let (shape, sum): ((usize, usize), f64) = kept.arg_owned(batch).arg(2.0).call()?;
/// assert_eq!((shape, sum), ((2, 3), 12.0));
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub trait OwnedArray: sealed::GiveToNumpy + Send + 'static {
    /// The element type, which sets the numpy dtype.
    type Elem: Element;
}

/// Drops the boxed owner `B` once Python is done with its buffer (on a
/// serving thread during a job, the job's future drops it:
/// [`crate::serve::release`]).
///
/// # Safety
/// `owner` came from `Box::<B>::into_raw` and is released once (own_array's
/// capsule destructor runs once).
unsafe extern "C" fn release_box<B: Send + 'static>(owner: *mut c_void) {
    // SAFETY: guaranteed by the caller.
    crate::serve::release(unsafe { Box::from_raw(owner.cast::<B>()) });
}

/// A shape as numpy's dimensions, copied out of its owner before the owner
/// is handed over: on the stack up to 8 dimensions (a heap copy past that).
pub(crate) enum Dims {
    Inline(usize, [Py_ssize_t; 8]),
    Heap(Vec<Py_ssize_t>),
}

impl Dims {
    /// Every dimension must fit an isize: a Vec's length does, and NdVec,
    /// BytesArray and ndarray check their shapes.
    pub(crate) fn new(shape: &[usize]) -> Dims {
        match shape.len() {
            n @ 0..=8 => {
                let mut dims = [0; 8];
                for (d, &n) in dims.iter_mut().zip(shape) {
                    *d = n as Py_ssize_t;
                }
                Dims::Inline(n, dims)
            }
            _ => Dims::Heap(shape.iter().map(|&n| n as Py_ssize_t).collect()),
        }
    }

    fn as_slice(&self) -> &[Py_ssize_t] {
        match self {
            Dims::Inline(n, dims) => &dims[..*n],
            Dims::Heap(dims) => dims,
        }
    }
}

/// Hands `owner`, which keeps the elements of `T` at `data` alive, to a new
/// C-ordered numpy array of `dims` (whose element count the caller has
/// checked against the buffer).
pub(crate) fn give<T: Element, B: Send + 'static>(
    gil: &Gil,
    owner: Box<B>,
    data: *const T,
    dims: &Dims,
    writeable: bool,
) -> Result<StrongRef, PyException> {
    let typenum = npy_typenum(T::KIND, std::mem::size_of::<T>()).expect("Element has a numpy type");
    let dims = dims.as_slice();
    let owner = Box::into_raw(owner);
    // SAFETY: the GIL is held; `data` stays valid while the box lives (a
    // Vec, Arc or Bytes in a box keeps its heap buffer where it is, however
    // the box moves), and holds the product of `dims` elements; `dims` is
    // the caller's, apart from the box; own_array takes the box and calls
    // release_box::<B> exactly once, also on failure.
    unsafe {
        owned_or_error(
            gil,
            raw::pim_own_array(
                data as *mut c_void,
                dims.len() as c_int,
                dims.as_ptr(),
                typenum,
                c_int::from(writeable),
                owner.cast(),
                release_box::<B>,
            ),
        )
    }
}

/// Gives an [`NdVec`] to Python as a writable n-D array, its box the owner.
pub(crate) fn give_nd<T: Element>(
    gil: &Gil,
    mut array: Box<NdVec<T>>,
) -> Result<StrongRef, PyException> {
    let dims = Dims::new(array.shape());
    let data = array.as_mut_ptr();
    give::<T, NdVec<T>>(gil, array, data, &dims, true)
}

impl<T: Element> OwnedArray for Vec<T> {
    type Elem = T;
}
impl<T: Element> sealed::GiveToNumpy for Vec<T> {
    fn into_numpy(mut self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        let (data, dims) = (self.as_mut_ptr(), Dims::new(&[self.len()]));
        give::<T, Vec<T>>(gil, self, data, &dims, true)
    }
}

impl<T: Element> OwnedArray for Arc<[T]> {
    type Elem = T;
}
impl<T: Element> sealed::GiveToNumpy for Arc<[T]> {
    fn into_numpy(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        let (data, dims) = (self.as_ptr(), Dims::new(&[self.len()]));
        give::<T, Arc<[T]>>(gil, self, data, &dims, false)
    }
}

impl<T: Element> OwnedArray for NdVec<T> {
    type Elem = T;
}
impl<T: Element> sealed::GiveToNumpy for NdVec<T> {
    fn into_numpy(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        give_nd(gil, self)
    }
}
