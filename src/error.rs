//! The crate's error type: every Python failure as an owned, typed value.

use std::fmt;
use std::time::Duration;

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
///
/// Its `Debug` form (what `fn main() -> Result<(), Error>` and `unwrap`
/// print) gives the classes by name and the traceback:
///
/// ```
/// let f = py_in_mem::Function::from_source("doc_exc_debug", "def f():\n    raise KeyError('k')\n", "f")?;
/// let debug = format!("{:?}", f.call0::<()>().unwrap_err());
/// assert!(debug.starts_with(r#"Python(PyException { type_name: "KeyError", message: "'k'", classes: ["builtins.KeyError", "builtins.LookupError", "#), "{debug}");
/// assert!(debug.contains(r#"traceback: Some("Traceback (most recent call last):\n"#), "{debug}");
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PyException {
    /// The exception's type: `ValueError` for builtins, `module.Class`
    /// otherwise; empty for a start-up failure that Python reported as a
    /// status rather than an exception.
    pub type_name: String,
    /// `str(exception)`; may be empty.
    pub message: String,
    /// The traceback and the classes, boxed together: two more fields
    /// here would take [`Error`] to the 128 bytes at which clippy's
    /// `result_large_err` warns in every caller's code. `None` for a failure
    /// that is not a Python exception.
    details: Option<Box<Details>>,
}

/// What a [`PyException`] keeps behind one pointer.
#[derive(Clone, PartialEq, Eq)]
struct Details {
    traceback: Option<Box<str>>,
    classes: Box<[ClassName]>,
}

/// One class of an exception: `module.qualname`, and where the qualname
/// starts.
#[derive(Clone, PartialEq, Eq)]
struct ClassName {
    qualified: Box<str>,
    qualname_at: usize,
}

/// The type, the message, the classes by name and the traceback: what a
/// reader of a failed `unwrap` needs, without the crate's own layout.
impl fmt::Debug for PyException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes: Vec<&str> = self.classes().collect();
        f.debug_struct("PyException")
            .field("type_name", &self.type_name)
            .field("message", &self.message)
            .field("classes", &classes)
            .field("traceback", &self.traceback())
            .finish()
    }
}

impl ClassName {
    /// From one line of the glue's `pim_error.classes`, `module\tqualname`.
    fn parse(line: &str) -> ClassName {
        match line.split_once('\t') {
            Some((module, qualname)) => ClassName {
                qualified: format!("{module}.{qualname}").into(),
                qualname_at: module.len() + 1,
            },
            None => ClassName {
                qualified: line.into(),
                qualname_at: 0,
            },
        }
    }

    fn qualname(&self) -> &str {
        &self.qualified[self.qualname_at..]
    }

    /// Whether this is the class `class`, named `module.qualname` or by its
    /// qualname alone.
    fn is(&self, class: &str) -> bool {
        &*self.qualified == class || self.qualname() == class
    }
}

/// Whether one of the glue's class lines (`module\tqualname`, one a class)
/// is the class `class`, as [`PyException::is_instance_of`] matches them:
/// what [`crate::Object::is_instance_of`] asks of an object's type.
pub(crate) fn classes_include(lines: &str, class: &str) -> bool {
    lines
        .split('\n')
        .filter(|line| !line.is_empty())
        .any(|line| ClassName::parse(line).is(class))
}

impl PyException {
    /// A failure reported by Python as a status, or by the crate, rather
    /// than as an exception: no type, no traceback, no classes.
    pub(crate) fn status(message: String) -> PyException {
        PyException {
            type_name: String::new(),
            message,
            details: None,
        }
    }

    /// An exception as the glue fetched it: `classes` is its
    /// `pim_error.classes`, one `module\tqualname` line per class of the
    /// MRO.
    pub(crate) fn raised(
        type_name: String,
        message: String,
        traceback: Option<String>,
        classes: Option<&str>,
    ) -> PyException {
        let classes: Box<[ClassName]> = classes
            .unwrap_or_default()
            .split('\n')
            .filter(|line| !line.is_empty())
            .map(ClassName::parse)
            .collect();
        let details = (traceback.is_some() || !classes.is_empty()).then(|| {
            Box::new(Details {
                traceback: traceback.map(String::into_boxed_str),
                classes,
            })
        });
        PyException {
            type_name,
            message,
            details,
        }
    }

