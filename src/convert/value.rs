//! [`Value`]: any result of a known kind, read without naming its shape in
//! advance (as `serde_json::Value` is for JSON), and the builder of
//! arguments of your own: dicts, lists and tuples of values.

use std::fmt;

use num_complex::{Complex32, Complex64};

use crate::array::element::Element;
use crate::array::nd::NdVec;
use crate::array::owned::give_nd;
use crate::convert::from_result::FromResult;
use crate::convert::from_result::Reader;
use crate::convert::into_arg::{Arg, ArgKind, Given, IntoArg, Scalar};
use crate::convert::read::{to_elements, to_scalar, Mismatch, Step};
use crate::error::PyException;
use crate::object::{ArrayDesc, Described, Held, Wide};
use crate::runtime::{Gil, StrongRef};

/// A Python value of any of the kinds below, read whatever its shape, and
/// given back to Python as the same kind.
///
/// | Python | `Value` |
/// |---|---|
/// | `None` | [`Value::None`] |
/// | `bool`, `numpy.bool_` | [`Value::Bool`] |
/// | `int`, numpy integers | [`Value::Int`] (or [`Value::UInt`] above `i64::MAX`, [`Value::Int128`] and [`Value::UInt128`] outside 64 bits) |
/// | `float`, numpy floats | [`Value::Float`] |
/// | `complex`, `numpy.complex64/128` | [`Value::Complex`] |
/// | `str` | [`Value::Str`] |
/// | `bytes`, `bytearray` | [`Value::Bytes`] (a `bytes` when given back) |
/// | `list` | [`Value::List`] |
/// | `tuple` (named tuples too) | [`Value::Tuple`] |
/// | `dict` | [`Value::Dict`], in the dict's order, keys of any of these kinds |
/// | a numeric numpy array, any rank | [`Value::Array`], its dtype kept ([`ArrayValue`]) |
/// | a numpy array of strings, bytes or objects | [`Value::List`] of its items (of lists, for 2-D and more), as `tolist()` gives |
///
/// A float16 array is read as the float32 array that holds its values
/// exactly ([`ArrayValue::Float32`]), a float16 scalar as a [`Value::Float`].
///
/// Anything else (a set, an object of a class, an `int` beyond 128 bits, a
/// numpy array of dates, a value nested more than
/// [`Value::MAX_DEPTH`] deep) is [`Error::BadResult`](crate::Error::BadResult)
/// saying which and where.
///
/// As an argument, a `Value` becomes the Python value it describes; its
/// arrays are given to Python without a copy, which may keep them
/// ([`OwnedArray`](crate::OwnedArray)). It is how a type of your own
/// becomes an argument: see [`IntoArg`].
///
/// ```
/// use std::collections::HashMap;
/// use py_in_mem::{Function, Value};
///
/// let info = Function::from_source(
///     "doc_value",
///     "import numpy as np\n\
///      def info():\n    return {'name': 'digits', 'n': 64, 'classes': [0, 1], 'w': np.ones(2)}\n\
///      def echo(x):\n    return x\n",
///     "info",
/// )?;
/// let info: HashMap<String, Value> = info.call0()?;
/// assert_eq!(info["name"], Value::from("digits"));
/// assert_eq!(info["n"].as_i64(), Some(64));
/// assert_eq!(info["classes"], Value::list([0, 1]));
/// assert_eq!(info["w"].as_array::<f64>().map(|w| w.as_slice()), Some(&[1.0, 1.0][..]));
///
/// // And back: a dict made in Rust, read again as it went.
/// let sent = Value::dict([("k", Value::tuple([1.5, 2.5])), ("none", Value::None)]);
/// let back: Value = Function::load("doc_value", "echo")?.call(sent.clone())?;
/// assert_eq!(back, sent);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An `int` in `i64`'s range.
    Int(i64),
    /// An `int` above `i64::MAX`, up to `u64::MAX`.
    UInt(u64),
    /// An `int` outside 64 bits that `i128` holds: below `i64::MIN`, or
    /// above `u64::MAX` up to `i128::MAX`.
    Int128(i128),
    /// An `int` above `i128::MAX`, up to `u128::MAX`.
    UInt128(u128),
    /// A `float`.
    Float(f64),
    /// A `complex`.
    Complex(Complex64),
    /// A `str`.
    Str(String),
    /// A `bytes` (or, read, a `bytearray`).
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<Value>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `dict`, its entries in order.
    Dict(Vec<(Value, Value)>),
    /// A numeric numpy array.
    Array(ArrayValue),
}

