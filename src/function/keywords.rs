//! The keyword-name tuple a vectorcall takes, cached per [`Function`](super::Function).

use std::cell::UnsafeCell;

use crate::convert::into_arg::{tuple_of, Arg, Scalar};
use crate::error::PyException;
use crate::object::Held;
use crate::runtime::{Gil, PlainRef};

/// The keyword names of a function's last call with keywords, as the tuple a
/// vectorcall takes them in: a loop of calls with the same keywords builds
/// it once (what a call would rebuild each time but can keep per function
/// is kept, to keep the cost of a call down).
#[derive(Default)]
pub(super) struct KeywordNames(UnsafeCell<Option<Keywords>>);

/// Keyword names, and the tuple made of them.
struct Keywords {
    names: Box<[Box<str>]>,
    /// A tuple of strs, released without waiting for the GIL when the
    /// Function drops on a thread that does not hold it.
    tuple: PlainRef,
}

// SAFETY: the cell is only used with the GIL held (`tuple` takes `&Gil`),
// which serializes the threads that share a Function; and no Python code
// runs while it is borrowed (see `tuple`), so it is never borrowed twice by
// one thread either.
unsafe impl Sync for KeywordNames {}

// A panic cannot leave the cache half-updated: it is replaced whole, with
// nothing that can panic in between. So a Function stays usable across
// catch_unwind, as it was before it had the cache.
impl std::panic::RefUnwindSafe for KeywordNames {}

impl KeywordNames {
    /// The tuple of `kwargs`' names, from the cache when the last call with
    /// keywords had the same ones.
    pub(super) fn tuple<'py>(
        &self,
        gil: &'py Gil,
        kwargs: &[(&str, Arg<'_>)],
    ) -> Result<Held<'py>, PyException> {
        let same = |cached: &[Box<str>]| {
            cached.len() == kwargs.len() && cached.iter().zip(kwargs).all(|(a, (b, _))| **a == **b)
        };
        // SAFETY: the GIL is held (`gil`); while the cell is borrowed only
        // Rust strings are compared and a reference count is increased,
        // which runs no Python code.
        let cached = unsafe { &*self.0.get() }
            .as_ref()
            .filter(|cached| same(&cached.names))
            // SAFETY: the cached tuple is live (the cell holds it).
            .map(|cached| unsafe { Held::new_ref(gil, cached.tuple.as_ptr()) });
        if let Some(tuple) = cached {
            return Ok(tuple);
        }
        let tuple = tuple_of(gil, kwargs.iter().map(|(name, _)| Scalar::Str(name)))?;
        let names = kwargs.iter().map(|(name, _)| Box::from(*name)).collect();
        // SAFETY: the tuple is live (we hold it); one more reference for
        // the cache. A tuple of strs: its release runs no Python code.
        let kept =
            unsafe { PlainRef::from_strong(Held::new_ref(gil, tuple.as_ptr()).into_strong()) };
        // SAFETY: the GIL is held; the old entry is moved out while the
        // cell is borrowed, and dropped (which may free a tuple of str) only
        // after.
        let old = unsafe { (*self.0.get()).replace(Keywords { names, tuple: kept }) };
        drop(old);
        Ok(tuple)
    }
}
