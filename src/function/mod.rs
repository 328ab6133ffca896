//! Python functions called on Rust memory: [`Function`], loaded from a
//! module on `sys.path` or from source (here), and called ([`call`]: every
//! way of calling a `Function`, and [`Call`], a call being put together).
//! Converting what a call returns is the [`convert`](crate::convert) layer's
//! job.

use std::ffi::CString;
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use pyo3_ffi::PyObject;

mod args;
mod call;
mod call_async;
mod deadline;
mod keywords;
mod name;
mod object;

use crate::error::Error;
use crate::object::{interned, Held, Interned};
use crate::runtime;
use crate::runtime::glue::{self};
use crate::runtime::{CallStats, Gil};
use crate::runtime::{Interpreter, SharedRef, StrongRef};
pub use call::Call;
use keywords::KeywordNames;
use name::DottedName;
pub use object::Object;

/// A Python function, called on Rust arrays without copying them.
///
/// Arrays are lent to Python read-only, for the duration of the call (see
/// [the retention rule](#the-retention-rule)); scalars, strings and `None`
/// are passed as Python objects ([`IntoArg`](crate::IntoArg)). The result
/// is converted to the Rust type asked for, checked and without loss
/// ([`FromResult`](crate::FromResult)): a number, a string, a `Vec`, an n-D
/// array, a tuple, a map. `Function` is `Send + Sync`; every call takes the
/// GIL itself, and a `Function` is dropped on any thread without waiting for
/// the GIL (as an [`Object`](crate::Object) is). It is cheap to clone: the
/// clones share the Python function and what its calls measure.
///
/// ```
/// use py_in_mem::Function;
///
/// let data = [1.0, 2.0, 3.0, 4.0];
/// let m: f64 = Function::load("numpy", "mean")?.call(&data)?;
/// assert_eq!(m, 2.5);
///
/// let scale = Function::from_source(
///     "doc_scale",
///     "def scale(data, factor=1.0):\n    return data * factor\n",
///     "scale",
/// )?;
/// let scaled: Vec<f64> = scale.arg(&data).kwarg("factor", 2.5).call()?;
/// assert_eq!(scaled, [2.5, 5.0, 7.5, 10.0]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// # The retention rule
///
/// A borrowed input is Rust memory, valid only during the call. After every
/// borrowed call the crate checks, exactly, whether Python kept anything that
/// points into it (after a garbage collection, so dead cycles do not count;
/// a traceback that holds the call's frame is released first):
///
/// - Nothing kept: the call returns its result.
/// - The array object itself, or numpy views of it (`data[1:]`,
///   `data.reshape(...)`, `data.T`, views of views), kept in plain
///   containers (a global, a list, a tuple, a dict, a closure cell) or as
///   attributes of objects of classes defined in Python (a model's
///   `self.X_ = X[:, :2]`), each held in turn only by such holders or
///   functions up to a module's namespace or a frame: the crate moves the
///   kept array and every kept view onto one private copy, so they read the
///   values they had during the call, and the call returns
///   [`Error::InputRetained`].
/// - An exported buffer (`memoryview(data)`, or of a view), a numpy array or
///   a Python `int` built from the input's address (`__array_interface__`,
///   `as_strided`, `data.ctypes.data`), or a reference the crate cannot
///   prove harmless (a numpy iterator, an object of a type written in C, a
///   container such an object or a class holds): these hold raw pointers,
///   or may, and cannot be moved, so the process aborts with a message
///   naming the function. An abort is safe; a dangling pointer is not.
///
/// The rule covers every lent array, whatever its rank or strides.
///
/// Returning the input, or a view of it, is not retention: [`call`](Self::call)
/// copies the result out, and [`call_view`](Self::call_view) copies such a
/// result into Python memory first. To let Python keep an array, give it
/// one: [`call_owned`](Self::call_owned). Beyond any check: a raw address
/// taken with `ctypes` or `__array_interface__` and kept by a call that keeps
/// no reference to the input (the search runs only when a count is off), and
/// C extensions that keep a raw pointer while holding the array only through
/// containers the rule accepts.
///
/// # When Python cannot be called
///
/// After a host program finalizes Python, in a child forked after start-up,
/// and on a thread that is exiting, calls return [`Error::Unavailable`]
/// without touching Python (see the crate's life-cycle rules).
#[derive(Clone)]
pub struct Function(Arc<FunctionInner>);

/// What a [`Function`]'s clones share, behind one count (one allocation per
/// function, and one count to change per clone: an async call's job holds
/// a clone, made on the caller's thread and used on a serving thread,
/// [`crate::serve`]). A clone may be the last one anywhere: its target is
/// dropped without waiting for the GIL.
struct FunctionInner {
    /// What it calls.
    target: Target,
    /// `module.function` (`Type.method` for a method), for messages.
    name: DottedName,
    python: Interpreter,
    /// How long its calls take, for the scheduler.
    stats: CallStats,
    /// The keyword names of its last call with keywords.
    keywords: KeywordNames,
}

