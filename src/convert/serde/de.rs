//! The `serde::Deserializer` over a Python object: dicts, lists, tuples,
//! scalars, strs, bytes, numpy scalars and numeric arrays, and objects read
//! by attribute (dataclasses, named tuples). Strs are visited in place
//! (borrowed for the visit), dicts walked with `PyDict_Next`; nothing goes
//! through [`Value`](crate::Value) first.

use std::fmt;
use std::marker::PhantomData;

use ::serde::de::value::BorrowedStrDeserializer;
use ::serde::de::{
    self, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use ::serde::forward_to_deserialize_any;

use crate::array::element::Value as Element;
use crate::convert::read::{read_elements, to_scalar, Mismatch, Step};
use crate::convert::value::Value;
const MAX_DEPTH: usize = Value::MAX_DEPTH;
use crate::object::{ArrayDesc, Described, Entries, Exact, Held, Items, Wide};

/// Why a value did not deserialize: a [`Mismatch`], and what is still to
/// be filled in by the deserializer that visited it (serde's visitors know
/// what they expected, the deserializer what the Python object was).
#[derive(Debug)]
pub(crate) struct DeError {
    mismatch: Mismatch,
    pending: Pending,
}

/// What of a [`DeError`]'s `found` the deserializer still has to say.
#[derive(Debug)]
enum Pending {
    /// Nothing: the error is complete.
    Done,
    /// The object visited is the wrong type: found is what it is.
    Type,
    /// This field is missing from it.
    Missing(&'static str),
    /// It has this many elements, not the number expected.
    Length(usize),
}

impl DeError {
    fn new(expected: impl Into<String>, found: impl Into<String>) -> DeError {
        DeError {
            mismatch: Mismatch::new(expected, found),
            pending: Pending::Done,
        }
    }

    fn pending(expected: String, found: String, pending: Pending) -> DeError {
        DeError {
            mismatch: Mismatch::new(expected, found),
            pending,
        }
    }

    /// The same error, seen from one level further out.
    fn within(self, step: Step) -> DeError {
        DeError {
            mismatch: self.mismatch.within(step),
            pending: Pending::Done,
        }
    }

    /// Fills in what the visited object was (`what` describes it), if the
    /// visitor left that to the deserializer.
    fn found(self, what: impl FnOnce() -> String) -> DeError {
        let found = match self.pending {
            Pending::Done => return self,
            Pending::Type => what(),
            Pending::Missing(field) => format!("{} that has no '{field}'", what()),
            Pending::Length(1) => format!("{} of 1 element", what()),
            Pending::Length(n) => format!("{} of {n} elements", what()),
        };
        DeError::new(self.mismatch.expected().to_owned(), found)
    }

    /// Fills in `held` as the visited object.
    fn found_in(self, held: &Held<'_>) -> DeError {
        self.found(|| held.what())
    }

    pub(crate) fn into_mismatch(self) -> Mismatch {
        self.mismatch
    }
}

impl From<Mismatch> for DeError {
    fn from(mismatch: Mismatch) -> DeError {
        DeError {
            mismatch,
            pending: Pending::Done,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.mismatch.fmt(f)
    }
}

impl std::error::Error for DeError {}

/// `'a', 'b', 'c'`.
fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    names.join(", ")
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError::new(
            "a value the type's Deserialize accepts",
            format!("one it refused: {msg}"),
        )
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> DeError {
        DeError::pending(phrase(exp), unexpected(&unexp), Pending::Type)
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> DeError {
        DeError::new(phrase(exp), unexpected(&unexp))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> DeError {
        DeError::pending(phrase(exp), format!("{len} elements"), Pending::Length(len))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(
            format!("one of the variants {}", quoted(expected)),
            format!("the variant '{variant}'"),
        )
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(
            format!("only the fields {}", quoted(expected)),
            format!("a field '{field}'"),
        )
    }

    fn missing_field(field: &'static str) -> DeError {
        DeError::pending(
            format!("a value for the field '{field}'"),
            format!("no '{field}'"),
            Pending::Missing(field),
        )
    }

    fn duplicate_field(field: &'static str) -> DeError {
        DeError::new(format!("the field '{field}' once"), "it more than once")
    }
}

/// What serde's visitors expect, in the words of Python's types: serde's
/// "f64" is "a float", "a map" "a dict".
fn phrase(exp: &dyn Expected) -> String {
    let s = exp.to_string();
    match s.as_str() {
        "f32" | "f64" => "a float".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => format!("an int that fits {s}"),
        "a boolean" => "a bool".into(),
        "a string" | "a borrowed string" => "a str".into(),
        "a character" | "a char" => "a str of one character".into(),
        "unit" => "None".into(),
        "option" => "None or a value".into(),
        "a sequence" => "a list, tuple or numpy array".into(),
        "a map" => "a dict".into(),
        "a byte array" | "byte array" | "bytes" => "bytes".into(),
        _ => {
            if let Some(n) = s.strip_prefix("a tuple of size ") {
                format!("a tuple or list of {}", elements(n))
            } else if let Some(n) = s.strip_prefix("an array of length ") {
                format!("a list, tuple or numpy array of {}", elements(n))
            } else if let Some((name, n)) = s
                .strip_prefix("struct ")
                .and_then(|rest| rest.split_once(" with "))
            {
                format!("a tuple or list of {n} for struct {name}")
            } else if s.starts_with("struct ") {
                format!("a dict (or an object with attributes) for {s}")
            } else if s.starts_with("tuple struct ") {
                format!("a tuple or list for {s}")
            } else if s.starts_with("enum ") {
                format!("a str or a dict of one key for {s}")
            } else {
                s
            }
        }
    }
}

/// "1 element" or "`n` elements".
fn elements(n: &str) -> String {
    match n {
        "1" => "1 element".into(),
        n => format!("{n} elements"),
    }
}

/// A value serde saw, in the words of Python's types.
fn unexpected(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("the bool {}", if *b { "True" } else { "False" }),
        Unexpected::Unsigned(n) => format!("the int {n}"),
        Unexpected::Signed(n) => format!("the int {n}"),
        Unexpected::Float(x) => format!("the float {x:?}"),
        Unexpected::Char(c) => format!("the str {:?}", c.to_string()),
        Unexpected::Str(s) => format!("the str {s:?}"),
        Unexpected::Bytes(_) => "a bytes".into(),
        Unexpected::Unit => "None".into(),
        Unexpected::Option => "an optional value".into(),
        Unexpected::Seq => "a list or tuple".into(),
        Unexpected::Map => "a dict".into(),
        Unexpected::Other(other) => (*other).to_owned(),
        other => other.to_string(),
    }
}

/// An error for a visitor that takes no such object: `found` what it is.
fn refuse(exp: &dyn Expected, found: impl Into<String>) -> DeError {
    DeError::new(phrase(exp), found)
}

/// A sequence that knows its length and how much of it was read.
trait Counted {
    /// Its elements, all told.
    fn count(&self) -> usize;
    /// Those read so far.
    fn read(&self) -> usize;
}

/// Visits `seq`, which `visitor` must read to its end: a visitor that
/// stops early (a tuple, an array, a tuple struct or a struct read by
/// position, of fewer elements) is refused, as serde_json and pythonize
/// refuse it, rather than given the first elements and the rest lost.
fn visit_whole<'de, V, S>(visitor: V, mut seq: S) -> Result<V::Value, DeError>
where
    V: Visitor<'de>,
    S: SeqAccess<'de, Error = DeError> + Counted,
{
    let expected = phrase(&visitor);
    let value = visitor.visit_seq(&mut seq)?;
    if seq.read() < seq.count() {
        let count = seq.count();
        return Err(DeError::pending(
            expected,
            format!("{count} elements"),
            Pending::Length(count),
        ));
    }
    Ok(value)
}

/// A complex number or the bytes of `bytes`, visited as a sequence, read
/// to its end as [`visit_whole`] reads one.
fn visit_values<'de, V, T, I>(visitor: V, values: I) -> Result<V::Value, DeError>
where
    V: Visitor<'de>,
    I: ExactSizeIterator<Item = T>,
    T: IntoDeserializer<'de, DeError>,
{
    struct Values<I> {
        values: I,
        count: usize,
        read: usize,
    }
    impl<'de, T: IntoDeserializer<'de, DeError>, I: Iterator<Item = T>> SeqAccess<'de> for Values<I> {
        type Error = DeError;
        fn next_element_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<Option<S::Value>, DeError> {
            match self.values.next() {
                Some(value) => {
                    self.read += 1;
                    seed.deserialize(value.into_deserializer()).map(Some)
                }
                None => Ok(None),
            }
        }
        fn size_hint(&self) -> Option<usize> {
            Some(self.count - self.read)
        }
    }
    impl<I> Counted for Values<I> {
        fn count(&self) -> usize {
            self.count
        }
        fn read(&self) -> usize {
            self.read
        }
    }
    let count = values.len();
    visit_whole(
        visitor,
        Values {
            values,
            count,
            read: 0,
        },
    )
}

/// Nested deeper than [`MAX_DEPTH`].
fn too_deep() -> DeError {
    DeError::new(
        format!("a value nested at most {MAX_DEPTH} levels deep"),
        "one nested deeper (or a container that holds itself)",
    )
}

/// The object a [`De`] reads: its own reference, or one it borrows (a
/// dict's key, kept for the message about its value).
enum Hold<'h, 'py> {
    Own(Held<'py>),
    Ref(&'h Held<'py>),
}

/// The deserializer over one Python object, `depth` levels of nesting
/// still allowed below it.
pub(crate) struct De<'h, 'py> {
    hold: Hold<'h, 'py>,
    depth: usize,
}

impl<'h, 'py> De<'h, 'py> {
    /// The deserializer of a whole result.
    pub(crate) fn new(held: Held<'py>) -> De<'h, 'py> {
        De {
            hold: Hold::Own(held),
            depth: MAX_DEPTH,
        }
    }

    fn own(held: Held<'py>, depth: usize) -> De<'h, 'py> {
        De {
            hold: Hold::Own(held),
            depth,
        }
    }

    fn borrowed(held: &'h Held<'py>, depth: usize) -> De<'h, 'py> {
        De {
            hold: Hold::Ref(held),
            depth,
        }
    }

    fn held(&self) -> &Held<'py> {
        match &self.hold {
            Hold::Own(held) => held,
            Hold::Ref(held) => held,
        }
    }
}

/// A number (a Python or numpy scalar, a 0-D array) visited as its kind.
fn visit_number<'de, V: Visitor<'de>>(
    desc: &ArrayDesc<'_>,
    visitor: V,
) -> Result<V::Value, DeError> {
    match desc.kind {
        b'b' => visitor.visit_bool(to_scalar(desc)?),
        b'i' => visitor.visit_i64(to_scalar(desc)?),
        b'u' => visitor.visit_u64(to_scalar(desc)?),
        b'f' => visitor.visit_f64(to_scalar(desc)?),
        b'c' => {
            let z: num_complex::Complex64 = to_scalar(desc)?;
            visit_values(visitor, [z.re, z.im].into_iter())
        }
        _ => Err(refuse(&visitor, desc.what())),
    }
}

/// A numeric numpy array as nested sequences, one per dimension.
fn visit_array<'de, V: Visitor<'de>>(
    desc: &ArrayDesc<'_>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, DeError> {
    if desc.ndim() == 0 {
        return visit_number(desc, visitor);
    }
    if depth < desc.ndim() {
        return Err(too_deep());
    }
    // An empty array may still have a huge count of empty rows (shape
    // (2**40, 0)): visiting them would take forever.
    let rows: usize = desc
        .shape
        .iter()
        .take_while(|&&n| n != 0)
        .fold(1usize, |n, &d| n.saturating_mul(d));
    if desc.len() == 0 && rows > 1 << 20 {
        return Err(DeError::new(
            "an array with fewer than 2**20 rows",
            desc.what(),
        ));
    }
    let values = read_elements(desc, Ok::<Element, String>)?;
    let what = || desc.what();
    visit_whole(
        visitor,
        ArraySeq {
            values: &values,
            shape: desc.shape,
            what: &what,
            next: 0,
        },
    )
}

/// The rows of a numpy array (elements, in its last dimension).
struct ArraySeq<'v> {
    /// In C order.
    values: &'v [Element],
    shape: &'v [usize],
    /// The array, described for a message (only a message asks).
    what: &'v dyn Fn() -> String,
    next: usize,
}

impl<'de> SeqAccess<'de> for ArraySeq<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let (&count, inner) = self
            .shape
            .split_first()
            .expect("an array level has a shape");
        if self.next >= count {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        let value = if inner.is_empty() {
            seed.deserialize(ElementDe(self.values[index], self.what))
        } else {
            let stride = inner.iter().fold(1usize, |n, &d| n.saturating_mul(d));
            let start = index.saturating_mul(stride).min(self.values.len());
            let end = start.saturating_add(stride).min(self.values.len());
            seed.deserialize(ArrayDe {
                values: &self.values[start..end],
                shape: inner,
                what: self.what,
            })
        };
        value.map(Some).map_err(|e| {
            e.within(match self.shape.len() {
                1 => Step::Element {
                    container: "1-D array",
                    index,
                },
                ndim => Step::Row { index, ndim },
            })
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.shape[0].saturating_sub(self.next))
    }
}

impl Counted for ArraySeq<'_> {
    fn count(&self) -> usize {
        self.shape[0]
    }
    fn read(&self) -> usize {
        self.next
    }
}

