//! Marking a numpy array read-only, as py-in-mem lends: numpy copies a
//! read-only input in some functions (`np.argmax` asks for a writable,
//! contiguous array), so a row whose Python code calls one compares the
//! same input only if both paths lend read-only. Shared by the bench and
//! `serving_floor`.

use numpy::{PyArray1, PyUntypedArrayMethods};
use pyo3::Bound;

/// Clears `array`'s WRITEABLE flag.
pub fn make_readonly(array: &Bound<'_, PyArray1<f64>>) {
    // SAFETY: the GIL is held (the Bound says so) and the array is live;
    // clearing a flag (as PyArray_CLEARFLAGS does) is a plain write to its
    // own object. Callers do it before any Python code has seen the array.
    unsafe { (*array.as_array_ptr()).fields.flags &= !numpy::npyffi::NPY_ARRAY_WRITEABLE };
}
