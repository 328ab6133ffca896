//! Thin wrappers for reading what a Python function returned: a reference
//! held while the GIL is, what kind of object it is (`pim_describe_result`),
//! a numpy array or number described for reading, and the items of a str,
//! tuple, list or dict. Nothing here converts to Rust types; that is
//! [`crate::convert::from_result`]'s job.

use std::ffi::{c_char, c_int, CStr};
use std::mem::ManuallyDrop;

use pyo3_ffi::{PyObject, Py_ssize_t};

use crate::error::PyException;
use crate::raw;
use crate::runtime::glue::owned_or_error;
use crate::runtime::{Gil, StrongRef};

mod interned;
pub(crate) use interned::{interned, Interned};

/// One strong reference to a Python object, used and released while `'py`'s
/// GIL is held: releasing it is a plain decref (a [`StrongRef`] takes the GIL
/// to release itself, since it may be dropped anywhere).
pub struct Held<'py> {
    /// Released by `Held`'s own `Drop`, never by StrongRef's.
    obj: ManuallyDrop<StrongRef>,
    gil: &'py Gil,
}

impl<'py> Held<'py> {
    /// Takes over `obj`'s reference for as long as `gil` is held.
    pub(crate) fn new(gil: &'py Gil, obj: StrongRef) -> Held<'py> {
        Held {
            obj: ManuallyDrop::new(obj),
            gil,
        }
    }

    /// A new reference to `ptr`, borrowed from an object the caller holds.
    ///
    /// # Safety
    /// `ptr` is a live object (not NULL).
    pub(crate) unsafe fn new_ref(gil: &'py Gil, ptr: *mut PyObject) -> Held<'py> {
        // SAFETY: the GIL is held (`gil`) and ptr is live (caller); the new
        // reference is the one the StrongRef owns.
        unsafe {
            // Inline: a dict's walk takes two references an entry.
            pyo3_ffi::Py_INCREF(ptr);
            Held::new(
                gil,
                StrongRef::from_owned(ptr).expect("a live object is not NULL"),
            )
        }
    }

    /// A reference the caller now owns, or the exception a call left set.
    ///
    /// # Safety
    /// `ptr` is a new reference or NULL, returned with `gil` held.
    pub(crate) unsafe fn from_owned(
        gil: &'py Gil,
        ptr: *mut PyObject,
    ) -> Result<Held<'py>, PyException> {
        // SAFETY: guaranteed by the caller.
        unsafe { owned_or_error(gil, ptr) }.map(|obj| Held::new(gil, obj))
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.obj.as_ptr()
    }

    /// The GIL this reference is used under.
    pub(crate) fn gil(&self) -> &'py Gil {
        self.gil
    }

    /// Gives up ownership, for an API that steals the reference.
    pub(crate) fn into_raw(self) -> *mut PyObject {
        self.into_strong().into_raw()
    }

    /// The reference as one that may outlive the GIL guard.
    pub(crate) fn into_strong(self) -> StrongRef {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used again, nor dropped, so the
        // StrongRef is taken out once.
        unsafe { ManuallyDrop::take(&mut this.obj) }
    }