/// A row of a numpy array, of one dimension or more.
struct ArrayDe<'v> {
    values: &'v [Element],
    shape: &'v [usize],
    what: &'v dyn Fn() -> String,
}

impl<'de> de::Deserializer<'de> for ArrayDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let rows = self.shape[0];
        let seq = ArraySeq {
            values: self.values,
            shape: self.shape,
            what: self.what,
            next: 0,
        };
        visit_whole(visitor, seq).map_err(|e| {
            // A length mismatch adds the count itself.
            let counted = matches!(e.pending, Pending::Length(_));
            e.found(|| match counted {
                true => "a row of a numpy array".into(),
                false => format!("a row of {rows} elements of a numpy array"),
            })
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(ExactFloat::<f32, _>::new(visitor))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(ExactFloat::<f64, _>::new(visitor))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// One element of a numpy array, and the array described.
struct ElementDe<'v>(Element, &'v dyn Fn() -> String);

impl<'de> de::Deserializer<'de> for ElementDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = self.0;
        match value {
            Element::Bool(b) => visitor.visit_bool(b),
            Element::Int(n) => match (i64::try_from(n), u64::try_from(n)) {
                (Ok(n), _) => visitor.visit_i64(n),
                (_, Ok(n)) => visitor.visit_u64(n),
                _ => visitor.visit_i128(n),
            },
            Element::Float(x) => visitor.visit_f64(x),
            Element::Complex(re, im) => visit_values(visitor, [re, im].into_iter()),
        }
        .map_err(|e| {
            e.found(|| {
                let kind = match value {
                    Element::Bool(_) => "the bool",
                    Element::Int(_) => "the int",
                    Element::Float(_) => "the float",
                    Element::Complex(..) => "the complex",
                };
                format!("{kind} {value}, an element of {}", (self.1)())
            })
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(ExactFloat::<f32, _>::new(visitor))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(ExactFloat::<f64, _>::new(visitor))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The items of a tuple or list.
struct ItemsSeq<'h, 'py> {
    items: Items<'h, 'py>,
    container: &'static str,
    next: usize,
    depth: usize,
}

impl<'de> SeqAccess<'de> for ItemsSeq<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return match self.items.changed() {
                Some(found) => Err(DeError::new(
                    "a list that stays as it is while it is read",
                    found,
                )),
                None => Ok(None),
            };
        };
        let index = self.next;
        self.next += 1;
        seed.deserialize(De::own(item, self.depth))
            .map(Some)
            .map_err(|e| {
                e.within(Step::Element {
                    container: self.container,
                    index,
                })
            })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

impl Counted for ItemsSeq<'_, '_> {
    fn count(&self) -> usize {
        self.next + self.items.len()
    }
    fn read(&self) -> usize {
        self.next
    }
}

/// A tuple or list visited as a sequence.
fn visit_items<'de, V: Visitor<'de>>(
    held: &Held<'_>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, DeError> {
    if depth == 0 {
        return Err(too_deep());
    }
    let Some(items) = held.items() else {
        return Err(refuse(&visitor, held.what()));
    };
    let container = items.container();
    visit_whole(
        visitor,
        ItemsSeq {
            items,
            container,
            next: 0,
            depth: depth - 1,
        },
    )
}

/// The entries of a dict.
struct DictMap<'h, 'py> {
    entries: Entries<'h, 'py>,
    /// The key of the entry being read (kept for the message about its
    /// value), its value until read, and its position.
    key: Option<Held<'py>>,
    value: Option<Held<'py>>,
    position: usize,
    depth: usize,
}

/// Where a dict's value is: under its str key, or at its key's position.
fn value_step(key: &Held<'_>, position: usize) -> Step {
    match key.str_slice() {
        Some(key) => Step::DictValue(key.to_owned()),
        None => Step::DictKey(position),
    }
}

impl<'de> MapAccess<'de> for DictMap<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return match self.entries.changed() {
                Some(found) => Err(DeError::new(
                    "a dict that stays as it is while it is read",
                    found,
                )),
                None => Ok(None),
            };
        };
        if self.key.is_some() {
            self.position += 1;
        }
        let read = seed
            .deserialize(De::borrowed(&key, self.depth))
            .map_err(|e| e.within(Step::DictKey(self.position)))?;
        self.key = Some(key);
        self.value = Some(value);
        Ok(Some(read))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let (Some(key), Some(value)) = (&self.key, self.value.take()) else {
            return Err(DeError::new("a key before its value", "a value alone"));
        };
        seed.deserialize(De::own(value, self.depth))
            .map_err(|e| e.within(value_step(key, self.position)))
    }
}

