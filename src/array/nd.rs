//! The crate's own n-D types, for users without the `ndarray` feature:
//! [`NdSlice`], a Rust slice lent to numpy with a shape and strides, and
//! [`NdVec`], an n-D result copied out in C order with its shape.

use std::ops::Index;

use crate::array::element::Element;
use crate::error::Error;

/// A Rust slice seen as an n-D array: a shape, and strides in elements (C
/// order, Fortran order, or any strides, negative included), lent to Python
/// as a read-only numpy array without a copy.
///
/// ```
/// # use py_in_mem::{Function, NdSlice};
/// let f = Function::from_source(
///     "doc_ndslice",
///     "def f(a):\n    return a.sum(axis=(0, 2)), a.flags.c_contiguous, a.flags.f_contiguous\n",
///     "f",
/// )?;
/// let data: Vec<f64> = (0..24).map(f64::from).collect();
/// // 2 × 3 × 4 in C order: a[i, j, k] = data[12 i + 4 j + k].
/// let c = NdSlice::new(&data, &[2, 3, 4])?;
/// let (sums, c_order, f_order): (Vec<f64>, bool, bool) = f.call(c)?;
/// assert_eq!(sums, [60.0, 92.0, 124.0]);
/// assert_eq!((c_order, f_order), (true, false));
/// // The same values in Fortran order: a[i, j, k] = data[i + 2 j + 6 k].
/// let fortran = NdSlice::fortran(&data, &[2, 3, 4])?;
/// assert_eq!(f.call::<(Vec<f64>, bool, bool)>(fortran)?.2, true);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NdSlice<'a, T: Element> {
    data: &'a [T],
    offset: usize,
    shape: Vec<usize>,
    strides: Vec<isize>,
}

impl<'a, T: Element> NdSlice<'a, T> {
    /// `data` as an array of `shape` in C (row-major) order; `data` must
    /// hold exactly as many values as the shape does. An empty shape is a
    /// 0-D array of one value.
    ///
    /// ```
    /// let err = py_in_mem::NdSlice::new(&[1.0, 2.0, 3.0], &[2, 2]).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid argument: a 2 × 2 array needs 4 values, the slice has 3");
    /// ```
    pub fn new(data: &'a [T], shape: &[usize]) -> Result<Self, Error> {
        Self::whole(data, shape, contiguous_strides(shape, false))
    }

