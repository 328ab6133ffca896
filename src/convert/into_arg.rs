//! Arguments of a call, Rust to Python: one trait, [`IntoArg`], implemented
//! per Rust type. Arrays (1-D slices, [`NdSlice`], [`Matrix`], [`NdVec`],
//! and `ndarray` arrays with the feature) are lent without a copy; scalars,
//! strings and `None` become Python objects.

use num_complex::{Complex32, Complex64};
use pyo3_ffi::PyObject;

use crate::array::borrow::RustArray;
use crate::array::element::Element;
use crate::array::nd::{NdSlice, NdVec};
use crate::array::owned::OwnedArray;
use crate::error::{Error, PyException};
use crate::object::Held;
use std::cell::Cell;

use crate::runtime::{Gil, StrongRef};

/// A `rows` × `cols` matrix over a Rust slice in C (row-major) order, lent to
/// Python as a 2-D numpy array. ([`NdSlice`] takes any rank and strides.)
///
/// ```
/// # use py_in_mem::{Function, Matrix};
/// let row_sums = Function::from_source("doc_matrix", "def f(m):\n    return m.sum(axis=1)\n", "f")?;
/// let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let matrix = Matrix::new(&data, 2, 3)?;
/// assert_eq!(row_sums.arg(matrix).call::<Vec<f64>>()?, vec![6.0, 15.0]);
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
        crate::array::nd::check_dimensions(&[rows, cols])?;
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

/// An argument as a call takes it, made by [`IntoArg::into_arg`]: Rust
/// memory to lend, a value to make, or a Python object. Opaque; an
/// [`IntoArg`] impl of your own makes one from another argument, usually a
/// [`Value`](crate::Value) it builds.
pub struct Arg<'a>(pub(crate) ArgKind<'a>);

