//! Serving a model: a small fitted model (`bench_model.Scaler`) held by
//! Rust and its methods called per request, each py-in-mem path against
//! PyO3 + rust-numpy in the same interleaved run. Three requests: a method
//! returning a float on 1,000 lent float64 values; an owned 2-D batch
//! (a fresh `Vec<f64>` of 100 × 10 per call, given to Python, which keeps the
//! last few); a dict result read into a Rust struct. Every path's result is
//! checked before it is timed.
//!
//! A further way of reading the struct result is one [`Caller`] variant, one
//! struct with its conversion into [`Prediction`], one label and one arm in
//! [`InMem::once`].

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use anyhow::{ensure, Context};
use numpy::{PyArray1, PyArrayMethods};
use py_in_mem::{FromResult, Function, Mismatch, NdVec, Object, Reader};
use pyo3::prelude::*;

use crate::affinity::{pin, Affinity};
use crate::data::Case;
use crate::kinds::PythonItself;
use crate::paths::{time_loop, Path};
use crate::report::{micros, times};
use crate::runner::{measure, Entry, Plan};
use crate::stats::Spread;

/// Rows × features of the owned batch.
const ROWS: usize = 100;
const FEATURES: usize = 10;

/// The request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `model.predict(x)`, x lent, 1,000 float64 values: a float.
    Method,
    /// `model.observe(batch)`, a fresh 100 × 10 batch given to Python.
    Owned,
    /// `model.classify(x)`, x lent: a dict read into a struct.
    Struct,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Method, Kind::Owned, Kind::Struct];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Method => "a method of a held model on 1,000 lent values → `f64`",
            Kind::Owned => "an owned 100 × 10 batch, made per call, kept by Python → `f64`",
            Kind::Struct => "a dict `{label, score, index}` → a Rust struct",
        }
    }

    /// The py-in-mem path the summary's ratio is of.
    pub fn in_mem(self) -> Caller {
        match self {
            Kind::Method | Kind::Owned => Caller::InMem,
            Kind::Struct => Caller::InMemSerde,
        }
    }
}

/// Who calls, and how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    /// py-in-mem, the method held as a `Function` (looked up once).
    InMem,
    /// py-in-mem, `model.method(..)` looked up per call.
    InMemLookup,
    /// py-in-mem, the result read by a hand-written `FromResult` impl.
    InMemReader,
    /// py-in-mem, the result read by serde (`#[derive(Deserialize)]`,
    /// `serde_result!`).
    InMemSerde,
    /// PyO3 + rust-numpy: `call_method1` per call, as its users write it.
    Pyo3,
    /// PyO3 + rust-numpy: the bound method held, `call1` per call.
    Pyo3Held,
    /// Python itself: the bound method called from Python on an array
    /// already there.
    Python,
}

impl Caller {
    pub fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Caller::InMem, Kind::Method) => {
                "py-in-mem: `model.method(\"predict\")` once, `call::<f64>(&data)`"
            }
            (Caller::InMem, _) => {
                "py-in-mem: `observe.arg_owned(NdVec::new(vec, [100, 10]))`, `call::<f64>()`"
            }
            (Caller::InMemLookup, _) => {
                "py-in-mem: `model.method(\"predict\")?.call::<f64>(&data)` per call"
            }
            (Caller::InMemReader, _) => "py-in-mem: own `FromResult` type (`Reader`)",
            (Caller::InMemSerde, _) => "py-in-mem: `#[derive(Deserialize)]` (feature serde)",
            (Caller::Pyo3, Kind::Method) => {
                "PyO3 + rust-numpy: borrow_from_array, `call_method1(\"predict\")`, `extract::<f64>`"
            }
            (Caller::Pyo3, Kind::Owned) => {
                "PyO3 + rust-numpy: `PyArray::from_vec(vec).reshape([100, 10])`, \
                 `call_method1(\"observe\")`, `extract::<f64>`"
            }
            (Caller::Pyo3, Kind::Struct) => {
                "PyO3 + rust-numpy: borrow_from_array, `call_method1(\"classify\")`, \
                 `#[derive(FromPyObject)]` with `#[pyo3(item)]`"
            }
            (Caller::Pyo3Held, _) => {
                "PyO3 + rust-numpy: bound method held, borrow_from_array, `call1`, `extract::<f64>`"
            }
            (Caller::Python, _) => "Python itself",
        }
    }
}

/// One measured row.
pub struct ServingRow {
    pub kind: Kind,
    pub caller: Caller,
    pub spread: Spread,
    /// Seconds per call in each round (every row's round `r` ran back to
    /// back).
    pub rounds: Vec<f64>,
}

