//! serde, the `pythonize` way (feature `serde`): any `Deserialize` type
//! read from a result through a `serde::Deserializer` over the Python
//! object itself (`de`), any `Serialize` type made into an argument through
//! a `serde::Serializer` that builds a [`Value`] (`ser`). The public face:
//! [`Serde`], the [`serde_result!`](crate::serde_result) and
//! [`serde_arg!`](crate::serde_arg) macros, and [`to_value`].

mod de;
mod ser;

use ::serde::de::DeserializeOwned;
use ::serde::Serialize;

use crate::convert::from_result::{FromResult, Reader};
use crate::convert::into_arg::{Arg, ArgKind, IntoArg};
use crate::convert::read::Mismatch;
use crate::convert::value::Value;
use crate::error::Error;

/// A `serde` type as a result or an argument (feature `serde`), the way
/// `pythonize` does it for PyO3.
///
/// As a result, `Serde<T>` reads any `T: Deserialize` straight from the
/// Python object (nothing is converted to an intermediate value first):
///
/// | Python | serde sees |
/// |---|---|
/// | `dict` | a map: a struct's fields by str key, a `HashMap`'s entries (keys of any kind) |
/// | `list`, `tuple` | a sequence: `Vec`, tuples, tuple structs, and a struct by position |
/// | a named tuple, a dataclass, any other object, read as a struct | the struct's fields by attribute (`getattr`); a missing attribute is a missing field |
/// | `bool`, `int`, `float`, numpy scalars | bool, i64 (u64 above `i64::MAX`; i128 or u128 outside 64 bits, which only an `i128` or `u128` takes), f64 (an `f32` takes only a number it holds exactly) |
/// | `complex`, numpy complex | a sequence `[re, im]` |
/// | `str` | a str, borrowed for the visit |
/// | `bytes`, `bytearray` | bytes |
/// | `None` | unit, `Option::None` |
/// | a numeric numpy array | nested sequences, one per dimension |
/// | a str, or a dict of one key | an enum: a unit variant, or the key's variant with the value as content (serde_json's externally tagged form) |
///
/// A tuple is read as a struct by position unless it is a named tuple (a
/// subclass of tuple) that has every one of the struct's fields as an
/// attribute: then by name. An `int` beyond 128 bits, a value nested more
/// than 128 levels deep (a list that holds itself) and
/// any mismatch are [`Error::BadResult`], naming where (`element 1 of the
/// list in the value under key 'rows'`, `attribute 'x'`).
///
/// As an argument, `Serde<T>` (or `Serde<&T>`) for `T: Serialize` is the
/// [`Value`] `T` serializes to ([`to_value`]): structs and maps dicts,
/// sequences lists, tuples and tuple structs tuples, unit and `None`
/// `None`, enums as serde_json writes them. A value that cannot be (one
/// nested more than 128 levels deep, a `Serialize` impl's own error) makes
/// the call [`Error::InvalidArgument`],
/// before Python is called.
///
/// ```
/// use py_in_mem::{Function, Serde};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize)]
/// struct Row { id: u32, values: Vec<f64> }
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Summary { id: u32, total: f64, label: Option<String> }
///
/// let f = Function::from_source(
///     "doc_serde",
///     "def summarize(row):\n    return {'id': row['id'], 'total': sum(row['values']), 'label': None}\n",
///     "summarize",
/// )?;
/// let Serde(summary): Serde<Summary> = f.call(Serde(&Row { id: 7, values: vec![1.0, 2.5] }))?;
/// assert_eq!(summary, Summary { id: 7, total: 3.5, label: None });
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Serde<T>(pub T);

impl<T: DeserializeOwned> FromResult for Serde<T> {
    fn expected() -> String {
        expected::<T>()
    }

    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        from_result(value).map(Serde)
    }
}

impl<'a, T: Serialize> IntoArg<'a> for Serde<T> {
    fn into_arg(self) -> Arg<'a> {
        into_arg(&self.0)
    }
}

/// What a `T: Deserialize` is read from, for messages.
#[doc(hidden)]
pub fn expected<T>() -> String {
    format!(
        "a value that deserializes as {}",
        std::any::type_name::<T>()
    )
}

/// Reads `value` as `T` through the crate's deserializer: what
/// [`serde_result!`](crate::serde_result) expands to.
#[doc(hidden)]
pub fn from_result<T: DeserializeOwned>(value: Reader<'_>) -> Result<T, Mismatch> {
    T::deserialize(de::De::new(value.into_held())).map_err(de::DeError::into_mismatch)
}

