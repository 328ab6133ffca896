//! Call Python and numpy code in the same process, on Rust memory, with no
//! copy and no network: a Rust port of the cgo program in "Go ↔ Python:
//! Part IV Using Python in Memory".
//!
//! # A tour
//!
//! The article's program: [`Outliers`] calls `outliers.detect` (in the
//! crate's `python/` directory) on a Rust slice, lent to numpy read-only.
//!
//! ```
//! use py_in_mem::Outliers;
//!
//! // Python and numpy start on first use, once per process.
//! let outliers = Outliers::new("outliers", "detect")?;
//! let mut data: Vec<f64> = (0..1000).map(|i| (i % 10) as f64 / 10.0).collect();
//! for i in [7, 113, 835] {
//!     data[i] += 97.0;
//! }
//! // `data` is lent to numpy for the call: no copy.
//! assert_eq!(outliers.detect(&data)?, vec![7, 113, 835]);
//!
//! // A Python exception is a typed error with the Python type and message.
//! let err = Outliers::new("outliers", "nope").unwrap_err();
//! assert_eq!(err.py_type(), Some("AttributeError"));
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! Any other function: [`Function`]. The Rust type asked for decides how
//! the result is read ([`FromResult`]): numbers from numpy scalars, tuples,
//! `Vec`s, n-D arrays ([`NdVec`], or `ndarray::Array` with the `ndarray`
//! feature), complex numbers, strings, `None`, dicts. Arguments
//! ([`IntoArg`]) are arrays of any rank and strides lent without a copy
//! ([`NdSlice`], `&[T]`, `&Array`), scalars, strings and `None`, positional
//! or by keyword ([`Call`]). [`ResultView`] reads a result in place;
//! [`Function::call_owned`] gives Python a buffer it may keep.
//!
//! ```
//! use py_in_mem::num_complex::Complex64;
//! use py_in_mem::{Function, NdSlice, NdVec};
//!
//! let data: Vec<f64> = (0..100).map(f64::from).collect();
//! let m: f64 = Function::load("numpy", "mean")?.call(&data)?;
//! let p95: f64 = Function::load("numpy", "percentile")?.arg(&data).arg(95.0).call()?;
//! let (counts, edges): (Vec<i64>, Vec<f64>) =
//!     Function::load("numpy", "histogram")?.arg(&data).kwarg("bins", 10).call()?;
//! assert_eq!((m, counts[0], edges[10]), (49.5, 10, 99.0));
//! assert!((p95 - 94.05).abs() < 1e-9);
//!
//! let signal = [1.0, 0.0, -1.0, 0.0];
//! let spectrum: Vec<Complex64> = Function::load("numpy.fft", "rfft")?.call(&signal)?;
//! assert_eq!(spectrum, [Complex64::new(0.0, 0.0), Complex64::new(2.0, 0.0), Complex64::new(0.0, 0.0)]);
//!
//! // n-D without the feature: a slice and a shape in, an NdVec out.
//! let sym = [2.0, 1.0, 1.0, 2.0];
//! let (w, v): (Vec<f64>, NdVec<f64>) =
//!     Function::load("numpy.linalg", "eigh")?.call(NdSlice::new(&sym, &[2, 2])?)?;
//! assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12);
//! assert_eq!(v.shape(), &[2, 2]);
//!
//! // A plain Python function, shipped inside the binary.
//! let py_function_returning_a_float = Function::from_source(
//!     "tour",
//!     "def total(x, scale=1.0):\n    return float(x.sum()) * scale\n",
//!     "total",
//! )?;
//! let total: f64 = py_function_returning_a_float.call(&data)?;
//! assert_eq!(total, 4950.0);
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! A Python object stays in Rust as an [`Object`]: a class is a function
//! like any other, and what it makes is a result; its methods are
//! `Function`s (the same builder, results and retention rule, and
//! [`Function::call0`] for no arguments), its attributes read as any result
//! type, and `&object` passes it to another call. `Object` is `Send + Sync +
//! Clone`, and dropped anywhere without waiting for the GIL.
//!
//! ```
//! use py_in_mem::{Function, Object};
//!
//! let class = Function::from_source(
//!     "tour_object",
//!     "class Total:\n    def __init__(self, scale=1.0):\n        self.scale = scale\n        self.n = 0\n    def add(self, x):\n        self.n += len(x)\n        return float(x.sum()) * self.scale\n",
//!     "Total",
//! )?;
//! let total: Object = class.kwarg("scale", 2.0).call()?;
//! let add = total.method("add")?;
//! assert_eq!(add.call::<f64>(&[1.0, 2.0])?, 6.0);
//! assert_eq!(total.getattr::<usize>("n")?, 2);
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! With the `ndarray` feature, `ndarray`'s arrays go in (any strides, no
//! copy) and come out:
//!
//! ```
//! # #[cfg(feature = "ndarray")] {
//! use ndarray::{array, Array2};
//! use py_in_mem::Function;
//!
//! let inv: Array2<f64> = Function::load("numpy.linalg", "inv")?.call(&array![[4.0, 7.0], [2.0, 6.0]])?;
//! assert!((inv[[0, 0]] - 0.6).abs() < 1e-12 && (inv[[1, 1]] - 0.4).abs() < 1e-12);
//!
//! let sym = array![[2.0, 1.0], [1.0, 2.0]];
//! let (w, v): (Vec<f64>, Array2<f64>) = Function::load("numpy.linalg", "eigh")?.call(&sym)?;
//! assert!((&sym.dot(&v) - &(&v * &ndarray::arr1(&w))).iter().all(|d| d.abs() < 1e-12));
//! # }
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! A result of the wrong kind is [`Error::BadResult`], naming where inside
//! the result the mismatch is:
//!
//! ```
//! let f = py_in_mem::Function::from_source("tour_bad", "def f(x):\n    return (x.sum(), [1, 'two'])\n", "f")?;
//! let err = f.call::<(f64, Vec<i64>)>(&[1.0]).unwrap_err();
//! assert!(err.to_string().contains("unexpected element 1 of the list in element 1 of the tuple"));
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! What keeps it sound: a lent array lives only as long as the borrow (its
//! lifetime), is read-only in Python, and is checked after every call for
//! anything Python kept ([the retention rule](Function#the-retention-rule)),
//! whatever its rank and strides.
//!
//! # Many threads, and loops of calls
//!
//! Calls from many threads take turns ([`scheduler`]): one thread keeps the
//! turn across its consecutive calls for up to a switch interval, so the GIL
//! does not change hands (and cores) on every call; long calls, which numpy
//! runs mostly without the GIL, bypass the turn and stay parallel. A loop
//! or a batch of calls can run under one hold of the GIL ([`hold_gil`]),
//! with arrays lent once for all its calls ([`GilScope::lend`]):
//!
//! ```
//! use py_in_mem::{hold_gil, Function};
//!
//! let percentile = Function::load("numpy", "percentile")?;
//! let data: Vec<f64> = (0..=100).map(f64::from).collect();
//! let deciles: Vec<f64> = hold_gil(|scope| {
//!     let data = scope.lend(&data)?;
//!     (1..10).map(|d| percentile.arg(data).arg(10.0 * d as f64).call()).collect()
//! })?;
//! assert_eq!(deciles[0], 10.0);
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! # Layers
//!
//! The tree shows the stack, bottom up; each module imports only from its
//! own layer and those below (`tests/layers.rs` checks it, in `src/` and in
//! `csrc/`):
//!
//! 1. The C glue (`csrc/`: the only code that uses the CPython and numpy C
//!    macros; `glue.h` states each function's ownership and GIL rules), its
//!    `extern "C"` declarations (`src/raw.rs`) and the crate's [`Error`]s.
//! 2. `src/runtime/`: the process's one Python: may the crate call it
//!    (the life cycle), with which thread state, whose turn it is
//!    ([`scheduler`]), the GIL protocol, and the thin typed wrappers over
//!    the glue.
//! 3. `src/array/`: Rust memory as numpy sees it, lent for a call or given
//!    for good ([`Element`], [`NdSlice`], [`OwnedArray`]); `src/object/`:
//!    references, and results described for reading.
//! 4. `src/convert/`: one trait per direction, [`IntoArg`] and
//!    [`FromResult`], on the checked reading of numpy values.
//! 5. `src/function/`: [`Function`], loaded, and called (which knows nothing
//!    of the types); `src/scope.rs`: the held-GIL scope ([`hold_gil`]).
//! 6. `src/outliers.rs`: [`Outliers`], the article's function.
//!
//! # Life cycle
//!
//! Python is started once, on first use, and never finalized by the crate
//! (numpy cannot be initialized twice in a process); a host program may have
//! started it first, and the crate then uses that interpreter. Threads,
//! `fork`, a host's finalization and exit are normal events:
//!
//! - any thread may call, with the GIL held by it, by another thread or by
//!   none; a thread's first call may make it a Python thread state, given
//!   back without waiting for the GIL when the thread exits;
//! - after the host finalizes Python, and in a child forked after start-up,
//!   every call returns [`Error::Unavailable`] at once (never a hang);
//! - at exit, Python's `sys.stdout` and `sys.stderr` are flushed (waiting at
//!   most about a second for the GIL) and nothing else of Python runs;
//! - start-up leaves every signal disposition of the host's, whatever
//!   `PYTHON*` variables say (no SIGINT handler, faulthandler off until
//!   Python code enables it), so Ctrl-C still stops the host.
//!
//! `docs/lifecycle.md` says why each rule is what it is.

#![warn(missing_docs)]
// docs.rs (rustdoc-args in Cargo.toml): badges on items that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]

// The layers, bottom up; a module imports only from its own layer or
// below (tests/layers.rs checks it).
mod error;
mod raw;

mod runtime;

mod array;
mod object;
pub mod serve;

mod convert;

mod function;
mod scope;

mod outliers;

#[cfg(feature = "bytes")]
pub use array::BytesArray;
pub use array::{Element, NdSlice, NdVec, OwnedArray};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use convert::Serde;
pub use convert::{
    Arg, ArrayValue, FromResult, IntoArg, Matrix, Mismatch, Reader, ResultView, Scalar, Value,
};
pub use error::{Error, PyException, Unavailable};
pub use function::{Call, Function, Object};
pub use outliers::Outliers;
pub use runtime::scheduler;
pub use runtime::{
    add_sys_path, BUILD_NUMPY, BUILD_PYTHON, BUILD_PYTHON_VERSION, MODULE_DIR, PYTHON_ENV,
};
pub use scope::{hold_gil, GilScope, Lent};

/// The `bytes` crate this one is built with (feature `bytes`), whose
/// [`Bytes`](bytes::Bytes) a [`BytesArray`] lends to numpy: no dependency
/// of your own to keep in step.
///
/// ```
/// use py_in_mem::bytes::Bytes;
/// use py_in_mem::{BytesArray, Function};
///
/// let body = Bytes::from(2.5f64.to_ne_bytes().to_vec());
/// let total: f64 = Function::load("numpy", "sum")?.call_owned(BytesArray::<f64>::new(body)?)?;
/// assert_eq!(total, 2.5);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[cfg(feature = "bytes")]
#[cfg_attr(docsrs, doc(cfg(feature = "bytes")))]
pub use bytes;
/// The `ndarray` crate this one is built with (feature `ndarray`), so its
/// types match the ones calls take and return.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use py_in_mem::ndarray::Array2;
/// let sums: Vec<f64> = py_in_mem::Function::load("numpy", "sum")?
///     .arg(&Array2::<f64>::ones((2, 3)))
///     .kwarg("axis", 0)
///     .call()?;
/// assert_eq!(sums, [2.0, 2.0, 2.0]);
/// # }
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[cfg(feature = "ndarray")]
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
pub use ndarray;
/// serde, the `pythonize` way (feature `serde`): [`Serde<T>`](Serde) reads
/// any `Deserialize` type from a result and passes any `Serialize` type as
/// an argument; the [`serde_result!`](crate::serde_result) and
/// [`serde_arg!`](crate::serde_arg) macros do the same for your own types
/// without the wrapper; [`to_value`](serde::to_value) is the [`Value`] a
/// `Serialize` type becomes.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod serde {
    pub use crate::convert::serde::to_value;
    #[doc(hidden)]
    pub use crate::convert::serde::{
        expected as __expected, from_result as __from_result, into_arg as __into_arg,
    };
    pub use crate::convert::Serde;
}

/// The `num-complex` crate this one is built with: [`num_complex::Complex32`]
/// and [`num_complex::Complex64`] are numpy's `complex64` and `complex128`.
///
/// ```
/// use py_in_mem::num_complex::Complex64;
/// let z: Complex64 = py_in_mem::Function::load("numpy", "sqrt")?.call(Complex64::new(-4.0, 0.0))?;
/// assert_eq!(z, Complex64::new(0.0, 2.0));
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub use num_complex;

// The Markdown documentation's code blocks, compiled and run by
// `cargo test --doc` (`make test`), as PyO3 and rust-numpy do.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../ARCHITECTURE.md")]
pub struct ArchitectureDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/calls.md")]
pub struct CallsDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/deploying.md")]
pub struct DeployingDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/lifecycle.md")]
pub struct LifecycleDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/threads.md")]
pub struct ThreadsDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/async.md")]
pub struct AsyncDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/benchmark.md")]
pub struct BenchmarkDoctests;
