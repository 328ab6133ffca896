//! The Python strs [`Reader::get_item`](super::Reader::get_item) looks keys
//! up with, made once per key and interned: a struct read field by field
//! from a dict would otherwise make and hash a new str for every field of
//! every result, where PyO3's `#[derive(FromPyObject)]` uses interned
//! names whose hashes are cached. A dict lookup with an interned key then
//! compares by identity.
//!
//! The cache holds at most [`MAX_KEYS`] keys, each one reference kept for
//! the life of the process (a key is a few dozen bytes; the crate never
//! finalizes Python). Keys beyond it are made per lookup, as before. The
//! lock is taken only with the GIL held, and never held while Python runs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::NonNull;
use std::sync::Mutex;

use pyo3_ffi::{PyObject, Py_ssize_t};

use crate::error::PyException;
use crate::object::Held;
use crate::runtime::Gil;

/// How many distinct keys are kept.
const MAX_KEYS: usize = 1024;

/// An interned str the cache owns one reference to, forever.
struct Key(NonNull<PyObject>);

// SAFETY: the pointer is only used with the GIL held (the cache's callers
// hold it), which serializes every use across threads.
unsafe impl Send for Key {}

/// Each key's text to its interned str.
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

/// The interned Python str for `key`, a new reference.
pub(super) fn key<'py>(gil: &'py Gil, key: &str) -> Result<Held<'py>, PyException> {
    let cached = {
        let keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
        keys.as_ref()
            .and_then(|keys| keys.get(key))
            .map(|k| k.0.as_ptr())
    };
    if let Some(ptr) = cached {
        // SAFETY: the GIL is held, and the cache keeps the str alive.
        return Ok(unsafe { Held::new_ref(gil, ptr) });
    }
    // SAFETY: the GIL is held; the pointer and length describe valid UTF-8
    // for the call; a new reference or NULL with an exception set.
    let mut made = unsafe {
        pyo3_ffi::PyUnicode_FromStringAndSize(key.as_ptr().cast(), key.len() as Py_ssize_t)
    };
    if !made.is_null() {
        // SAFETY: the GIL is held and `made` is a str we own; InternInPlace
        // replaces it with the interned one, moving our reference over.
        unsafe { pyo3_ffi::PyUnicode_InternInPlace(&mut made) };
    }
    // SAFETY: a new reference, or NULL with an exception set.
    let made = unsafe { Held::from_owned(gil, made) }?;
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let keys = keys.get_or_insert_with(HashMap::default);
    if keys.len() < MAX_KEYS && !keys.contains_key(key) {
        // SAFETY: the GIL is held; this reference is the cache's own.
        unsafe { pyo3_ffi::Py_IncRef(made.as_ptr()) };
        let ptr = NonNull::new(made.as_ptr()).expect("a made str is not NULL");
        keys.insert(key.into(), Key(ptr));
    }
    Ok(made)
}
