//! The conversion of results, Python to Rust: one trait, [`FromResult`],
//! implemented per Rust type (the crate's own impls are in `impls`), and
//! the [`Reader`] an impl of your own reads a Python object with. The type a call asks for decides how its
//! result is read; the call machinery (the calls of
//! [`Function`](crate::Function)) knows nothing of the types, and calls
//! [`convert`] on whatever came back.

mod impls;

use crate::convert::read::{expected_indices, to_indices, Mismatch, Step};
use crate::error::PyException;
use crate::object::{interned, ArrayDesc, Described, Held};
use crate::runtime::{Gil, StrongRef};

/// A Rust type that a Python function's result converts into, checked and
/// without loss. The type asked for decides how the result is read:
///
/// | Python returns | Rust type |
/// |---|---|
/// | a number: a numpy scalar, a 0-D array, or a Python `int`/`float`/`bool`/`complex` | `f64`, `f32`, `i8`..`i64`, `u8`..`u64`, `isize`, `usize`, `bool`, [`Complex32`](crate::num_complex::Complex32), [`Complex64`](crate::num_complex::Complex64) |
/// | `str` | `String` |
/// | `None` | `()`, or `None` of an `Option<R>` (anything else is read as `R`) |
/// | a 1-D numpy array, a list or a tuple | `Vec<R>` (an array only for a numeric `R`) |
/// | a numpy array of any rank, with its shape | [`NdVec<U>`](crate::NdVec); `ndarray::Array<U, D>` with the `ndarray` feature |
/// | a numpy array, read in place | [`ResultView<U>`](crate::ResultView) |
/// | a tuple of 1 to 12 elements | `(A,)` .. `(A, B, C, D, E, F, G, H, I, J, K, L)` |
/// | a dict with `str` keys | `HashMap<String, R>`, `BTreeMap<String, R>` |
/// | any of these, whatever its shape | [`Value`](crate::Value) |
/// | a Python object, held | [`Object`](crate::Object) |
/// | anything, your own way | a type of your own: implement `from_result` with a [`Reader`] |
/// | dicts, lists, tuples, scalars, numpy arrays, dataclasses, named tuples (feature `serde`) | any `Deserialize` type `T`, as `Serde<T>`, or directly after `py_in_mem::serde_result!(T)` |
///
/// Numbers follow [`Element`](crate::Element)'s rule: an `int32` reads as `i64`, a `float64`
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
///     "doc_from_result.pair returned an unexpected element 0 of the list in element 1 of the tuple: \
///      expected a bool (Python's or numpy's, or a 0-D numpy array of bool), found an object of type int"
/// );
/// assert!(matches!(err, Error::BadResult { .. }));
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// [`Error::BadResult`]: crate::Error::BadResult
pub trait FromResult: Sized {
    /// What this type is read from, for messages ("a dict with keys 'label'
    /// and 'score'"): the `expected` of [`Error::BadResult`](crate::Error::BadResult). By default,
    /// "a value that reads as" the type's name.
    fn expected() -> String {
        format!("a value that reads as {}", std::any::type_name::<Self>())
    }

    /// Reads `value`, a Python object, as this type: through the
    /// [`Reader`]'s items, attributes and elements, each read as another
    /// `FromResult` type. A mismatch says what was expected and what was
    /// found; the crate adds where inside the result it was.
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch>;

    /// A 1-D numeric array as a `Vec<Self>`, for the element types; `None`
    /// for types a numpy array's elements cannot be.
    #[doc(hidden)]
    fn read_array_as_vec(_desc: &ArrayDesc<'_>) -> Option<Result<Vec<Self>, Mismatch>> {
        None
    }

    /// Whether `Self` is a numpy array's element type (a `Vec<Self>` reads
    /// 1-D arrays only); else a `Vec<Self>` reads an array of 2 dimensions
    /// or more row by row.
    #[doc(hidden)]
    fn is_element() -> bool {
        false
    }

    /// `bytes` or a `bytearray` (copied out) as a `Vec<Self>`: for `u8`;
    /// `None` for every other type.
    #[doc(hidden)]
    fn read_bytes_as_vec(_bytes: Vec<u8>) -> Option<Vec<Self>> {
        None
    }

