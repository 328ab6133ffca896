//! The `ndarray` feature: `ndarray` arrays as arguments (lent without a
//! copy, any rank and strides) and as results (`Array<U, D>`, copied out;
//! [`ResultView::as_array`], read in place).

use ndarray::{ArrayBase, ArrayRef, ArrayView, ArrayViewD, Data, Dimension, IxDyn};

use crate::array::borrow::RustArray;
use crate::array::element::Element;
use crate::array::owned::sealed::GiveToNumpy;
use crate::array::owned::{give, Dims, OwnedArray};
use crate::convert::from_result::FromResult;
use crate::convert::from_result::Reader;
use crate::convert::into_arg::{Arg, ArgKind, IntoArg};
use crate::convert::read::{expected_array, to_elements, Mismatch};
use crate::convert::view::ResultView;
use crate::error::PyException;
use crate::object::Described;
use crate::runtime::{Gil, StrongRef};

/// Lends the elements of an ndarray array: its pointer is element [0, ...]
/// and its strides count elements, as numpy's count bytes.
fn lend<'a, T: Element, D: Dimension>(array: &'a ArrayRef<T, D>) -> Arg<'a> {
    // SAFETY: an ArrayRef's elements are initialized Ts reached from
    // as_ptr by its shape and strides, all inside one allocation that the
    // shared borrow 'a keeps alive and unchanged.
    Arg(ArgKind::Array(unsafe {
        RustArray::strided(array.as_ptr(), array.shape(), array.strides())
    }))
}

/// `&Array<T, D>`, `&ArrayView<T, D>`, `&ArcArray<T, D>`...: lent, no copy.
///
/// ```
/// use ndarray::{array, Array2};
/// use py_in_mem::Function;
///
/// let inv: Array2<f64> = Function::load("numpy.linalg", "inv")?.call(&array![[4.0, 7.0], [2.0, 6.0]])?;
/// let expected = array![[0.6, -0.7], [-0.2, 0.4]];
/// assert!(inv.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-12), "{inv}");
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl<'a, T: Element, S: Data<Elem = T>, D: Dimension> IntoArg<'a> for &'a ArrayBase<S, D> {
    fn into_arg(self) -> Arg<'a> {
        lend(self)
    }
}

/// An `ArrayView` by value, any strides (a transposed or reversed view
/// too): lent, no copy.
///
/// ```
/// use ndarray::{array, s};
/// use py_in_mem::Function;
///
/// let m = array![[1, 2, 3], [4, 5, 6]];
/// let first_row = Function::from_source("doc_view_arg", "def f(m):\n    return m[0]\n", "f")?;
/// assert_eq!(first_row.call::<Vec<i32>>(m.t())?, [1, 4]);
/// assert_eq!(first_row.call::<Vec<i32>>(m.slice(s![..;-1, ..;-1]))?, [6, 5, 4]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl<'a, T: Element, D: Dimension> IntoArg<'a> for ArrayView<'a, T, D> {
    fn into_arg(self) -> Arg<'a> {
        let origin = self.as_ptr();
        // SAFETY: as in `lend`: the view's elements live for 'a, which
        // outlives the view value itself.
        Arg(ArgKind::Array(unsafe {
            RustArray::strided(origin, self.shape(), self.strides())
        }))
    }
}

/// `&ArrayRef<T, D>`, what ndarray 0.17's functions take: lent, no copy.
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl<'a, T: Element, D: Dimension> IntoArg<'a> for &'a ArrayRef<T, D> {
    fn into_arg(self) -> Arg<'a> {
        lend(self)
    }
}

/// A numpy array of `D`'s rank (any rank for `IxDyn`; a number is 0-D),
/// copied out in C order, converted without loss.
///
/// ```
/// use ndarray::{array, Array2, ArrayD};
/// use py_in_mem::Function;
///
/// let outer = Function::load("numpy", "outer")?;
/// let m: Array2<f64> = outer.arg(&[1.0, 2.0]).arg(&[1.0, 10.0, 100.0]).call()?;
/// assert_eq!(m, array![[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]]);
/// let any: ArrayD<i64> = outer.arg(&[1i64, 2]).arg(&[3i64]).call()?;
/// assert_eq!(any.shape(), &[2, 1]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl<U: Element, D: Dimension> FromResult for ndarray::Array<U, D> {
    fn expected() -> String {
        expected_array::<U>(D::NDIM)
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        let desc = match value.describe() {
            Described::Array(desc) | Described::Scalar(desc) => desc,
            _ => return Err(Mismatch::new(Self::expected(), value.what())),
        };
        if D::NDIM.is_some_and(|ndim| ndim != desc.ndim()) {
            return Err(Mismatch::new(Self::expected(), desc.what()));
        }
        let data = to_elements::<U>(&desc, Self::expected)?;
        ndarray::Array::from_shape_vec(IxDyn(desc.shape), data)
            .and_then(|array| array.into_dimensionality::<D>())
            .map_err(|e| Mismatch::new(Self::expected(), format!("{} ({e})", desc.what())))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl<U: Element> ResultView<U> {
    /// The result as an `ndarray` view of any rank, in place (feature
    /// `ndarray`); `into_dimensionality` fixes the rank.
    ///
    /// ```
    /// use ndarray::{array, Ix2};
    /// use py_in_mem::{Function, ResultView};
    ///
    /// let outer = Function::load("numpy", "outer")?;
    /// let view: ResultView<f64> = outer.arg(&[1.0, 2.0]).arg(&[3.0, 4.0]).call()?;
    /// let m = view.as_array().into_dimensionality::<Ix2>().unwrap();
    /// assert_eq!(m, array![[3.0, 4.0], [6.0, 8.0]]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn as_array(&self) -> ArrayViewD<'_, U> {
        // The elements are a C-contiguous block of shape() (ResultView::new).
        ArrayViewD::from_shape(IxDyn(self.shape()), self.as_slice())
            .expect("a view's shape matches its elements")
    }
}

/// An owned `ndarray` array, given to Python writable without a copy when it
/// is in standard (C) order; an array in any other order (transposed, a
/// slice's layout) is first copied once into C order.
///
/// ```
/// use ndarray::array;
/// let f = py_in_mem::Function::from_source("doc_owned_ndarray", "KEPT = []\ndef f(a):\n    KEPT.append(a)\n    return a[:, 0]\n", "f")?;
/// let first: Vec<i64> = f.arg_owned(array![[1i64, 2], [3, 4]]).call()?;
/// assert_eq!(first, [1, 3]);
/// let first: Vec<i64> = f.arg_owned(array![[1i64, 2], [3, 4]].reversed_axes()).call()?;
/// assert_eq!(first, [1, 2]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl<T: Element, D: Dimension + 'static> OwnedArray for ndarray::Array<T, D> {
    type Elem = T;
}

impl<T: Element, D: Dimension + 'static> GiveToNumpy for ndarray::Array<T, D> {
    fn into_numpy(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        let array = if self.is_standard_layout() {
            *self
        } else {
            self.as_standard_layout().into_owned()
        };
        let dims = Dims::new(array.shape());
        let (mut data, offset) = array.into_raw_vec_and_offset();
        // SAFETY: a standard-layout array's elements are the C-ordered block
        // of `shape` starting `offset` elements into its buffer (no offset:
        // an empty array, which reads nothing).
        let first = unsafe { data.as_mut_ptr().add(offset.unwrap_or(0)) };
        give::<T, Vec<T>>(gil, Box::new(data), first, &dims, true)
    }
}