/// A dict visited as a map.
fn visit_dict<'de, V: Visitor<'de>>(
    held: &Held<'_>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, DeError> {
    if depth == 0 {
        return Err(too_deep());
    }
    let Some(entries) = held.dict_entries() else {
        return Err(refuse(&visitor, held.what()));
    };
    visitor.visit_map(DictMap {
        entries,
        key: None,
        value: None,
        position: 0,
        depth: depth - 1,
    })
}

/// A struct's fields read as attributes of an object (a dataclass, a named
/// tuple, any instance): each field its attribute; a missing attribute is
/// a missing field.
struct AttrMap<'h, 'py> {
    of: &'h Held<'py>,
    fields: &'static [&'static str],
    next: usize,
    value: Option<(&'static str, Held<'py>)>,
    depth: usize,
}

impl<'de> MapAccess<'de> for AttrMap<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some(&field) = self.fields.get(self.next) {
            self.next += 1;
            if field.contains('\0') {
                continue;
            }
            match self.of.getattr(field) {
                Ok(value) => {
                    self.value = Some((field, value));
                    return seed
                        .deserialize(BorrowedStrDeserializer::<DeError>::new(field))
                        .map(Some);
                }
                Err(e) if e.is_instance_of("AttributeError") => continue,
                Err(e) => {
                    return Err(DeError::new(
                        format!("an attribute '{field}' that reads"),
                        format!(
                            "{} whose attribute raised {}: {}",
                            self.of.what(),
                            e.type_name,
                            e.message
                        ),
                    ))
                }
            }
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let Some((field, value)) = self.value.take() else {
            return Err(DeError::new("a key before its value", "a value alone"));
        };
        seed.deserialize(De::own(value, self.depth))
            .map_err(|e| e.within(Step::Attribute(field.to_owned())))
    }
}