/// `value` as an argument, serialized now: what
/// [`serde_arg!`](crate::serde_arg) expands to.
#[doc(hidden)]
pub fn into_arg<'a, T: ?Sized + Serialize>(value: &T) -> Arg<'a> {
    match to_value(value) {
        Ok(value) => value.into_arg(),
        Err(Error::InvalidArgument(why)) => Arg(ArgKind::Invalid(why)),
        Err(other) => Arg(ArgKind::Invalid(other.to_string())),
    }
}

/// The [`Value`] a `Serialize` type describes (feature `serde`): what
/// [`Serde`] passes as an argument. Structs and maps become
/// [`Value::Dict`] (a struct's keys its field names), sequences
/// [`Value::List`], tuples and tuple structs [`Value::Tuple`], unit and
/// `None` [`Value::None`], bytes [`Value::Bytes`], a unit variant its name
/// as a str and any other variant a dict of one key (as serde_json writes
/// them); an `i128` or `u128` outside 64 bits [`Value::Int128`] or
/// [`Value::UInt128`]. A value nested more than [`Value::MAX_DEPTH`] levels
/// deep, or a `Serialize` impl's own error, is [`Error::InvalidArgument`].
///
/// ```
/// use py_in_mem::Value;
///
/// #[derive(serde::Serialize)]
/// enum Shape { Point, Circle { r: f64 }, Pair(i32, i32) }
///
/// let v = py_in_mem::serde::to_value(&vec![Shape::Point, Shape::Circle { r: 1.5 }, Shape::Pair(1, 2)])?;
/// assert_eq!(v, Value::list([
///     Value::from("Point"),
///     Value::dict([("Circle", Value::dict([("r", 1.5)]))]),
///     Value::dict([("Pair", Value::tuple([1, 2]))]),
/// ]));
/// assert_eq!(py_in_mem::serde::to_value(&(1u128 << 100))?, Value::Int128(1 << 100));
/// assert_eq!(py_in_mem::serde::to_value(&u128::MAX)?, Value::UInt128(u128::MAX));
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub fn to_value<T: ?Sized + Serialize>(value: &T) -> Result<Value, Error> {
    value.serialize(ser::ValueSerializer::TOP).map_err(|e| {
        Error::InvalidArgument(format!(
            "{} could not be made into a Python value: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Implements [`FromResult`](crate::FromResult) for your own
/// `Deserialize` types (feature `serde`), so a call returns them directly,
/// read as [`Serde`] reads them:
///
/// ```
/// use py_in_mem::{Function, Object};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Prediction { label: String, score: f64 }
/// py_in_mem::serde_result!(Prediction);
///
/// #[derive(serde::Serialize)]
/// struct Row { x: f64 }
/// py_in_mem::serde_arg!(Row);
///
/// let source = "class M:\n    def predict_one(self, row):\n        return {'label': 'big' if row['x'] > 1 else 'small', 'score': row['x'] / 2}\n";
/// let model: Object = Function::from_source("doc_serde_result", source, "M")?.call0()?;
/// let row = Row { x: 3.0 };
/// let p: Prediction = model.method("predict_one")?.call(&row)?;
/// assert_eq!((p.label.as_str(), p.score), ("big", 1.5));
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// Types without generic parameters only; for a generic type, use
/// [`Serde<T>`](Serde).
#[macro_export]
macro_rules! serde_result {
    ($($t:ty),+ $(,)?) => {$(
        impl $crate::FromResult for $t {
            fn expected() -> ::std::string::String {
                $crate::serde::__expected::<$t>()
            }
            fn from_result(
                value: $crate::Reader<'_>,
            ) -> ::core::result::Result<Self, $crate::Mismatch> {
                $crate::serde::__from_result(value)
            }
        }
    )+};
}

/// Implements [`IntoArg`](crate::IntoArg) for your own `Serialize` types
/// and references to them (feature `serde`), so a call takes them
/// directly, serialized as [`Serde`] does (see
/// [`serde_result!`](crate::serde_result) for an example). Types without
/// generic parameters only; for a generic type, use [`Serde<T>`](Serde).
#[macro_export]
macro_rules! serde_arg {
    ($($t:ty),+ $(,)?) => {$(
        impl<'a> $crate::IntoArg<'a> for $t {
            fn into_arg(self) -> $crate::Arg<'a> {
                $crate::serde::__into_arg(&self)
            }
        }
        impl<'a, 'b> $crate::IntoArg<'a> for &'b $t {
            fn into_arg(self) -> $crate::Arg<'a> {
                $crate::serde::__into_arg(self)
            }
        }
    )+};
}