    /// What kind of object this is, described for reading.
    pub(crate) fn describe(&self) -> Described<'_> {
        let mut out = raw::pim_array_view::default();
        // SAFETY: the GIL is held and the object is live; the call only
        // reads it, and never leaves an exception set.
        let kind = unsafe { raw::pim_describe_result(self.as_ptr(), &mut out) };
        match kind {
            raw::pim_result_kind::PIM_ARRAY => Described::Array(ArrayDesc::of(out, self)),
            raw::pim_result_kind::PIM_SCALAR => Described::Scalar(ArrayDesc::of(out, self)),
            raw::pim_result_kind::PIM_NONE => Described::None,
            raw::pim_result_kind::PIM_STR => Described::Str,
            raw::pim_result_kind::PIM_TUPLE => Described::Tuple,
            raw::pim_result_kind::PIM_LIST => Described::List,
            raw::pim_result_kind::PIM_DICT => Described::Dict,
            raw::pim_result_kind::PIM_BIG_INT => Described::BigInt,
            // Read as no kind at all: its description (`what`) says why
            // and what to return instead.
            raw::pim_result_kind::PIM_OTHER | raw::pim_result_kind::PIM_ARRAY_SUBCLASS => {
                Described::Other
            }
        }
    }

    /// What this object is, for a message: "a numpy array of dtype float64",
    /// "an object of type list".
    pub(crate) fn what(&self) -> String {
        let mut buffer = [0 as c_char; 400];
        // SAFETY: the GIL is held; the object is live; pim_describe_what
        // writes a NUL-terminated string of at most buffer.len() bytes.
        unsafe {
            raw::pim_describe_what(self.as_ptr(), buffer.as_mut_ptr(), buffer.len());
            CStr::from_ptr(buffer.as_ptr())
        }
        .to_string_lossy()
        .into_owned()
    }

    /// A float, int or bool of exactly Python's own type, or a str of
    /// exactly `str`, read at once: the usual results and dict values,
    /// without [`describe`](Self::describe)'s general look (which asks
    /// numpy). None for anything else, for an int outside int64 and for a
    /// str with lone surrogates: the general path reads (or refuses) those.
    pub(crate) fn exact(&self) -> Option<Exact<'_>> {
        if let Some(x) = self.exact_float() {
            return Some(Exact::Float(x));
        }
        let obj = self.as_ptr();
        // SAFETY: the GIL is held and the object is live; an int is read
        // only once checked to be exactly one, where reading cannot fail
        // (its overflow is reported through `overflow`, with no exception
        // set).
        unsafe {
            if pyo3_ffi::PyLong_CheckExact(obj) != 0 {
                let mut overflow: c_int = 0;
                let n = pyo3_ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
                if overflow != 0 || (n == -1 && !pyo3_ffi::PyErr_Occurred().is_null()) {
                    pyo3_ffi::PyErr_Clear();
                    return None;
                }
                return Some(Exact::Int(n));
            }
            if pyo3_ffi::PyBool_Check(obj) != 0 {
                return Some(Exact::Bool(obj == pyo3_ffi::Py_True()));
            }
        }
        self.exact_str().map(Exact::Str)
    }

    /// The text of a str of exactly Python's own type; None for anything
    /// else, and for a str with lone surrogates: the general path reads (or
    /// refuses) those.
    pub(crate) fn exact_str(&self) -> Option<&str> {
        // SAFETY: the GIL is held and the object is live.
        match unsafe { pyo3_ffi::PyUnicode_CheckExact(self.as_ptr()) } {
            0 => None,
            _ => self.str_slice(),
        }
    }

    /// The value of a float of exactly Python's own type.
    pub(crate) fn exact_float(&self) -> Option<f64> {
        let obj = self.as_ptr();
        // SAFETY: the GIL is held and the object is live; it is read as a
        // float only once checked to be exactly one.
        unsafe {
            match pyo3_ffi::PyFloat_CheckExact(obj) {
                0 => None,
                _ => Some(pyo3_ffi::PyFloat_AS_DOUBLE(obj)),
            }
        }
    }

    /// A Python int (one outside 64 bits, [`Described::BigInt`]) as the
    /// float that holds it exactly, if one does: `2**70` is `1.1805916207174113e21`,
    /// `2**70 + 1` is no float.
    pub(crate) fn big_int_as_exact_float(&self) -> Option<f64> {
        let obj = self.as_ptr();
        // SAFETY: the GIL is held and the object is live (an int, the
        // caller's description says); PyLong_AsDouble returns -1.0 with an
        // OverflowError set past the floats, PyLong_FromDouble a new
        // reference or NULL, RichCompareBool 1, 0, or -1 with an exception
        // set: every exception is cleared, every reference dropped.
        unsafe {
            let x = pyo3_ffi::PyLong_AsDouble(obj);
            if x == -1.0 && !pyo3_ffi::PyErr_Occurred().is_null() {
                pyo3_ffi::PyErr_Clear();
                return None;
            }
            let back = pyo3_ffi::PyLong_FromDouble(x);
            if back.is_null() {
                pyo3_ffi::PyErr_Clear();
                return None;
            }
            let same = pyo3_ffi::PyObject_RichCompareBool(obj, back, pyo3_ffi::Py_EQ);
            pyo3_ffi::Py_DECREF(back);
            if same < 0 {
                pyo3_ffi::PyErr_Clear();
            }
            (same == 1).then_some(x)
        }
    }

    /// A Python int (one outside 64 bits, [`Described::BigInt`]) as the
    /// 128-bit integer that holds it, if one does.
    pub(crate) fn big_int_wide(&self) -> Option<Wide> {
        // high is in i64::MIN..=u64::MAX: a negative one makes an i128,
        // any other a u128.
        self.big_int_halves()
            .map(|(high, low)| match u128::try_from(high) {
                Ok(high) => Wide::Unsigned((high << 64) | u128::from(low)),
                Err(_) => Wide::Signed((high << 64) | i128::from(low)),
            })
    }

    /// A Python int as its high and low 64 bits, `value == high * 2**64 +
    /// low`, if `high` is in `i64::MIN..=u64::MAX` (`value` fits in an
    /// `i128` or a `u128`). Public API only, on every Python the crate
    /// builds for: `value >> 64` and `value & (2**64 - 1)`, each read as a C
    /// integer.
    fn big_int_halves(&self) -> Option<(i128, u64)> {
        let obj = self.as_ptr();
        // SAFETY: the GIL is held and the object is live (an int, the
        // caller's description says). Every constructor and operator returns
        // a new reference or NULL with an exception set; each is dropped
        // below, and each exception (an overflow past the C integers)
        // cleared.
        unsafe {
            let shift = pyo3_ffi::PyLong_FromLong(64);
            let mask = pyo3_ffi::PyLong_FromUnsignedLongLong(u64::MAX);
            let high = if shift.is_null() {
                std::ptr::null_mut()
            } else {
                pyo3_ffi::PyNumber_Rshift(obj, shift)
            };
            let low = if mask.is_null() {
                std::ptr::null_mut()
            } else {
                pyo3_ffi::PyNumber_And(obj, mask)
            };
            let halves = if high.is_null() || low.is_null() {
                None
            } else {
                read_i128_high(high).zip(read_u64(low))
            };
            for owned in [shift, mask, high, low] {
                pyo3_ffi::Py_XDECREF(owned);
            }
            if halves.is_none() {
                pyo3_ffi::PyErr_Clear();
            }
            halves
        }
    }

    /// The text of a str, or None if it is none (or holds lone surrogates,
    /// which UTF-8 cannot carry).
    pub(crate) fn str_value(&self) -> Option<String> {
        self.str_slice().map(str::to_owned)
    }

    /// The text of a str, borrowed from the object (its UTF-8 form, which
    /// the str keeps for as long as it lives); None if it is no str (or
    /// holds lone surrogates, which UTF-8 cannot carry).
    pub(crate) fn str_slice(&self) -> Option<&str> {
        let mut len: Py_ssize_t = 0;
        // SAFETY: the GIL is held; for a str this returns a UTF-8 buffer of
        // `len` bytes cached in the object, which `self` holds (so it lives
        // as long as the borrow of `self`; a str is immutable); for anything
        // else NULL with an exception set, cleared here. CPython's UTF-8
        // encoder produces only valid UTF-8 (a lone surrogate makes it fail
        // instead).
        unsafe {
            let text = pyo3_ffi::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut len);
            if text.is_null() {
                pyo3_ffi::PyErr_Clear();
                return None;
            }
            let bytes = std::slice::from_raw_parts(text.cast::<u8>(), len.max(0) as usize);
            Some(std::str::from_utf8_unchecked(bytes))
        }
    }

    /// The number of entries of a dict (0 for anything else).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn dict_len(&self) -> usize {
        if self.dict_entries().is_none() {
            return 0;
        }
        // SAFETY: the GIL is held and the object is a dict.
        let n = unsafe { pyo3_ffi::PyDict_Size(self.as_ptr()) };
        n.max(0) as usize
    }

    /// Whether this is a dict of exactly `dict` (which
    /// [`describe`](Self::describe) calls [`Described::Dict`]), without
    /// asking numpy.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn is_exact_dict(&self) -> bool {
        // SAFETY: the GIL is held; PyDict_CheckExact only reads the type.
        unsafe { pyo3_ffi::PyDict_CheckExact(self.as_ptr()) != 0 }
    }

    /// Whether this is a subclass of tuple (a named tuple), not a tuple
    /// itself.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn is_tuple_subclass(&self) -> bool {
        // SAFETY: the GIL is held; both checks only read the type.
        unsafe {
            pyo3_ffi::PyTuple_Check(self.as_ptr()) != 0
                && pyo3_ffi::PyTuple_CheckExact(self.as_ptr()) == 0
        }
    }

    /// The items of a tuple, a list, or a numpy array of strings, bytes or
    /// objects ([`ArrayDesc::holds_objects`], along its first dimension:
    /// elements of a 1-D array, rows of others), each held on its own (so
    /// nothing a conversion does can free one under it); None for other
    /// objects.
    pub(crate) fn items(&self) -> Option<Items<'_, 'py>> {
        // SAFETY: the GIL is held; these check the type and return -1 with
        // an exception set for any other object (cleared below).
        let (len, container) = unsafe {
            if pyo3_ffi::PyTuple_Check(self.as_ptr()) != 0 {
                (pyo3_ffi::PyTuple_Size(self.as_ptr()), Container::Tuple)
            } else if pyo3_ffi::PyList_Check(self.as_ptr()) != 0 {
                (pyo3_ffi::PyList_Size(self.as_ptr()), Container::List)
            } else {
                return self.array_items();
            }
        };
        Some(Items {
            of: Walked::Borrowed(self),
            container,
            next: 0,
            len: len.max(0),
            changed_to: None,
            unlisted: None,
        })
    }

    /// [`items`](Self::items) of an array of objects: a list of them made
    /// first (`list(array)`, which Items owns), so that nothing the reading
    /// does can change what is walked.
    fn array_items(&self) -> Option<Items<'_, 'py>> {
        match self.describe() {
            Described::Array(desc) if desc.holds_objects() && desc.ndim() > 0 => {}
            _ => return None,
        }
        self.listed_items()
    }

    /// The items of this numpy array of one dimension or more, whatever
    /// its dtype, as [`array_items`](Self::array_items) walks one of
    /// objects: numpy scalars for an array of numbers.
    pub(crate) fn listed_items(&self) -> Option<Items<'_, 'py>> {
        // SAFETY: the GIL is held and the array is live; PySequence_List
        // returns a new reference to a new list, or NULL with an exception
        // set (a MemoryError for an array too large to list, a SystemError
        // for one of invalid characters).
        let list = unsafe { Held::from_owned(self.gil, pyo3_ffi::PySequence_List(self.as_ptr())) };
        let (of, len, unlisted) = match list {
            Ok(list) => {
                // SAFETY: a list (just made); its size cannot fail.
                let len = unsafe { pyo3_ffi::PyList_Size(list.as_ptr()) };
                (Walked::Owned(list), len.max(0), None)
            }
            // Walked as empty, and reported by `changed`, never as fewer
            // items: the reader's mismatch says what numpy raised.
            Err(e) => (
                Walked::Borrowed(self),
                0,
                Some(format!(
                    "{} whose items could not be listed ({}: {})",
                    self.what(),
                    e.type_name,
                    e.message
                )),
            ),
        };
        Some(Items {
            of,
            container: Container::Array,
            next: 0,
            len,
            changed_to: None,
            unlisted,
        })
    }

    /// The key and value pairs of a dict, each held; None for other objects.
    pub(crate) fn dict_entries(&self) -> Option<Entries<'_, 'py>> {
        // SAFETY: the GIL is held; PyDict_Check only reads the type.
        let is_dict = unsafe { pyo3_ffi::PyDict_Check(self.as_ptr()) } != 0;
        is_dict.then(|| Entries {
            of: self,
            pos: 0,
            // SAFETY: the GIL is held; a dict's size cannot fail.
            size: unsafe { pyo3_ffi::PyDict_Size(self.as_ptr()) },
            changed_to: None,
        })
    }

    /// Row `index` of this numpy array of two dimensions or more (`a[i]`, a
    /// view; of a plain view for a subclass such as `numpy.matrix`, whose
    /// rows are matrices); callers check the index against the first
    /// dimension.
    pub(crate) fn array_row(&self, index: usize) -> Result<Held<'py>, PyException> {
        let index = Py_ssize_t::try_from(index).unwrap_or(Py_ssize_t::MAX);
        // SAFETY: the GIL is held and the object is live, a numpy array of
        // two dimensions or more (the callers' check); pim_array_row returns
        // a new reference or NULL with an exception set.
        unsafe { Held::from_owned(self.gil, raw::pim_array_row(self.as_ptr(), index)) }
    }

    /// The one element of this 0-D numpy array (`a[()]`): a numpy scalar,
    /// or the object an array of objects holds.
    pub(crate) fn zero_d_item(&self) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held and the object is live; PyTuple_New(0)
        // returns a new reference (the empty tuple) or NULL with an
        // exception set; PyObject_GetItem a new reference or NULL with an
        // exception set.
        unsafe {
            let empty = Held::from_owned(self.gil, pyo3_ffi::PyTuple_New(0))?;
            Held::from_owned(
                self.gil,
                pyo3_ffi::PyObject_GetItem(self.as_ptr(), empty.as_ptr()),
            )
        }
    }

    /// A C-ordered copy of this numpy array that owns its data.
    pub(crate) fn array_copy(&self) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; callers pass only numpy arrays (they
        // describe them first); pim_array_copy returns a new reference or
        // NULL with an exception set.
        unsafe { Held::from_owned(self.gil, raw::pim_array_copy(self.as_ptr())) }
    }
}

