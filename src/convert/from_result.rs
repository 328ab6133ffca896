//! The conversion of results, Python to Rust: one trait, [`FromResult`],
//! implemented per Rust type. The type a call asks for decides how its
//! result is read; the call machinery (the calls of
//! [`Function`](crate::Function)) knows nothing of the types, and calls
//! [`convert`] on whatever came back.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use num_complex::{Complex32, Complex64};

use crate::array::element::Element;
use crate::array::nd::NdVec;
use crate::convert::read::{
    expected_array, expected_indices, expected_scalar, expected_vec, to_elements, to_indices,
    to_scalar, Mismatch, Step,
};
use crate::convert::view::ResultView;
use crate::object::{ArrayDesc, Described, Held};
use crate::runtime::{Gil, StrongRef};

pub(crate) mod sealed {
    use crate::convert::read::Mismatch;
    use crate::object::{ArrayDesc, Held};

    /// The part of [`FromResult`](super::FromResult) that only this crate sees.
    pub trait Read: Sized {
        /// What this type is read from, for messages.
        fn expected() -> String;

        /// Reads `value`, whose reference the conversion now owns.
        fn read(value: Held<'_>) -> Result<Self, Mismatch>;

        /// A 1-D numeric array as a `Vec<Self>`, for the element types;
        /// `None` for types a numpy array's elements cannot be.
        fn read_array_as_vec(_desc: &ArrayDesc<'_>) -> Option<Result<Vec<Self>, Mismatch>> {
            None
        }

        /// What a `Vec<Self>` is read from.
        fn expected_vec() -> String {
            format!(
                "a list or tuple whose every element is {}",
                Self::expected()
            )
        }
    }
}

use sealed::Read;

/// A Rust type that a Python function's result converts into, checked and
/// without loss. The type asked for decides how the result is read:
///
/// | Python returns | Rust type |
/// |---|---|
/// | a number: a numpy scalar, a 0-D array, or a Python `int`/`float`/`bool`/`complex` | `f64`, `f32`, `i8`..`i64`, `u8`..`u64`, `isize`, `usize`, `bool`, [`Complex32`], [`Complex64`] |
/// | `str` | `String` |
/// | `None` | `()`, or `None` of an `Option<R>` (anything else is read as `R`) |
/// | a 1-D numpy array, a list or a tuple | `Vec<R>` (an array only for a numeric `R`) |
/// | a numpy array of any rank, with its shape | [`NdVec<U>`](crate::NdVec); `ndarray::Array<U, D>` with the `ndarray` feature |
/// | a numpy array, read in place | [`ResultView<U>`](crate::ResultView) |
/// | a tuple of 1 to 12 elements | `(A,)` .. `(A, B, C, D, E, F, G, H, I, J, K, L)` |
/// | a dict with `str` keys | `HashMap<String, R>`, `BTreeMap<String, R>` |
///
/// Numbers follow [`Element`]'s rule: an `int32` reads as `i64`, a `float64`
/// as `Complex64`, a float never as an integer, a value only if the type
/// holds it exactly. A result that does not fit is [`Error::BadResult`],
/// naming where inside the result the mismatch is.
///
/// Nothing is lost silently, and Python's choices cannot end the process:
/// - **ndarray subclasses.** `numpy.matrix` and `numpy.memmap` are plain
///   data and read as arrays. Any other subclass (a masked array, whose mask
///   would be lost; a units-carrying quantity; a class of your own) is
///   `BadResult` saying what to return instead (`numpy.asarray(x)`, or for a
///   masked array `x.filled(value)`, or its `.data` and `.mask` apart).
/// - **Sizes.** Every buffer a result is read into is allocated fallibly:
///   a result too large for memory (numpy's `broadcast_to` makes a 2 PiB
///   array in 8 bytes) is `BadResult`, never the allocator's abort.
///
/// ```
/// use std::collections::HashMap;
/// use py_in_mem::{Error, Function};
///
/// let f = Function::from_source(
///     "doc_from_result",
///     "import numpy as np\n\
///      def stats(x):\n    return {'mean': x.mean(), 'max': float(x.max())}\n\
///      def pair(x):\n    return x.sum(), [int(v) for v in x]\n",
///     "stats",
/// )?;
/// let stats: HashMap<String, f64> = f.call(&[1.0, 2.0, 6.0])?;
/// assert_eq!((stats["mean"], stats["max"]), (3.0, 6.0));
///
/// let pair = Function::load("doc_from_result", "pair")?;
/// let (sum, values): (i64, Vec<u8>) = pair.call(&[1i64, 2])?;
/// assert_eq!((sum, values), (3, vec![1, 2]));
///
/// // The wrong type says where in the result it went wrong.
/// let err = pair.call::<(i64, Vec<bool>)>(&[1i64, 2]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "doc_from_result.pair returned an unexpected element 1 of the tuple, element 0 of the list: \
///      expected a number that converts to bool without loss (a Python or numpy scalar, or a 0-D numpy array), \
///      found an object of type int"
/// );
/// assert!(matches!(err, Error::BadResult { .. }));
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// [`Error::BadResult`]: crate::Error::BadResult
pub trait FromResult: Read {}

/// Converts a call's `result` to `R`.
pub(crate) fn convert<R: FromResult>(gil: &Gil, result: StrongRef) -> Result<R, Mismatch> {
    R::read(Held::new(gil, result))
}

/// The `Outliers` result: a 1-D numpy array of integer indices into an input
/// of `bound` values.
pub(crate) fn indices(gil: &Gil, result: StrongRef, bound: usize) -> Result<Vec<usize>, Mismatch> {
    let result = Held::new(gil, result);
    match result.describe() {
        Described::Array(desc) => to_indices(&desc, bound),
        _ => Err(Mismatch::new(expected_indices(), result.what())),
    }
}

/// `value` is not what `R` takes.
fn mismatch<R: Read>(value: &Held<'_>) -> Mismatch {
    Mismatch::new(R::expected(), value.what())
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl FromResult for $t {}
        impl Read for $t {
            fn expected() -> String {
                expected_scalar::<$t>()
            }
            fn read(value: Held<'_>) -> Result<Self, Mismatch> {
                match value.describe() {
                    Described::Scalar(desc) | Described::Array(desc) => to_scalar(&desc),
                    Described::BigInt => Err(Mismatch::new(
                        Self::expected(),
                        "an int outside the ranges of int64 and uint64".into(),
                    )),
                    _ => Err(mismatch::<Self>(&value)),
                }
            }
            fn read_array_as_vec(desc: &ArrayDesc<'_>) -> Option<Result<Vec<Self>, Mismatch>> {
                Some(to_elements::<$t>(desc, expected_vec::<$t>))
            }
            fn expected_vec() -> String {
                expected_vec::<$t>()
            }
        }
    )*};
}