/// What an [`Arg`] is, as the call machinery takes it.
pub(crate) enum ArgKind<'a> {
    /// Rust memory, lent to numpy for the call.
    Array(RustArray<'a>),
    /// A value made into a Python object for the call.
    Value(Scalar<'a>),
    /// Values made into a Python tuple for the call (`axis=(0, 2)`).
    Tuple(Vec<Scalar<'a>>),
    /// An array lent for a held-GIL scope ([`crate::GilScope::lend`]).
    Lent(&'a crate::array::lent::LentSlot),
    /// A Python object the caller holds ([`crate::Object`]), passed
    /// itself.
    Object(&'a crate::runtime::SharedRef),
    /// Something Rust gives Python for good: an owned array
    /// ([`crate::OwnedArray`]) or a [`Value`](crate::Value), made into its
    /// object when the call is made.
    Given(Given),
    /// An argument that could not be made (a value `serde` could not
    /// serialize): the call is [`Error::InvalidArgument`] saying why,
    /// before Python is called.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    Invalid(String),
}

/// How a given argument becomes its Python object, once. `Send`, so that
/// an async call's arguments can go to the thread that makes the call
/// ([`crate::serve`]).
pub(crate) trait Give: Send {
    /// Makes the object; the box may become the object's owner (an owned
    /// array's, [`crate::OwnedArray`]), so that the argument takes one
    /// allocation, not one for the wait and one for Python.
    fn give(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException>;
}

impl<A: OwnedArray> Give for A {
    fn give(self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        self.into_numpy(gil)
    }
}

/// Any other given argument: a closure that makes its object. What it
/// holds (a [`Value`](crate::Value), an [`Object`](crate::Object)) is
/// freed where its box goes after the call ([`crate::serve::release`]): by
/// the thread that polls an async call's future, not by the serving thread.
struct Made<F>(F);

impl<F> Give for Made<F>
where
    F: FnMut(&Gil) -> Result<StrongRef, PyException> + Send + 'static,
{
    fn give(mut self: Box<Self>, gil: &Gil) -> Result<StrongRef, PyException> {
        let made = (self.0)(gil);
        crate::serve::release(self);
        made
    }
}

/// An argument given to Python, made when the call is (with the GIL held).
/// Taken out once, by the one call the argument is part of.
pub(crate) struct Given(Cell<Option<Box<dyn Give>>>);

impl Given {
    pub(crate) fn new(
        give: impl FnMut(&Gil) -> Result<StrongRef, PyException> + Send + 'static,
    ) -> Given {
        Given(Cell::new(Some(Box::new(Made(give)))))
    }

    /// An owned array, in the box that will own it.
    fn owned(array: impl OwnedArray) -> Given {
        Given(Cell::new(Some(Box::new(array))))
    }

    /// Makes the Python object. An argument is made once (each call builds
    /// its own arguments); a second time would be a bug, and is refused
    /// with an exception rather than a panic across the call.
    pub(crate) fn make(&self, gil: &Gil) -> Result<StrongRef, PyException> {
        match self.0.take() {
            Some(give) => give.give(gil),
            None => Err(PyException::status(
                "an owned argument was given to a second call".into(),
            )),
        }
    }
}

impl<'a> Arg<'a> {
    /// The argument `value` makes: for an [`IntoArg`] impl of your own
    /// that passes a field, or a value, as the argument.
    pub fn new(value: impl IntoArg<'a>) -> Arg<'a> {
        value.into_arg()
    }

    /// An argument that cannot be made, `why`: the call returns
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) with it,
    /// and Python is not called. For an [`IntoArg`] impl of your own whose
    /// value may not fit (a `Result` is one too: see its impl).
    ///
    /// ```
    /// use py_in_mem::{Arg, Error, Function, IntoArg};
    ///
    /// struct Percent(f64);
    /// impl<'a> IntoArg<'a> for Percent {
    ///     fn into_arg(self) -> Arg<'a> {
    ///         match self.0 {
    ///             p if (0.0..=100.0).contains(&p) => Arg::new(p),
    ///             p => Arg::invalid(format!("{p} is not a percentage")),
    ///         }
    ///     }
    /// }
    /// let f = Function::from_source("doc_arg_invalid", "def f(p):\n    return p / 100\n", "f")?;
    /// assert_eq!(f.call::<f64>(Percent(50.0))?, 0.5);
    /// let err = f.call::<f64>(Percent(150.0)).unwrap_err();
    /// assert_eq!(err, Error::InvalidArgument("150 is not a percentage".into()));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn invalid(why: impl Into<String>) -> Arg<'a> {
        Arg(ArgKind::Invalid(why.into()))
    }
}

/// The argument `Ok` makes, or for `Err`, one that cannot be made: the call
/// returns [`Error::InvalidArgument`](crate::Error::InvalidArgument) with
/// the error's reason (its text, for an error of another kind), before
/// Python is called. So an [`IntoArg`] impl of your own can pass on what
/// may fail, such as `NdSlice::new(&self.values, &self.shape)`.
impl<'a, A: IntoArg<'a>> IntoArg<'a> for Result<A, Error> {
    fn into_arg(self) -> Arg<'a> {
        match self {
            Ok(value) => value.into_arg(),
            Err(Error::InvalidArgument(why)) => Arg::invalid(why),
            Err(other) => Arg::invalid(other.to_string()),
        }
    }
}

impl Arg<'static> {
    /// `value` given to Python for good, without a copy: Python may keep
    /// it ([`OwnedArray`]). What [`Call::arg_owned`](crate::Call::arg_owned)
    /// passes.
    pub fn owned(value: impl OwnedArray) -> Arg<'static> {
        Arg(ArgKind::Given(Given::owned(value)))
    }
}

impl<'a> IntoArg<'a> for Arg<'a> {
    fn into_arg(self) -> Arg<'a> {
        self
    }
}