/// An int in `i64::MIN..=u64::MAX`, widened; None (an exception set) past
/// it.
///
/// # Safety
/// The GIL is held and `int` is a live Python int.
unsafe fn read_i128_high(int: *mut PyObject) -> Option<i128> {
    // SAFETY: as the caller promises; -1 with an exception set is the
    // failure, cleared before the second reading.
    unsafe {
        let signed = pyo3_ffi::PyLong_AsLongLong(int);
        if signed != -1 || pyo3_ffi::PyErr_Occurred().is_null() {
            return Some(signed.into());
        }
        pyo3_ffi::PyErr_Clear();
        read_u64(int).map(i128::from)
    }
}

/// A non-negative int up to `u64::MAX`; None (an exception set) past it.
///
/// # Safety
/// The GIL is held and `int` is a live Python int.
unsafe fn read_u64(int: *mut PyObject) -> Option<u64> {
    // SAFETY: as the caller promises; u64::MAX with an exception set is the
    // failure.
    unsafe {
        let value = pyo3_ffi::PyLong_AsUnsignedLongLong(int);
        (value != u64::MAX || pyo3_ffi::PyErr_Occurred().is_null()).then_some(value)
    }
}

impl Drop for Held<'_> {
    #[inline] // a result's parts are Helds: a call with the glue for each would cost more
    fn drop(&mut self) {
        // SAFETY: we own this reference (the StrongRef is never dropped on
        // its own, and is not NULL), and `self.gil` proves the GIL is held.
        unsafe { pyo3_ffi::Py_DECREF(self.obj.as_ptr()) }
    }
}