numbers!(f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool, Complex32, Complex64);

impl FromResult for String {}
impl Read for String {
    fn expected() -> String {
        "a str".into()
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        match value.describe() {
            Described::Str => value.str_value().ok_or_else(|| {
                Mismatch::new(
                    Self::expected(),
                    "a str that UTF-8 cannot hold (it has lone surrogates)".into(),
                )
            }),
            _ => Err(mismatch::<Self>(&value)),
        }
    }
}

impl FromResult for () {}
impl Read for () {
    fn expected() -> String {
        "None".into()
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        match value.describe() {
            Described::None => Ok(()),
            _ => Err(mismatch::<Self>(&value)),
        }
    }
}

impl<R: FromResult> FromResult for Option<R> {}
impl<R: FromResult> Read for Option<R> {
    fn expected() -> String {
        format!("None or {}", R::expected())
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        match value.describe() {
            Described::None => Ok(None),
            _ => R::read(value).map(Some),
        }
    }
}

impl<R: FromResult> FromResult for Vec<R> {}
impl<R: FromResult> Read for Vec<R> {
    fn expected() -> String {
        R::expected_vec()
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        if let Described::Array(desc) = value.describe() {
            if desc.ndim() == 1 {
                if let Some(read) = R::read_array_as_vec(&desc) {
                    return read;
                }
            }
            return Err(Mismatch::new(Self::expected(), desc.what()));
        }
        let Some(items) = value.items() else {
            return Err(mismatch::<Self>(&value));
        };
        let container = items.container();
        let mut out = vec_for_items(container, items.len())?;
        for (index, item) in items.enumerate() {
            out.push(R::read(item).map_err(|m| m.within(Step::Element { container, index }))?);
        }
        Ok(out)
    }
}