macro_rules! array_value {
    ($($variant:ident($t:ty) = $kind:literal $size:literal, $dtype:literal;)*) => {
        /// A numeric numpy array of any rank, read with its dtype: the
        /// array of a [`Value`].
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum ArrayValue {
            $(
                #[doc = concat!("dtype `", $dtype, "`.")]
                $variant(NdVec<$t>),
            )*
        }

        impl ArrayValue {
            /// The array's shape.
            pub fn shape(&self) -> &[usize] {
                match self {
                    $(ArrayValue::$variant(a) => a.shape(),)*
                }
            }

            /// numpy's name of the dtype: `"float64"`, `"int32"`, ...
            pub fn dtype(&self) -> &'static str {
                match self {
                    $(ArrayValue::$variant(_) => $dtype,)*
                }
            }

            fn read(desc: &ArrayDesc<'_>) -> Result<ArrayValue, Mismatch> {
                let expected = || "a numpy array of a numeric or bool dtype".to_string();
                Ok(match (desc.kind, desc.itemsize) {
                    $(($kind, $size) => ArrayValue::$variant(NdVec::from_c_order(
                        to_elements::<$t>(desc, expected)?,
                        desc.shape.to_vec(),
                    )),)*
                    // float16, which no Rust type holds: as the float32
                    // array that holds each value exactly.
                    (b'f', 2) => ArrayValue::Float32(NdVec::from_c_order(
                        to_elements::<f32>(desc, expected)?,
                        desc.shape.to_vec(),
                    )),
                    _ => return Err(Mismatch::new(expected(), desc.what())),
                })
            }

            fn give(self, gil: &Gil) -> Result<StrongRef, PyException> {
                match self {
                    $(ArrayValue::$variant(a) => give_nd(gil, Box::new(a)),)*
                }
            }
        }

        $(
            impl From<NdVec<$t>> for ArrayValue {
                fn from(array: NdVec<$t>) -> Self {
                    ArrayValue::$variant(array)
                }
            }
        )*
    };
}

array_value! {
    Bool(bool) = b'b' 1, "bool";
    Int8(i8) = b'i' 1, "int8";
    Int16(i16) = b'i' 2, "int16";
    Int32(i32) = b'i' 4, "int32";
    Int64(i64) = b'i' 8, "int64";
    UInt8(u8) = b'u' 1, "uint8";
    UInt16(u16) = b'u' 2, "uint16";
    UInt32(u32) = b'u' 4, "uint32";
    UInt64(u64) = b'u' 8, "uint64";
    Float32(f32) = b'f' 4, "float32";
    Float64(f64) = b'f' 8, "float64";
    Complex64(Complex32) = b'c' 8, "complex64";
    Complex128(Complex64) = b'c' 16, "complex128";
}

impl Value {
    /// How deep a `Value` read from Python may nest: deeper (or a list that
    /// contains itself) is a mismatch, not a stack overflow. A `Value`
    /// argument nested deeper is [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub const MAX_DEPTH: usize = 128;

    /// A dict of `entries`, in order.
    ///
    /// ```
    /// let v = py_in_mem::Value::dict([("a", 1), ("b", 2)]);
    /// assert_eq!(v.get("b").and_then(|b| b.as_i64()), Some(2));
    /// ```
    pub fn dict<K: Into<Value>, V: Into<Value>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A list of `items`.
    pub fn list<V: Into<Value>>(items: impl IntoIterator<Item = V>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }

    /// A tuple of `items`.
    pub fn tuple<V: Into<Value>>(items: impl IntoIterator<Item = V>) -> Value {
        Value::Tuple(items.into_iter().map(Into::into).collect())
    }

    /// Whether this is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The `bool`, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The `int`, if this is one that `i64` holds.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The `int`, if this is one that `i128` holds (any but a
    /// [`Value::UInt128`]).
    ///
    /// ```
    /// use py_in_mem::Value;
    /// assert_eq!(Value::from(u64::MAX).as_i128(), Some(u64::MAX.into()));
    /// assert_eq!(Value::from(-1i128 << 100).as_i128(), Some(-1 << 100));
    /// assert_eq!(Value::from(u128::MAX).as_i128(), None);
    /// ```
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::Int(n) => Some((*n).into()),
            Value::UInt(n) => Some((*n).into()),
            Value::Int128(n) => Some(*n),
            _ => None,
        }
    }

    /// The `int`, if this is one that `u128` holds (not a negative one).
    pub fn as_u128(&self) -> Option<u128> {
        match self {
            Value::UInt128(n) => Some(*n),
            _ => self.as_i128().and_then(|n| u128::try_from(n).ok()),
        }
    }

    /// The number as `f64`: a `float`, or an `int` that `f64` holds
    /// exactly.
    ///
    /// ```
    /// use py_in_mem::Value;
    /// assert_eq!(Value::Float(0.5).as_f64(), Some(0.5));
    /// assert_eq!(Value::Int(3).as_f64(), Some(3.0));
    /// assert_eq!(Value::Int(i64::MAX).as_f64(), None);
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(n) => {
                let x = *n as f64;
                (x as i64 == *n && x != 9.223_372_036_854_776e18).then_some(x)
            }
            _ => None,
        }
    }

    /// The text, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a list or a tuple.
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The value under the str key `key`, if this is a dict that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The array, if this is a numpy array of element type `T` exactly.
    pub fn as_array<T: Element>(&self) -> Option<&NdVec<T>> {
        let Value::Array(array) = self else {
            return None;
        };
        let any: &dyn std::any::Any = match array {
            ArrayValue::Bool(a) => a,
            ArrayValue::Int8(a) => a,
            ArrayValue::Int16(a) => a,
            ArrayValue::Int32(a) => a,
            ArrayValue::Int64(a) => a,
            ArrayValue::UInt8(a) => a,
            ArrayValue::UInt16(a) => a,
            ArrayValue::UInt32(a) => a,
            ArrayValue::UInt64(a) => a,
            ArrayValue::Float32(a) => a,
            ArrayValue::Float64(a) => a,
            ArrayValue::Complex64(a) => a,
            ArrayValue::Complex128(a) => a,
        };
        any.downcast_ref()
    }

    /// The items of a tuple (a [`Value::Tuple`]), a list or an array of
    /// objects (a [`Value::List`]), each read at most `depth - 1` levels
    /// deep.
    fn read_items(value: &Held<'_>, depth: usize) -> Result<Value, Mismatch> {
        let Some(mut items) = value.items() else {
            return Err(Mismatch::new(
                "a tuple, a list or an array of strings, bytes or objects",
                value.what(),
            ));
        };
        let container = items.container();
        let mut out = Vec::new();
        for (index, item) in items.by_ref().enumerate() {
            out.push(
                Value::read(item, depth - 1)
                    .map_err(|m| m.within(Step::Element { container, index }))?,
            );
        }
        if let Some(found) = items.changed() {
            return Err(Mismatch::new(Value::expected(), found));
        }
        Ok(if container == "tuple" {
            Value::Tuple(out)
        } else {
            Value::List(out)
        })
    }

    /// Reads `value`, at most `depth` levels deep.
    fn read(value: Held<'_>, depth: usize) -> Result<Value, Mismatch> {
        if depth == 0 {
            return Err(Mismatch::new(
                format!("a value nested at most {} levels deep", Value::MAX_DEPTH),
                "one nested deeper (or a container that holds itself)",
            ));
        }
        Ok(match value.describe() {
            Described::None => Value::None,
            Described::Str => Value::Str(value.str_value().ok_or_else(|| {
                Mismatch::new(
                    "a str",
                    "a str that UTF-8 cannot hold (it has lone surrogates)",
                )
            })?),
            Described::Scalar(desc) => scalar(&desc)?,
            // Strings, bytes or objects: a list of them (of lists, for
            // more dimensions), as `tolist()` gives.
            Described::Array(desc) if desc.holds_objects() && desc.ndim() > 0 => {
                Value::read_items(&value, depth)?
            }
            Described::Array(desc) => Value::Array(ArrayValue::read(&desc)?),
            Described::BigInt => match value.big_int_wide() {
                Some(Wide::Signed(n)) => Value::from(n),
                Some(Wide::Unsigned(n)) => Value::from(n),
                None => {
                    return Err(Mismatch::new(
                        "an int that i128 or u128 holds",
                        "an int outside 128 bits",
                    ))
                }
            },
            Described::Tuple | Described::List => Value::read_items(&value, depth)?,
            Described::Dict => {
                let mut out = Vec::new();
                let mut entries = value.dict_entries().expect("a dict has entries");
                for (position, (key, item)) in entries.by_ref().enumerate() {
                    // A key at the dict's own level: hashable, so a str, a
                    // number or a tuple (whose items count deeper), and at
                    // the depth limit the value, not its key, is too deep.
                    let key =
                        Value::read(key, depth).map_err(|m| m.within(Step::DictKey(position)))?;
                    let item = Value::read(item, depth - 1).map_err(|m| {
                        m.within(match &key {
                            Value::Str(key) => Step::DictValue(key.clone()),
                            _ => Step::DictKey(position),
                        })
                    })?;
                    out.push((key, item));
                }
                if let Some(found) = entries.changed() {
                    return Err(Mismatch::new(Value::expected(), found));
                }
                Value::Dict(out)
            }
            Described::Other => match value.bytes_value() {
                Some(bytes) => Value::Bytes(bytes),
                None => return Err(Mismatch::new(Value::expected(), value.what())),
            },
        })
    }

    /// The Python object this value describes. Arrays are given to Python
    /// (taken out, leaving `None`); the rest is only read, so that what the
    /// value holds is freed where the value is dropped: an async call's
    /// value goes back to its future ([`crate::serve`]), not freed on the
    /// serving thread.
    pub(crate) fn make_python(&mut self, gil: &Gil) -> Result<StrongRef, PyException> {
        let scalar = |s: Scalar<'_>| s.to_python(gil).map(Held::into_strong);
        match self {
            Value::None => scalar(Scalar::None),
            Value::Bool(b) => scalar(Scalar::Bool(*b)),
            Value::Int(n) => scalar(Scalar::Int(*n)),
            Value::UInt(n) => scalar(Scalar::UInt(*n)),
            Value::Int128(n) => scalar(Scalar::Int128(*n)),
            Value::UInt128(n) => scalar(Scalar::UInt128(*n)),
            Value::Float(x) => scalar(Scalar::Float(*x)),
            Value::Complex(c) => scalar(Scalar::Complex(*c)),
            Value::Str(s) => scalar(Scalar::Str(s)),
            Value::Bytes(b) => Held::bytes(gil, b).map(Held::into_strong),
            Value::List(items) => {
                let list = Held::list(gil, items.len())?;
                for (i, item) in items.iter_mut().enumerate() {
                    list.set_list_item(i, item.make_python(gil)?);
                }
                Ok(list.into_strong())
            }
            Value::Tuple(items) => {
                let tuple = Held::tuple(gil, items.len())?;
                for (i, item) in items.iter_mut().enumerate() {
                    tuple.set_tuple_item(i, item.make_python(gil)?);
                }
                Ok(tuple.into_strong())
            }
            Value::Dict(entries) => {
                let dict = Held::dict(gil)?;
                for (key, value) in entries.iter_mut() {
                    let key = Held::new(gil, key.make_python(gil)?);
                    let value = Held::new(gil, value.make_python(gil)?);
                    dict.set_dict_item(&key, &value)?;
                }
                Ok(dict.into_strong())
            }
            Value::Array(_) => match std::mem::replace(self, Value::None) {
                Value::Array(array) => array.give(gil),
                _ => unreachable!("matched an array"),
            },
        }
    }
}

