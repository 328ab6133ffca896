//! The `serde::Serializer` that builds a [`Value`]: structs and maps become
//! dicts, sequences lists, tuples tuples, enums serde_json's externally
//! tagged form; and [`Value`]'s own `Serialize` and `Deserialize`.

use std::fmt;

use ::serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use ::serde::ser::{self, Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};

use crate::convert::value::{ArrayValue, Value};

/// Why a value could not be made into a [`Value`].
#[derive(Debug)]
pub(crate) struct SerError(String);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> SerError {
        SerError(msg.to_string())
    }
}

/// Builds the [`Value`] a `Serialize` type describes, nested at most
/// `depth` levels more (a deeper value is an error, as a deeper result is a
/// mismatch: not a stack overflow).
#[derive(Clone, Copy)]
pub(crate) struct ValueSerializer {
    depth: usize,
}

impl ValueSerializer {
    /// A value's own serializer: [`Value::MAX_DEPTH`] levels.
    pub(crate) const TOP: ValueSerializer = ValueSerializer {
        depth: Value::MAX_DEPTH,
    };

    /// The serializer of a container's items, one level down.
    fn enter(self) -> Result<ValueSerializer, SerError> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(ValueSerializer { depth }),
            None => Err(SerError(format!(
                "it is nested more than {} levels deep",
                Value::MAX_DEPTH
            ))),
        }
    }
}

/// A list, tuple or dict being built.
pub(crate) struct Items {
    items: Vec<Value>,
    /// The items' serializer.
    inner: ValueSerializer,
    /// `Some(variant)`: a tuple variant, `{variant: (..)}`.
    variant: Option<&'static str>,
    tuple: bool,
}

impl Items {
    fn end_value(self) -> Value {
        let value = if self.tuple {
            Value::Tuple(self.items)
        } else {
            Value::List(self.items)
        };
        match self.variant {
            Some(variant) => Value::Dict(vec![(Value::from(variant), value)]),
            None => value,
        }
    }
}

/// A dict being built (a map, a struct or a struct variant).
pub(crate) struct Entries {
    entries: Vec<(Value, Value)>,
    /// The keys' and values' serializer.
    inner: ValueSerializer,
    key: Option<Value>,
    variant: Option<&'static str>,
}

impl Entries {
    fn end_value(self) -> Value {
        let value = Value::Dict(self.entries);
        match self.variant {
            Some(variant) => Value::Dict(vec![(Value::from(variant), value)]),
            None => value,
        }
    }
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = SerError;
    type SerializeSeq = Items;
    type SerializeTuple = Items;
    type SerializeTupleStruct = Items;
    type SerializeTupleVariant = Items;
    type SerializeMap = Entries;
    type SerializeStruct = Entries;
    type SerializeStructVariant = Entries;

    fn serialize_bool(self, v: bool) -> Result<Value, SerError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, SerError> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, SerError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, SerError> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, SerError> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, SerError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, SerError> {
        Ok(Value::None)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Value, SerError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, SerError> {
        Ok(Value::None)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, SerError> {
        Ok(Value::None)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, SerError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, SerError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, SerError> {
        Ok(Value::Dict(vec![(
            Value::from(variant),
            value.serialize(self.enter()?)?,
        )]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items, SerError> {
        Ok(Items {
            inner: self.enter()?,
            items: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            variant: None,
            tuple: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Items, SerError> {
        Ok(Items {
            inner: self.enter()?,
            items: Vec::with_capacity(len.min(4096)),
            variant: None,
            tuple: true,
        })
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Items, SerError> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Items, SerError> {
        Ok(Items {
            inner: self.enter()?,
            items: Vec::with_capacity(len.min(4096)),
            variant: Some(variant),
            tuple: true,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Entries, SerError> {
        Ok(Entries {
            inner: self.enter()?,
            entries: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Entries, SerError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Entries, SerError> {
        Ok(Entries {
            inner: self.enter()?,
            entries: Vec::with_capacity(len.min(4096)),
            key: None,
            variant: Some(variant),
        })
    }
}

impl SerializeSeq for Items {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        self.items.push(value.serialize(self.inner)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

impl SerializeTuple for Items {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

impl ser::SerializeTupleStruct for Items {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

impl ser::SerializeTupleVariant for Items {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

impl SerializeMap for Entries {
    type Ok = Value;
    type Error = SerError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), SerError> {
        self.key = Some(key.serialize(self.inner)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        let Some(key) = self.key.take() else {
            return Err(SerError("a map's value was given before its key".into()));
        };
        self.entries.push((key, value.serialize(self.inner)?));
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

impl ser::SerializeStruct for Entries {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.entries
            .push((Value::from(key), value.serialize(self.inner)?));
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

impl ser::SerializeStructVariant for Entries {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(self.end_value())
    }
}

/// The rows of an array of shape `shape`, its elements in C order, as
/// nested sequences.
struct Rows<'a, T> {
    values: &'a [T],
    shape: &'a [usize],
}

impl<T: Copy + Into<Value>> Serialize for Rows<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some((&count, inner)) = self.shape.split_first() else {
            return match self.values.first() {
                Some(&v) => v.into().serialize(serializer),
                None => serializer.serialize_unit(),
            };
        };
        let mut seq = serializer.serialize_seq(Some(count))?;
        if inner.is_empty() {
            for &v in self.values.iter().take(count) {
                seq.serialize_element(&v.into())?;
            }
        } else {
            let stride = inner.iter().fold(1usize, |n, &d| n.saturating_mul(d));
            for i in 0..count {
                let start = i.saturating_mul(stride).min(self.values.len());
                let end = start.saturating_add(stride).min(self.values.len());
                seq.serialize_element(&Rows {
                    values: &self.values[start..end],
                    shape: inner,
                })?;
            }
        }
        seq.end()
    }
}

/// As serde_json's `Value`: `None` a unit, numbers numbers, a complex
/// number a `(re, im)` tuple, bytes bytes, lists sequences, tuples tuples,
/// dicts maps, arrays nested sequences.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        macro_rules! rows {
            ($a:expr) => {
                Rows {
                    values: $a.as_slice(),
                    shape: $a.shape(),
                }
                .serialize(serializer)
            };
        }
        match self {
            Value::None => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(n) => serializer.serialize_i64(*n),
            Value::UInt(n) => serializer.serialize_u64(*n),
            Value::Int128(n) => serializer.serialize_i128(*n),
            Value::UInt128(n) => serializer.serialize_u128(*n),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Complex(z) => (z.re, z.im).serialize(serializer),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(items) => items.serialize(serializer),
            Value::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Array(array) => match array {
                ArrayValue::Bool(a) => rows!(a),
                ArrayValue::Int8(a) => rows!(a),
                ArrayValue::Int16(a) => rows!(a),
                ArrayValue::Int32(a) => rows!(a),
                ArrayValue::Int64(a) => rows!(a),
                ArrayValue::UInt8(a) => rows!(a),
                ArrayValue::UInt16(a) => rows!(a),
                ArrayValue::UInt32(a) => rows!(a),
                ArrayValue::UInt64(a) => rows!(a),
                ArrayValue::Float32(a) => rows!(a),
                ArrayValue::Float64(a) => rows!(a),
                ArrayValue::Complex64(a) => rows!(a),
                ArrayValue::Complex128(a) => rows!(a),
            },
        }
    }
}

/// Any self-describing input: unit and none as `None`, numbers, strs,
/// bytes, sequences as lists, maps as dicts (keys of any kind).
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Dict(entries))
    }
}
