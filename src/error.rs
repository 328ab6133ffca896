//! The crate's error type: every Python failure as an owned, typed value.

use std::fmt;

/// A Python exception, copied out of the interpreter and cleared there.
///
/// ```
/// let f = py_in_mem::Function::from_source("doc_exc", "def f(x):\n    raise ValueError('boom')\n", "f")?;
/// let err = f.call::<f64>(&[1.0]).unwrap_err();
/// let exception = err.exception().unwrap();
/// assert_eq!((exception.type_name.as_str(), exception.message.as_str()), ("ValueError", "boom"));
/// assert_eq!(exception.to_string(), "ValueError: boom");
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyException {
    /// The exception's type: `ValueError` for builtins, `module.Class`
    /// otherwise; empty for a start-up failure that Python reported as a
    /// status rather than an exception.
    pub type_name: String,
    /// `str(exception)`; may be empty.
    pub message: String,
    /// The formatted traceback, as Python would print it, when one was made.
    /// (A `Box<str>`, not a `String`: it keeps [`Error`] under the 128 bytes
    /// at which clippy's `result_large_err` warns in every caller's code.)
    pub traceback: Option<Box<str>>,
}

impl fmt::Display for PyException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.type_name)
        } else if self.type_name.is_empty() {
            // Start-up failures are statuses, not exceptions: no type.
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.type_name, self.message)
        }
    }
}

/// Everything that can go wrong calling Python through this crate.
///
/// `Display` of a Python exception reads `TypeName: message`, for example
/// `ValueError: boom`; [`Error::traceback`] gives the rest.
///
/// ```
/// use py_in_mem::{Error, Outliers};
///
/// match Outliers::new("outliers", "missing") {
///     Err(Error::Python(exception)) => assert_eq!(exception.type_name, "AttributeError"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Python or numpy could not be started, or the process loaded another
    /// libpython than the one it must run on (then Python is not started, and
    /// the message names both files and the fix: README, "Your own binary").
    /// Cached: every later call in the process returns the same error, since
    /// Python starts only once.
    Init {
        /// The interpreter whose prefix and site-packages were used.
        python: String,
        /// What failed, as Python reported it.
        cause: PyException,
        /// What to do about it.
        hint: String,
    },
    /// A module was found, but its own code failed while it was imported:
    /// a syntax error, an exception, or a module it imports that is missing.
    /// (The module itself missing, or a function missing from it, is
    /// [`Error::Python`].)
    ///
    /// ```
    /// let err = py_in_mem::Function::from_source("doc_import", "raise ValueError('bad config')\n", "f").unwrap_err();
    /// assert!(matches!(err, py_in_mem::Error::Import { .. }));
    /// assert_eq!(err.py_type(), Some("ValueError"));
    /// assert!(err.to_string().starts_with("importing doc_import failed: ValueError: bad config; "));
    /// ```
    Import {
        /// The module being imported.
        module: String,
        /// What its code raised.
        cause: PyException,
        /// What to do about it.
        hint: String,
    },
    /// Python raised an exception (including `SystemExit` and
    /// `KeyboardInterrupt`, which never end the host process here).
    Python(PyException),
    /// The Python function returned something other than the Rust type
    /// asked for takes ([`FromResult`](crate::FromResult)).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_bad", "def f(x):\n    return (x.sum(), 'total')\n", "f")?;
    /// match f.call::<(f64, f64)>(&[1.0, 2.0]).unwrap_err() {
    ///     py_in_mem::Error::BadResult { position, found, .. } => {
    ///         assert_eq!(position, "element 1 of the tuple");
    ///         assert_eq!(found, "an object of type str");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    #[non_exhaustive]
    BadResult {
        /// `module.function` that returned it.
        function: String,
        /// Where inside the result the mismatch is, outermost first
        /// ("element 1 of the tuple, element 0 of the list"); empty when it
        /// is the result itself.
        position: String,
        /// What the crate expected there.
        expected: String,
        /// What it got there.
        found: String,
    },
    /// The function kept its borrowed input array, or numpy views of it,
    /// after returning (in a global, a list, a dict, a closure, an object's
    /// attribute). The crate moved what was kept onto a private copy, so
    /// Python reads the values of the call, never Rust memory; the call's
    /// result is discarded. See
    /// [the retention rule](crate::Function#the-retention-rule).
    InputRetained {
        /// `module.function` that kept its input.
        function: String,
    },
    /// An argument the crate cannot pass, such as a shape that does not
    /// match its slice.
    InvalidArgument(String),
    /// A name or path that C cannot carry: it holds a NUL byte, or a path is
    /// not UTF-8.
    InvalidName(String),
    /// Python cannot be called from here any more: the host program
    /// finalized it, this process is a child forked after Python started, or
    /// this thread is exiting. Nothing was called; see [`Unavailable`] for
    /// each case and what to do.
    Unavailable(Unavailable),
}

