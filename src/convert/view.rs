//! A zero-copy result: a numpy array of any rank read in place, as `&[U]`
//! in C order with its shape (and as an `ndarray` view, with the feature).

use std::fmt;
use std::mem::align_of;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::array::element::Element;
use crate::convert::read::{same_layout, Mismatch};
use crate::object::{Described, Held};
use crate::runtime::PlainRef;

/// A Python function's numpy result, of any rank, read in place (no copy)
/// for as long as the guard lives: it derefs to `&[U]`, the elements in C
/// order, and [`shape`](Self::shape) gives the dimensions. With the
/// `ndarray` feature, `as_array` gives an `ndarray::ArrayViewD`. Returned by
/// [`Function::call_view`](crate::Function::call_view), or by any call
/// asked for a `ResultView<U>` ([`FromResult`](crate::FromResult)).
///
/// The guard holds the only reference to an exact `numpy.ndarray` that owns
/// its data and has no weak references, so no Python code can reach or
/// change the memory while Rust reads it: such an array is reachable only
/// through references, and the garbage collector never tracks it (so
/// `gc.get_objects()` cannot find it). A result that is not so (a view of
/// something else, an array Python still holds, an instance of a subclass
/// such as `numpy.matrix`, which the collector tracks, non-contiguous,
/// misaligned) is first copied once, in numpy, into one that is.
///
/// It may be sent to and dropped on any thread, and its drop never waits
/// for the GIL: on a thread that does not hold it, the array waits to be
/// freed by the next call of any thread (its release runs no Python code,
/// only frees memory), or by the crate's releasing thread 20 ms later if
/// no call comes first. So a drop never blocks an async executor, nor
/// deadlocks with a [`hold_gil`](crate::hold_gil) scope that waits on the
/// dropping thread.
///
/// ```
/// # use py_in_mem::{Function, ResultView};
/// let cumsum = Function::from_source("doc_view", "import numpy as np\ncumsum = np.cumsum\n", "cumsum")?;
/// let sums = cumsum.call_view::<f64>(&[1.0, 2.0, 3.0])?;
/// assert_eq!(&*sums, &[1.0, 3.0, 6.0]);
/// std::thread::spawn(move || drop(sums)).join().unwrap();
///
/// let outer = Function::load("numpy", "outer")?;
/// let table: ResultView<i64> = outer.arg(&[1i64, 2]).arg(&[1i64, 10, 100]).call()?;
/// assert_eq!(table.shape(), &[2, 3]);
/// assert_eq!(&*table, &[1, 10, 100, 2, 20, 200]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub struct ResultView<U: Element> {
    _array: PlainRef,
    data: NonNull<U>,
    len: usize,
    shape: Vec<usize>,
}

// SAFETY: the data belongs to the array behind `_array`, which nothing else
// references (see `ResultView::new`), so no other thread can write it; U is
// Send + Sync; PlainRef releases the array under the GIL, from any thread.
unsafe impl<U: Element> Send for ResultView<U> {}
// SAFETY: as for Send: shared access only reads memory nobody writes.
unsafe impl<U: Element> Sync for ResultView<U> {}

impl<U: Element> ResultView<U> {
    /// What a view is read from.
    pub(crate) fn expected() -> String {
        format!(
            "a numpy array of dtype {} exactly, in native byte order (a view reads it in place; converting copies)",
            U::NUMPY_DTYPE
        )
    }

    /// Takes the result `array` as a view, copying it first (once, in
    /// numpy) unless the crate holds its only reference and it owns its
    /// data, C-contiguous and aligned. The copy also ensures the view never
    /// reads memory lent to the call, when the function returned its input.
    pub(crate) fn new(mut array: Held<'_>) -> Result<Self, Mismatch> {
        for _attempt in 0..2 {
            let (data, len, shape, ready) = {
                let desc = match array.describe() {
                    Described::Array(desc) => desc,
                    _ => return Err(Mismatch::new(Self::expected(), array.what())),
                };
                if !same_layout::<U>(&desc) {
                    return Err(Mismatch::new(Self::expected(), desc.what()));
                }
                let aligned = desc.origin() as usize % align_of::<U>() == 0;
                let ready = desc.sole_owner && desc.is_c_contiguous() && aligned;
                (desc.origin(), desc.len(), desc.shape.to_vec(), ready)
            };
            if !ready {
                array = array
                    .array_copy()
                    .map_err(|e| Mismatch::new(Self::expected(), e.to_string()))?;
                continue;
            }
            if U::KIND == b'b' {
                // SAFETY: `len` bytes at data belong to the array we hold.
                let bytes = unsafe { std::slice::from_raw_parts(data, len) };
                if bytes.iter().any(|b| *b > 1) {
                    return Err(Mismatch::new(
                        Self::expected(),
                        "a numpy bool array holding bytes other than 0 and 1",
                    ));
                }
            }
            let data = if len == 0 {
                NonNull::dangling()
            } else {
                NonNull::new(data as *mut U).expect("numpy data of a non-empty array is not NULL")
            };
            return Ok(ResultView {
                // SAFETY: `ready`: an exact ndarray of numbers that owns its
                // data, with no base, no weak reference and no other holder:
                // its release frees memory and runs no Python code.
                _array: unsafe { PlainRef::from_strong(array.into_strong()) },
                data,
                len,
                shape,
            });
        }
        Err(Mismatch::new(
            Self::expected(),
            "an array numpy would not copy into an owned, aligned one",
        ))
    }

    /// The length of each dimension (empty for a 0-D array).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_view_shape", "import numpy as np\ndef f(x):\n    return np.zeros((2, 3, 4))\n", "f")?;
    /// let view = f.call_view::<f64>(&[0.0])?;
    /// assert_eq!((view.shape(), view.ndim(), view.len()), (&[2, 3, 4][..], 3, 24));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_view_ndim", "import numpy as np\ndef f(x):\n    return np.array(7.0)\n", "f")?;
    /// assert_eq!(f.call_view::<f64>(&[0.0])?.ndim(), 0);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The elements, in C order: the same as deref.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_view_slice", "def f(x):\n    return x + 1\n", "f")?;
    /// assert_eq!(f.call_view::<i32>(&[1i32, 2])?.as_slice(), &[2, 3]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn as_slice(&self) -> &[U] {
        // SAFETY: `len` initialized, aligned, contiguous elements of U at
        // data (checked in new; bool bytes checked to be 0 or 1), owned by
        // the array we hold and written by nobody while we hold it.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<U: Element> Deref for ResultView<U> {
    type Target = [U];
    fn deref(&self) -> &[U] {
        self.as_slice()
    }
}

impl<U: Element> AsRef<[U]> for ResultView<U> {
    fn as_ref(&self) -> &[U] {
        self
    }
}

impl<U: Element> fmt::Debug for ResultView<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultView")
            .field("shape", &self.shape)
            .field("data", &self.as_slice())
            .finish()
    }
}