    /// `data` as an array of `shape` in Fortran (column-major) order, as
    /// LAPACK and R keep matrices; `data` must hold exactly as many values
    /// as the shape does.
    ///
    /// ```
    /// let m = py_in_mem::NdSlice::fortran(&[1, 2, 3, 4, 5, 6], &[2, 3])?;
    /// assert_eq!(m.strides(), &[1, 2]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn fortran(data: &'a [T], shape: &[usize]) -> Result<Self, Error> {
        Self::whole(data, shape, contiguous_strides(shape, true))
    }

    fn whole(data: &'a [T], shape: &[usize], strides: Vec<isize>) -> Result<Self, Error> {
        match element_count(shape) {
            // Only an empty shape can have a dimension past isize::MAX here.
            Some(n) if n == data.len() => check_dimensions(shape).map(|()| NdSlice {
                data,
                offset: 0,
                shape: shape.to_vec(),
                strides,
            }),
            n => Err(Error::InvalidArgument(format!(
                "a {} array needs {} values, the slice has {}",
                shape_text(shape),
                n.map_or_else(|| "more than usize::MAX".to_owned(), |n| n.to_string()),
                data.len()
            ))),
        }
    }

    /// Any strides numpy can express: element `[i, j, ...]` is
    /// `data[offset + i * strides[0] + j * strides[1] + ...]`. Strides count
    /// elements and may be zero or negative; every element the shape reaches
    /// must be inside `data`. As numpy counts in `isize` bytes, every
    /// dimension must be at most `isize::MAX` and every stride times the
    /// element size must fit in an `isize`, in an array without elements
    /// too (whose strides are then given to numpy as 0).
    ///
    /// ```
    /// # use py_in_mem::{Function, NdSlice};
    /// let data = [0, 1, 2, 3, 4, 5];
    /// // The 2 × 3 matrix [[0, 1, 2], [3, 4, 5]], rows upside down:
    /// let flipped = NdSlice::with_strides(&data, &[2, 3], &[-3, 1], 3)?;
    /// let first_row = Function::from_source("doc_strides", "def f(m):\n    return m[0]\n", "f")?;
    /// assert_eq!(first_row.call::<Vec<i32>>(flipped)?, [3, 4, 5]);
    ///
    /// let err = NdSlice::with_strides(&data, &[2, 3], &[3, 1], 1).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid argument: a 2 × 3 array with strides [3, 1] from element 1 reaches element 6 of a slice of 6");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn with_strides(
        data: &'a [T],
        shape: &[usize],
        strides: &[isize],
        offset: usize,
    ) -> Result<Self, Error> {
        if shape.len() != strides.len() {
            return Err(Error::InvalidArgument(format!(
                "{} dimensions but {} strides",
                shape.len(),
                strides.len()
            )));
        }
        check_dimensions(shape)?;
        // numpy counts strides in bytes, in an isize: every stride must fit
        // once scaled, whether or not its dimension is ever stepped (an
        // empty array's strides too, which the bounds below never see).
        let size = std::mem::size_of::<T>() as isize;
        if let Some((axis, stride)) = strides
            .iter()
            .enumerate()
            .find(|(_, stride)| stride.checked_mul(size).is_none())
        {
            return Err(Error::InvalidArgument(format!(
                "stride {stride} of dimension {axis} is more than an isize of bytes for {}-byte elements",
                size
            )));
        }
        let invalid = |reach: &str| {
            Error::InvalidArgument(format!(
                "a {} array with strides {strides:?} from element {offset} reaches {reach} of a slice of {}",
                shape_text(shape),
                data.len()
            ))
        };
        if shape.contains(&0) {
            // No element: nothing is read, but the origin must still be in
            // (or just past) the slice.
            if offset > data.len() {
                return Err(invalid(&format!("past element {}", data.len())));
            }
        } else {
            // The lowest and highest element reached, as exact integers.
            let (mut low, mut high) = (offset as i128, offset as i128);
            for (&n, &stride) in shape.iter().zip(strides) {
                let reach = (n as i128 - 1) * stride as i128;
                if reach < 0 {
                    low += reach;
                } else {
                    high += reach;
                }
            }
            if low < 0 {
                return Err(invalid(&format!("element {low}")));
            }
            if high >= data.len() as i128 {
                return Err(invalid(&format!("element {high}")));
            }
        }
        Ok(NdSlice {
            data,
            offset,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
        })
    }

    /// The length of each dimension.
    ///
    /// ```
    /// let a = py_in_mem::NdSlice::new(&[0u8; 24], &[2, 3, 4])?;
    /// assert_eq!(a.shape(), &[2, 3, 4]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The step of each dimension, in elements.
    ///
    /// ```
    /// let a = py_in_mem::NdSlice::new(&[0u8; 24], &[2, 3, 4])?;
    /// assert_eq!(a.strides(), &[12, 4, 1]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }

    /// The parts the lend is made of: the slice, the index of element
    /// [0, 0, ...] in it, the shape and the strides.
    pub(crate) fn parts(&self) -> (&'a [T], usize, &[usize], &[isize]) {
        (self.data, self.offset, &self.shape, &self.strides)
    }
}

/// The strides, in elements, of a contiguous array of `shape`: C order (the
/// last axis steps by 1), or Fortran order (the first does).
pub(crate) fn contiguous_strides(shape: &[usize], fortran: bool) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut step = 1isize;
    let mut visit = |axis: usize| {
        strides[axis] = step;
        step = step.saturating_mul(shape[axis] as isize);
    };
    if fortran {
        (0..shape.len()).for_each(&mut visit);
    } else {
        (0..shape.len()).rev().for_each(&mut visit);
    }
    strides
}

/// Every dimension is one numpy can hold (an `npy_intp`, so at most
/// `isize::MAX`), even in an array without elements.
pub(crate) fn check_dimensions(shape: &[usize]) -> Result<(), Error> {
    match shape.iter().position(|&n| isize::try_from(n).is_err()) {
        Some(axis) => Err(Error::InvalidArgument(format!(
            "dimension {axis} of a {} array is longer than isize::MAX",
            shape_text(shape)
        ))),
        None => Ok(()),
    }
}

/// How many elements an array of `shape` has; `None` past `usize::MAX`.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// "2 × 3", for messages.
fn shape_text(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "0-D".into();
    }
    if let [n] = shape {
        return format!("{n}-element");
    }
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    dims.join(" × ")
}