/// A number read as the `Value` of its kind.
fn scalar(desc: &ArrayDesc<'_>) -> Result<Value, Mismatch> {
    Ok(match desc.kind {
        b'b' => Value::Bool(to_scalar(desc)?),
        b'i' => Value::Int(to_scalar(desc)?),
        b'u' => match to_scalar::<i64>(desc) {
            Ok(n) => Value::Int(n),
            Err(_) => Value::UInt(to_scalar(desc)?),
        },
        b'f' => Value::Float(to_scalar(desc)?),
        b'c' => Value::Complex(to_scalar(desc)?),
        _ => return Err(Mismatch::new(Value::expected(), desc.what())),
    })
}

impl FromResult for Value {
    fn expected() -> String {
        "None, a bool, int, float, complex, str, bytes, list, tuple, dict or numeric numpy array"
            .into()
    }

    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        Value::read(value.into_held(), Value::MAX_DEPTH)
    }
}

impl<'a> IntoArg<'a> for Value {
    /// A value nested deeper than a result may be ([`Value::MAX_DEPTH`])
    /// makes the call [`Error::InvalidArgument`](crate::Error::InvalidArgument),
    /// before Python is called: its object is made recursively, and would
    /// overflow the stack.
    fn into_arg(mut self) -> Arg<'a> {
        if self.nested_deeper_than(Value::MAX_DEPTH) {
            return Arg(ArgKind::Invalid(format!(
                "a Value nested more than {} levels deep cannot be an argument",
                Value::MAX_DEPTH
            )));
        }
        Arg(ArgKind::Given(Given::new(move |gil| self.make_python(gil))))
    }
}