    /// What a `Vec<Self>` is read from.
    #[doc(hidden)]
    fn expected_vec() -> String {
        format!(
            "a list or tuple whose every element is {}",
            Self::expected()
        )
    }
}

/// Converts a call's `result` to `R`.
pub(crate) fn convert<R: FromResult>(gil: &Gil, result: StrongRef) -> Result<R, Mismatch> {
    R::from_result(Reader::new(Held::new(gil, result)))
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

/// A Python object being read into a Rust type, in
/// [`FromResult::from_result`]. It is only ever lent to a conversion, while
/// the GIL is held, so nothing about it can outlive the call it came from.
///
/// Each accessor reads a part of the object as any [`FromResult`] type and,
/// on a mismatch, says where it was (`element 1 of the tuple`, `attribute
/// 'coef_' of the object`), as the crate's own conversions do.
///
/// ```
/// use py_in_mem::{FromResult, Function, Mismatch, Reader};
///
/// /// A result of `{"label": str, "score": float}` or `(label, score)`.
/// #[derive(Debug, PartialEq)]
/// struct Prediction {
///     label: String,
///     score: f64,
/// }
///
/// impl FromResult for Prediction {
///     fn expected() -> String {
///         "a dict with keys 'label' and 'score', or a (label, score) tuple".into()
///     }
///     fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
///         if value.is_dict() {
///             Ok(Prediction { label: value.get_item("label")?, score: value.get_item("score")? })
///         } else {
///             let (label, score) = value.read()?;
///             Ok(Prediction { label, score })
///         }
///     }
/// }
///
/// let f = Function::from_source(
///     "doc_reader",
///     "def as_dict(x):\n    return {'label': 'spam', 'score': float(x.max())}\n\
///      def as_tuple(x):\n    return ('ham', 0.25)\n\
///      def wrong(x):\n    return {'label': 'spam', 'score': 'high'}\n",
///     "as_dict",
/// )?;
/// let p: Prediction = f.call(&[0.5, 0.75])?;
/// assert_eq!(p, Prediction { label: "spam".into(), score: 0.75 });
/// let p: Vec<Prediction> = Function::load("builtins", "list")?.call0::<Vec<Prediction>>()?;
/// assert!(p.is_empty());
/// let p: Prediction = Function::load("doc_reader", "as_tuple")?.call(&[0.0])?;
/// assert_eq!(p.label, "ham");
///
/// let err = Function::load("doc_reader", "wrong")?.call::<Prediction>(&[0.0]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "doc_reader.wrong returned an unexpected value under key 'score': expected a number that \
///      converts to f64 without loss (a Python or numpy scalar, or a 0-D numpy array), found an \
///      object of type str"
/// );
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub struct Reader<'py> {
    held: Held<'py>,
}

impl<'py> Reader<'py> {
    pub(crate) fn new(held: Held<'py>) -> Reader<'py> {
        Reader { held }
    }

    pub(crate) fn into_held(self) -> Held<'py> {
        self.held
    }

    /// The whole object as `R`.
    pub fn read<R: FromResult>(self) -> Result<R, Mismatch> {
        R::from_result(self)
    }

    /// `object[key]` as `R`, for a dict (or any mapping) with str keys. A
    /// missing key is a mismatch naming the key; so is an exception its
    /// lookup raised (a mapping's `__getitem__`), which the mismatch names.
    pub fn get_item<R: FromResult>(&self, key: &str) -> Result<R, Mismatch> {
        let within = || Step::DictValue(key.to_owned());
        let gil = self.held.gil();
        let name = interned(gil, key)
            .map_err(|e| Mismatch::new(R::expected(), e.to_string()).within(within()))?;
        let obj = self.held.as_ptr();
        // SAFETY: the GIL is held and both objects are live. An exact dict
        // is read with PyDict_GetItemWithError (a borrowed item, which gets
        // its own reference at once; NULL with no exception for a missing
        // key), anything else through the mapping protocol
        // (PyObject_GetItem: a new reference, or NULL with an exception).
        let item = unsafe {
            if pyo3_ffi::PyDict_CheckExact(obj) != 0 {
                let item = pyo3_ffi::PyDict_GetItemWithError(obj, name.as_ptr());
                if !item.is_null() {
                    Ok(Held::new_ref(gil, item))
                } else if pyo3_ffi::PyErr_Occurred().is_null() {
                    Err(None)
                } else {
                    Err(Some(crate::runtime::glue::last_error(gil)))
                }
            } else {
                Held::from_owned(gil, pyo3_ffi::PyObject_GetItem(obj, name.as_ptr())).map_err(Some)
            }
        };
        match item {
            Ok(item) => R::from_result(Reader::new(item)).map_err(|m| m.within(within())),
            Err(exception) => Err(Mismatch::new(
                format!("{} under key '{key}'", R::expected()),
                match exception {
                    None => format!("{} with no such key", self.held.what()),
                    Some(e) if e.type_name == "KeyError" => {
                        format!(
                            "{} with no such key (KeyError: {})",
                            self.held.what(),
                            e.message
                        )
                    }
                    // The key may be there: its lookup failed (a
                    // `__getitem__` or a key's `__eq__` raised).
                    Some(e) => format!(
                        "{} whose lookup of the key raised {}: {}",
                        self.held.what(),
                        e.type_name,
                        e.message
                    ),
                },
            )),
        }
    }

