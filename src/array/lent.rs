//! An array lent for the whole of a held-GIL scope
//! ([`GilScope::lend`](crate::GilScope::lend)): the Rust memory, and the
//! numpy array over it while one is lent, lent anew after a call that kept
//! it.

use std::cell::Cell;

use crate::array::borrow::{BorrowedArray, Release, RustArray};
use crate::error::PyException;
use crate::runtime::Gil;

/// Who a scope's lent array was lent to, for messages about it after its
/// calls (each call checks it, and names its function, first).
pub(crate) const IN_A_SCOPE: &str = "a function called in a held-GIL scope (py_in_mem::hold_gil)";

/// An array lent for the scope: the Rust memory, and its numpy array while
/// one is lent.
pub struct LentSlot {
    /// Borrowed for the scope's `'scope`, erased here (see
    /// [`GilScope::lend`](crate::GilScope::lend) for why that holds).
    source: RustArray<'static>,
    pub(crate) array: Cell<Option<BorrowedArray<'static>>>,
}

impl LentSlot {
    /// A slot for `source`, no array lent yet.
    pub(crate) fn new(source: RustArray<'static>) -> LentSlot {
        LentSlot {
            source,
            array: Cell::new(None),
        }
    }

    /// The numpy array for a call, lent anew if Python kept the last one.
    pub(crate) fn array(&self, gil: &Gil) -> Result<*mut pyo3_ffi::PyObject, PyException> {
        let array = match self.array.take() {
            Some(array) => array,
            None => BorrowedArray::new(gil, &self.source, IN_A_SCOPE)?,
        };
        let ptr = array.as_ptr();
        self.array.set(Some(array));
        Ok(ptr)
    }

    /// After a call it was passed to: if anything may have kept the array,
    /// or the call changed its shape, strides or dtype in place, gives it
    /// back now, with the retention rule, naming `lent_to` (the next call
    /// lends anew).
    pub(crate) fn after_call(&self, gil: &Gil, lent_to: &str) -> Release {
        match self.array.take() {
            Some(array) if array.is_kept(gil) || !self.source.is_shown_by(gil, &array) => {
                array.release_to(gil, lent_to)
            }
            other => {
                self.array.set(other);
                Release::Free
            }
        }
    }
}
