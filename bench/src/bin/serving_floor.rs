//! Where a "Serving a model" call's time goes (not part of `make bench`): N
//! calls of one of that table's paths on `bench_model.Scaler`, in a function
//! of its own, for profiling with callgrind's instruction counts, which do
//! not depend on the machine's load:
//!
//! ```text
//! cargo build --release -p py-in-mem-bench --bin serving_floor
//! valgrind --tool=callgrind --toggle-collect='serving_floor::calls' \
//!     target/release/serving_floor struct-inmem 20000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Paths: `predict-inmem` (the method held as a `Function`, 1,000 values
//! lent), `lookup-inmem` (the same, `model.method("predict")` per call),
//! `predict-pyo3` (PyO3 + rust-numpy, `call_method1`),
//! `observe-inmem` (`arg_owned` of a fresh 100 × 10 `NdVec`),
//! `observe-pyo3` (`PyArray::from_vec(..).reshape(..)`), `struct-inmem`
//! (the dict read by a `FromResult` impl with `Reader::get_item`),
//! `struct-serde` (the same dict read by `#[derive(Deserialize)]`),
//! `struct-pyo3` (`#[derive(FromPyObject)]`, `#[pyo3(item)]`). Divide the
//! totals by N.
//!
//! `compare` instead times the paths in 41 interleaved rounds of N calls
//! each on this thread and prints the medians (pin it: `taskset -c 1`).

#[path = "../libpython.rs"]
mod libpython;
#[path = "../readonly.rs"]
mod readonly;

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyArrayMethods};
use py_in_mem::{FromResult, Function, Mismatch, NdVec, Object, Reader};
use pyo3::prelude::*;

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");
const ALL: [&str; 8] = [
    "predict-inmem",
    "lookup-inmem",
    "predict-pyo3",
    "observe-inmem",
    "observe-pyo3",
    "struct-inmem",
    "struct-serde",
    "struct-pyo3",
];

#[allow(dead_code)] // read only through black_box
struct Prediction {
    label: String,
    score: f64,
    index: i64,
}

impl FromResult for Prediction {
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        Ok(Prediction {
            label: value.get_item("label")?,
            score: value.get_item("score")?,
            index: value.get_item("index")?,
        })
    }
}

#[allow(dead_code)] // read only through black_box
#[derive(serde::Deserialize)]
struct SerdePrediction {
    label: String,
    score: f64,
    index: i64,
}
py_in_mem::serde_result!(SerdePrediction);

#[allow(dead_code)] // read only through black_box
#[derive(FromPyObject)]
struct Pyo3Prediction {
    #[pyo3(item)]
    label: String,
    #[pyo3(item)]
    score: f64,
    #[pyo3(item)]
    index: i64,
}

struct Paths {
    model: Object,
    predict: Function,
    observe: Function,
    classify: Function,
    pyo3: Py<PyAny>,
}

fn batch() -> Vec<f64> {
    (0..1_000).map(|i| (i % 7) as f64 * 0.5).collect()
}

/// `n` calls of `path`: the function callgrind collects.
#[inline(never)]
fn calls(paths: &Paths, path: &str, data: &[f64], n: u64) -> anyhow::Result<()> {
    match path {
        "predict-inmem" => {
            for _ in 0..n {
                black_box(paths.predict.call::<f64>(data)?);
            }
        }
        "lookup-inmem" => {
            for _ in 0..n {
                black_box(paths.model.method("predict")?.call::<f64>(data)?);
            }
        }
        "observe-inmem" => {
            for _ in 0..n {
                let batch = NdVec::new(batch(), vec![100, 10])?;
                black_box(paths.observe.arg_owned(batch).call::<f64>()?);
            }
        }
        "struct-inmem" => {
            for _ in 0..n {
                black_box(paths.classify.call::<Prediction>(data)?);
            }
        }
        "struct-serde" => {
            for _ in 0..n {
                black_box(paths.classify.call::<SerdePrediction>(data)?);
            }
        }
        "predict-pyo3" | "observe-pyo3" | "struct-pyo3" => {
            for _ in 0..n {
                pyo3_call(&paths.pyo3, path, data)?;
            }
        }
        other => anyhow::bail!("unknown path {other:?}: one of {ALL:?}"),
    }
    Ok(())
}

/// The bench's PyO3 rows: attached per call.
fn pyo3_call(model: &Py<PyAny>, path: &str, data: &[f64]) -> anyhow::Result<()> {
    Python::attach(|py| {
        let model = model.bind(py);
        if path == "observe-pyo3" {
            let input = PyArray1::from_vec(py, batch()).reshape([100, 10])?;
            black_box(model.call_method1("observe", (input,))?.extract::<f64>()?);
            return Ok(());
        }
        // SAFETY: the array views `data`, which outlives the call, and the
        // methods called keep nothing and write nothing.
        let input = unsafe {
            PyArray1::borrow_from_array(&ArrayView1::from(data), py.None().into_bound(py))
        };
        if path == "struct-pyo3" {
            // Read-only, as py-in-mem lends: np.argmax copies a read-only input.
            readonly::make_readonly(&input);
        }
        if path == "predict-pyo3" {
            black_box(model.call_method1("predict", (input,))?.extract::<f64>()?);
        } else {
            black_box(
                model
                    .call_method1("classify", (input,))?
                    .extract::<Pyo3Prediction>()?,
            );
        }
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: serving_floor PATH|compare CALLS";
    let path = args.next().context(usage)?;
    let n: u64 = args.next().context(usage)?.parse()?;
    py_in_mem::add_sys_path(&std::path::Path::new(BENCH_DIR).join("python"))?;
    let model: Object = Function::load("bench_model", "Scaler")?.call0()?;
    libpython::check_this_process()?;
    let paths = Paths {
        predict: model.method("predict")?,
        observe: model.method("observe")?,
        classify: model.method("classify")?,
        model,
        pyo3: Python::attach(|py| -> PyResult<Py<PyAny>> {
            Ok(py
                .import("bench_model")?
                .getattr("Scaler")?
                .call0()?
                .unbind())
        })?,
    };
    let data = py_in_mem_bench_data();
    for path in ALL {
        calls(&paths, path, &data, 10)?; // warm up
    }
    if path != "compare" {
        return calls(&paths, &path, &data, n);
    }
    let mut times = vec![Vec::new(); ALL.len()];
    for _ in 0..41 {
        for (k, path) in ALL.iter().enumerate() {
            let start = Instant::now();
            calls(&paths, path, &data, n)?;
            times[k].push(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    for (path, mut t) in ALL.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        println!(
            "{path:>14}: {:.1} ns a call (median of 41 rounds of {n})",
            t[20]
        );
    }
    Ok(())
}

/// The bench's 1,000 values (`data::Case`), outliers included.
fn py_in_mem_bench_data() -> Vec<f64> {
    let mut data: Vec<f64> = (0..1_000)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    for i in [7, 113, 835] {
        data[i] += 97.0;
    }
    data
}
