//! The crate's own [`FromResult`] impls: numbers, `String`, `()`,
//! `Option`, `Vec`, tuples, maps, [`NdVec`] and [`ResultView`].

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use num_complex::{Complex32, Complex64};

use super::{FromResult, Reader};
use crate::array::element::{Element, Value as ElementValue};
use crate::array::nd::NdVec;
use crate::convert::read::{
    expected_array, expected_scalar, expected_vec, to_elements, to_scalar, try_vec, Mismatch, Step,
};
use crate::convert::view::ResultView;
use crate::object::{ArrayDesc, Described, Exact, Held, Wide};

/// A Python int outside 64 bits as `U`: a float or complex number that
/// holds it exactly (`2**70`), never an integer type.
fn big_int<U: Element>(value: &Held<'_>) -> Result<U, Mismatch> {
    if U::KIND == b'b' {
        // No int is a bool, whatever its size: its type, not its range.
        return Err(Mismatch::new(expected_scalar::<U>(), value.what()));
    }
    let exact = match U::KIND {
        b'f' | b'c' => value
            .big_int_as_exact_float()
            .and_then(|x| U::from_value(ElementValue::Float(x))),
        _ => None,
    };
    exact.ok_or_else(|| {
        let found = match U::KIND {
            b'f' | b'c' => format!(
                "an int outside the ranges of int64 and uint64 that {} does not hold exactly",
                U::RUST_NAME
            ),
            _ => "an int outside the ranges of int64 and uint64".to_owned(),
        };
        Mismatch::new(expected_scalar::<U>(), found)
    })
}

/// `value` is not what `R` takes.
fn mismatch<R: FromResult>(value: &Held<'_>) -> Mismatch {
    Mismatch::new(R::expected(), value.what())
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl FromResult for $t {
            fn expected() -> String {
                expected_scalar::<$t>()
            }
            fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
                let value = value.into_held();
                if let Some(exact) = <$t as FromExact>::from_exact(&value) {
                    return Ok(exact);
                }
                match value.describe() {
                    Described::Scalar(desc) | Described::Array(desc) => to_scalar(&desc),
                    Described::BigInt => big_int::<$t>(&value),
                    _ => Err(mismatch::<Self>(&value)),
                }
            }
            fn read_array_as_vec(desc: &ArrayDesc<'_>) -> Option<Result<Vec<Self>, Mismatch>> {
                Some(to_elements::<$t>(desc, expected_vec::<$t>))
            }
            fn is_element() -> bool {
                true
            }
            fn read_bytes_as_vec(bytes: Vec<u8>) -> Option<Vec<Self>> {
                // `Vec<u8>` itself when Self is u8; nothing else reads bytes.
                let bytes: Box<dyn std::any::Any> = Box::new(bytes);
                bytes.downcast::<Vec<Self>>().ok().map(|read| *read)
            }
            fn expected_vec() -> String {
                expected_vec::<$t>()
            }
        }
    )*};
}

numbers!(f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool, Complex32, Complex64);

/// `value` as a [`Wide`]: Ok(None) for an int outside 128 bits, Err with
/// what it is for anything that is no integer (a bool and a float are
/// none, as for the other integer types).
fn read_wide(value: &Held<'_>) -> Result<Option<Wide>, String> {
    if let Some(Exact::Int(n)) = value.exact() {
        return Ok(Some(Wide::Signed(n.into())));
    }
    match value.describe() {
        Described::Scalar(desc) | Described::Array(desc) => {
            let read = match desc.kind {
                b'u' => to_scalar::<u64>(&desc)
                    .map(|n| Wide::Unsigned(n.into()))
                    .ok(),
                b'i' => to_scalar::<i64>(&desc).map(|n| Wide::Signed(n.into())).ok(),
                _ => None,
            };
            read.map(Some).ok_or_else(|| desc.what())
        }
        Described::BigInt => Ok(value.big_int_wide()),
        _ => Err(value.what()),
    }
}

macro_rules! wide_integers {
    ($($t:ty => $bits:literal),*) => {$(
        /// Any Python int in its range, numpy's integers, and 0-D arrays of
        /// them; like the other integer types, never a bool or a float.
        impl FromResult for $t {
            fn expected() -> String {
                format!(
                    "an integer that fits in {} (a Python or numpy integer, or a 0-D numpy \
                     array of one; a float is not read as an integer, even a whole one)",
                    stringify!($t)
                )
            }
            fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
                let value = value.into_held();
                let found = match read_wide(&value) {
                    Ok(Some(wide)) => {
                        let fits = match wide {
                            Wide::Signed(n) => <$t>::try_from(n).ok(),
                            Wide::Unsigned(n) => <$t>::try_from(n).ok(),
                        };
                        if let Some(n) = fits {
                            return Ok(n);
                        }
                        format!("{wide} in {}", value.what())
                    }
                    Ok(None) => concat!("an int outside the range of ", $bits).to_owned(),
                    Err(what) => what,
                };
                Err(Mismatch::new(Self::expected(), found))
            }
        }
    )*};
}

