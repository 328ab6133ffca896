//! `bytes::Bytes` (feature `bytes`) given to Python as a read-only numpy
//! array: the buffer hyper and axum hand a handler, with no copy when it is
//! aligned for its element type.

use std::marker::PhantomData;
use std::mem::{align_of, size_of};

use bytes::Bytes;

use crate::array::element::Element;
use crate::array::nd::check_dimensions;
use crate::array::owned::{give, sealed::GiveToNumpy, Dims, OwnedArray};
use crate::error::{Error, PyException};
use crate::runtime::{Gil, StrongRef};

/// A [`Bytes`] read as native-endian elements of `T`, given to Python as a
/// read-only numpy array of dtype `T` ([`OwnedArray`]: Python may keep it;
/// the `Bytes` is released when Python lets it go).
///
/// No copy when the bytes start at an address aligned for `T`
/// ([`is_zero_copy`](Self::is_zero_copy)): numpy reads the `Bytes`' own
/// memory. Otherwise (a `Bytes` sliced at an odd offset, say) one copy into
/// an aligned buffer, since numpy and Rust may not read a misaligned
/// element.
///
/// ```
/// use bytes::Bytes;
/// use py_in_mem::{BytesArray, Function};
///
/// // A request body of four little-endian f32s, as axum hands it over.
/// let body = Bytes::from([1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
/// let rows = BytesArray::<f32>::with_shape(body, vec![2, 2])?;
/// let sums: Vec<f32> = Function::load("numpy", "sum")?.arg_owned(rows).kwarg("axis", 1).call()?;
/// assert_eq!(sums, [3.0, 7.0]);
///
/// let odd = BytesArray::<f32>::new(Bytes::from(vec![0u8; 9]).slice(1..))?;
/// assert_eq!(odd.len(), 2);
/// assert!(BytesArray::<f64>::new(Bytes::from(vec![0u8; 12])).is_err()); // not a whole number of f64s
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BytesArray<T: Element> {
    bytes: Bytes,
    shape: Vec<usize>,
    _elements: PhantomData<fn() -> T>,
}

impl<T: Element> BytesArray<T> {
    /// A 1-D array of the `bytes.len() / size_of::<T>()` elements of
    /// `bytes`, whose length must be a whole number of `T`s.
    pub fn new(bytes: Bytes) -> Result<Self, Error> {
        if bytes.len() % size_of::<T>() != 0 {
            return Err(Error::InvalidArgument(format!(
                "{} bytes are not a whole number of {}-byte elements",
                bytes.len(),
                size_of::<T>()
            )));
        }
        let len = bytes.len() / size_of::<T>();
        Self::with_shape(bytes, vec![len])
    }

    /// An n-D array of `shape`, in C order, over `bytes`, which must hold
    /// exactly the shape's elements.
    pub fn with_shape(bytes: Bytes, shape: Vec<usize>) -> Result<Self, Error> {
        check_dimensions(&shape)?;
        let needed = shape
            .iter()
            .try_fold(size_of::<T>(), |n, &d| n.checked_mul(d));
        if needed != Some(bytes.len()) {
            return Err(Error::InvalidArgument(format!(
                "{} bytes are not an array of shape {shape:?} of {}-byte elements",
                bytes.len(),
                size_of::<T>()
            )));
        }
        // A Rust bool is 0 or 1; any other byte would be an invalid value
        // in the aligned copy (and numpy's bool reads it as True anyway).
        if T::KIND == b'b' && bytes.iter().any(|&b| b > 1) {
            return Err(Error::InvalidArgument(
                "bytes read as bool must each be 0 or 1".into(),
            ));
        }
        Ok(BytesArray {
            bytes,
            shape,
            _elements: PhantomData,
        })
    }

    /// Whether Python will read the bytes in place: they start at an
    /// address aligned for `T`.
    pub fn is_zero_copy(&self) -> bool {
        self.bytes.as_ptr().align_offset(align_of::<T>()) == 0
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / size_of::<T>()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Element> OwnedArray for BytesArray<T> {
    type Elem = T;
}

impl<T: Element> GiveToNumpy for BytesArray<T> {
    fn into_numpy(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        let dims = Dims::new(&self.shape);
        if self.is_zero_copy() {
            let data = self.bytes.as_ptr().cast::<T>();
            // Read-only: a Bytes is shared, immutable memory.
            return give::<T, Self>(gil, self, data, &dims, false);
        }
        let len = self.len();
        let mut copy: Vec<T> = Vec::with_capacity(len);
        // SAFETY: the Vec has room for `len` elements, `len * size_of::<T>()`
        // bytes (with_shape checked the byte count), and the regions do not
        // overlap; every bit pattern is a valid T for the numeric element
        // types, and for bool with_shape checked every byte is 0 or 1.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.bytes.as_ptr(),
                copy.as_mut_ptr().cast::<u8>(),
                self.bytes.len(),
            );
            copy.set_len(len);
        }
        let data = copy.as_ptr();
        give::<T, Vec<T>>(gil, Box::new(copy), data, &dims, false)
    }
}
