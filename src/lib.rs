//! Call Python and numpy code in the same process, on Rust memory, with no
//! copy and no network: a Rust port of the cgo program in "Go ↔ Python:
//! Part IV Using Python in Memory".
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
//! // `data` is lent to numpy read-only for the call: no copy.
//! assert_eq!(outliers.detect(&data)?, vec![7, 113, 835]);
//!
//! // A Python exception is a typed error with the Python type and message.
//! let err = Outliers::new("outliers", "nope").unwrap_err();
//! assert_eq!(err.py_type(), Some("AttributeError"));
//! # Ok::<(), py_in_mem::Error>(())
//! ```
//!
//! Layers, each in its own file: the C glue (`csrc/glue.c`), its raw
//! declarations (`raw`), thin typed wrappers (`glue`, `borrow`), and the safe
//! API ([`Outliers`], [`Error`]).
//!
//! Python is started once and never finalized (numpy cannot be initialized
//! twice in a process). It starts without its signal handlers, so Ctrl-C
//! still stops the host, and releases the GIL so any thread can call.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod borrow;
mod error;
mod glue;
mod indices;
mod outliers;
mod raw;
mod runtime;

pub use error::{Error, PyException};
pub use outliers::Outliers;
pub use runtime::{add_sys_path, BUILD_NUMPY, BUILD_PYTHON, MODULE_DIR, PYTHON_ENV};