/// What a call takes as an argument, positional or keyword: lent for the
/// call, made for the call, or given to Python for good:
///
/// | Rust | Python sees |
/// |---|---|
/// | `&[T]`, `&Vec<T>`, `&[T; N]` for an [`Element`] `T` | a read-only 1-D numpy array over the same memory |
/// | [`NdSlice<T>`](crate::NdSlice), [`Matrix<T>`](crate::Matrix), `&NdVec<T>` | a read-only n-D numpy array over the same memory, with its strides |
/// | `&ndarray::ArrayBase<S, D>` (`&Array`, `&ArrayView`, ...), `ArrayView<T, D>`, `&ArrayRef<T, D>` (feature `ndarray`) | the same, any rank and strides |
/// | `bool`, integers, `f32`, `f64`, [`Complex32`], [`Complex64`] | `bool`, `int`, `float`, `complex` |
/// | `&str`, `&String` | `str` |
/// | `Option<A>` | `None`, or what `A` gives |
/// | a tuple of 1 to 6 of the scalars above, such as `(0, 2)` | a `tuple` (`axis=(0, 2)`) |
/// | [`Scalar`] | its value |
/// | [`Value`](crate::Value) | the Python value it describes (dicts, lists, tuples, bytes, ...); its arrays given to Python |
/// | [`Arg::owned`] of an [`OwnedArray`] (or [`Call::arg_owned`](crate::Call::arg_owned)) | a numpy array over the Rust buffer, given for good: Python may keep it |
/// | `&`[`Object`](crate::Object), or an `Object` by value (for an async call) | the object itself |
/// | any `Serialize` type `T` (feature `serde`), as `Serde<T>` or `Serde<&T>`, or `T` and `&T` directly after `py_in_mem::serde_arg!(T)` | the dict, list, tuple, ... it serializes to |
///
/// A type of your own implements `IntoArg` by building the argument from
/// one of these, usually a [`Value`](crate::Value):
///
/// ```
/// use py_in_mem::{Arg, Function, IntoArg, Value};
///
/// struct Query<'a> {
///     text: &'a str,
///     top_k: u32,
/// }
///
/// impl<'a> IntoArg<'a> for &Query<'a> {
///     fn into_arg(self) -> Arg<'a> {
///         Value::dict([("text", Value::from(self.text)), ("top_k", Value::from(self.top_k))]).into_arg()
///     }
/// }
///
/// let f = Function::from_source("doc_query", "def f(q):\n    return q['text'].upper() * q['top_k']\n", "f")?;
/// let out: String = f.call(&Query { text: "ab", top_k: 2 })?;
/// assert_eq!(out, "ABAB");
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// ```
/// # use py_in_mem::{Function, NdSlice};
/// let describe = Function::from_source(
///     "doc_into_arg",
///     "def f(*args, **kw):\n    return repr([type(a).__name__ for a in args] + sorted(kw))\n",
///     "f",
/// )?;
/// let text: String = describe
///     .arg(&[1.0f32][..])
///     .arg(NdSlice::new(&[1u8, 2, 3, 4], &[2, 2])?)
///     .arg(95.0)
///     .arg("linear")
///     .arg(None::<i64>)
///     .kwarg("bins", 10)
///     .call()?;
/// assert_eq!(text, "['ndarray', 'ndarray', 'float', 'str', 'NoneType', 'bins']");
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub trait IntoArg<'a> {
    /// The argument as a call takes it.
    fn into_arg(self) -> Arg<'a>;
}

impl<'a, T: Element> IntoArg<'a> for &'a [T] {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Array(RustArray::vector(self)))
    }
}

impl<'a, T: Element> IntoArg<'a> for &'a Vec<T> {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Array(RustArray::vector(self)))
    }
}

impl<'a, T: Element, const N: usize> IntoArg<'a> for &'a [T; N] {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Array(RustArray::vector(self)))
    }
}

impl<'a, T: Element> IntoArg<'a> for Matrix<'a, T> {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Array(RustArray::c_order(
            self.data,
            &[self.rows, self.cols],
        )))
    }
}

impl<'a, T: Element> IntoArg<'a> for NdSlice<'a, T> {
    fn into_arg(self) -> Arg<'a> {
        (&self).into_arg()
    }
}

impl<'a, T: Element> IntoArg<'a> for &NdSlice<'a, T> {
    fn into_arg(self) -> Arg<'a> {
        let (data, offset, shape, strides) = self.parts();
        // SAFETY: NdSlice::with_strides (and new, fortran) checked that
        // every element the shape and strides reach from `offset` is inside
        // `data`, which is borrowed for 'a; offset <= data.len().
        Arg(ArgKind::Array(unsafe {
            RustArray::strided(data.as_ptr().add(offset), shape, strides)
        }))
    }
}

impl<'a, T: Element> IntoArg<'a> for &'a NdVec<T> {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Array(RustArray::c_order(
            self.as_slice(),
            self.shape(),
        )))
    }
}

impl<'a, A: IntoArg<'a>> IntoArg<'a> for Option<A> {
    fn into_arg(self) -> Arg<'a> {
        match self {
            Some(value) => value.into_arg(),
            None => Arg(ArgKind::Value(Scalar::None)),
        }
    }
}