/// What `classify` returns, read by serde.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct SerdePrediction {
    pub label: String,
    pub score: f64,
    pub index: i64,
}
py_in_mem::serde_result!(SerdePrediction);

/// What `classify` returns, as Rust reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub label: String,
    pub score: f64,
    pub index: i64,
}

/// py-in-mem, read by hand with the [`Reader`].
impl FromResult for Prediction {
    fn expected() -> String {
        "a dict with keys 'label', 'score' and 'index'".into()
    }

    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        Ok(Prediction {
            label: value.get_item("label")?,
            score: value.get_item("score")?,
            index: value.get_item("index")?,
        })
    }
}

/// PyO3's derive, reading the same dict.
#[derive(FromPyObject)]
struct Pyo3Prediction {
    #[pyo3(item)]
    label: String,
    #[pyo3(item)]
    score: f64,
    #[pyo3(item)]
    index: i64,
}

impl From<Pyo3Prediction> for Prediction {
    fn from(p: Pyo3Prediction) -> Prediction {
        Prediction {
            label: p.label,
            score: p.score,
            index: p.index,
        }
    }
}

/// The model's parameters and labels, as `bench_model.py` has them.
const MEAN: f64 = 0.25;
const SCALE: f64 = 2.0;
const LABELS: [&str; 4] = ["low", "mid", "high", "peak"];

/// The inputs and what each request must return.
struct Inputs {
    data: Vec<f64>,
    predicted: f64,
    observed: f64,
    classified: Prediction,
}

/// A fresh batch: rows × features values, all exact halves.
fn batch() -> Vec<f64> {
    (0..ROWS * FEATURES).map(|i| (i % 7) as f64 * 0.5).collect()
}

impl Inputs {
    fn new() -> Inputs {
        let data = Case::new(1_000).data;
        let predicted = data.iter().map(|x| (x - MEAN) * SCALE).sum();
        let b = batch();
        let observed = (0..ROWS).map(|r| b[r * FEATURES + FEATURES - 1]).sum();
        let (index, score) =
            data.iter()
                .copied()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, x)| {
                    if x > best.1 {
                        (i, x)
                    } else {
                        best
                    }
                });
        let classified = Prediction {
            label: LABELS[index % LABELS.len()].to_owned(),
            score,
            index: index as i64,
        };
        Inputs {
            data,
            predicted,
            observed,
            classified,
        }
    }

    /// numpy sums pairwise, Rust in order: equal to rounding.
    fn check_predicted(&self, p: f64) -> anyhow::Result<()> {
        ensure!(
            (p - self.predicted).abs() <= 1e-9 * self.predicted.abs(),
            "predict returned {p}, expected {}",
            self.predicted
        );
        Ok(())
    }

    /// Sums of exact halves: exact.
    fn check_observed(&self, o: f64) -> anyhow::Result<()> {
        ensure!(
            o == self.observed,
            "observe returned {o}, expected {}",
            self.observed
        );
        Ok(())
    }

    fn check_classified(&self, p: &Prediction) -> anyhow::Result<()> {
        ensure!(
            *p == self.classified,
            "classify returned {p:?}, expected {:?}",
            self.classified
        );
        Ok(())
    }
}

/// py-in-mem: the model held as an `Object`, its methods as `Function`s.
struct InMem<'a> {
    model: &'a Object,
    predict: &'a Function,
    observe: &'a Function,
    classify: &'a Function,
    inputs: &'a Inputs,
    kind: Kind,
    caller: Caller,
}

impl InMem<'_> {
    /// One call, with `check` given what came back.
    fn once(&self, check: bool) -> anyhow::Result<()> {
        let i = self.inputs;
        match (self.kind, self.caller) {
            (Kind::Method, Caller::InMem) => {
                let p = self.predict.call::<f64>(&i.data)?;
                if check {
                    i.check_predicted(p)?;
                }
                black_box(p);
            }
            (Kind::Method, Caller::InMemLookup) => {
                let p = self.model.method("predict")?.call::<f64>(&i.data)?;
                if check {
                    i.check_predicted(p)?;
                }
                black_box(p);
            }
            (Kind::Owned, Caller::InMem) => {
                let batch = NdVec::new(batch(), vec![ROWS, FEATURES])?;
                let o = self.observe.arg_owned(batch).call::<f64>()?;
                if check {
                    i.check_observed(o)?;
                }
                black_box(o);
            }
            (Kind::Struct, Caller::InMemSerde) => {
                let p = self.classify.call::<SerdePrediction>(&i.data)?;
                if check {
                    i.check_classified(&Prediction {
                        label: p.label.clone(),
                        score: p.score,
                        index: p.index,
                    })?;
                }
                black_box(p);
            }
            (Kind::Struct, Caller::InMemReader) => {
                let p = self.classify.call::<Prediction>(&i.data)?;
                if check {
                    i.check_classified(&p)?;
                }
                black_box(p);
            }
            (kind, caller) => anyhow::bail!("no py-in-mem path {caller:?} for {kind:?}"),
        }
        Ok(())
    }
}