impl Function {
    /// Imports `module` (from `sys.path`) and takes its function `name`,
    /// starting Python on first use. Anything callable is a function here:
    /// a class (calling it makes an instance, read as an
    /// [`Object`](crate::Object)), a builtin, an object with `__call__`.
    /// A dotted `name` is followed attribute by attribute: a method of a
    /// class or of an object the module holds (`"EST.predict"`).
    ///
    /// ```
    /// let detect = py_in_mem::Function::load("outliers", "detect")?;
    /// assert_eq!(detect.name(), "outliers.detect");
    /// let from_iter = py_in_mem::Function::load("builtins", "dict.fromkeys")?;
    /// let keys: std::collections::BTreeMap<String, i64> = from_iter.arg(("a", "b")).arg(0).call()?;
    /// assert_eq!(keys.len(), 2);
    /// let err = py_in_mem::Function::load("outliers", "nope").unwrap_err();
    /// assert_eq!(err.py_type(), Some("AttributeError"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn load(module: &str, name: &str) -> Result<Function, Error> {
        let (c_module, c_name) = (c_string(module)?, c_string(name)?);
        let python = runtime::python()?;
        let gil = python.gil()?;
        let func = glue::load_func(&gil, &c_module, &c_name).map_err(|e| load_error(module, e))?;
        Ok(Function::new(&gil, func, module, name, python))
    }

    /// Compiles Python `source` as the module `module` (registered in
    /// `sys.modules`) and takes its function `name` (any callable, a class
    /// included): a binary can ship its Python inside it, with
    /// `include_str!("model.py")`. Tracebacks show the source's lines.
    ///
    /// A module name is the module's for good: `from_source` again with the
    /// same `module` and the same `source` is the same module (its body is
    /// not run again; `name` is taken from it), so many callers may load
    /// functions of one source, from any threads: one that finds the module
    /// while another thread runs its body waits for the body to finish. The same `module` with a different source,
    /// or the name of a module `from_source` did not make (`numpy`), is a
    /// Python `ValueError` naming the module and saying to pick another
    /// name. A source whose body raised leaves no module behind. A NUL byte
    /// in `module` or `name` is [`Error::InvalidName`]; in `source`,
    /// [`Error::InvalidArgument`] saying where.
    ///
    /// ```
    /// let double = py_in_mem::Function::from_source("doc_double", "def f(x):\n    return x * 2\n", "f")?;
    /// assert_eq!(double.call::<Vec<i64>>(&[1, 2])?, vec![2, 4]);
    ///
    /// let err = py_in_mem::Function::from_source("doc_bad", "def f(x):\n    return x +\n", "f").unwrap_err();
    /// assert_eq!(err.py_type(), Some("SyntaxError"));
    /// assert!(err.to_string().contains("<py-in-mem:doc_bad>, line 2"));
    ///
    /// // The same source again is the same module; another source is refused.
    /// let again = py_in_mem::Function::from_source("doc_double", "def f(x):\n    return x * 2\n", "f")?;
    /// assert_eq!(again.call::<Vec<i64>>(&[3])?, vec![6]);
    /// let err = py_in_mem::Function::from_source("doc_double", "def f(x):\n    return x\n", "f").unwrap_err();
    /// assert_eq!(err.py_type(), Some("ValueError"));
    /// assert!(err.to_string().contains("pick another name"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn from_source(module: &str, source: &str, name: &str) -> Result<Function, Error> {
        let (c_module, c_name) = (c_string(module)?, c_string(name)?);
        // Not a name: the error says where the NUL is, not the whole source.
        let c_source = CString::new(source).map_err(|nul| {
            Error::InvalidArgument(format!(
                "the source of {module} holds a NUL byte (at byte {}), which Python cannot compile",
                nul.nul_position()
            ))
        })?;
        let python = runtime::python()?;
        let gil = python.gil()?;
        let func = glue::load_source(&gil, &c_module, &c_source, &c_name)
            .map_err(|e| load_error(module, e))?;
        Ok(Function::new(&gil, func, module, name, python))
    }

    fn new(gil: &Gil, func: StrongRef, module: &str, name: &str, python: Interpreter) -> Function {
        // SAFETY: into_raw gives up the StrongRef's own reference, not NULL.
        let func = unsafe { SharedRef::from_owned(gil, func.into_raw()) }
            .expect("a StrongRef is not NULL");
        Function::with_target(
            Target::Callable(func),
            DottedName::new(module, name),
            python,
        )
    }

    /// The method `name` of `object` (whose type is named `type_name`),
    /// looked up at each call ([`Target::Method`]). No GIL needed.
    fn method_of(
        object: Arc<SharedRef>,
        type_name: &str,
        name: &str,
        python: Interpreter,
    ) -> Function {
        let target = Target::Method {
            object,
            name_at: type_name.len() + 1,
            kept_name: AtomicPtr::default(),
        };
        Function::with_target(target, DottedName::new(type_name, name), python)
    }

    fn with_target(target: Target, name: DottedName, python: Interpreter) -> Function {
        Function(Arc::new(FunctionInner {
            target,
            name,
            python,
            stats: CallStats::default(),
            keywords: KeywordNames::default(),
        }))
    }

    /// What one call calls, live for the call (a method's name as an
    /// [`interned`] str). Before anything is lent.
    #[inline]
    pub(crate) fn callee<'py>(&self, gil: &'py Gil) -> Result<Callee<'py>, Error> {
        match &self.0.target {
            Target::Callable(func) => Ok(Callee {
                callable: glue::Callable::Object(func.as_ptr()),
                _name: None,
            }),
            Target::Method {
                object,
                name_at,
                kept_name,
            } => {
                let kept = kept_name.load(Ordering::Acquire);
                let (name, made) = if !kept.is_null() {
                    (kept, None)
                } else {
                    match interned(gil, &self.0.name[*name_at..]).map_err(Error::Python)? {
                        Interned::Kept(kept) => {
                            kept_name.store(kept.as_ptr(), Ordering::Release);
                            (kept.as_ptr(), None)
                        }
                        Interned::Made(made) => (made.as_ptr(), Some(made)),
                    }
                };
                Ok(Callee {
                    callable: glue::Callable::Method {
                        receiver: object.as_ptr(),
                        name,
                    },
                    _name: made,
                })
            }
        }
    }

    /// For a method of an [`Object`](crate::Object), its name.
    pub(super) fn method_name(&self) -> Option<&str> {
        match &self.0.target {
            Target::Method { name_at, .. } => Some(&self.0.name[*name_at..]),
            Target::Callable(_) => None,
        }
    }

    /// `module.function`, as loaded.
    ///
    /// ```
    /// let f = py_in_mem::Function::load("outliers", "detect")?;
    /// assert_eq!(f.name(), "outliers.detect");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl crate::serve::Callee for Function {
    fn stats(&self) -> &CallStats {
        &self.0.stats
    }

    fn name(&self) -> &str {
        &self.0.name
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.0.name)
            .finish()
    }
}