/// Room for `len` items of a list or tuple read as Rust values. Fallible:
/// the list exists in Python's memory, but an `R` may be much larger than a
/// pointer to an item. Out of line, so that reading a numpy array as a
/// `Vec` (the common result) stays small enough to inline.
#[inline(never)]
fn vec_for_items<R>(container: &str, len: usize) -> Result<Vec<R>, Mismatch> {
    let mut out = Vec::new();
    match out.try_reserve_exact(len) {
        Ok(()) => Ok(out),
        Err(_) => Err(Mismatch::new(
            "a result small enough to read into memory".into(),
            format!("a {container} of {len} elements, more than could be allocated as Rust values"),
        )),
    }
}

/// "a tuple of 2 elements".
fn tuple_of(n: usize) -> String {
    match n {
        1 => "a tuple of 1 element".into(),
        n => format!("a tuple of {n} elements"),
    }
}

macro_rules! tuples {
    ($($n:literal: $($name:ident $index:tt),+;)*) => {$(
        impl<$($name: FromResult),+> FromResult for ($($name,)+) {}
        impl<$($name: FromResult),+> Read for ($($name,)+) {
            fn expected() -> String {
                tuple_of($n)
            }
            fn read(value: Held<'_>) -> Result<Self, Mismatch> {
                let mut items = match value.items() {
                    Some(items) if items.container() == "tuple" => items,
                    _ => return Err(mismatch::<Self>(&value)),
                };
                if items.len() != $n {
                    return Err(Mismatch::new(Self::expected(), tuple_of(items.len())));
                }
                Ok(($(
                    items
                        .next()
                        .ok_or_else(|| Mismatch::new(Self::expected(), "a tuple that shrank".into()))
                        .and_then($name::read)
                        .map_err(|m| m.within(Step::Element { container: "tuple", index: $index }))?,
                )+))
            }
        }
    )*};
}

tuples! {
    1: A 0;
    2: A 0, B 1;
    3: A 0, B 1, C 2;
    4: A 0, B 1, C 2, D 3;
    5: A 0, B 1, C 2, D 3, E 4;
    6: A 0, B 1, C 2, D 3, E 4, F 5;
    7: A 0, B 1, C 2, D 3, E 4, F 5, G 6;
    8: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7;
    9: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8;
    10: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9;
    11: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10;
    12: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11;
}

/// What a map of `R` is read from.
fn expected_map<R: Read>() -> String {
    format!("a dict with str keys, each value {}", R::expected())
}

/// Reads a dict with str keys into `insert`, each value as `R`.
fn read_dict<R: Read>(value: &Held<'_>, mut insert: impl FnMut(String, R)) -> Result<(), Mismatch> {
    let Some(entries) = value.dict_entries() else {
        return Err(Mismatch::new(expected_map::<R>(), value.what()));
    };
    for (position, (key, item)) in entries.enumerate() {
        let Some(key) = key.str_value() else {
            return Err(
                Mismatch::new("a str key".into(), key.what()).within(Step::DictKey(position))
            );
        };
        let item = R::read(item).map_err(|m| m.within(Step::DictValue(key.clone())))?;
        insert(key, item);
    }
    Ok(())
}

impl<R: FromResult, S: BuildHasher + Default> FromResult for HashMap<String, R, S> {}
impl<R: FromResult, S: BuildHasher + Default> Read for HashMap<String, R, S> {
    fn expected() -> String {
        expected_map::<R>()
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        let mut map = HashMap::with_hasher(S::default());
        read_dict(&value, |key, item| {
            map.insert(key, item);
        })?;
        Ok(map)
    }
}

impl<R: FromResult> FromResult for BTreeMap<String, R> {}
impl<R: FromResult> Read for BTreeMap<String, R> {
    fn expected() -> String {
        expected_map::<R>()
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        let mut map = BTreeMap::new();
        read_dict(&value, |key, item| {
            map.insert(key, item);
        })?;
        Ok(map)
    }
}

impl<U: Element> FromResult for NdVec<U> {}
impl<U: Element> Read for NdVec<U> {
    fn expected() -> String {
        expected_array::<U>(None)
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        match value.describe() {
            Described::Array(desc) | Described::Scalar(desc) => {
                let data = to_elements::<U>(&desc, Self::expected)?;
                Ok(NdVec::from_c_order(data, desc.shape.to_vec()))
            }
            _ => Err(mismatch::<Self>(&value)),
        }
    }
}

impl<U: Element> FromResult for ResultView<U> {}
impl<U: Element> Read for ResultView<U> {
    fn expected() -> String {
        ResultView::<U>::expected()
    }
    fn read(value: Held<'_>) -> Result<Self, Mismatch> {
        ResultView::new(value)
    }
}