/// The items of a tuple, list or array of objects, in order (see
/// [`Held::items`]).
pub(crate) struct Items<'h, 'py> {
    of: Walked<'h, 'py>,
    container: Container,
    next: Py_ssize_t,
    len: Py_ssize_t,
    /// The list's length when a step found it changed (by Python code a
    /// reader ran: a property, a `__float__`); the walk stopped there.
    changed_to: Option<Py_ssize_t>,
    /// What was found, for an array whose items numpy could not list (the
    /// walk is then empty): see [`Items::changed`].
    unlisted: Option<String>,
}

/// The tuple or list [`Items`] walks: the caller's, or one made of an
/// array's items.
enum Walked<'h, 'py> {
    Borrowed(&'h Held<'py>),
    Owned(Held<'py>),
}

impl<'py> Walked<'_, 'py> {
    fn held(&self) -> &Held<'py> {
        match self {
            Walked::Borrowed(held) => held,
            Walked::Owned(held) => held,
        }
    }
}

/// What [`Items`] walks, for messages.
#[derive(Clone, Copy)]
enum Container {
    Tuple,
    List,
    Array,
}

impl Items<'_, '_> {
    /// "tuple", "list" or "array", for messages.
    pub(crate) fn container(&self) -> &'static str {
        match self.container {
            Container::Tuple => "tuple",
            Container::List => "list",
            // Only 1-D arrays are walked item by item; one of more
            // dimensions is read by rows (`Step::Row`). Naming the rank
            // tells a `Vec<Vec<f64>>` read from a 1-D array at once.
            Container::Array => "1-D array",
        }
    }

    /// How many items are left.
    pub(crate) fn len(&self) -> usize {
        (self.len - self.next).max(0) as usize
    }

    /// Whether this is an array whose items numpy could not list: the walk
    /// is empty, and [`changed`](Self::changed) says why.
    pub(crate) fn is_unlisted(&self) -> bool {
        self.unlisted.is_some()
    }

    /// What was found, if the list changed length while it was walked
    /// (the walk then stopped, and what was read is not the list as it
    /// was, nor as it is), or if it is an array whose items could not be
    /// listed: for the reader's mismatch.
    pub(crate) fn changed(&self) -> Option<String> {
        if let Some(unlisted) = &self.unlisted {
            return Some(unlisted.clone());
        }
        self.changed_to.map(|now| {
            format!(
                "a list that changed length while it was read ({} items, then {now})",
                self.len
            )
        })
    }
}

