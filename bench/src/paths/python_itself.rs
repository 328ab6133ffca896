//! Python itself: the function timed from inside Python on a numpy array
//! already there, the floor for any way of calling it from outside.

use std::time::Duration;

use numpy::PyArray1;
use pyo3::prelude::*;

use super::pyo3_numpy::indices_of;
use super::Path;

pub struct PythonItself {
    func: Py<PyAny>,
    /// `bench_funcs.time_calls`.
    timer: Py<PyAny>,
    /// The input, copied into a numpy array once.
    array: Py<PyArray1<f64>>,
}

impl PythonItself {
    pub fn new(func: Py<PyAny>, timer: Py<PyAny>, data: &[f64]) -> PythonItself {
        let array = Python::attach(|py| PyArray1::from_slice(py, data).unbind());
        PythonItself { func, timer, array }
    }
}

impl Path for PythonItself {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Python::attach(|py| indices_of(&self.func.bind(py).call1((self.array.bind(py),))?))
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let nanos: u64 = Python::attach(|py| {
            self.timer
                .bind(py)
                .call1((self.func.bind(py), self.array.bind(py), calls))?
                .extract()
        })?;
        Ok(Duration::from_nanos(nanos))
    }
}