    /// Element `index` of a tuple or list, as `R`.
    pub fn get_index<R: FromResult>(&self, index: usize) -> Result<R, Mismatch> {
        let Some(mut items) = self.held.items() else {
            return Err(self.mismatch(format!("a tuple or list with an element {index}")));
        };
        if let Some(found) = items.changed() {
            // An array numpy could not list (too large, invalid text).
            return Err(Mismatch::new(
                format!("a sequence with an element {index}"),
                found,
            ));
        }
        let container = items.container();
        let len = items.len();
        match items.nth(index) {
            Some(item) => R::from_result(Reader::new(item))
                .map_err(|m| m.within(Step::Element { container, index })),
            None => Err(Mismatch::new(
                format!("a {container} with an element {index}"),
                format!("a {container} of {len} elements"),
            )),
        }
    }

    /// The attribute `name` (`object.name`) as `R`: a dataclass's field, a
    /// named tuple's, a fitted model's `coef_`. Reading an attribute may run
    /// Python code (a property); an exception it raises is a mismatch that
    /// names it ("... whose attribute raised ZeroDivisionError: ..."; an
    /// `AttributeError` is "... without it").
    pub fn getattr<R: FromResult>(&self, name: &str) -> Result<R, Mismatch> {
        let within = || Step::Attribute(name.to_owned());
        if name.contains('\0') {
            return Err(self.mismatch(format!("an attribute named {name:?}")));
        }
        match self.held.getattr(name) {
            Ok(value) => R::from_result(Reader::new(value)).map_err(|m| m.within(within())),
            Err(e) => Err(Mismatch::new(
                format!("{} as attribute '{name}'", R::expected()),
                match e.type_name.as_str() {
                    "AttributeError" => format!(
                        "{} without it (AttributeError: {})",
                        self.held.what(),
                        e.message
                    ),
                    // The attribute may be there: reading it raised (a
                    // property's code).
                    _ => self.attribute_raised(&e),
                },
            )),
        }
    }

    /// The number of items of a tuple, list, dict or numpy array of
    /// strings, bytes or objects; `None` for anything else (and for such
    /// an array that numpy cannot list: too large, or of invalid text).
    pub fn len(&self) -> Option<usize> {
        if let Some(items) = self.held.items() {
            return (!items.is_unlisted()).then(|| items.len());
        }
        self.is_dict().then(|| {
            // SAFETY: the GIL is held and the object is a dict.
            let n = unsafe { pyo3_ffi::PyDict_Size(self.held.as_ptr()) };
            n.max(0) as usize
        })
    }