/// An object's attributes visited as a struct's fields.
fn visit_attrs<'de, V: Visitor<'de>>(
    held: &Held<'_>,
    fields: &'static [&'static str],
    depth: usize,
    visitor: V,
) -> Result<V::Value, DeError> {
    if depth == 0 {
        return Err(too_deep());
    }
    visitor.visit_map(AttrMap {
        of: held,
        fields,
        next: 0,
        value: None,
        depth: depth - 1,
    })
}

/// Whether `held` has every one of `fields` as an attribute. One whose
/// reading raises anything but `AttributeError` counts as there, as
/// Python's `hasattr` has it: reading the fields then reports that
/// exception, which `PyObject_HasAttrString` would have swallowed.
fn has_all(held: &Held<'_>, fields: &[&str]) -> bool {
    !fields.is_empty()
        && fields.iter().all(|f| {
            !f.contains('\0')
                && held
                    .getattr(f)
                    .map_or_else(|e| !e.is_instance_of("AttributeError"), |_| true)
        })
}

/// An enum given as a one-key dict: the key names the variant, the value
/// is its content.
struct DictEnum<'py> {
    key: Held<'py>,
    value: Held<'py>,
    depth: usize,
}

impl<'de, 'py> EnumAccess<'de> for DictEnum<'py> {
    type Error = DeError;
    type Variant = VariantDe<'py>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, VariantDe<'py>), DeError> {
        let variant = seed
            .deserialize(De::borrowed(&self.key, self.depth))
            .map_err(|e| e.within(Step::DictKey(0)))?;
        let step = value_step(&self.key, 0);
        Ok((
            variant,
            VariantDe {
                value: self.value,
                step,
                depth: self.depth,
            },
        ))
    }
}