/// Why Python cannot be called: see [`Error::Unavailable`]. Each case is for
/// good (the process or the thread stays in it).
///
/// ```
/// let err = py_in_mem::Error::Unavailable(py_in_mem::Unavailable::Forked);
/// assert!(err.to_string().starts_with("Python is unavailable: this process was forked"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// The host program finalized Python (`Py_FinalizeEx`). Every object
    /// the crate held belonged to that interpreter and is gone with it, so
    /// nothing is released or called; numpy cannot be started twice in one
    /// process, so the crate does not start Python again.
    Finalized,
    /// This process is a child made by `fork()` after Python started. Any
    /// lock of the interpreter (the GIL, the import lock) may have been held
    /// at the fork by a thread that does not exist in the child, and the
    /// first call would then wait for ever; so the crate calls nothing in
    /// the child. Fork before the first call (the child then starts its own
    /// Python), or `exec` in the child.
    Forked,
    /// This thread has given its Python thread state back as it exits (a
    /// thread-exit destructor ran after the crate's). Call Python before the
    /// thread starts exiting.
    ThreadExiting,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::Finalized => {
                "the host program finalized Python (Py_FinalizeEx); the crate neither calls nor \
                 restarts it in this process"
            }
            Unavailable::Forked => {
                "this process was forked after Python started, and an interpreter lock may be \
                 held by a thread that does not exist here, so the crate calls nothing in the \
                 child (fork before the first call, or exec)"
            }
            Unavailable::ThreadExiting => {
                "this thread is exiting and has given its Python thread state back (call Python \
                 before the thread starts exiting)"
            }
        })
    }
}

impl Error {
    /// The Python exception behind this error, if there is one.
    ///
    /// ```
    /// let err = py_in_mem::Outliers::new("no_such_module", "f").unwrap_err();
    /// assert_eq!(err.exception().unwrap().message, "No module named 'no_such_module'");
    /// ```
    pub fn exception(&self) -> Option<&PyException> {
        match self {
            Error::Init { cause, .. } | Error::Import { cause, .. } => Some(cause),
            Error::Python(exception) => Some(exception),
            _ => None,
        }
    }

    /// The Python exception's type name, such as `ValueError`.
    ///
    /// ```
    /// let err = py_in_mem::Outliers::new("no_such_module", "f").unwrap_err();
    /// assert_eq!(err.py_type(), Some("ModuleNotFoundError"));
    /// ```
    pub fn py_type(&self) -> Option<&str> {
        self.exception().map(|e| e.type_name.as_str())
    }

    /// The Python traceback, when the error came from a Python exception.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_tb", "def f(x):\n    return 1 / 0\n", "f")?;
    /// let err = f.call::<f64>(&[1.0]).unwrap_err();
    /// assert!(err.traceback().unwrap().contains("return 1 / 0"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn traceback(&self) -> Option<&str> {
        self.exception().and_then(|e| e.traceback.as_deref())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Init {
                python,
                cause,
                hint,
            } => write!(f, "Python start-up failed ({python}): {cause}; {hint}"),
            Error::Import {
                module,
                cause,
                hint,
            } => write!(f, "importing {module} failed: {cause}; {hint}"),
            Error::Python(exception) => exception.fmt(f),
            Error::BadResult {
                function,
                position,
                expected,
                found,
            } if position.is_empty() => {
                write!(f, "{function} returned {found}, expected {expected}")
            }
            Error::BadResult {
                function,
                position,
                expected,
                found,
            } => write!(
                f,
                "{function} returned an unexpected {position}: expected {expected}, found {found}"
            ),
            Error::InputRetained { function } => write!(
                f,
                "{function} retained its input array after returning; the kept array \
                 now reads a private copy (keep data.copy() in Python, or use call_owned)"
            ),
            Error::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Error::InvalidName(name) => {
                write!(
                    f,
                    "invalid name {name:?}: it contains a NUL byte or is not UTF-8"
                )
            }
            Error::Unavailable(why) => write!(f, "Python is unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Unavailable> for Error {
    fn from(why: Unavailable) -> Error {
        Error::Unavailable(why)
    }
}