impl<'py> Iterator for Items<'_, 'py> {
    type Item = Held<'py>;

    fn next(&mut self) -> Option<Held<'py>> {
        if self.next >= self.len {
            return None;
        }
        let of = self.of.held();
        let obj = of.as_ptr();
        // SAFETY: the GIL is held; `obj` is a tuple or list we hold. A list
        // is read through the bounds-checked PyList_GetItem, and its length
        // checked first: Python code a reader ran may have changed it. Each
        // returns a borrowed item or NULL (with an IndexError, cleared). The
        // item gets its own reference before anything else runs.
        let item = unsafe {
            let item = if pyo3_ffi::PyTuple_Check(obj) != 0 {
                pyo3_ffi::PyTuple_GetItem(obj, self.next)
            } else {
                let now = pyo3_ffi::PyList_Size(obj);
                if now != self.len {
                    self.changed_to = Some(now);
                    self.next = self.len;
                    return None;
                }
                pyo3_ffi::PyList_GetItem(obj, self.next)
            };
            if item.is_null() {
                pyo3_ffi::PyErr_Clear();
                self.next = self.len;
                return None;
            }
            Held::new_ref(of.gil, item)
        };
        self.next += 1;
        Some(item)
    }
}

/// The entries of a dict, in its order (see [`Held::dict_entries`]).
pub(crate) struct Entries<'h, 'py> {
    of: &'h Held<'py>,
    pos: Py_ssize_t,
    /// The dict's size at the start, and when a step found it changed (by
    /// Python code a reader ran); the walk stopped there, as Python's own
    /// iteration raises.
    size: Py_ssize_t,
    changed_to: Option<Py_ssize_t>,
}

