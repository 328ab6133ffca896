//! Results of other kinds than the article's indices, each path against
//! PyO3 + rust-numpy in the same interleaved run: a scalar (`np.mean` of
//! 1,000 values, a numpy float64 read as `f64`) and a 2-D array (`np.outer`
//! of two 100-value vectors, 100 × 100 float64), copied out into an
//! `ndarray::Array2` or read in place. Every path's result is checked
//! before it is timed.

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use anyhow::{ensure, Context};
use numpy::ndarray::{Array2, ArrayView1};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2};
use py_in_mem::{Function, ResultView};
use pyo3::prelude::*;

use crate::data::Case;
use crate::paths::{time_loop, Path};
use crate::report::{micros, times};
use crate::runner::{measure, Entry, Plan};
use crate::stats::Spread;

/// The result asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `np.mean(a)`, a at 1,000 values: a numpy float64 scalar.
    Scalar,
    /// `np.outer(a, b)`, 100 values each, copied out as `Array2<f64>`.
    Matrix,
    /// The same, read in place.
    MatrixInPlace,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Scalar, Kind::Matrix, Kind::MatrixInPlace];

    fn label(self) -> &'static str {
        match self {
            Kind::Scalar => "scalar: `np.mean` of 1,000 values → `f64`",
            Kind::Matrix => "2-D: `np.outer` of two 100-value vectors → `Array2<f64>`",
            Kind::MatrixInPlace => "2-D, read in place: the same → a view",
        }
    }
}

/// Who calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    InMem,
    Pyo3,
    Python,
}

impl Caller {
    fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Caller::InMem, Kind::Scalar) => "py-in-mem `call::<f64>`",
            (Caller::InMem, Kind::Matrix) => "py-in-mem `call::<Array2<f64>>`",
            (Caller::InMem, Kind::MatrixInPlace) => "py-in-mem `call::<ResultView<f64>>`",
            (Caller::Pyo3, Kind::Scalar) => {
                "PyO3 + rust-numpy: borrow_from_array, `extract::<f64>`"
            }
            (Caller::Pyo3, Kind::Matrix) => {
                "PyO3 + rust-numpy: borrow_from_array, `PyReadonlyArray2::to_owned_array`"
            }
            (Caller::Pyo3, Kind::MatrixInPlace) => {
                "PyO3 + rust-numpy: borrow_from_array, `PyReadonlyArray2::as_array`"
            }
            (Caller::Python, _) => "Python itself",
        }
    }
}

/// One measured row.
pub struct KindRow {
    pub kind: Kind,
    pub caller: Caller,
    pub spread: Spread,
}

/// The inputs, the functions and what they must return.
struct Inputs {
    data: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    mean: f64,
}

impl Inputs {
    fn new() -> Inputs {
        let data = Case::new(1_000).data;
        let a: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.5 - 7.0).collect();
        let b: Vec<f64> = (0..100).map(|i| 1.0 / f64::from(i + 1)).collect();
        let mean = data.iter().sum::<f64>() / data.len() as f64;
        Inputs { data, a, b, mean }
    }

    fn check_mean(&self, m: f64) -> anyhow::Result<()> {
        ensure!(
            (m - self.mean).abs() <= 1e-12 * self.mean.abs(),
            "mean {m}, expected {}",
            self.mean
        );
        Ok(())
    }

    /// Each element is one multiplication, exact in IEEE arithmetic.
    fn check_outer(
        &self,
        get: impl Fn(usize, usize) -> f64,
        shape: &[usize],
    ) -> anyhow::Result<()> {
        ensure!(shape == [self.a.len(), self.b.len()], "shape {shape:?}");
        for (i, x) in self.a.iter().enumerate() {
            for (j, y) in self.b.iter().enumerate() {
                ensure!(get(i, j) == x * y, "outer[{i}, {j}] = {}", get(i, j));
            }
        }
        Ok(())
    }
}

/// py-in-mem: `Function::call`, the type asked for deciding the reading.
struct InMem<'a> {
    mean: &'a Function,
    outer: &'a Function,
    inputs: &'a Inputs,
    kind: Kind,
}

impl InMem<'_> {
    fn once(&self) -> anyhow::Result<()> {
        let i = self.inputs;
        match self.kind {
            Kind::Scalar => {
                black_box(self.mean.call::<f64>(&i.data)?);
            }
            Kind::Matrix => {
                black_box(self.outer.arg(&i.a).arg(&i.b).call::<Array2<f64>>()?);
            }
            Kind::MatrixInPlace => {
                black_box(self.outer.arg(&i.a).arg(&i.b).call::<ResultView<f64>>()?);
            }
        }
        Ok(())
    }
}

