//! A zero-copy result: a numpy array read in place as `&[U]`.

use std::fmt;
use std::mem::{align_of, size_of};
use std::ops::Deref;
use std::ptr::NonNull;

use crate::element::Element;
use crate::glue::{array_copy, describe, Gil, StrongRef};

/// A Python function's 1-D numpy result, read in place as a `&[U]` (no copy)
/// for as long as the guard lives. Returned by
/// [`Function::call_view`](crate::Function::call_view).
///
/// The guard holds the only reference to an array that owns its data, so no
/// Python code can reach or change the memory while Rust reads it. It may be
/// sent to and dropped on any thread; dropping it takes the GIL to release
/// the array.
///
/// ```
/// # use py_in_mem::Function;
/// let cumsum = Function::from_source("doc_view", "import numpy as np\ncumsum = np.cumsum\n", "cumsum")?;
/// let sums = cumsum.call_view::<f64, f64>(&[1.0, 2.0, 3.0])?;
/// assert_eq!(&*sums, &[1.0, 3.0, 6.0]);
/// std::thread::spawn(move || drop(sums)).join().unwrap();
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub struct ArrayView<U: Element> {
    _array: StrongRef,
    data: NonNull<U>,
    len: usize,
}

// SAFETY: the data belongs to the array behind `_array`, which nothing else
// references (see `ArrayView::new`), so no other thread can write it; U is
// Send + Sync; StrongRef releases the array under the GIL on any thread.
unsafe impl<U: Element> Send for ArrayView<U> {}
// SAFETY: as for Send: shared access only reads memory nobody writes.
unsafe impl<U: Element> Sync for ArrayView<U> {}

impl<U: Element> ArrayView<U> {
    /// Takes the result `array` as a view, copying it first (once, in numpy)
    /// unless the crate holds its only reference and it owns its data,
    /// contiguous and aligned. The copy also ensures the view never reads
    /// memory lent to the call, when the function returned its input.
    /// On failure, returns `(expected, found)`.
    pub(crate) fn new(gil: &Gil, mut array: StrongRef) -> Result<Self, (String, String)> {
        let expected = || {
            format!(
                "a 1-D numpy array of dtype {} in native byte order (call_view reads it in place; call converts)",
                U::NUMPY_DTYPE
            )
        };
        for _attempt in 0..2 {
            let (data, len, ready) = {
                let desc = describe(gil, &array).map_err(|found| (expected(), found))?;
                let exact = desc.ndim == 1
                    && desc.kind == U::KIND
                    && desc.itemsize == size_of::<U>()
                    && !desc.byteswapped;
                if !exact {
                    return Err((expected(), desc.what()));
                }
                let len = desc.shape[0];
                let contiguous = len <= 1 || desc.strides[0] == size_of::<U>() as isize;
                let aligned = desc.data as usize % align_of::<U>() == 0;
                (desc.data, len, desc.sole_owner && contiguous && aligned)
            };
            if !ready {
                array = array_copy(gil, &array).map_err(|e| (expected(), e.to_string()))?;
                continue;
            }
            if U::KIND == b'b' {
                // SAFETY: `len` bytes at data belong to the array we hold.
                let bytes = unsafe { std::slice::from_raw_parts(data, len) };
                if bytes.iter().any(|b| *b > 1) {
                    return Err((
                        expected(),
                        "a numpy bool array holding bytes other than 0 and 1".into(),
                    ));
                }
            }
            let data = if len == 0 {
                NonNull::dangling()
            } else {
                NonNull::new(data as *mut U).expect("numpy data of a non-empty array is not NULL")
            };
            return Ok(ArrayView {
                _array: array,
                data,
                len,
            });
        }
        Err((
            expected(),
            "an array numpy would not copy into an owned, aligned one".into(),
        ))
    }
}

impl<U: Element> Deref for ArrayView<U> {
    type Target = [U];
    fn deref(&self) -> &[U] {
        // SAFETY: `len` initialized, aligned, contiguous elements of U at
        // data (checked in new; bool bytes checked to be 0 or 1), owned by
        // the array we hold and written by nobody while we hold it.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<U: Element> AsRef<[U]> for ArrayView<U> {
    fn as_ref(&self) -> &[U] {
        self
    }
}

impl<U: Element> fmt::Debug for ArrayView<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayView").field(&&**self).finish()
    }
}
