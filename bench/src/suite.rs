//! What is measured: for each size, every path on the work and on the call
//! alone; and the rows of the contention table.

use std::time::Duration;

use py_in_mem::{Function, Outliers};
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tonic::transport::Channel;

use crate::contention::python_threads::PythonThreads;
use crate::contention::{rust_threads, Contender, Input, Row as ContentionRow, Segment};
use crate::data::Case;
use crate::huge::{self, HugeCopy};
use crate::paths::grpc::proto::outliers_client::OutliersClient;
use crate::paths::grpc::{Grpc, Method};
use crate::paths::in_mem::{InMem, InMemHeldGil, InMemHeldLent};
use crate::paths::native::Native;
use crate::paths::pyo3_numpy::{self, Array, Pyo3};
use crate::paths::python_itself::PythonItself;
use crate::paths::Path;
use crate::runner::{measure, Entry, Plan};
use crate::stats::Spread;

/// A way of calling the function, a row of the tables.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    InMem,
    InMemHuge,
    Python,
    Native,
    Pyo3Copy,
    Pyo3Borrowed,
    Grpc,
    /// Calls made inside one held-GIL scope per batch: its row
    /// appears, and its target is checked, once `measure_size` gives it a
    /// path, as it does for the others.
    InMemHeldGil,
    /// The same, the input lent once per scope (`GilScope::lend`) and passed
    /// to every call, as Python's own calls pass one array.
    InMemHeldLent,
}

impl Key {
    pub const ALL: [Key; 9] = [
        Key::InMem,
        Key::InMemHeldGil,
        Key::InMemHeldLent,
        Key::InMemHuge,
        Key::Python,
        Key::Native,
        Key::Pyo3Copy,
        Key::Pyo3Borrowed,
        Key::Grpc,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Key::InMem => "py-in-mem (borrowed)",
            Key::InMemHuge => "py-in-mem, input in huge pages",
            Key::Python => "Python itself",
            Key::Native => "pure Rust",
            Key::Pyo3Copy => "PyO3 from_slice (copy)",
            Key::Pyo3Borrowed => "PyO3 borrow_from_array",
            Key::Grpc => "gRPC (tonic → grpcio)",
            Key::InMemHeldGil => "py-in-mem, in a held-GIL scope",
            Key::InMemHeldLent => "py-in-mem, in a held-GIL scope, input lent once",
        }
    }
}

/// The functions under test, loaded once.
pub struct Funcs {
    pub detect: Outliers,
    pub constant: Outliers,
    /// The same two Python functions as `Function`s, for the held-GIL scope
    /// with a lent input (`Outliers::detect` takes a slice).
    pub detect_fn: Function,
    pub constant_fn: Function,
    pub py_detect: Py<PyAny>,
    pub py_const: Py<PyAny>,
    pub timer: Py<PyAny>,
    /// `bench_funcs.contend`: Python's own threads, timed in Python.
    pub contend: Py<PyAny>,
}

/// The gRPC client side: one runtime, one client (one channel).
pub struct GrpcClient {
    pub rt: Runtime,
    pub client: OutliersClient<Channel>,
}

/// One measured row: a path, on the work or on the call alone.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub key: Key,
    pub call_only: bool,
    pub spread: Spread,
    /// Minor page faults per call (median over rounds).
    pub faults: f64,
}

/// Every row measured at one size.
pub struct SizeResult {
    pub size: usize,
    pub rows: Vec<Row>,
}

impl SizeResult {
    pub fn row(&self, key: Key, call_only: bool) -> Option<&Row> {
        self.rows
            .iter()
            .find(|row| row.key == key && row.call_only == call_only)
    }

    pub fn get(&self, key: Key, call_only: bool) -> Option<Spread> {
        self.row(key, call_only).map(|row| row.spread)
    }
}

