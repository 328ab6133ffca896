//! Python's own `threading`: N Python threads calling the function in
//! Python, started and timed by `bench_funcs.contend` in this process, each
//! call timed on its own thread with `time.perf_counter_ns`.

use std::time::Duration;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::{Contender, Input, Segment};
use crate::data::Case;

pub struct PythonThreads {
    /// The function the threads call.
    pub func: Py<PyAny>,
    /// `bench_funcs.contend`.
    pub harness: Py<PyAny>,
}

impl Contender for PythonThreads {
    fn run(
        &self,
        case: &Case,
        input: Input,
        threads: usize,
        time: Duration,
    ) -> anyhow::Result<Segment> {
        Python::attach(|py| {
            // numpy's own memory: huge pages from 4 MB on.
            let shared = PyArray1::from_slice(py, &case.data);
            let arrays = PyList::empty(py);
            for _ in 0..threads {
                match input {
                    Input::Shared => arrays.append(&shared)?,
                    Input::PerThread => arrays.append(PyArray1::from_slice(py, &case.data))?,
                }
            }
            let expected: Vec<i64> = case.expected.iter().map(|&i| i as i64).collect();
            let expected = PyArray1::from_vec(py, expected);
            let (wall_ns, latencies): (u64, PyReadonlyArray1<'_, i64>) = self
                .harness
                .bind(py)
                .call1((self.func.bind(py), arrays, expected, time.as_secs_f64()))?
                .extract()?;
            let latencies_ns: Vec<u64> = latencies
                .as_array()
                .iter()
                .map(|&ns| ns.max(0) as u64)
                .collect();
            Ok(Segment {
                calls: latencies_ns.len() as u64,
                wall: Duration::from_nanos(wall_ns),
                latencies_ns,
            })
        })
    }
}
