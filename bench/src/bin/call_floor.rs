//! Where a call-only call's time goes (not part of `make bench`): N calls of
//! `bench_funcs.const` (which returns a constant empty int64 array) on 1,000
//! values by one path, in a function of its own, for profiling with
//! callgrind's instruction counts, which do not depend on the machine's load:
//!
//! ```text
//! cargo build --release -p py-in-mem-bench --bin call_floor
//! valgrind --tool=callgrind --toggle-collect='call_floor::calls' \
//!     target/release/call_floor inmem 20000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Paths: `inmem` (`Outliers::detect`, the GIL taken per call), `scope`
//! (the same inside one `py_in_mem::hold_gil`), `scope-lent` (a `Function`
//! called inside the scope on an array lent once with `GilScope::lend`),
//! `pyo3` (PyO3 + rust-numpy, `Python::attach` and `borrow_from_array` per
//! call, as the bench's PyO3 row). Divide the totals by N.
//!
//! `compare` instead times the paths in 41 interleaved rounds of N calls
//! each on this thread and prints the medians (pin it: `taskset -c 1`).

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyReadonlyArray1};
use py_in_mem::{Function, Outliers};
use pyo3::prelude::*;

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

struct Paths {
    outliers: Outliers,
    function: Function,
    pyo3: Py<PyAny>,
}

/// `n` calls of `path`: the function callgrind collects.
#[inline(never)]
fn calls(paths: &Paths, path: &str, data: &[f64], n: u64) -> anyhow::Result<()> {
    match path {
        "inmem" => {
            for _ in 0..n {
                black_box(paths.outliers.detect(data)?);
            }
        }
        "scope" => py_in_mem::hold_gil(|_| {
            for _ in 0..n {
                black_box(paths.outliers.detect(data)?);
            }
            Ok(())
        })?,
        "scope-lent" => py_in_mem::hold_gil(|scope| {
            let data = scope.lend(data)?;
            for _ in 0..n {
                black_box(paths.function.call::<Vec<i64>>(data)?);
            }
            Ok(())
        })?,
        "pyo3" => {
            for _ in 0..n {
                black_box(pyo3_call(&paths.pyo3, data)?);
            }
        }
        other => anyhow::bail!("unknown path {other:?}: inmem, scope, scope-lent or pyo3"),
    }
    Ok(())
}

/// The bench's PyO3 row, on the constant function.
fn pyo3_call(func: &Py<PyAny>, data: &[f64]) -> anyhow::Result<Vec<usize>> {
    Python::attach(|py| {
        // SAFETY: the array views `data`, which outlives the call, and the
        // function called keeps nothing and writes nothing.
        let input = unsafe {
            PyArray1::borrow_from_array(&ArrayView1::from(data), py.None().into_bound(py))
        };
        let result = func.bind(py).call1((input,))?;
        let array: PyReadonlyArray1<'_, i64> = result.extract()?;
        Ok(array.as_array().iter().map(|&i| i as usize).collect())
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: call_floor PATH|compare CALLS")?;
    let n: u64 = args
        .next()
        .context("usage: call_floor PATH|compare CALLS")?
        .parse()?;
    py_in_mem::add_sys_path(&std::path::Path::new(BENCH_DIR).join("python"))?;
    let paths = Paths {
        outliers: Outliers::new("bench_funcs", "const")?,
        function: Function::load("bench_funcs", "const")?,
        pyo3: Python::attach(|py| -> PyResult<Py<PyAny>> {
            Ok(py.import("bench_funcs")?.getattr("const")?.unbind())
        })?,
    };
    let data = vec![0.5; 1_000];
    let all = ["inmem", "scope", "scope-lent", "pyo3"];
    for path in all {
        calls(&paths, path, &data, 10)?; // warm up
    }
    if path != "compare" {
        return calls(&paths, &path, &data, n);
    }
    let mut times = vec![Vec::new(); all.len()];
    for _ in 0..41 {
        for (k, path) in all.iter().enumerate() {
            let start = Instant::now();
            calls(&paths, path, &data, n)?;
            times[k].push(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    for (path, mut t) in all.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        println!(
            "{path:>10}: {:.1} ns a call (median of 41 rounds of {n})",
            t[20]
        );
    }
    Ok(())
}