/// What a [`Function`] calls.
enum Target {
    /// A callable, taken when loaded. Dropped without waiting for the GIL
    /// (see [`Object`]).
    Callable(SharedRef),
    /// The method `name[name_at..]` of `object`, looked up at each call
    /// as Python's `object.name(...)` does (no bound method made): so
    /// [`Object::method`] needs no GIL of its own, and a method looked up
    /// per call (`model.method("predict")?.call(x)`) takes it once, as
    /// PyO3's `call_method1` does.
    Method {
        object: Arc<SharedRef>,
        name_at: usize,
        /// The name as a `str`, once [`interned`] has kept it (NULL
        /// before): a pointer, with no reference, to a str kept for good.
        kept_name: AtomicPtr<PyObject>,
    },
}

/// What one call calls ([`Function::callee`]), with what must live as
/// long as the call.
pub(crate) struct Callee<'py> {
    pub(crate) callable: glue::Callable,
    _name: Option<Held<'py>>,
}

/// A failed load as an error: the module itself missing, or the function
/// missing from it, is the Python exception as is; the module's own code
/// failing while it imports (a syntax error, an exception, a dependency it
/// imports that is missing) is [`Error::Import`], with what to do about it.
fn load_error(module: &str, error: glue::LoadError) -> Error {
    let cause = error.exception;
    let missing = (cause.type_name == "ModuleNotFoundError")
        .then(|| {
            cause
                .message
                .strip_prefix("No module named '")?
                .strip_suffix('\'')
        })
        .flatten();
    // "pkg.sub" is itself missing when pkg or pkg.sub is.
    let module_itself_missing = missing.is_some_and(|name| {
        module == name
            || module
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.'))
    });
    if !error.importing || module_itself_missing {
        return Error::Python(cause);
    }
    let python = runtime::interpreter();
    let hint = match missing {
        Some(name) => {
            let top = name.split('.').next().unwrap_or(name);
            format!("{module} imports {name}, which is not installed for {python}: install it (`{python} -m pip install {top}`, if that is its name on PyPI)")
        }
        None if cause.type_name == "SyntaxError" || cause.type_name == "IndentationError" => {
            format!("fix the syntax of {module} where the message says")
        }
        None => format!("{module} raised while it was imported: fix it where the traceback (Error::traceback) shows"),
    };
    Error::Import {
        module: module.to_owned(),
        cause,
        hint,
    }
}

fn c_string(text: &str) -> Result<CString, Error> {
    CString::new(text).map_err(|_| Error::InvalidName(text.to_owned()))
}
