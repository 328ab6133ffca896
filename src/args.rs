//! Arguments of a call: Rust arrays (1-D slices, 2-D matrices) and scalar
//! keyword arguments.

use pyo3_ffi::PyObject;

use crate::borrow::RustArray;
use crate::element::Element;
use crate::error::{Error, PyException};
use crate::glue::{owned_or_error, Gil, StrongRef};

/// A `rows` × `cols` matrix over a Rust slice in C (row-major) order, lent to
/// Python as a 2-D numpy array.
///
/// ```
/// # use py_in_mem::{Function, Matrix};
/// let row_sums = Function::from_source("doc_matrix", "def f(m):\n    return m.sum(axis=1)\n", "f")?;
/// let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let matrix = Matrix::new(&data, 2, 3)?;
/// assert_eq!(row_sums.arg(matrix).call::<f64>()?, vec![6.0, 15.0]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a, T: Element> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T: Element> Matrix<'a, T> {
    /// A matrix over `data`, which must hold exactly `rows * cols` values.
    ///
    /// ```
    /// let err = py_in_mem::Matrix::new(&[1.0, 2.0, 3.0], 2, 2).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid argument: a 2 × 2 matrix needs 4 values, the slice has 3");
    /// ```
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Result<Self, Error> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::InvalidArgument(format!(
                "a {rows} × {cols} matrix needs {} values, the slice has {}",
                rows.saturating_mul(cols),
                data.len()
            )));
        }
        Ok(Matrix { data, rows, cols })
    }

    /// Rows and columns.
    ///
    /// ```
    /// let m = py_in_mem::Matrix::new(&[0u8; 6], 3, 2).unwrap();
    /// assert_eq!(m.shape(), (3, 2));
    /// ```
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

pub(crate) mod sealed {
    use crate::borrow::RustArray;

    /// The part of [`IntoArray`](super::IntoArray) that only this crate sees.
    pub trait ArraySource<'a> {
        /// The array as numpy will see it.
        fn into_rust_array(self) -> RustArray<'a>;
    }
}

/// What can be lent to Python as an array argument: `&[T]`, `&Vec<T>`,
/// `&[T; N]` (1-D) and [`Matrix`] (2-D), for any [`Element`] `T`.
///
/// ```
/// # use py_in_mem::{Function, Matrix};
/// let size = Function::from_source("doc_into_array", "import numpy as np\ndef f(a):\n    return np.array([a.size])\n", "f")?;
/// let (slice, vec, array) = (&[1.0f32][..], vec![1u8, 2], [true; 3]);
/// assert_eq!(size.arg(slice).call::<i64>()?, [1]);
/// assert_eq!(size.arg(&vec).call::<i64>()?, [2]);
/// assert_eq!(size.arg(&array).call::<i64>()?, [3]);
/// assert_eq!(size.arg(Matrix::new(&[0i64; 4], 2, 2)?).call::<i64>()?, [4]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub trait IntoArray<'a>: sealed::ArraySource<'a> {}
impl<'a, A: sealed::ArraySource<'a>> IntoArray<'a> for A {}

impl<'a, T: Element> sealed::ArraySource<'a> for &'a [T] {
    fn into_rust_array(self) -> RustArray<'a> {
        RustArray::vector(self)
    }
}

impl<'a, T: Element> sealed::ArraySource<'a> for &'a Vec<T> {
    fn into_rust_array(self) -> RustArray<'a> {
        RustArray::vector(self)
    }
}

impl<'a, T: Element, const N: usize> sealed::ArraySource<'a> for &'a [T; N] {
    fn into_rust_array(self) -> RustArray<'a> {
        RustArray::vector(self)
    }
}

impl<'a, T: Element> sealed::ArraySource<'a> for Matrix<'a, T> {
    fn into_rust_array(self) -> RustArray<'a> {
        RustArray::matrix(self.data, self.rows, self.cols)
    }
}

/// A scalar keyword argument: `bool`, an integer, a float or a string.
///
/// ```
/// use py_in_mem::Scalar;
/// assert_eq!(Scalar::from(2.5), Scalar::Float(2.5));
/// assert_eq!(Scalar::from(3), Scalar::Int(3));
/// assert_eq!(Scalar::from("mean"), Scalar::Str("mean"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// Python `bool`.
    Bool(bool),
    /// Python `int`.
    Int(i64),
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(&'a str),
}

macro_rules! scalar_from {
    ($($t:ty => $variant:ident as $as:ty),*) => {$(
        impl From<$t> for Scalar<'_> {
            fn from(value: $t) -> Self {
                Scalar::$variant(<$as>::from(value))
            }
        }
    )*};
}
scalar_from!(bool => Bool as bool, i8 => Int as i64, i16 => Int as i64, i32 => Int as i64,
    i64 => Int as i64, u8 => Int as i64, u16 => Int as i64, u32 => Int as i64,
    f32 => Float as f64, f64 => Float as f64);

impl<'a> From<&'a str> for Scalar<'a> {
    fn from(value: &'a str) -> Self {
        Scalar::Str(value)
    }
}

impl Scalar<'_> {
    /// The Python object for this value.
    pub(crate) fn to_python(self, gil: &Gil) -> Result<StrongRef, PyException> {
        // SAFETY: the GIL is held; each constructor returns a new reference
        // or NULL with an exception set; the str pointer and length describe
        // valid UTF-8 for the call.
        unsafe {
            let obj: *mut PyObject = match self {
                Scalar::Bool(v) => pyo3_ffi::PyBool_FromLong(v.into()),
                Scalar::Int(v) => pyo3_ffi::PyLong_FromLongLong(v),
                Scalar::Float(v) => pyo3_ffi::PyFloat_FromDouble(v),
                Scalar::Str(v) => {
                    pyo3_ffi::PyUnicode_FromStringAndSize(v.as_ptr().cast(), v.len() as isize)
                }
            };
            owned_or_error(gil, obj)
        }
    }
}

/// A tuple of keyword names, for a vectorcall.
pub(crate) fn kwnames(gil: &Gil, names: &[&str]) -> Result<StrongRef, PyException> {
    // SAFETY: the GIL is held; PyTuple_New returns a new reference or NULL.
    let tuple = unsafe { owned_or_error(gil, pyo3_ffi::PyTuple_New(names.len() as isize)) }?;
    for (i, name) in names.iter().enumerate() {
        let name = Scalar::Str(name).to_python(gil)?;
        // SAFETY: the tuple is new and ours, i is in range, and
        // PyTuple_SetItem steals the name's reference (we forget ours).
        unsafe { pyo3_ffi::PyTuple_SetItem(tuple.as_ptr(), i as isize, name.into_raw()) };
    }
    Ok(tuple)
}