impl Path for InMem<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        self.once(true).map(|()| Vec::new())
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        time_loop(calls, || self.once(false).map(|()| Vec::new()))
    }
}

/// PyO3 with rust-numpy, as its users write it: attach per call, lend the
/// slice with `borrow_from_array` (or give it with `from_vec`), call the
/// method by name, extract.
struct Pyo3<'a> {
    model: Py<PyAny>,
    /// `model.predict`, for [`Caller::Pyo3Held`].
    predict: Py<PyAny>,
    inputs: &'a Inputs,
    kind: Kind,
    caller: Caller,
}

impl Pyo3<'_> {
    fn once(&self, check: bool) -> anyhow::Result<()> {
        let i = self.inputs;
        Python::attach(|py| {
            let model = self.model.bind(py);
            match (self.kind, self.caller) {
                (Kind::Method, Caller::Pyo3 | Caller::Pyo3Held) => {
                    // SAFETY: predict keeps nothing; the array goes first.
                    let input = unsafe { crate::kinds::borrowed(py, &i.data) };
                    let p: f64 = if self.caller == Caller::Pyo3 {
                        model.call_method1("predict", (input,))?.extract()?
                    } else {
                        self.predict.bind(py).call1((input,))?.extract()?
                    };
                    if check {
                        i.check_predicted(p)?;
                    }
                    black_box(p);
                }
                (Kind::Owned, Caller::Pyo3) => {
                    let input = PyArray1::from_vec(py, batch()).reshape([ROWS, FEATURES])?;
                    let o: f64 = model.call_method1("observe", (input,))?.extract()?;
                    if check {
                        i.check_observed(o)?;
                    }
                    black_box(o);
                }
                (Kind::Struct, Caller::Pyo3) => {
                    // SAFETY: classify keeps nothing (its dict holds Python
                    // numbers and a str); the array goes first. Read-only, as
                    // py-in-mem lends: np.argmax copies a read-only input, and
                    // the row compares the result's reading, not that copy.
                    let input = unsafe { crate::kinds::borrowed_readonly(py, &i.data) };
                    let p: Pyo3Prediction = model.call_method1("classify", (input,))?.extract()?;
                    let p = Prediction::from(p);
                    if check {
                        i.check_classified(&p)?;
                    }
                    black_box(p);
                }
                (kind, caller) => anyhow::bail!("no PyO3 path {caller:?} for {kind:?}"),
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

/// The callers of each request, in table order.
fn callers(kind: Kind) -> &'static [Caller] {
    match kind {
        Kind::Method => &[
            Caller::InMem,
            Caller::InMemLookup,
            Caller::Pyo3,
            Caller::Pyo3Held,
            Caller::Python,
        ],
        Kind::Owned => &[Caller::InMem, Caller::Pyo3],
        Kind::Struct => &[
            Caller::InMemSerde,
            Caller::InMemReader,
            Caller::Pyo3,
            Caller::Python,
        ],
    }
}

/// Measures every request and caller, interleaved in one run.
pub fn measure_serving(plan: Plan) -> anyhow::Result<Vec<ServingRow>> {
    let inputs = Inputs::new();
    let class = Function::load("bench_model", "Scaler")?;
    let model: Object = class
        .kwarg("mean", MEAN)
        .kwarg("scale", SCALE)
        .call()
        .context("making bench_model.Scaler through py-in-mem")?;
    let predict = model.method("predict")?;
    let observe = model.method("observe")?;
    let classify = model.method("classify")?;
    let (py_model, py_predict, py_classify, timer, args) = Python::attach(|py| -> PyResult<_> {
        let module = py.import("bench_model")?;
        let bench_funcs = py.import("bench_funcs")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("mean", MEAN)?;
        kwargs.set_item("scale", SCALE)?;
        let model = module.getattr("Scaler")?.call((), Some(&kwargs))?;
        let args = (PyArray1::from_slice(py, &inputs.data),)
            .into_pyobject(py)?
            .into_any()
            .unbind();
        Ok((
            model.clone().unbind(),
            model.getattr("predict")?.unbind(),
            model.getattr("classify")?.unbind(),
            bench_funcs.getattr("time_calls_args")?.unbind(),
            args,
        ))
    })
    .context("making bench_model.Scaler through PyO3")?;
    let clone = |obj: &Py<PyAny>| Python::attach(|py| obj.clone_ref(py));
    let mut paths: Vec<(Kind, Caller, Box<dyn Path + '_>)> = Vec::new();
    for kind in Kind::ALL {
        for &caller in callers(kind) {
            let path: Box<dyn Path + '_> = match caller {
                Caller::InMem | Caller::InMemLookup | Caller::InMemReader | Caller::InMemSerde => {
                    Box::new(InMem {
                        model: &model,
                        predict: &predict,
                        observe: &observe,
                        classify: &classify,
                        inputs: &inputs,
                        kind,
                        caller,
                    })
                }
                Caller::Pyo3 | Caller::Pyo3Held => Box::new(Pyo3 {
                    model: clone(&py_model),
                    predict: clone(&py_predict),
                    inputs: &inputs,
                    kind,
                    caller,
                }),
                Caller::Python => Box::new(PythonItself {
                    func: clone(if kind == Kind::Struct {
                        &py_classify
                    } else {
                        &py_predict
                    }),
                    args: clone(&args),
                    timer: clone(&timer),
                }),
            };
            paths.push((kind, caller, path));
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
    // On one CPU, as every path runs on this thread: the vCPUs can differ
    // in speed, and a move between them mid-round would tilt the ratios.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let restore = Affinity::current()?;
    if cpus > 1 {
        pin(cpus - 1..cpus)?;
    }
    let measured = measure(&mut entries, plan);
    restore.set()?;
    let measured = measured?;
    Ok(rows
        .into_iter()
        .zip(measured)
        .map(|((kind, caller), m)| ServingRow {
            kind,
            caller,
            spread: m.time,
            rounds: m.rounds,
        })
        .collect())
}

fn find(rows: &[ServingRow], kind: Kind, caller: Caller) -> Option<&ServingRow> {
    rows.iter().find(|r| r.kind == kind && r.caller == caller)
}

/// PyO3 (`call_method1`) ÷ `caller` for `kind`, round by round (the two
/// ran back to back in each): the median, 10th and 90th percentiles of
/// the rounds' ratios.
pub fn vs_pyo3(rows: &[ServingRow], kind: Kind, caller: Caller) -> Option<Spread> {
    let (pyo3, ours) = (find(rows, kind, Caller::Pyo3)?, find(rows, kind, caller)?);
    let ratios = pyo3.rounds.iter().zip(&ours.rounds).map(|(p, o)| p / o);
    Some(Spread::of(ratios.collect()))
}

/// The summary's lines: PyO3 ÷ py-in-mem for each request.
pub fn summary(md: &mut String, rows: &[ServingRow]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Serving a model (a held `bench_model.Scaler`), vs PyO3 + rust-numpy calling \
         the method by name (PyO3 ÷ py-in-mem, the median of the rounds' ratios, each \
         round's two paths run back to back on one pinned CPU, with the 10th–90th \
         percentiles; ≥ 1 meets the target):\n"
    );
    for kind in Kind::ALL {
        for &caller in callers(kind) {
            if matches!(caller, Caller::Pyo3 | Caller::Pyo3Held | Caller::Python) {
                continue;
            }
            if let Some(ratio) = vs_pyo3(rows, kind, caller) {
                let _ = writeln!(
                    md,
                    "- {}, {}: {} ({}–{}) ({})",
                    kind.label(),
                    caller.label(kind),
                    times(ratio.median),
                    times(ratio.p10),
                    times(ratio.p90),
                    if ratio.median >= 1.0 {
                        "met"
                    } else {
                        "**missed**"
                    }
                );
            }
        }
    }
    let _ = writeln!(md);
}

/// The table of these rows, with the ratios against py-in-mem.
pub fn table(md: &mut String, rows: &[ServingRow]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Serving a model\n");
    let _ = writeln!(
        md,
        "A small fitted model (`bench/python/bench_model.py`, `Scaler`) held by Rust, \
         its methods called per request; cheap numpy work, so that the call's own cost \
         shows. Each py-in-mem path against PyO3 + rust-numpy (attaching per call, \
         inputs lent with `borrow_from_array` or given with `from_vec`) in the same \
         interleaved rounds; every result checked before timing. *÷ py-in-mem* is the \
         row's time over the request's first py-in-mem row.\n"
    );
    let _ = writeln!(md, "| request | path | µs/call | p10 | p90 | ÷ py-in-mem |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    for kind in Kind::ALL {
        let in_mem = find(rows, kind, kind.in_mem()).map(|r| r.spread.median);
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