impl Path for InMem<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        let i = self.inputs;
        match self.kind {
            Kind::Scalar => i.check_mean(self.mean.call(&i.data)?)?,
            Kind::Matrix => {
                let m: Array2<f64> = self.outer.arg(&i.a).arg(&i.b).call()?;
                i.check_outer(|r, c| m[[r, c]], m.shape())?;
            }
            Kind::MatrixInPlace => {
                let m: ResultView<f64> = self.outer.arg(&i.a).arg(&i.b).call()?;
                let cols = i.b.len();
                i.check_outer(|r, c| m[r * cols + c], m.shape())?;
            }
        }
        Ok(Vec::new())
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        time_loop(calls, || self.once().map(|()| Vec::new()))
    }
}

/// PyO3 with rust-numpy, as its users write it: attach per call, lend the
/// slices with `borrow_from_array`, call, extract.
struct Pyo3<'a> {
    mean: Py<PyAny>,
    outer: Py<PyAny>,
    inputs: &'a Inputs,
    kind: Kind,
}

/// A numpy view of `data`.
///
/// # Safety
/// The functions benchmarked neither keep their arguments nor write to
/// them, and the array is dropped before `data` is.
pub(crate) unsafe fn borrowed<'py>(py: Python<'py>, data: &[f64]) -> Bound<'py, PyArray1<f64>> {
    // SAFETY: as the caller promises.
    unsafe { PyArray1::borrow_from_array(&ArrayView1::from(data), py.None().into_bound(py)) }
}

/// A read-only numpy view of `data`: what py-in-mem lends (see
/// [`crate::readonly`]).
///
/// # Safety
/// As [`borrowed`].
pub(crate) unsafe fn borrowed_readonly<'py>(
    py: Python<'py>,
    data: &[f64],
) -> Bound<'py, PyArray1<f64>> {
    // SAFETY: as the caller promises.
    let array = unsafe { borrowed(py, data) };
    crate::readonly::make_readonly(&array);
    array
}

impl Pyo3<'_> {
    /// One call, with `check` given what came back.
    fn once(&self, check: bool) -> anyhow::Result<()> {
        let i = self.inputs;
        Python::attach(|py| {
            match self.kind {
                Kind::Scalar => {
                    // SAFETY: np.mean keeps nothing; the array goes first.
                    let input = unsafe { borrowed(py, &i.data) };
                    let m: f64 = self.mean.bind(py).call1((input,))?.extract()?;
                    if check {
                        i.check_mean(m)?;
                    }
                    black_box(m);
                }
                Kind::Matrix | Kind::MatrixInPlace => {
                    // SAFETY: np.outer keeps nothing; the arrays go first.
                    let (a, b) = unsafe { (borrowed(py, &i.a), borrowed(py, &i.b)) };
                    let result = self.outer.bind(py).call1((a, b))?;
                    let array: PyReadonlyArray2<'_, f64> = result.extract()?;
                    if self.kind == Kind::Matrix {
                        let m = array.to_owned_array();
                        if check {
                            i.check_outer(|r, c| m[[r, c]], m.shape())?;
                        }
                        black_box(m);
                    } else {
                        let m = array.as_array();
                        if check {
                            i.check_outer(|r, c| m[[r, c]], m.shape())?;
                        }
                        black_box(m);
                    }
                }
            }
            Ok(())
        })
    }
}

impl Path for Pyo3<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        self.once(true).map(|()| Vec::new())
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        time_loop(calls, || self.once(false).map(|()| Vec::new()))
    }
}

/// Python itself: the function timed inside Python on numpy arrays already
/// there (`bench_funcs.time_calls_args`).
pub(crate) struct PythonItself {
    pub(crate) func: Py<PyAny>,
    pub(crate) args: Py<PyAny>,
    pub(crate) timer: Py<PyAny>,
}

impl Path for PythonItself {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Python::attach(|py| -> PyResult<()> {
            self.func.bind(py).call1(
                self.args
                    .bind(py)
                    .extract::<Bound<'_, pyo3::types::PyTuple>>()?,
            )?;
            Ok(())
        })?;
        Ok(Vec::new())
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let nanos: u64 = Python::attach(|py| {
            self.timer
                .bind(py)
                .call1((self.func.bind(py), self.args.bind(py), calls))?
                .extract()
        })?;
        Ok(Duration::from_nanos(nanos))
    }
}