    /// Whether the object is a tuple, list or dict with no items.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether the object is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self.held.describe(), Described::None)
    }

    /// Whether the object is a dict (or a subclass of dict).
    pub fn is_dict(&self) -> bool {
        self.held.dict_entries().is_some()
    }

    /// Whether the object is a tuple or a list.
    pub fn is_sequence(&self) -> bool {
        self.held.items().is_some()
    }

    /// Whether the object has an attribute `name`, as Python's `hasattr`
    /// (and [`Object::hasattr`](crate::Object::hasattr)) tell: reading it
    /// succeeds, or raises `AttributeError` for no. Reading an attribute
    /// may run Python code (a property); another exception it raises is a
    /// mismatch that names it, as [`getattr`](Reader::getattr)'s is.
    ///
    /// ```
    /// use py_in_mem::{FromResult, Function, Mismatch, Reader};
    ///
    /// /// A fitted model's coefficients, or none before `fit`.
    /// struct Coef(Option<Vec<f64>>);
    ///
    /// impl FromResult for Coef {
    ///     fn expected() -> String {
    ///         "a model".into()
    ///     }
    ///     fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
    ///         if value.hasattr("coef_")? {
    ///             Ok(Coef(Some(value.getattr("coef_")?)))
    ///         } else {
    ///             Ok(Coef(None))
    ///         }
    ///     }
    /// }
    ///
    /// let source = "class Fitted:\n    coef_ = [0.5, 2.0]\n\
    ///               class Unfitted:\n    pass\n\
    ///               class Broken:\n    @property\n    def coef_(self):\n        raise ValueError('not fitted')\n";
    /// let make = |class: &str| Function::from_source("doc_hasattr", source, class);
    /// assert_eq!(make("Fitted")?.call0::<Coef>()?.0, Some(vec![0.5, 2.0]));
    /// assert_eq!(make("Unfitted")?.call0::<Coef>()?.0, None);
    /// // Not AttributeError: the exception is named, not taken for "no".
    /// let err = make("Broken")?.call0::<Coef>().err().unwrap();
    /// assert!(err.to_string().contains("whose attribute raised ValueError: not fitted"), "{err}");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn hasattr(&self, name: &str) -> Result<bool, Mismatch> {
        match self.held.getattr(name) {
            Ok(_) => Ok(true),
            Err(e) if e.is_instance_of("AttributeError") => Ok(false),
            Err(e) => Err(Mismatch::new(
                format!("an attribute '{name}' that reads"),
                self.attribute_raised(&e),
            )),
        }
    }

    /// What this object is found to be when reading an attribute of it
    /// raised `e` (not `AttributeError`).
    fn attribute_raised(&self, e: &PyException) -> String {
        format!(
            "{} whose attribute raised {}: {}",
            self.held.what(),
            e.type_name,
            e.message
        )
    }

    /// The name of the object's type (`dict`, `numpy.ndarray`, `Model`).
    pub fn type_name(&self) -> String {
        self.held.type_name()
    }

    /// The items of a tuple, list or numpy array of strings, bytes or
    /// objects, each a `Reader`; `None` for anything else (and for such an
    /// array that numpy cannot list).
    ///
    /// An item's `Reader` does not know its index: a mismatch read from it
    /// says where inside the item, not which item. To have the index in the
    /// error's position, read the items with
    /// [`get_index`](Reader::get_index), or all at once as a `Vec<R>` (or a
    /// tuple) with [`read`](Reader::read).
    ///
    /// ```
    /// use py_in_mem::{FromResult, Function, Mismatch, Reader};
    ///
    /// /// Scores, each a number or None.
    /// #[derive(Debug)]
    /// struct Scores(Vec<Option<f64>>);
    ///
    /// impl FromResult for Scores {
    ///     fn expected() -> String {
    ///         "a list of scores".into()
    ///     }
    ///     fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
    ///         let n = value.len().ok_or_else(|| value.mismatch(Self::expected()))?;
    ///         (0..n).map(|i| value.get_index(i)).collect::<Result<_, _>>().map(Scores)
    ///     }
    /// }
    ///
    /// let f = Function::from_source("doc_items", "def f():\n    return [0.5, None, 'high']\n", "f")?;
    /// let err = f.call0::<Scores>().unwrap_err();
    /// assert!(err.to_string().contains("unexpected element 2 of the list"), "{err}");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn items(&self) -> Option<impl Iterator<Item = Reader<'py>> + '_> {
        // Not an array numpy could not list: no items is not its items.
        let items = self.held.items().filter(|items| !items.is_unlisted())?;
        Some(items.map(Reader::new))
    }

    /// A mismatch for this object: `expected` what it should have been,
    /// found what it is ("an object of type str", "a numpy array of dtype
    /// int64" for one of one dimension, "a 2-D numpy array of dtype
    /// float64").
    pub fn mismatch(&self, expected: impl Into<String>) -> Mismatch {
        Mismatch::new(expected.into(), self.held.what())
    }
}
