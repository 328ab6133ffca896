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
//! Any other function: [`Function`], with typed results ([`Element`]),
//! several arrays and keyword arguments ([`Call`]), matrices ([`Matrix`]),
//! zero-copy results ([`ArrayView`]) and buffers Python may keep
//! ([`Function::call_owned`]).
//!
//! ```
//! use py_in_mem::Function;
//!
//! let zscore = Function::from_source(
//!     "tour",
//!     "def zscore(x, ddof=0):\n    return (x - x.mean()) / x.std(ddof=ddof)\n",
//!     "zscore",
//! )?;
//! let z: Vec<f64> = zscore.arg(&[1.0, 2.0, 3.0]).kwarg("ddof", 1).call()?;
//! assert_eq!(z, vec![-1.0, 0.0, 1.0]);
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! What keeps it sound: a lent array lives only as long as the borrow (its
//! lifetime), is read-only in Python, and is checked after every call for
//! anything Python kept ([the retention rule](Function#the-retention-rule)).
//!
//! # Layers
//!
//! Each in its own place: the C glue (`csrc/`: the only code that uses the
//! CPython and numpy C macros), its raw `extern "C"` declarations
//! (`src/raw.rs`), thin typed wrappers (`src/glue.rs`, `src/borrow.rs`,
//! `src/owned.rs`), and this safe API on top.
//!
//! Python is started once and never finalized (numpy cannot be initialized
//! twice in a process). It starts without its signal handlers, so Ctrl-C
//! still stops the host, and releases the GIL so any thread can call.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod args;
mod borrow;
mod call;
mod convert;
mod element;
mod error;
mod from_result;
mod function;
mod glue;
mod nd;
mod object;
mod outliers;
mod owned;
mod raw;
mod runtime;
mod view;
#[cfg(feature = "ndarray")]
mod with_ndarray;

pub use args::{IntoArg, Matrix, Scalar};
pub use call::Call;
pub use element::Element;
pub use error::{Error, PyException};
pub use from_result::FromResult;
pub use function::Function;
pub use nd::{NdSlice, NdVec};
pub use outliers::Outliers;
pub use owned::OwnedArray;
pub use runtime::{add_sys_path, BUILD_NUMPY, BUILD_PYTHON, MODULE_DIR, PYTHON_ENV};
pub use view::ResultView;

/// The `ndarray` crate this one is built with (feature `ndarray`), so its
/// types match the ones calls take and return.
#[cfg(feature = "ndarray")]
pub use ndarray;
/// The `num-complex` crate this one is built with: [`num_complex::Complex32`]
/// and [`num_complex::Complex64`] are numpy's `complex64` and `complex128`.
pub use num_complex;