wide_integers!(i128 => "int128", u128 => "uint128");

/// The usual scalar results read at once: a Python float as `f64`, an int
/// as `i64`, a bool as `bool`, each of exactly Python's own type, which the
/// general path ([`Held::describe`], then a numpy cast) reads to the same
/// value. Every other type and object goes the general way.
trait FromExact: Sized {
    fn from_exact(_: &Held<'_>) -> Option<Self> {
        None
    }
}

impl FromExact for f64 {
    fn from_exact(value: &Held<'_>) -> Option<f64> {
        match value.exact()? {
            Exact::Float(x) => Some(x),
            _ => None,
        }
    }
}

impl FromExact for i64 {
    fn from_exact(value: &Held<'_>) -> Option<i64> {
        match value.exact()? {
            Exact::Int(n) => Some(n),
            _ => None,
        }
    }
}

impl FromExact for bool {
    fn from_exact(value: &Held<'_>) -> Option<bool> {
        match value.exact()? {
            Exact::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl FromExact for f32 {}
impl FromExact for i8 {}
impl FromExact for i16 {}
impl FromExact for i32 {}
impl FromExact for isize {}
impl FromExact for u8 {}
impl FromExact for u16 {}
impl FromExact for u32 {}
impl FromExact for u64 {}
impl FromExact for usize {}
impl FromExact for Complex32 {}
impl FromExact for Complex64 {}

impl FromResult for String {
    fn expected() -> String {
        "a str".into()
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        if let Some(Exact::Str(text)) = value.exact() {
            return Ok(text.to_owned());
        }
        match value.describe() {
            Described::Str => value.str_value().ok_or_else(|| {
                Mismatch::new(
                    Self::expected(),
                    "a str that UTF-8 cannot hold (it has lone surrogates)",
                )
            }),
            // `np.array('cat')`, or one object in a 0-D array: its element.
            Described::Array(desc) if desc.ndim() == 0 && matches!(desc.kind, b'U' | b'O') => {
                let item = value
                    .zero_d_item()
                    .map_err(|e| Mismatch::new(Self::expected(), e.to_string()))?;
                String::from_result(Reader::new(item))
            }
            _ => Err(mismatch::<Self>(&value)),
        }
    }
}

impl FromResult for () {
    fn expected() -> String {
        "None".into()
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        match value.describe() {
            Described::None => Ok(()),
            _ => Err(mismatch::<Self>(&value)),
        }
    }
}

impl<R: FromResult> FromResult for Option<R> {
    fn expected() -> String {
        format!("None or {}", R::expected())
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        match value.describe() {
            Described::None => Ok(None),
            _ => R::from_result(Reader::new(value)).map(Some),
        }
    }
    /// A numeric array holds no `None`: read whole, as a `Vec<R>` of it is,
    /// not through a numpy scalar per element (28 times slower on 10
    /// million values, trial 23).
    fn read_array_as_vec(desc: &ArrayDesc<'_>) -> Option<Result<Vec<Self>, Mismatch>> {
        let read = R::read_array_as_vec(desc)?;
        Some(read.map(|values| values.into_iter().map(Some).collect()))
    }
}

impl<R: FromResult> FromResult for Vec<R> {
    fn expected() -> String {
        R::expected_vec()
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        let mut rows = None;
        // A 1-D array of numbers whose elements are asked for as other than
        // numbers (`Option<f64>`, `Value`, `Object`): item by item.
        let mut listed = false;
        match value.describe() {
            // A 1-D array of objects is read item by item, as a list is
            // (below); so is one of strings or bytes, unless numbers are
            // asked for, which no str is: then the array is the mismatch.
            Described::Array(desc)
                if desc.ndim() == 1
                    && desc.holds_objects()
                    && (desc.kind == b'O' || !R::is_element()) => {}
            Described::Array(desc) => {
                if desc.ndim() == 1 {
                    if let Some(read) = R::read_array_as_vec(&desc) {
                        return read;
                    }
                }
                // Only scalars that copy their value: a structured array's
                // (numpy.void) would point into the array, and so into a
                // lent input the function returned a view of, which the
                // retention check would then find kept by the crate itself.
                if desc.ndim() == 1 && !R::is_element() && desc.items_copy_out() {
                    listed = true;
                } else if desc.ndim() < 2 || R::is_element() {
                    return Err(Mismatch::new(Self::expected(), desc.what()));
                } else {
                    rows = Some((desc.shape[0], desc.ndim()));
                }
            }
            _ => {}
        }
        if let Some((rows, ndim)) = rows {
            // An array of 2 dimensions or more: a Vec of its rows, each read
            // as R (a `Vec<Vec<f64>>` of a matrix).
            let mut out = try_vec(rows, || format!("{rows} rows of an array as Rust values"))?;
            for index in 0..rows {
                let within = || Step::Row { index, ndim };
                let row = value
                    .array_row(index)
                    .map_err(|e| Mismatch::new(Self::expected(), e.to_string()).within(within()))?;
                out.push(R::from_result(Reader::new(row)).map_err(|m| m.within(within()))?);
            }
            return Ok(out);
        }
        let items = match listed {
            true => value.listed_items(),
            false => value.items(),
        };
        let Some(mut items) = items else {
            if let Some(read) = value.bytes_value().and_then(R::read_bytes_as_vec) {
                return Ok(read);
            }
            return Err(mismatch::<Self>(&value));
        };
        let container = items.container();
        let len = items.len();
        let mut out = try_vec(len, || {
            format!("a {container} of {len} elements as Rust values")
        })?;
        for (index, item) in items.by_ref().enumerate() {
            out.push(
                R::from_result(Reader::new(item))
                    .map_err(|m| m.within(Step::Element { container, index }))?,
            );
        }
        match items.changed() {
            Some(found) => Err(Mismatch::new(Self::expected(), found)),
            None => Ok(out),
        }
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
        impl<$($name: FromResult),+> FromResult for ($($name,)+) {
            fn expected() -> String {
                tuple_of($n)
            }
            fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
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
                        .ok_or_else(|| Mismatch::new(Self::expected(), "a tuple that shrank"))
                        .and_then(|item| $name::from_result(Reader::new(item)))
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
fn expected_map<R: FromResult>() -> String {
    format!("a dict with str keys, each value {}", R::expected())
}

/// Reads a dict with str keys into `insert`, each value as `R`; `insert`
/// says whether the key was new to the map. Two keys of one text (a str
/// subclass's with its own `__eq__` or `__hash__`, and a str) are a
/// mismatch, not a value lost.
fn read_dict<R: FromResult>(
    value: &Held<'_>,
    mut insert: impl FnMut(String, R) -> bool,
) -> Result<(), Mismatch> {
    let Some(mut entries) = value.dict_entries() else {
        return Err(Mismatch::new(expected_map::<R>(), value.what()));
    };
    for (position, (key_object, item)) in entries.by_ref().enumerate() {
        let Some(key) = key_object.str_value() else {
            return Err(
                Mismatch::new("a str key", key_object.what()).within(Step::DictKey(position))
            );
        };
        let item = R::from_result(Reader::new(item))
            .map_err(|m| m.within(Step::DictValue(key.clone())))?;
        if !insert(key, item) {
            // The text again, from the key (the map took the string).
            let key = key_object.str_value().unwrap_or_default();
            let found = format!("{}, a second key '{key}'", key_object.what());
            return Err(
                Mismatch::new("a key of a text of its own", found).within(Step::DictKey(position))
            );
        }
    }
    match entries.changed() {
        Some(found) => Err(Mismatch::new(expected_map::<R>(), found)),
        None => Ok(()),
    }
}

impl<R: FromResult, S: BuildHasher + Default> FromResult for HashMap<String, R, S> {
    fn expected() -> String {
        expected_map::<R>()
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        let mut map = HashMap::with_hasher(S::default());
        read_dict(&value, |key, item| map.insert(key, item).is_none())?;
        Ok(map)
    }
}

impl<R: FromResult> FromResult for BTreeMap<String, R> {
    fn expected() -> String {
        expected_map::<R>()
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        let mut map = BTreeMap::new();
        read_dict(&value, |key, item| map.insert(key, item).is_none())?;
        Ok(map)
    }
}

impl<U: Element> FromResult for NdVec<U> {
    fn expected() -> String {
        expected_array::<U>(None)
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        match value.describe() {
            Described::Array(desc) | Described::Scalar(desc) => {
                let data = to_elements::<U>(&desc, Self::expected)?;
                Ok(NdVec::from_c_order(data, desc.shape.to_vec()))
            }
            _ => Err(mismatch::<Self>(&value)),
        }
    }
}

impl<U: Element> FromResult for ResultView<U> {
    fn expected() -> String {
        ResultView::<U>::expected()
    }
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        ResultView::new(value)
    }
}