/// Measures every kind and caller, interleaved in one run.
pub fn measure_kinds(plan: Plan) -> anyhow::Result<Vec<KindRow>> {
    let inputs = Inputs::new();
    let mean = Function::load("numpy", "mean")?;
    let outer = Function::load("numpy", "outer")?;
    let (py_mean, py_outer, timer, mean_args, outer_args) = Python::attach(|py| -> PyResult<_> {
        let numpy = py.import("numpy")?;
        let bench_funcs = py.import("bench_funcs")?;
        let array = |data: &[f64]| PyArray1::from_slice(py, data);
        let mean_args = (array(&inputs.data),)
            .into_pyobject(py)?
            .into_any()
            .unbind();
        let outer_args = (array(&inputs.a), array(&inputs.b))
            .into_pyobject(py)?
            .into_any()
            .unbind();
        Ok((
            numpy.getattr("mean")?.unbind(),
            numpy.getattr("outer")?.unbind(),
            bench_funcs.getattr("time_calls_args")?.unbind(),
            mean_args,
            outer_args,
        ))
    })
    .context("loading numpy's functions through PyO3")?;
    let clone = |obj: &Py<PyAny>| Python::attach(|py| obj.clone_ref(py));
    let mut paths: Vec<(Kind, Caller, Box<dyn Path + '_>)> = Vec::new();
    for kind in Kind::ALL {
        let in_mem = InMem {
            mean: &mean,
            outer: &outer,
            inputs: &inputs,
            kind,
        };
        paths.push((kind, Caller::InMem, Box::new(in_mem)));
        let pyo3 = Pyo3 {
            mean: clone(&py_mean),
            outer: clone(&py_outer),
            inputs: &inputs,
            kind,
        };
        paths.push((kind, Caller::Pyo3, Box::new(pyo3)));
        if kind != Kind::MatrixInPlace {
            let (func, args) = if kind == Kind::Scalar {
                (&py_mean, &mean_args)
            } else {
                (&py_outer, &outer_args)
            };
            let python = PythonItself {
                func: clone(func),
                args: clone(args),
                timer: clone(&timer),
            };
            paths.push((kind, Caller::Python, Box::new(python)));
        }
    }
    let rows: Vec<(Kind, Caller)> = paths.iter().map(|(k, c, _)| (*k, *c)).collect();
    let mut entries: Vec<Entry<'_>> = paths
        .into_iter()
        .map(|(kind, caller, path)| Entry {
            name: format!("{} ({})", caller.label(kind), kind.label()),
            path,
            expected: &[],
        })
        .collect();
    let measured = measure(&mut entries, plan)?;
    Ok(rows
        .into_iter()
        .zip(measured)
        .map(|((kind, caller), m)| KindRow {
            kind,
            caller,
            spread: m.time,
        })
        .collect())
}

/// PyO3 ÷ py-in-mem for `kind`, from `rows`.
pub fn vs_pyo3(rows: &[KindRow], kind: Kind) -> Option<f64> {
    let of = |caller| {
        rows.iter()
            .find(|r| r.kind == kind && r.caller == caller)
            .map(|r| r.spread.median)
    };
    Some(of(Caller::Pyo3)? / of(Caller::InMem)?)
}

/// The table of these rows, with the ratios against PyO3.
pub fn table(md: &mut String, rows: &[KindRow]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Results of other kinds\n");
    let _ = writeln!(
        md,
        "Each against PyO3 + rust-numpy (attaching per call, inputs lent with \
         `borrow_from_array`) in the same interleaved rounds; *÷ py-in-mem* is the \
         row's time over py-in-mem's for the same result.\n"
    );
    let _ = writeln!(md, "| result | path | µs/call | p10 | p90 | ÷ py-in-mem |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    for kind in Kind::ALL {
        let in_mem = rows
            .iter()
            .find(|r| r.kind == kind && r.caller == Caller::InMem)
            .map(|r| r.spread.median);
        for row in rows.iter().filter(|r| r.kind == kind) {
            let s = row.spread;
            let ratio = in_mem.map_or("n/a".to_owned(), |m| times(s.median / m));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {ratio} |",
                kind.label(),
                row.caller.label(kind),
                micros(s.median),
                micros(s.p10),
                micros(s.p90)
            );
        }
    }
    let _ = writeln!(md);
}