/// Measures every path at `case`'s size, work and call only, interleaved.
pub fn measure_size(
    funcs: &Funcs,
    grpc: &GrpcClient,
    case: &Case,
    plan: Plan,
) -> anyhow::Result<SizeResult> {
    let data = &case.data[..];
    let huge = if std::mem::size_of_val(data) >= huge::MIN_BYTES {
        Some(HugeCopy::new(data)?)
    } else {
        None
    };
    let mut paths: Vec<(Key, bool, Box<dyn Path + '_>)> = Vec::new();
    for call_only in [false, true] {
        let (outliers, py_func, method) = if call_only {
            (&funcs.constant, &funcs.py_const, Method::Const)
        } else {
            (&funcs.detect, &funcs.py_detect, Method::Detect)
        };
        let py_func = || Python::attach(|py| py_func.clone_ref(py));
        let timer = Python::attach(|py| funcs.timer.clone_ref(py));
        paths.push((
            Key::InMem,
            call_only,
            Box::new(InMem {
                func: outliers,
                data,
            }),
        ));
        paths.push((
            Key::InMemHeldGil,
            call_only,
            Box::new(InMemHeldGil {
                func: outliers,
                data,
            }),
        ));
        paths.push((
            Key::InMemHeldLent,
            call_only,
            Box::new(InMemHeldLent {
                func: if call_only {
                    &funcs.constant_fn
                } else {
                    &funcs.detect_fn
                },
                data,
            }),
        ));
        if let (Some(huge), false) = (&huge, call_only) {
            let path = InMem {
                func: outliers,
                data: huge.as_slice(),
            };
            paths.push((Key::InMemHuge, call_only, Box::new(path)));
        }
        paths.push((
            Key::Python,
            call_only,
            Box::new(PythonItself::new(py_func(), timer, data)),
        ));
        if !call_only {
            paths.push((Key::Native, call_only, Box::new(Native { data })));
        }
        for (key, array) in [
            (Key::Pyo3Copy, Array::Copy),
            (Key::Pyo3Borrowed, Array::Borrowed),
        ] {
            paths.push((
                key,
                call_only,
                Box::new(Pyo3 {
                    func: py_func(),
                    data,
                    array,
                }),
            ));
        }
        let client = grpc.client.clone();
        let path = Grpc {
            rt: &grpc.rt,
            client,
            data,
            method,
        };
        paths.push((Key::Grpc, call_only, Box::new(path)));
    }
    let rows: Vec<(Key, bool)> = paths
        .iter()
        .map(|(key, call_only, _)| (*key, *call_only))
        .collect();
    let mut entries: Vec<Entry<'_>> = paths
        .into_iter()
        .map(|(key, call_only, path)| Entry {
            name: format!(
                "{}{} at {} values",
                key.label(),
                if call_only { " (call only)" } else { "" },
                data.len()
            ),
            path,
            expected: if call_only { &[] } else { &case.expected },
        })
        .collect();
    let measured = measure(&mut entries, plan)?;
    let rows = rows
        .into_iter()
        .zip(measured)
        .map(|((key, call_only), m)| Row {
            key,
            call_only,
            spread: m.time,
            faults: m.faults,
        })
        .collect();
    Ok(SizeResult {
        size: data.len(),
        rows,
    })
}

/// The contention table's rows, in the order shown. A row is a label, whether
/// it is the crate's own (the targets for threads apply), and either a closure
/// making one call on a thread's own slice ([`ContentionRow::rust`]) or a
/// harness of its own ([`ContentionRow::new`]).
/// py-in-mem's `Outliers::detect`, with the crate's scheduler switched on
/// or off for the segment (a process-wide switch, put back on after).
struct InMemScheduled<'f> {
    funcs: &'f Funcs,
    scheduler: bool,
}

impl Contender for InMemScheduled<'_> {
    fn run(
        &self,
        case: &Case,
        input: Input,
        threads: usize,
        time: Duration,
    ) -> anyhow::Result<Segment> {
        py_in_mem::scheduler::set_enabled(self.scheduler);
        let detect = |data: &[f64]| Ok(self.funcs.detect.detect(data)?);
        let segment = rust_threads::run(&detect, &case.data, input, &case.expected, threads, time);
        py_in_mem::scheduler::set_enabled(true);
        segment
    }
}

pub fn contention_rows(funcs: &Funcs) -> Vec<ContentionRow<'_>> {
    let python = Python::attach(|py| PythonThreads {
        func: funcs.py_detect.clone_ref(py),
        harness: funcs.contend.clone_ref(py),
    });
    vec![
        ContentionRow::new(
            "py-in-mem, scheduler on",
            true,
            InMemScheduled {
                funcs,
                scheduler: true,
            },
        ),
        ContentionRow::new(
            "py-in-mem, scheduler off",
            false,
            InMemScheduled {
                funcs,
                scheduler: false,
            },
        ),
        ContentionRow::rust("PyO3 + rust-numpy, attach per call", false, |data| {
            pyo3_numpy::detect(&funcs.py_detect, data, Array::Borrowed)
        }),
        ContentionRow::new("Python's own threading", false, python),
    ]
}