/// An n-D numpy result copied out: its values in C (row-major) order and
/// its shape. Asked for as a call's result type, it takes an array of any
/// rank (a number is 0-D); index it with `[i, j, ...]`.
///
/// ```
/// # use py_in_mem::{Function, NdVec};
/// let outer = Function::load("numpy", "outer")?;
/// let m: NdVec<f64> = outer.arg(&[1.0, 2.0]).arg(&[1.0, 10.0, 100.0]).call()?;
/// assert_eq!(m.shape(), &[2, 3]);
/// assert_eq!(m[[1, 2]], 200.0);
/// assert_eq!(m.as_slice(), &[1.0, 10.0, 100.0, 2.0, 20.0, 200.0]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NdVec<U> {
    data: Vec<U>,
    shape: Vec<usize>,
}

impl<U> NdVec<U> {
    /// An array of `shape` holding `data` in C order; `data` must hold
    /// exactly as many values as the shape does.
    ///
    /// ```
    /// let m = py_in_mem::NdVec::new(vec![1, 2, 3, 4, 5, 6], vec![3, 2])?;
    /// assert_eq!(m[[2, 0]], 5);
    /// assert!(py_in_mem::NdVec::new(vec![1, 2, 3], vec![2, 2]).is_err());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn new(data: Vec<U>, shape: Vec<usize>) -> Result<Self, Error> {
        check_dimensions(&shape)?;
        match element_count(&shape) {
            Some(n) if n == data.len() => Ok(NdVec { data, shape }),
            _ => Err(Error::InvalidArgument(format!(
                "a {} array cannot hold {} values",
                shape_text(&shape),
                data.len()
            ))),
        }
    }

    /// `data` and `shape` that the caller knows agree.
    pub(crate) fn from_c_order(data: Vec<U>, shape: Vec<usize>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        NdVec { data, shape }
    }

    /// The length of each dimension (empty for a 0-D array).
    ///
    /// ```
    /// let m = py_in_mem::NdVec::new(vec![0.0; 6], vec![2, 3])?;
    /// assert_eq!((m.shape(), m.ndim(), m.len()), (&[2, 3][..], 2, 6));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    ///
    /// ```
    /// assert_eq!(py_in_mem::NdVec::new(vec![7], vec![])?.ndim(), 0);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of values.
    ///
    /// ```
    /// assert_eq!(py_in_mem::NdVec::new(Vec::<u8>::new(), vec![3, 0, 4])?.len(), 0);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it holds no value (some dimension is 0).
    ///
    /// ```
    /// assert!(py_in_mem::NdVec::new(Vec::<f32>::new(), vec![0, 5])?.is_empty());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values in C order.
    ///
    /// ```
    /// let m = py_in_mem::NdVec::new(vec![1, 2, 3, 4], vec![2, 2])?;
    /// assert_eq!(m.as_slice(), &[1, 2, 3, 4]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn as_slice(&self) -> &[U] {
        &self.data
    }

    /// The first value's address, for Python to write through (the owned
    /// hand-off, [`crate::OwnedArray`]).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut U {
        self.data.as_mut_ptr()
    }

    /// The value at `index` (one entry per dimension), if inside the shape.
    ///
    /// ```
    /// let m = py_in_mem::NdVec::new(vec![1, 2, 3, 4, 5, 6], vec![2, 3])?;
    /// assert_eq!(m.get(&[1, 0]), Some(&4));
    /// assert_eq!(m.get(&[2, 0]), None);
    /// assert_eq!(m.get(&[1]), None);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn get(&self, index: &[usize]) -> Option<&U> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut flat = 0;
        for (&i, &n) in index.iter().zip(&self.shape) {
            if i >= n {
                return None;
            }
            flat = flat * n + i;
        }
        self.data.get(flat)
    }

    /// The values in C order, without the shape.
    ///
    /// ```
    /// let m = py_in_mem::NdVec::new(vec![1, 2, 3, 4], vec![2, 2])?;
    /// assert_eq!(m.into_vec(), vec![1, 2, 3, 4]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn into_vec(self) -> Vec<U> {
        self.data
    }

    /// The values in C order, and the shape.
    ///
    /// ```
    /// let m = py_in_mem::NdVec::new(vec![1, 2], vec![1, 2])?;
    /// assert_eq!(m.into_parts(), (vec![1, 2], vec![1, 2]));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn into_parts(self) -> (Vec<U>, Vec<usize>) {
        (self.data, self.shape)
    }
}

impl<U, const N: usize> Index<[usize; N]> for NdVec<U> {
    type Output = U;

    /// The value at `[i, j, ...]`.
    ///
    /// # Panics
    /// If the index has another number of entries than the array has
    /// dimensions, or is outside the shape.
    fn index(&self, index: [usize; N]) -> &U {
        self.get(&index).unwrap_or_else(|| {
            panic!(
                "index {index:?} is outside an NdVec of shape {:?}",
                self.shape
            )
        })
    }
}