impl Entries<'_, '_> {
    /// What was found, if the dict changed size while it was walked: for
    /// the reader's mismatch.
    pub(crate) fn changed(&self) -> Option<String> {
        self.changed_to.map(|now| {
            format!(
                "a dict that changed size while it was read ({} entries, then {now})",
                self.size
            )
        })
    }
}

impl<'py> Iterator for Entries<'_, 'py> {
    type Item = (Held<'py>, Held<'py>);

    fn next(&mut self) -> Option<(Held<'py>, Held<'py>)> {
        let (mut key, mut value) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: the GIL is held; the object is a dict we hold; its size
        // cannot fail; PyDict_Next returns borrowed key and value
        // (bounds-checked against the dict as it is now), which get their
        // own references at once.
        unsafe {
            let now = pyo3_ffi::PyDict_Size(self.of.as_ptr());
            if now != self.size {
                self.changed_to.get_or_insert(now);
                return None;
            }
            if pyo3_ffi::PyDict_Next(self.of.as_ptr(), &mut self.pos, &mut key, &mut value) == 0 {
                return None;
            }
            Some((
                Held::new_ref(self.of.gil, key),
                Held::new_ref(self.of.gil, value),
            ))
        }
    }
}

/// A Python or numpy integer, as wide as the 128-bit types read
/// ([`Held::big_int_wide`]).
#[derive(Clone, Copy)]
pub(crate) enum Wide {
    Signed(i128),
    Unsigned(u128),
}

impl std::fmt::Display for Wide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wide::Signed(n) => n.fmt(f),
            Wide::Unsigned(n) => n.fmt(f),
        }
    }
}

/// What [`Held::exact`] read.
pub(crate) enum Exact<'a> {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(&'a str),
}

/// What kind of object a result is.
pub(crate) enum Described<'o> {
    /// A numpy array, of any rank.
    Array(ArrayDesc<'o>),
    /// A number (a numpy scalar, or a Python bool, int, float or complex),
    /// described as a 0-D array of its value.
    Scalar(ArrayDesc<'o>),
    None,
    Str,
    Tuple,
    List,
    Dict,
    /// A Python int too large for int64 and uint64.
    BigInt,
    Other,
}

/// A numpy array described for reading in place, or a number copied out as
/// a 0-D array; borrowed from the [`Held`] that outlives it.
pub struct ArrayDesc<'o> {
    /// Element [0, 0, ...] of an array (unused for a number).
    data: *const u8,
    /// A number's value, aligned as a double.
    scalar: [u64; 2],
    is_scalar: bool,
    pub(crate) shape: &'o [usize],
    pub(crate) strides: &'o [isize],
    pub(crate) itemsize: usize,
    pub(crate) kind: u8,
    pub(crate) byteswapped: bool,
    pub(crate) sole_owner: bool,
    of: &'o Held<'o>,
}