/// The content of an enum's variant: the value of its one-key dict.
struct VariantDe<'py> {
    value: Held<'py>,
    step: Step,
    depth: usize,
}

impl<'de> VariantAccess<'de> for VariantDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value.describe() {
            Described::None => Ok(()),
            _ => Err(DeError::new("None (a unit variant)", self.value.what()).within(self.step)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(De::own(self.value, self.depth))
            .map_err(|e| e.within(self.step))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_tuple(De::own(self.value, self.depth), len, visitor)
            .map_err(|e| e.within(self.step))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(De::own(self.value, self.depth), "", fields, visitor)
            .map_err(|e| e.within(self.step))
    }
}

impl<'de> de::Deserializer<'de> for De<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let depth = self.depth;
        let held = self.held();
        // The usual values at once, as the general look below reads them.
        if let Some(exact) = held.exact() {
            return match exact {
                Exact::Float(x) => visitor.visit_f64(x),
                Exact::Int(n) => visitor.visit_i64(n),
                Exact::Bool(b) => visitor.visit_bool(b),
                Exact::Str(text) => visitor.visit_str(text),
            }
            .map_err(|e: DeError| e.found_in(held));
        }
        match held.describe() {
            Described::None => visitor.visit_unit(),
            Described::Str => match held.str_slice() {
                Some(text) => visitor.visit_str(text),
                None => Err(refuse(
                    &visitor,
                    "a str that UTF-8 cannot hold (it has lone surrogates)",
                )),
            },
            Described::Scalar(desc) => visit_number(&desc, visitor),
            // Strings, bytes or objects: read item by item, as a list.
            Described::Array(desc) if desc.holds_objects() && desc.ndim() > 0 => {
                visit_items(held, depth, visitor)
            }
            Described::Array(desc) => visit_array(&desc, depth, visitor),
            Described::Tuple | Described::List => visit_items(held, depth, visitor),
            Described::Dict => visit_dict(held, depth, visitor),
            // An i128 or u128 field takes it; any other visitor refuses
            // the 128-bit value by name.
            Described::BigInt => match held.big_int_wide() {
                Some(value) => {
                    let visited = match value {
                        Wide::Unsigned(n) => visitor.visit_u128(n),
                        Wide::Signed(n) => visitor.visit_i128(n),
                    };
                    // A visitor's refusal of a scalar is about the scalar:
                    // named by its value (serde's own says "i128").
                    visited.map_err(|e: DeError| {
                        DeError::new(e.mismatch.expected().to_owned(), format!("the int {value}"))
                    })
                }
                None => Err(refuse(
                    &visitor,
                    "an int outside the ranges of int128 and uint128",
                )),
            },
            Described::Other => match held.bytes_value() {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                None => Err(refuse(&visitor, held.what())),
            },
        }
        .map_err(|e| e.found_in(held))
    }

    /// A str at once (a dict's keys, a field's name, most text); anything
    /// else as [`deserialize_any`](Self::deserialize_any) reads it.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.held().exact_str() {
            Some(text) => visitor
                .visit_str(text)
                .map_err(|e: DeError| e.found_in(self.held())),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// A float at once; anything else as
    /// [`deserialize_any`](Self::deserialize_any) reads it.
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.held().exact_float() {
            Some(x) => visitor
                .visit_f64(x)
                .map_err(|e: DeError| e.found_in(self.held())),
            None => self.deserialize_any(ExactFloat::<f64, _>::new(visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.held().describe() {
            Described::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// A dict by key; a named tuple that has every field by attribute; a
    /// plain tuple or list by position; any other object (a dataclass, an
    /// instance) by attribute.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        /// How a struct is read from the object.
        enum By {
            Key,
            Attribute,
            Position,
            Other,
        }
        let depth = self.depth;
        let held = self.held();
        let by = if held.is_exact_dict() {
            By::Key
        } else {
            match held.describe() {
                Described::Dict => By::Key,
                Described::Tuple if held.is_tuple_subclass() && has_all(held, fields) => {
                    By::Attribute
                }
                Described::Tuple | Described::List => By::Position,
                Described::Other => By::Attribute,
                _ => By::Other,
            }
        };
        match by {
            By::Key => visit_dict(held, depth, visitor),
            By::Attribute => visit_attrs(held, fields, depth, visitor),
            By::Position => visit_items(held, depth, visitor),
            By::Other => return self.deserialize_any(visitor),
        }
        .map_err(|e| e.found_in(held))
    }

    /// A str names a unit variant; a dict of one key a variant and its
    /// content (serde_json's "externally tagged" form).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let depth = self.depth;
        let held = self.held();
        match held.describe() {
            Described::Str => match held.str_slice() {
                Some(text) => visitor.visit_enum(text.into_deserializer()),
                None => Err(refuse(
                    &visitor,
                    "a str that UTF-8 cannot hold (it has lone surrogates)",
                )),
            },
            Described::Dict => {
                if depth == 0 {
                    return Err(too_deep());
                }
                let mut entries = held.dict_entries().expect("a dict has entries");
                match (entries.next(), entries.next()) {
                    (Some((key, value)), None) => visitor.visit_enum(DictEnum {
                        key,
                        value,
                        depth: depth - 1,
                    }),
                    _ => Err(refuse(
                        &visitor,
                        format!("a dict of {} keys", held.dict_len()),
                    )),
                }
            }
            _ => Err(refuse(&visitor, held.what())),
        }
        .map_err(|e| e.found_in(held))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Nothing of it is read: whatever it holds (however deep) is fine.
        visitor.visit_unit()
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(ExactFloat::<f32, _>::new(visitor))
    }

    /// `bytes` and `bytearray` as a sequence of their bytes (a `Vec<u8>`,
    /// which asks for a sequence), anything else as
    /// [`deserialize_any`](Self::deserialize_any) reads it.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.held().bytes_value() {
            Some(bytes) => {
                visit_values(visitor, bytes.into_iter()).map_err(|e| e.found_in(self.held()))
            }
            None => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char
        bytes byte_buf unit unit_struct tuple tuple_struct map
    }
}

