//! PyO3 of the lowest version py-in-mem builds with, and py-in-mem, in one
//! process: one pyo3-ffi, one interpreter. py-in-mem starts Python (PyO3's
//! `auto-initialize` is off); PyO3 then attaches to it and sees what
//! py-in-mem made, and py-in-mem calls on after PyO3 did.

use std::process::ExitCode;

use py_in_mem::{Function, Object, Outliers};
use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // py-in-mem first: it starts Python, as docs/lifecycle.md says.
    let mut data: Vec<f64> = (0..1000).map(|i| (i % 10) as f64 / 10.0).collect();
    for i in [7, 113, 835] {
        data[i] += 97.0;
    }
    println!(
        "outliers at: {:?}",
        Outliers::new("outliers", "detect")?.detect(&data)?
    );
    let source = "class Negative(ValueError):\n    pass\n\n\
                  def total(x):\n    if (x < 0).any():\n        raise Negative('negative input')\n    return float(x.sum())\n";
    let total = Function::from_source("beside_pyo3", source, "total")?;

    // PyO3 on the same interpreter: numpy, and the module py-in-mem made.
    let (sum, from_module) = Python::attach(|py| -> PyResult<(f64, f64)> {
        let numpy = py.import("numpy")?;
        let sum: f64 = numpy
            .call_method1("arange", (10,))?
            .call_method0("sum")?
            .extract()?;
        let module = py.import("beside_pyo3")?;
        let array = numpy.call_method1("array", (vec![1.5, 2.5],))?;
        let from_module: f64 = module.call_method1("total", (array,))?.extract()?;
        Ok((sum, from_module))
    })?;
    println!("pyo3: numpy.arange(10).sum() = {sum}, beside_pyo3.total = {from_module}");

    // py-in-mem again, after PyO3: a result, and an exception by class.
    println!(
        "py-in-mem: total = {}",
        total.call::<f64>(&[1.0, 2.0, 3.0])?
    );
    let err = total.call::<f64>(&[1.0, -2.0]).unwrap_err();
    println!(
        "py-in-mem: {err}; a ValueError: {}",
        err.is_instance_of("ValueError")
    );

    // Objects both ways, by pointer: one PyO3 made, read by py-in-mem;
    // one py-in-mem holds, read by PyO3.
    let made_by_pyo3 = Python::attach(|py| -> PyResult<Result<Object, py_in_mem::Error>> {
        let namespace = py
            .import("types")?
            .getattr("SimpleNamespace")?
            .call((), Some(&[("n", 3)].into_py_dict(py)?))?;
        // SAFETY: a live object of this interpreter, which `namespace` keeps.
        Ok(unsafe { Object::from_borrowed_ptr(namespace.as_ptr()) })
    })??;
    let held: Object = Function::load("builtins", "dict")?.kwarg("k", 7).call()?;
    let read_by_pyo3 = Python::attach(|py| -> PyResult<i64> {
        // SAFETY: `held` keeps the object alive; PyO3 takes its own reference.
        let dict = unsafe { Bound::from_borrowed_ptr(py, held.as_ptr()) };
        dict.get_item("k")?.extract()
    })?;
    println!(
        "by pointer: py-in-mem reads PyO3's n = {}, PyO3 reads py-in-mem's k = {read_by_pyo3}",
        made_by_pyo3.getattr::<i64>("n")?
    );
    Ok(())
}