/// A value made into a Python object for a call: what numbers, strings and
/// `None` become as arguments ([`IntoArg`]).
///
/// ```
/// use py_in_mem::Scalar;
/// assert_eq!(Scalar::from(2.5), Scalar::Float(2.5));
/// assert_eq!(Scalar::from(3), Scalar::Int(3));
/// assert_eq!(Scalar::from(u64::MAX), Scalar::UInt(u64::MAX));
/// assert_eq!(Scalar::from(-(1i128 << 100)), Scalar::Int128(-(1 << 100)));
/// assert_eq!(Scalar::from(u128::MAX), Scalar::UInt128(u128::MAX));
/// assert_eq!(Scalar::from("mean"), Scalar::Str("mean"));
/// assert_eq!(Scalar::from(None::<f64>), Scalar::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Scalar<'a> {
    /// Python `bool`.
    Bool(bool),
    /// Python `int`.
    Int(i64),
    /// Python `int`, above `i64::MAX`.
    UInt(u64),
    /// Python `int`, outside 64 bits (an `i128` or a `u128` below
    /// `i128::MAX`).
    Int128(i128),
    /// Python `int`, above `i128::MAX`.
    UInt128(u128),
    /// Python `float`.
    Float(f64),
    /// Python `complex`.
    Complex(Complex64),
    /// Python `str`.
    Str(&'a str),
    /// Python `None`.
    None,
}

macro_rules! scalar_from {
    ($($t:ty => $variant:ident as $as:ty),*) => {$(
        impl From<$t> for Scalar<'_> {
            fn from(value: $t) -> Self {
                Scalar::$variant(<$as>::from(value))
            }
        }
        impl<'a> IntoArg<'a> for $t {
            fn into_arg(self) -> Arg<'a> {
                Arg(ArgKind::Value(Scalar::from(self)))
            }
        }
    )*};
}
scalar_from!(bool => Bool as bool, i8 => Int as i64, i16 => Int as i64, i32 => Int as i64,
    i64 => Int as i64, u8 => Int as i64, u16 => Int as i64, u32 => Int as i64,
    f32 => Float as f64, f64 => Float as f64, Complex64 => Complex as Complex64);

/// Integers that may exceed `i64`'s range on one side or the other.
macro_rules! scalar_from_wide {
    ($($t:ty),*) => {$(
        impl From<$t> for Scalar<'_> {
            fn from(value: $t) -> Self {
                match i64::try_from(value) {
                    Ok(value) => Scalar::Int(value),
                    // Only a value above i64::MAX fails: none of these
                    // types goes below i64::MIN.
                    Err(_) => Scalar::UInt(value as u64),
                }
            }
        }
        impl<'a> IntoArg<'a> for $t {
            fn into_arg(self) -> Arg<'a> {
                Arg(ArgKind::Value(Scalar::from(self)))
            }
        }
    )*};
}
scalar_from_wide!(u64, usize, isize);

impl From<i128> for Scalar<'_> {
    fn from(value: i128) -> Self {
        match (i64::try_from(value), u64::try_from(value)) {
            (Ok(value), _) => Scalar::Int(value),
            (_, Ok(value)) => Scalar::UInt(value),
            _ => Scalar::Int128(value),
        }
    }
}

impl From<u128> for Scalar<'_> {
    fn from(value: u128) -> Self {
        match i128::try_from(value) {
            Ok(value) => Scalar::from(value),
            Err(_) => Scalar::UInt128(value),
        }
    }
}

impl<'a> IntoArg<'a> for i128 {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Value(Scalar::from(self)))
    }
}

impl<'a> IntoArg<'a> for u128 {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Value(Scalar::from(self)))
    }
}

impl From<Complex32> for Scalar<'_> {
    fn from(value: Complex32) -> Self {
        Scalar::Complex(Complex64::new(value.re.into(), value.im.into()))
    }
}
impl<'a> IntoArg<'a> for Complex32 {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Value(Scalar::from(self)))
    }
}

impl<'a> From<&'a str> for Scalar<'a> {
    fn from(value: &'a str) -> Self {
        Scalar::Str(value)
    }
}

impl<'a, V: Into<Scalar<'a>>> From<Option<V>> for Scalar<'a> {
    fn from(value: Option<V>) -> Self {
        value.map_or(Scalar::None, Into::into)
    }
}

impl<'a> IntoArg<'a> for &'a str {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Value(Scalar::Str(self)))
    }
}

impl<'a> IntoArg<'a> for &'a String {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Value(Scalar::Str(self)))
    }
}