/// A float type that [`ExactFloat`] reads numbers into.
trait Float: Sized {
    /// What a number it cannot hold exactly was expected to be.
    const EXACTLY: &'static str;
    /// `x` as this type, if it is one exactly (NaN and the infinities are).
    fn exactly(x: f64) -> Option<Self>;
    fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E>;
}

impl Float for f32 {
    const EXACTLY: &'static str = "a number that f32 holds exactly";
    fn exactly(x: f64) -> Option<f32> {
        let narrow = x as f32;
        (f64::from(narrow) == x || x.is_nan()).then_some(narrow)
    }
    fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_f32(self)
    }
}

impl Float for f64 {
    const EXACTLY: &'static str = "a number that f64 holds exactly";
    fn exactly(x: f64) -> Option<f64> {
        Some(x)
    }
    fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_f64(self)
    }
}

/// A float's visitor (`F`: `f32` or `f64`), refusing a number `F` cannot
/// hold exactly, as the crate's own float results refuse one: serde's own
/// visitors cast with `as`, so an `f32` read `1e300` as `inf` and `0.1` as
/// a nearby `f32`, and an `f64` read the int `2**53 + 1` as `2**53`,
/// silently.
struct ExactFloat<F, V>(V, PhantomData<F>);

impl<F: Float, V> ExactFloat<F, V> {
    fn new(visitor: V) -> Self {
        ExactFloat(visitor, PhantomData)
    }

