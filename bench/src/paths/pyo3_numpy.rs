//! PyO3 with the `numpy` crate, as its users write it: attach to Python (take
//! the GIL) per call, make an array of the slice, call, read the result.

use std::time::Duration;

use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::{time_loop, Path};

/// How the slice becomes a numpy array.
#[derive(Clone, Copy)]
pub enum Array {
    /// `PyArray1::from_slice`: a copy into a new numpy array.
    Copy,
    /// `PyArray1::borrow_from_array`: a view of the slice, no copy.
    Borrowed,
}

pub struct Pyo3<'a> {
    pub func: Py<PyAny>,
    pub data: &'a [f64],
    pub array: Array,
}

impl Path for Pyo3<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        detect(&self.func, self.data, self.array)
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        time_loop(calls, || self.call())
    }
}

/// One call as PyO3's users write it: attach, make the array, call, read.
pub fn detect(func: &Py<PyAny>, data: &[f64], array: Array) -> anyhow::Result<Vec<usize>> {
    Python::attach(|py| {
        let input = match array {
            Array::Copy => PyArray1::from_slice(py, data),
            // SAFETY: the array views `data`, which outlives this closure;
            // the functions benchmarked neither keep their argument past the
            // call nor write to it, so nothing reads or writes the slice
            // through the array after it is gone.
            Array::Borrowed => unsafe {
                PyArray1::borrow_from_array(&ArrayView1::from(data), py.None().into_bound(py))
            },
        };
        let result = func.bind(py).call1((input,))?;
        indices_of(&result)
    })
}

/// A 1-D int64 numpy array of indices, copied out as `usize`.
pub fn indices_of(result: &Bound<'_, PyAny>) -> anyhow::Result<Vec<usize>> {
    let array: PyReadonlyArray1<'_, i64> = result.extract()?;
    array
        .as_array()
        .iter()
        .map(|&i| usize::try_from(i).map_err(|_| anyhow::anyhow!("negative index {i}")))
        .collect()
}