impl<'a> IntoArg<'a> for Scalar<'a> {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Value(self))
    }
}

/// Tuples of scalars, as numpy's `axis=(0, 2)` takes them.
macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<'a, $($name: Into<Scalar<'a>>),+> IntoArg<'a> for ($($name,)+) {
            #[allow(non_snake_case)] // the values are named as their types
            fn into_arg(self) -> Arg<'a> {
                let ($($name,)+) = self;
                Arg(ArgKind::Tuple(vec![$($name.into()),+]))
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);

impl Scalar<'_> {
    /// The Python object for this value.
    pub(crate) fn to_python<'py>(self, gil: &'py Gil) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; each constructor returns a new reference
        // (None: a new reference to the None singleton) or NULL with an
        // exception set; the str pointer and length describe valid UTF-8
        // for the call.
        unsafe {
            let obj: *mut PyObject = match self {
                Scalar::Bool(v) => pyo3_ffi::PyBool_FromLong(v.into()),
                Scalar::Int(v) => pyo3_ffi::PyLong_FromLongLong(v),
                Scalar::UInt(v) => pyo3_ffi::PyLong_FromUnsignedLongLong(v),
                // The high 64 bits (arithmetic shift: floor) and the low.
                Scalar::Int128(v) => {
                    int_from_halves(pyo3_ffi::PyLong_FromLongLong((v >> 64) as i64), v as u64)
                }
                Scalar::UInt128(v) => int_from_halves(
                    pyo3_ffi::PyLong_FromUnsignedLongLong((v >> 64) as u64),
                    v as u64,
                ),
                Scalar::Float(v) => pyo3_ffi::PyFloat_FromDouble(v),
                Scalar::Complex(v) => pyo3_ffi::PyComplex_FromDoubles(v.re, v.im),
                Scalar::Str(v) => {
                    pyo3_ffi::PyUnicode_FromStringAndSize(v.as_ptr().cast(), v.len() as isize)
                }
                Scalar::None => {
                    let none = pyo3_ffi::Py_None();
                    pyo3_ffi::Py_IncRef(none);
                    none
                }
            };
            Held::from_owned(gil, obj)
        }
    }
}

/// `high * 2**64 + low` as a Python int (`high << 64 | low`, which Python
/// computes in two's complement for a negative `high`): a new reference, or
/// NULL with an exception set.
///
/// # Safety
/// The GIL is held; `high` is a new reference to an int, or NULL with an
/// exception set, and is consumed.
unsafe fn int_from_halves(high: *mut PyObject, low: u64) -> *mut PyObject {
    if high.is_null() {
        return high;
    }
    // SAFETY: as the caller promises; each constructor and operator returns
    // a new reference or NULL with an exception set, and every reference
    // but the result is dropped.
    unsafe {
        let (shift, low) = (
            pyo3_ffi::PyLong_FromLong(64),
            pyo3_ffi::PyLong_FromUnsignedLongLong(low),
        );
        let mut result = std::ptr::null_mut();
        if !shift.is_null() && !low.is_null() {
            let shifted = pyo3_ffi::PyNumber_Lshift(high, shift);
            if !shifted.is_null() {
                result = pyo3_ffi::PyNumber_Or(shifted, low);
                pyo3_ffi::Py_DECREF(shifted);
            }
        }
        for owned in [high, shift, low] {
            pyo3_ffi::Py_XDECREF(owned);
        }
        result
    }
}

/// A Python tuple of `values`: an argument, or the keyword names of a
/// vectorcall.
pub(crate) fn tuple_of<'a, 'py>(
    gil: &'py Gil,
    values: impl ExactSizeIterator<Item = Scalar<'a>>,
) -> Result<Held<'py>, PyException> {
    // SAFETY: the GIL is held; PyTuple_New returns a new reference or NULL.
    let tuple = unsafe { Held::from_owned(gil, pyo3_ffi::PyTuple_New(values.len() as isize)) }?;
    for (i, value) in values.enumerate() {
        let value = value.to_python(gil)?;
        // SAFETY: the tuple is new and ours, i is in range (the iterator's
        // exact length), and PyTuple_SetItem steals the value's reference
        // (given up by into_raw).
        unsafe { pyo3_ffi::PyTuple_SetItem(tuple.as_ptr(), i as isize, value.into_raw()) };
    }
    Ok(tuple)
}