impl<'o> ArrayDesc<'o> {
    fn of(out: raw::pim_array_view, held: &'o Held<'o>) -> ArrayDesc<'o> {
        let ndim = out.ndim.max(0) as usize;
        let (shape, strides): (&[usize], &[isize]) = if ndim == 0 || out.shape.is_null() {
            (&[], &[])
        } else {
            // SAFETY: for an array, numpy's dims and strides (ndim entries
            // each, npy_intp = Py_ssize_t) live as long as the array, which
            // `held` keeps; no Python code runs while the description is in
            // use, so nothing reshapes it meanwhile. A dimension is never
            // negative, so it reads as usize.
            unsafe {
                (
                    std::slice::from_raw_parts(out.shape.cast::<usize>(), ndim),
                    std::slice::from_raw_parts(out.strides.cast::<isize>(), ndim),
                )
            }
        };
        ArrayDesc {
            data: out.data.cast(),
            scalar: out.scalar,
            is_scalar: out.data.is_null(),
            shape,
            strides,
            itemsize: out.itemsize.max(0) as usize,
            kind: out.kind as u8,
            byteswapped: out.byteswapped != 0,
            sole_owner: out.sole_owner != 0,
            of: held,
        }
    }

    /// The address of element [0, 0, ...]: in the array, or in this
    /// description for a number.
    pub(crate) fn origin(&self) -> *const u8 {
        if self.is_scalar {
            self.scalar.as_ptr().cast()
        } else {
            self.data
        }
    }

    pub(crate) fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// An array of strings (`<U`), of bytes (`S`) or of Python objects
    /// (`O`): its elements are read as the Python objects indexing gives
    /// (`np.str_`, `np.bytes_`, the object), one by one
    /// ([`Held::items`]), not as numbers in memory.
    pub(crate) fn holds_objects(&self) -> bool {
        !self.is_scalar && matches!(self.kind, b'U' | b'S' | b'O')
    }

    /// An array whose items, as indexing gives them, are numpy scalars
    /// holding a copy of their value: bools, numbers, dates and durations.
    /// Not a structured array's (`numpy.void`, which points into the
    /// array's memory).
    pub(crate) fn items_copy_out(&self) -> bool {
        matches!(self.kind, b'b' | b'i' | b'u' | b'f' | b'c' | b'M' | b'm')
    }

    /// The number of elements; `usize::MAX` if that overflows (numpy keeps
    /// it within `isize`, but a description is read defensively: a size it
    /// implies is allocated fallibly, see [`crate::convert`]).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
            Some(n) => n,
            None => self.len_past_usize(),
        }
    }

    /// [`len`](Self::len) when the product overflows: 0 if a dimension
    /// is, else `usize::MAX`.
    #[cold]
    fn len_past_usize(&self) -> usize {
        if self.shape.contains(&0) {
            0
        } else {
            usize::MAX
        }
    }

    /// Whether the elements lie one after another in C order (numpy's rule:
    /// the stride of a dimension of length 1 does not matter, nor any stride
    /// of an empty array).
    pub(crate) fn is_c_contiguous(&self) -> bool {
        if self.is_scalar || self.shape.contains(&0) {
            return true;
        }
        let mut expected = self.itemsize as isize;
        for (&n, &stride) in self.shape.iter().zip(self.strides).rev() {
            if n != 1 && stride != expected {
                return false;
            }
            expected *= n as isize;
        }
        true
    }

    /// "a numpy array of dtype float64", for messages (with the GIL held,
    /// as it is for as long as a description is used).
    pub(crate) fn what(&self) -> String {
        self.of.what()
    }
}

/// Attributes and what an object is, for [`crate::Object`].
impl<'py> Held<'py> {
    /// `self.name`, or the exception (an `AttributeError`) that raised.
    /// `name` has no NUL in it (the caller checked); it needs no C copy.
    pub(crate) fn getattr(&self, name: &str) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; the pointer and length are the str's
        // (UTF-8, its length within isize); the call returns a new reference
        // or NULL with an exception set.
        let key = unsafe {
            Held::from_owned(
                self.gil,
                pyo3_ffi::PyUnicode_FromStringAndSize(
                    name.as_ptr().cast(),
                    name.len() as pyo3_ffi::Py_ssize_t,
                ),
            )
        }?;
        // SAFETY: the GIL is held and both objects are live; GetAttr returns
        // a new reference or NULL with an exception set.
        unsafe {
            Held::from_owned(
                self.gil,
                pyo3_ffi::PyObject_GetAttr(self.as_ptr(), key.as_ptr()),
            )
        }
    }

    /// The name of the object's type (`Model`, `numpy.ndarray`), for
    /// messages.
    pub(crate) fn type_name(&self) -> String {
        // SAFETY: the GIL is held and the object is live, so its type is, and
        // tp_name is a NUL-terminated string that lives as long as the type.
        let name = unsafe { CStr::from_ptr((*pyo3_ffi::Py_TYPE(self.as_ptr())).tp_name) };
        name.to_string_lossy().into_owned()
    }

    /// What its attributes are named after in messages: a module's name
    /// (`pkg.models`, so its function `f` is `pkg.models.f`), any other
    /// object's type name.
    pub(crate) fn owner_name(&self) -> String {
        // SAFETY: the GIL is held and the object is live; PyModule_Check
        // only reads the type; PyModule_GetName returns a borrowed UTF-8
        // name that lives as long as the module, or NULL with an exception
        // set (cleared).
        unsafe {
            if pyo3_ffi::PyModule_Check(self.as_ptr()) != 0 {
                let name = pyo3_ffi::PyModule_GetName(self.as_ptr());
                if !name.is_null() {
                    return CStr::from_ptr(name).to_string_lossy().into_owned();
                }
                pyo3_ffi::PyErr_Clear();
            }
        }
        self.type_name()
    }
}

