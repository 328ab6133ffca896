//! Python strs made once per text and interned, for names looked up again
//! and again: the keys [`Reader::get_item`](crate::Reader::get_item) reads
//! a dict's fields by, and the names an object's methods are called by
//! ([`Object::method`](crate::Object::method)). Made afresh, each lookup
//! would make and hash a new str (and a method name would miss CPython's
//! per-type method cache, which takes interned names only), where PyO3's
//! `#[derive(FromPyObject)]` and `intern!` use interned strs whose hashes
//! are cached. A dict lookup with an interned key compares by identity.
//!
//! The cache holds at most [`MAX_KEYS`] strs, each one reference kept for
//! the life of the process (a name is a few dozen bytes; the crate never
//! finalizes Python). Texts beyond it are made per lookup. The lock is
//! taken only with the GIL held, and never held while Python runs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::NonNull;
use std::sync::Mutex;

use pyo3_ffi::{PyObject, Py_ssize_t};

use crate::error::PyException;
use crate::object::Held;
use crate::runtime::Gil;

/// How many distinct strs are kept.
const MAX_KEYS: usize = 1024;

/// An interned str the cache owns one reference to, forever.
struct Key(NonNull<PyObject>);

// SAFETY: the pointer is only used with the GIL held (the cache's callers
// hold it), which serializes every use across threads.
unsafe impl Send for Key {}

/// Each text to its interned str.
type Keys = HashMap<Box<str>, Key, BuildHasherDefault<FxHasher>>;

static KEYS: Mutex<Option<Keys>> = Mutex::new(None);

/// rustc's FxHash: a multiply per word. The std's SipHash cost more than
/// the dict lookup itself for a field name of a few bytes; its resistance
/// to chosen collisions buys nothing here, where the cache never holds
/// more than [`MAX_KEYS`] keys.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An interned str, for as long as `'py`'s GIL is held, or for good.
pub(crate) enum Interned<'py> {
    /// Kept by the cache for the life of the process: its pointer may be
    /// kept too, with no reference of its own, and used whenever the GIL is
    /// held.
    Kept(NonNull<PyObject>),
    /// Made for this use (the cache is full).
    Made(Held<'py>),
}

impl Interned<'_> {
    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        match self {
            Interned::Kept(ptr) => ptr.as_ptr(),
            Interned::Made(held) => held.as_ptr(),
        }
    }
}

/// `text` as an interned Python str.
pub(crate) fn interned<'py>(gil: &'py Gil, text: &str) -> Result<Interned<'py>, PyException> {
    if let Some(kept) = kept(text) {
        return Ok(Interned::Kept(kept));
    }
    // SAFETY: the GIL is held; the pointer and length describe valid UTF-8
    // for the call; a new reference or NULL with an exception set.
    let mut made = unsafe {
        pyo3_ffi::PyUnicode_FromStringAndSize(text.as_ptr().cast(), text.len() as Py_ssize_t)
    };
    if !made.is_null() {
        // SAFETY: the GIL is held and `made` is a str we own; InternInPlace
        // replaces it with the interned one, moving our reference over.
        unsafe { pyo3_ffi::PyUnicode_InternInPlace(&mut made) };
    }
    // Not under the lock: fetching an exception may run Python code.
    // SAFETY: a new reference, or NULL with an exception set.
    let made = unsafe { Held::from_owned(gil, made) }?;
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let keys = keys.get_or_insert_with(HashMap::default);
    if let Some(kept) = keys.get(text) {
        // Kept meanwhile (a thread that ran while the GIL was given up,
        // which nothing here does today): ours goes, after the lock.
        return Ok(Interned::Kept(kept.0));
    }
    if keys.len() == MAX_KEYS {
        return Ok(Interned::Made(made));
    }
    // The Held's reference becomes the cache's own.
    let ptr = NonNull::new(made.into_raw()).expect("a made str is not NULL");
    keys.insert(text.into(), Key(ptr));
    Ok(Interned::Kept(ptr))
}

/// The str kept for `text`, if any.
fn kept(text: &str) -> Option<NonNull<PyObject>> {
    let keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    keys.as_ref()?.get(text).map(|kept| kept.0)
}
