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
//! The README's "Life cycle" section says why each rule is what it is.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod args;
mod borrow;
mod convert;
mod element;
mod error;
mod function;
mod glue;
mod lifecycle;
mod outliers;
mod owned;
mod raw;
mod runtime;
mod thread_state;
mod view;

pub use args::{IntoArray, Matrix, Scalar};
pub use element::Element;
pub use error::{Error, PyException, Unavailable};
pub use function::{Call, Function};
pub use outliers::Outliers;
pub use owned::OwnedArray;
pub use runtime::{add_sys_path, BUILD_NUMPY, BUILD_PYTHON, MODULE_DIR, PYTHON_ENV};
pub use view::ArrayView;