impl Value {
    /// Whether some value inside this one sits `max` or more containers
    /// deep (lists, tuples, dicts): as [`Value::read`] refuses to read one.
    /// Without recursion, so that any depth is measured.
    fn nested_deeper_than(&self, max: usize) -> bool {
        if !matches!(self, Value::List(_) | Value::Tuple(_) | Value::Dict(_)) {
            // A scalar (a `String` argument is one): no stack to allocate.
            return max == 0;
        }
        let mut stack = vec![(self, 0usize)];
        while let Some((value, level)) = stack.pop() {
            if level >= max {
                return true;
            }
            match value {
                Value::List(items) | Value::Tuple(items) => {
                    stack.extend(items.iter().map(|item| (item, level + 1)));
                }
                Value::Dict(entries) => {
                    for (key, value) in entries {
                        stack.push((key, level + 1));
                        stack.push((value, level + 1));
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// An owned string, given to Python for good as a [`Value::Str`] is: what a
/// request's text is, for an async call's `'static` arguments.
impl<'a> IntoArg<'a> for String {
    fn into_arg(self) -> Arg<'a> {
        Value::Str(self).into_arg()
    }
}

/// Strings given as a Python `list` of `str` (column names for pandas, the
/// labels of a classifier), made for the call as [`Value::list`] makes
/// one. Numbers go as arrays instead: a slice of numbers is lent to numpy.
macro_rules! str_lists {
    ($($t:ty),* $(,)?) => {$(
        impl<'a> IntoArg<'a> for $t {
            fn into_arg(self) -> Arg<'a> {
                Value::list(self.iter().map(|s| Value::Str(String::from(&s[..])))).into_arg()
            }
        }
    )*};
}

str_lists!(
    Vec<String>,
    Vec<&str>,
    &[String],
    &[&str],
    &Vec<String>,
    &Vec<&str>
);

impl<'a, const N: usize> IntoArg<'a> for [&str; N] {
    fn into_arg(self) -> Arg<'a> {
        Value::list(self.map(|s| Value::Str(s.to_owned()))).into_arg()
    }
}

impl fmt::Display for Value {
    /// Python's `repr` of the value, roughly (arrays as `array(shape, dtype)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(n) => write!(f, "{n}"),
            Value::UInt(n) => write!(f, "{n}"),
            Value::Int128(n) => write!(f, "{n}"),
            Value::UInt128(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Complex(c) => write!(f, "({}{:+}j)", c.re, c.im),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Value::List(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            Value::Tuple(items) => {
                f.write_str("(")?;
                join(f, items)?;
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Value::Dict(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Array(a) => write!(f, "array(shape={:?}, dtype={})", a.shape(), a.dtype()),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from($v: $t) -> Self {
                $e
            }
        }
    )*};
}

value_from! {
    () => |_v| Value::None,
    bool => |v| Value::Bool(v),
    i8 => |v| Value::Int(v.into()),
    i16 => |v| Value::Int(v.into()),
    i32 => |v| Value::Int(v.into()),
    i64 => |v| Value::Int(v),
    u8 => |v| Value::Int(v.into()),
    u16 => |v| Value::Int(v.into()),
    u32 => |v| Value::Int(v.into()),
    u64 => |v| i64::try_from(v).map_or(Value::UInt(v), Value::Int),
    // Each int has one variant, whatever type it came from: the smallest of
    // Int, UInt, Int128 and UInt128 that holds it, as a read gives.
    i128 => |v| match (i64::try_from(v), u64::try_from(v)) {
        (Ok(n), _) => Value::Int(n),
        (_, Ok(n)) => Value::UInt(n),
        _ => Value::Int128(v),
    },
    u128 => |v| i128::try_from(v).map_or(Value::UInt128(v), Value::from),
    usize => |v| i64::try_from(v).map_or(Value::UInt(v as u64), Value::Int),
    isize => |v| Value::Int(v as i64),
    f32 => |v| Value::Float(v.into()),
    f64 => |v| Value::Float(v),
    Complex32 => |v| Value::Complex(Complex64::new(v.re.into(), v.im.into())),
    Complex64 => |v| Value::Complex(v),
    &str => |v| Value::Str(v.to_owned()),
    String => |v| Value::Str(v),
    ArrayValue => |v| Value::Array(v),
}

impl<T: Element> From<NdVec<T>> for Value {
    fn from(array: NdVec<T>) -> Self {
        // Every Element type is one of ArrayValue's, so the cast always finds
        // its variant.
        let mut slot = Some(array);
        let any: &mut dyn std::any::Any = &mut slot;
        macro_rules! pick {
            ($($t:ty),*) => {$(
                if let Some(a) = any.downcast_mut::<Option<NdVec<$t>>>() {
                    return Value::Array(a.take().expect("taken once").into());
                }
            )*};
        }
        pick!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, Complex32, Complex64);
        unreachable!("every Element type is an ArrayValue element")
    }
}

impl<V: Into<Value>> From<Option<V>> for Value {
    fn from(value: Option<V>) -> Self {
        value.map_or(Value::None, Into::into)
    }
}

impl<V: Into<Value>> From<Vec<V>> for Value {
    /// A list.
    fn from(items: Vec<V>) -> Self {
        Value::list(items)
    }
}