/// Containers made for an argument ([`crate::Value`]): each constructor
/// returns a new object or the exception that stopped it.
impl<'py> Held<'py> {
    /// A new `bytes` holding a copy of `data`.
    pub(crate) fn bytes(gil: &'py Gil, data: &[u8]) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; the pointer and length describe `data`,
        // which PyBytes copies; a new reference or NULL with an exception.
        unsafe {
            Held::from_owned(
                gil,
                pyo3_ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as Py_ssize_t),
            )
        }
    }

    /// A new list of `len` empty slots, each to be filled once by
    /// [`set_list_item`](Self::set_list_item).
    pub(crate) fn list(gil: &'py Gil, len: usize) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; a new reference or NULL with an exception.
        unsafe { Held::from_owned(gil, pyo3_ffi::PyList_New(len as Py_ssize_t)) }
    }

    /// A new tuple of `len` empty slots, each to be filled once by
    /// [`set_tuple_item`](Self::set_tuple_item).
    pub(crate) fn tuple(gil: &'py Gil, len: usize) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; a new reference or NULL with an exception.
        unsafe { Held::from_owned(gil, pyo3_ffi::PyTuple_New(len as Py_ssize_t)) }
    }

    /// A new, empty dict.
    pub(crate) fn dict(gil: &'py Gil) -> Result<Held<'py>, PyException> {
        // SAFETY: the GIL is held; a new reference or NULL with an exception.
        unsafe { Held::from_owned(gil, pyo3_ffi::PyDict_New()) }
    }

    /// Fills slot `i` of a list made by [`list`](Self::list), which nobody
    /// else has seen yet, with `item`. A slot left empty (a later item
    /// failed) is NULL, which the list's deallocation skips.
    pub(crate) fn set_list_item(&self, i: usize, item: StrongRef) {
        // SAFETY: the GIL is held; the list is new and ours, `i` is below
        // the length it was made with (callers count its items), and
        // PyList_SetItem steals the reference given up by into_raw (the
        // slot is empty: nothing is leaked).
        unsafe { pyo3_ffi::PyList_SetItem(self.as_ptr(), i as Py_ssize_t, item.into_raw()) };
    }

    /// Fills slot `i` of a tuple made by [`tuple`](Self::tuple), as
    /// [`set_list_item`](Self::set_list_item) does a list's.
    pub(crate) fn set_tuple_item(&self, i: usize, item: StrongRef) {
        // SAFETY: as set_list_item, for a tuple nobody else has seen.
        unsafe { pyo3_ffi::PyTuple_SetItem(self.as_ptr(), i as Py_ssize_t, item.into_raw()) };
    }

    /// `dict[key] = value`, for a dict made by [`dict`](Self::dict). Fails
    /// for a key Python cannot hash (a list).
    pub(crate) fn set_dict_item(
        &self,
        key: &Held<'_>,
        value: &Held<'_>,
    ) -> Result<(), PyException> {
        // SAFETY: the GIL is held; all three objects are live; SetItem
        // takes its own references, and returns -1 with an exception set.
        let status =
            unsafe { pyo3_ffi::PyDict_SetItem(self.as_ptr(), key.as_ptr(), value.as_ptr()) };
        if status == 0 {
            Ok(())
        } else {
            Err(crate::runtime::glue::last_error(self.gil))
        }
    }

    /// A copy of the contents of a `bytes` or `bytearray`; `None` for any
    /// other object.
    pub(crate) fn bytes_value(&self) -> Option<Vec<u8>> {
        let obj = self.as_ptr();
        // SAFETY: the GIL is held and the object is live; each accessor is
        // called only on its own type, and returns a buffer owned by the
        // object (which we hold) of the size returned beside it.
        unsafe {
            let (data, len) = if pyo3_ffi::PyBytes_Check(obj) != 0 {
                (pyo3_ffi::PyBytes_AsString(obj), pyo3_ffi::PyBytes_Size(obj))
            } else if pyo3_ffi::PyByteArray_Check(obj) != 0 {
                (
                    pyo3_ffi::PyByteArray_AsString(obj),
                    pyo3_ffi::PyByteArray_Size(obj),
                )
            } else {
                return None;
            };
            if data.is_null() || len < 0 {
                pyo3_ffi::PyErr_Clear();
                return None;
            }
            Some(std::slice::from_raw_parts(data.cast::<u8>(), len as usize).to_vec())
        }
    }
}