    /// The formatted traceback, as Python would print it, when one was made.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_exc_tb", "def f(x):\n    raise KeyError('k')\n", "f")?;
    /// let err = f.call::<f64>(&[1.0]).unwrap_err();
    /// let traceback = err.exception().unwrap().traceback().unwrap();
    /// assert!(traceback.starts_with("Traceback (most recent call last):"));
    /// assert!(traceback.trim_end().ends_with("KeyError: 'k'"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn traceback(&self) -> Option<&str> {
        self.details.as_ref()?.traceback.as_deref()
    }

    /// Whether the exception is an instance of `class`, as Python's
    /// `isinstance(exception, class)` answers: `class` is the exception's
    /// own class or any class it inherits from, along its MRO (read when the
    /// error was made), so a subclass of `ValueError` is a `ValueError`.
    ///
    /// `class` is matched against each class's name two ways:
    ///
    /// - its qualified name, `module.qualname`: `"builtins.ValueError"`,
    ///   `"sklearn.exceptions.NotFittedError"`, `"mymodule.MyError"`; exact;
    /// - its `__qualname__` alone: `"ValueError"`, `"NotFittedError"`,
    ///   `"Outer.Inner"` for a class nested in another. A bare name matches a
    ///   class of that name in any module.
    ///
    /// No other part of a name matches (`"exceptions.NotFittedError"` does
    /// not). A start-up failure Python reported as a status has no class and
    /// is an instance of nothing.
    ///
    /// ```
    /// let source = "class MyError(ValueError):\n    pass\n\ndef f(x):\n    raise MyError('bad x')\n";
    /// let f = py_in_mem::Function::from_source("doc_isinstance", source, "f")?;
    /// let err = f.call::<f64>(&[1.0]).unwrap_err();
    /// let exception = err.exception().unwrap();
    /// assert_eq!(exception.type_name, "doc_isinstance.MyError");
    /// assert!(exception.is_instance_of("MyError"));
    /// assert!(exception.is_instance_of("doc_isinstance.MyError"));
    /// assert!(exception.is_instance_of("ValueError")); // a subclass matches
    /// assert!(exception.is_instance_of("builtins.ValueError"));
    /// assert!(exception.is_instance_of("Exception"));
    /// assert!(!exception.is_instance_of("TypeError"));
    /// assert!(!exception.is_instance_of("other_module.MyError"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn is_instance_of(&self, class: &str) -> bool {
        self.class_names().any(|name| name.is(class))
    }

    /// The exception's classes, most derived first (`type(exception).__mro__`),
    /// each as `module.qualname`: `"builtins.ValueError"`, then
    /// `"builtins.Exception"`, `"builtins.BaseException"`,
    /// `"builtins.object"`. Empty for a start-up failure that is not an
    /// exception.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_classes", "def f(x):\n    return {}['k']\n", "f")?;
    /// let err = f.call::<f64>(&[1.0]).unwrap_err();
    /// let classes: Vec<&str> = err.exception().unwrap().classes().collect();
    /// assert_eq!(
    ///     classes,
    ///     ["builtins.KeyError", "builtins.LookupError", "builtins.Exception",
    ///      "builtins.BaseException", "builtins.object"]
    /// );
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.class_names().map(|name| &*name.qualified)
    }

    fn class_names(&self) -> impl Iterator<Item = &ClassName> {
        self.details
            .iter()
            .flat_map(|details| details.classes.iter())
    }
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
    /// let f = py_in_mem::Function::from_source("doc_bad_result", "def f(x):\n    return (x.sum(), 'total')\n", "f")?;
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
        /// Where inside the result the mismatch is, innermost first, each
        /// step inside the next ("element 0 of the list in element 1 of the
        /// tuple"); empty when it is the result itself.
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
    ///
    /// If the call failed too (its Python code raised after keeping the
    /// input, a deadline stopped it, its result was of the wrong kind),
    /// that error is kept in `error`, and is this one's
    /// [`source`](std::error::Error::source).
    #[non_exhaustive]
    InputRetained {
        /// `module.function` that kept its input.
        function: String,
        /// Which of the call's lent arguments were kept, in order:
        /// `"argument 0"`, `"keyword 'sample_weight'"` (in a held-GIL scope,
        /// `"array 1 lent to the scope"`).
        arguments: Vec<String>,
        /// The call's own error, if it failed as well.
        error: Option<Box<Error>>,
    },
    /// A call given a deadline ([`Call::timeout`](crate::Call::timeout),
    /// [`Call::deadline`](crate::Call::deadline),
    /// [`Function::timeout`](crate::Function::timeout)) did not finish by it.
    ///
    /// - `ran: true`: the Python code ran past the deadline and was stopped
    ///   there: `py_in_mem.DeadlineExceeded` (a `BaseException`, so a bare
    ///   `except Exception:` does not catch it) was raised in it at its next
    ///   bytecode, after any loop in C (numpy's) it was inside had finished.
    ///   `elapsed` is the time from the start of the call to its end.
    /// - `ran: true, still_running: true` (async calls only): the call had
    ///   not returned one switch interval past its deadline (it was inside
    ///   C code, a `time.sleep` or a socket read, or the exception had not
    ///   stopped it yet on a busy machine), and its future resolved then,
    ///   without it: the serving thread finishes the call when it stops,
    ///   and drops the result. `elapsed` is the time until the future
    ///   resolved.
    /// - `ran: false`: the deadline passed while the call was still waiting
    ///   for its turn or the GIL, so the function was never called. `elapsed`
    ///   is the time it waited.
    ///
    /// Either way the thread and the function are fine for the next call. A
    /// lent input the function kept is still moved onto a copy, and the
    /// call then returns [`Error::InputRetained`] instead, as for any
    /// call that kept its input.
    ///
    /// ```
    /// use std::time::Duration;
    /// use py_in_mem::{Error, Function};
    ///
    /// let spin = Function::from_source("doc_timeout", "def spin():\n    while True:\n        pass\n", "spin")?;
    /// match spin.timeout(Duration::from_millis(10)).call::<()>() {
    ///     Err(Error::Timeout { function, limit, elapsed, ran, .. }) => {
    ///         assert_eq!((function.as_str(), limit, ran), ("doc_timeout.spin", Duration::from_millis(10), true));
    ///         assert!(elapsed >= limit);
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    #[non_exhaustive]
    Timeout {
        /// `module.function` that was called.
        function: String,
        /// The time the call was given: the timeout, or the deadline's
        /// distance from the start of the call.
        limit: Duration,
        /// How long the call took until it was stopped (`ran`), or waited
        /// until it was refused (not `ran`).
        elapsed: Duration,
        /// Whether the function's Python code had started.
        ran: bool,
        /// Whether the call was still running when this was returned (an
        /// async call's future resolved one switch interval past its
        /// deadline, the call not stopped yet); false for a call that was
        /// stopped, or never started.
        still_running: bool,
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
                 child (fork before the first call, or exec; Python's multiprocessing: the \
                 spawn or forkserver start method)"
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
        self.exception().and_then(PyException::traceback)
    }

    /// Whether this error is a Python exception that is an instance of
    /// `class`, subclasses included: see [`PyException::is_instance_of`] for
    /// how names match. True for [`Error::Python`], and for
    /// [`Error::Import`] by what the module's code raised; false for every
    /// error that is not a Python exception ([`Error::BadResult`],
    /// [`Error::InputRetained`], ...).
    ///
    /// ```
    /// let source = "class NotFittedError(ValueError, AttributeError):\n    pass\n\n\
    ///               def predict(x):\n    raise NotFittedError('call fit first')\n";
    /// let predict = py_in_mem::Function::from_source("doc_not_fitted", source, "predict")?;
    /// let err = predict.call::<f64>(&[1.0]).unwrap_err();
    /// assert!(err.is_instance_of("ValueError"));
    /// assert!(err.is_instance_of("AttributeError"));
    /// assert!(!err.is_instance_of("KeyError"));
    ///
    /// let not_python = py_in_mem::Error::InvalidArgument("no".into());
    /// assert!(!not_python.is_instance_of("Exception"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn is_instance_of(&self, class: &str) -> bool {
        self.exception().is_some_and(|e| e.is_instance_of(class))
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
            Error::InputRetained {
                function,
                arguments,
                error,
            } => {
                write!(f, "{function} retained its input array")?;
                if !arguments.is_empty() {
                    write!(f, " ({})", arguments.join(", "))?;
                }
                write!(
                    f,
                    " after returning; the kept array now reads a private copy (keep \
                     data.copy() in Python, or give the array owned: call_owned, arg_owned, \
                     kwarg_owned)"
                )?;
                match error {
                    Some(error) => write!(f, "; the call also failed: {error}"),
                    None => Ok(()),
                }
            }
            Error::Timeout {
                function,
                limit,
                elapsed,
                ran: true,
                still_running: false,
            } => write!(
                f,
                "{function} ran past its deadline of {} (stopped after {})",
                Millis(*limit),
                Millis(*elapsed)
            ),
            Error::Timeout {
                function,
                limit,
                elapsed,
                ran: true,
                still_running: true,
            } => write!(
                f,
                "{function} ran past its deadline of {} and had not returned after {} (it goes \
                 on in its serving thread until it stops, after any C code it is in returns; its \
                 result is dropped)",
                Millis(*limit),
                Millis(*elapsed)
            ),
            Error::Timeout {
                function,
                limit,
                ran: false,
                ..
            } if limit.is_zero() => write!(
                f,
                "{function} was not called: its deadline had passed when the call was made (a \
                 timeout of zero, or a deadline in the past)"
            ),
            Error::Timeout {
                function,
                limit,
                elapsed,
                ran: false,
                ..
            } => write!(
                f,
                "{function} was not called: its deadline of {} passed while the call waited \
                 {} to start (for its turn and the GIL, or in the queue of async calls)",
                Millis(*limit),
                Millis(*elapsed)
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

/// A duration for a message: "10 ms", "14.2 ms", "0.35 ms", "2.5 s".
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1e3;
        let (value, unit, decimals) = if ms >= 1e3 {
            (ms / 1e3, "s", 3)
        } else if ms >= 1.0 {
            (ms, "ms", 1)
        } else {
            (ms, "ms", 3)
        };
        let text = format!("{value:.decimals$}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{text} {unit}")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InputRetained {
                error: Some(error), ..
            } => Some(&**error),
            _ => None,
        }
    }
}

impl From<Unavailable> for Error {
    fn from(why: Unavailable) -> Error {
        Error::Unavailable(why)
    }
}