    /// The int `n` as `F`, if it holds it exactly; else `unexpected`. (An
    /// int's `f64` converts back to the same int only if it is that int:
    /// `as` saturates, and the bounds themselves are not floats.)
    fn int<E: de::Error>(n: i128, unexpected: Unexpected<'_>) -> Result<F, E> {
        let x = n as f64;
        Self::whole(x, x as i128 == n && n != i128::MAX, unexpected)
    }

    /// `x`, an int's nearest `f64`, as `F` if `is_int` (it is that int)
    /// and `F` holds it; else `unexpected`.
    fn whole<E: de::Error>(x: f64, is_int: bool, unexpected: Unexpected<'_>) -> Result<F, E> {
        is_int
            .then(|| F::exactly(x))
            .flatten()
            .ok_or_else(|| E::invalid_value(unexpected, &F::EXACTLY))
    }
}

impl<'de, F: Float, V: Visitor<'de>> Visitor<'de> for ExactFloat<F, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_f32<E: de::Error>(self, x: f32) -> Result<V::Value, E> {
        self.0.visit_f32(x)
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<V::Value, E> {
        F::exactly(x)
            .ok_or_else(|| E::invalid_value(Unexpected::Float(x), &F::EXACTLY))?
            .visit(self.0)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<V::Value, E> {
        Self::int(n.into(), Unexpected::Signed(n))?.visit(self.0)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<V::Value, E> {
        Self::int(n.into(), Unexpected::Unsigned(n))?.visit(self.0)
    }
    fn visit_i128<E: de::Error>(self, n: i128) -> Result<V::Value, E> {
        let shown = format!("the int {n}");
        Self::int(n, Unexpected::Other(&shown))?.visit(self.0)
    }
    fn visit_u128<E: de::Error>(self, n: u128) -> Result<V::Value, E> {
        let shown = format!("the int {n}");
        match i128::try_from(n) {
            Ok(n) => Self::int(n, Unexpected::Other(&shown))?.visit(self.0),
            // Past i128: 2**127 to 2**128 - 1, of which f64 holds some.
            Err(_) => {
                let x = n as f64;
                let is_int = x as u128 == n && n != u128::MAX;
                Self::whole(x, is_int, Unexpected::Other(&shown))?.visit(self.0)
            }
        }
    }
    // Anything else goes to the type's own visitor, to accept or refuse.
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<V::Value, E> {
        self.0.visit_bool(b)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<V::Value, E> {
        self.0.visit_str(text)
    }
    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<V::Value, E> {
        self.0.visit_byte_buf(bytes)
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }
}
