//! `Function`: any Python function, called on Rust arrays with typed,
//! checked results.

use std::ffi::CString;
use std::fmt;

use pyo3_ffi::PyObject;

use crate::args::{kwnames, IntoArray, Scalar};
use crate::borrow::{retained_error, BorrowedArray, Release, RustArray, UntrackedArray};
use crate::convert::{expected_vec, to_vec, Mismatch};
use crate::element::Element;
use crate::error::Error;
use crate::glue::{self, describe, Gil, Interpreter, StrongRef};
use crate::owned::OwnedArray;
use crate::runtime;
use crate::view::ArrayView;

/// A Python function, called on Rust arrays without copying them.
///
/// Arrays are lent to Python read-only, for the duration of the call (see
/// [the retention rule](#the-retention-rule)); results are numpy arrays,
/// checked and converted to Rust types without loss ([`Element`]).
/// `Function` is `Send + Sync`; every call takes the GIL itself.
///
/// ```
/// use py_in_mem::Function;
///
/// let scale = Function::from_source(
///     "doc_scale",
///     "def scale(data, factor=1.0):\n    return data * factor\n",
///     "scale",
/// )?;
/// let data = [1.0, 2.0, 3.0];
/// assert_eq!(scale.call::<f64, f64>(&data)?, vec![1.0, 2.0, 3.0]);
/// assert_eq!(scale.arg(&data).kwarg("factor", 2.5).call::<f64>()?, vec![2.5, 5.0, 7.5]);
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
/// - The array object itself kept in plain containers (a global, a list, a
///   tuple, a dict, a closure cell), each held in turn only by such
///   containers or functions up to a module's namespace or a frame: the
///   crate moves the kept array onto a private copy, so it reads the values
///   it had during the call, and the call returns [`Error::InputRetained`].
/// - A view (`data[1:]`, whose base is the input array itself), an exported
///   buffer (`memoryview(data)`), a numpy array built from the input's
///   address (`__array_interface__`), or a reference the crate cannot prove
///   harmless (an object's attribute, a container that an object or a class
///   holds, a numpy iterator): these hold raw pointers, or may, and cannot be
///   moved, so the process aborts with a message naming the function. An
///   abort is safe; a dangling pointer is not.
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
pub struct Function {
    func: StrongRef,
    /// `module.function`, for messages.
    name: String,
    python: Interpreter,
}

impl Function {
    /// Imports `module` (from `sys.path`) and takes its function `name`,
    /// starting Python on first use.
    ///
    /// ```
    /// let detect = py_in_mem::Function::load("outliers", "detect")?;
    /// assert_eq!(detect.name(), "outliers.detect");
    /// let err = py_in_mem::Function::load("outliers", "nope").unwrap_err();
    /// assert_eq!(err.py_type(), Some("AttributeError"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn load(module: &str, name: &str) -> Result<Function, Error> {
        let (c_module, c_name) = (c_string(module)?, c_string(name)?);
        let python = runtime::python()?;
        let gil = python.gil()?;
        let func = glue::load_func(&gil, &c_module, &c_name).map_err(|e| load_error(module, e))?;
        drop(gil);
        Ok(Function::new(func, module, name, python))
    }

    /// Compiles Python `source` as the module `module` (registered in
    /// `sys.modules`, replacing one of that name) and takes its function
    /// `name`: a binary can ship its Python inside it, with
    /// `include_str!("model.py")`. Tracebacks show the source's lines.
    ///
    /// ```
    /// let double = py_in_mem::Function::from_source("doc_double", "def f(x):\n    return x * 2\n", "f")?;
    /// assert_eq!(double.call::<i32, i64>(&[1, 2])?, vec![2, 4]);
    ///
    /// let err = py_in_mem::Function::from_source("doc_bad", "def f(x):\n    return x +\n", "f").unwrap_err();
    /// assert_eq!(err.py_type(), Some("SyntaxError"));
    /// assert!(err.to_string().contains("<py-in-mem:doc_bad>, line 2"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn from_source(module: &str, source: &str, name: &str) -> Result<Function, Error> {
        let (c_module, c_source, c_name) = (c_string(module)?, c_string(source)?, c_string(name)?);
        let python = runtime::python()?;
        let gil = python.gil()?;
        let func = glue::load_source(&gil, &c_module, &c_source, &c_name)
            .map_err(|e| load_error(module, e))?;
        drop(gil);
        Ok(Function::new(func, module, name, python))
    }

    fn new(func: StrongRef, module: &str, name: &str, python: Interpreter) -> Function {
        Function {
            func,
            name: format!("{module}.{name}"),
            python,
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
        &self.name
    }

    /// Calls the function on `input`, lent as a read-only numpy array of
    /// `T`'s dtype, and converts the 1-D result to `Vec<U>` without loss.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call", "def f(x):\n    return x.astype('int32') + 1\n", "f")?;
    /// let out: Vec<i64> = f.call(&[1u8, 2, 3])?; // int32 results read as i64
    /// assert_eq!(out, vec![2, 3, 4]);
    /// assert!(f.call::<u8, f32>(&[1])?.len() == 1); // int32 -> f32: exact here
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call<T: Element, U: Element>(&self, input: &[T]) -> Result<Vec<U>, Error> {
        self.invoke(&[RustArray::vector(input)], &[], |gil, result| {
            self.to_vec::<U>(gil, result)
        })
    }

    /// Like [`call`](Self::call), but the result is read in place: the guard
    /// derefs to `&[U]` over the numpy array while it holds it. The result's
    /// dtype must be `U`'s exactly.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call_view", "def f(x):\n    return x * 10\n", "f")?;
    /// let view = f.call_view::<f32, f32>(&[1.0, 2.0])?;
    /// assert_eq!(&view[..], &[10.0, 20.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_view<T: Element, U: Element>(&self, input: &[T]) -> Result<ArrayView<U>, Error> {
        self.invoke(&[RustArray::vector(input)], &[], |gil, result| {
            self.view(gil, result)
        })
    }

    /// Gives `input` to Python (no copy) for a function that keeps its
    /// argument by design. `Vec<T>` is handed over writable; `Arc<[T]>` is
    /// shared read-only. The Rust allocation is freed when the last Python
    /// reference to it goes, from whatever thread that happens on.
    ///
    /// ```
    /// let keep = py_in_mem::Function::from_source(
    ///     "doc_owned",
    ///     "KEPT = []\ndef keep(x):\n    KEPT.append(x)\n    return x.cumsum()\n",
    ///     "keep",
    /// )?;
    /// assert_eq!(keep.call_owned::<_, i64>(vec![1i64, 2, 3])?, vec![1, 3, 6]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_owned<I: OwnedArray, U: Element>(&self, input: I) -> Result<Vec<U>, Error> {
        let gil = self.python.gil()?;
        let array = input.into_numpy(&gil).map_err(Error::Python)?;
        // SAFETY: `array` is a live object we own for the call.
        let result = unsafe { glue::detect(&gil, &self.func, array.as_ptr()) };
        drop(array);
        let result = result.map_err(Error::Python)?;
        self.to_vec::<U>(&gil, result)
    }

    /// [`call`](Self::call) without the retention check: no reference count
    /// after the call. For measuring what the check costs, and for functions
    /// known not to keep their input. The array is read-only as for
    /// [`call`](Self::call) (its base, shared by every unchecked call, exposes
    /// no buffer, so numpy refuses to make it writable).
    ///
    /// # Safety
    /// The function must not keep its input array, a view of it, or a buffer
    /// of it after returning: nothing would stop it from reading `input`
    /// after Rust frees or changes it.
    ///
    /// ```
    /// let f = py_in_mem::Function::load("outliers", "detect")?;
    /// let mut data = vec![0.5; 100];
    /// data[3] = 99.0;
    /// // SAFETY: outliers.detect keeps nothing.
    /// let indices = unsafe { f.call_unchecked::<f64, i64>(&data)? };
    /// assert_eq!(indices, vec![3]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub unsafe fn call_unchecked<T: Element, U: Element>(
        &self,
        input: &[T],
    ) -> Result<Vec<U>, Error> {
        let gil = self.python.gil()?;
        // SAFETY: the caller promises the function keeps nothing.
        let array = unsafe { UntrackedArray::new(&gil, RustArray::vector(input)) }
            .map_err(Error::Python)?;
        // SAFETY: `array` is live for the call.
        let result = unsafe { glue::detect(&gil, &self.func, array.as_ptr()) };
        let converted = result
            .map_err(Error::Python)
            .and_then(|result| self.to_vec::<U>(&gil, result));
        drop(array);
        converted
    }

    /// Starts a call with several arguments: arrays in order, then scalar
    /// keyword arguments, finished by [`Call::call`] or [`Call::call_view`].
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source(
    ///     "doc_args",
    ///     "import numpy as np\ndef f(a, b, threshold=0.0):\n    return np.flatnonzero(a - b > threshold)\n",
    ///     "f",
    /// )?;
    /// let (a, b) = ([5.0, 1.0, 9.0], [1.0, 1.0, 1.0]);
    /// assert_eq!(f.arg(&a).arg(&b).kwarg("threshold", 2.5).call::<u32>()?, vec![0, 2]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn arg<'a>(&self, array: impl IntoArray<'a>) -> Call<'_, 'a> {
        Call {
            function: self,
            arrays: vec![array.into_rust_array()],
            kwargs: Vec::new(),
        }
    }

    /// Starts a call with a keyword argument (and no array yet).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_kw", "import numpy as np\ndef f(n=1):\n    return np.arange(n)\n", "f")?;
    /// assert_eq!(f.kwarg("n", 3).call::<i64>()?, vec![0, 1, 2]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn kwarg<'a>(&self, name: &'a str, value: impl Into<Scalar<'a>>) -> Call<'_, 'a> {
        Call {
            function: self,
            arrays: Vec::new(),
            kwargs: vec![(name, value.into())],
        }
    }

    /// The borrowed call: lends `arrays`, calls, lets `finish` turn the
    /// result into `R` (releasing it), then releases the arrays and applies
    /// the retention rule.
    pub(crate) fn invoke<'a, R>(
        &self,
        arrays: &[RustArray<'a>],
        kwargs: &[(&str, Scalar<'_>)],
        finish: impl FnOnce(&Gil, StrongRef) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let gil = self.python.gil()?;
        // One array (the common case) is lent without a heap allocation.
        let mut lent_one = None;
        let mut lent_many = Vec::new();
        let mut outcome = Ok(());
        for array in arrays {
            match BorrowedArray::new(&gil, *array, &self.name) {
                Ok(borrowed) if arrays.len() == 1 => lent_one = Some(borrowed),
                Ok(borrowed) => lent_many.push(borrowed),
                Err(exception) => {
                    outcome = Err(Error::Python(exception));
                    break;
                }
            }
        }
        let lent = match &lent_one {
            Some(one) => std::slice::from_ref(one),
            None => &lent_many[..],
        };
        let outcome = outcome
            .and_then(|()| self.call_lent(&gil, lent, kwargs))
            .and_then(|result| finish(&gil, result));
        // The result and any exception are released by now, so the counts
        // are exact.
        let mut moved = false;
        for borrowed in lent_one.into_iter().chain(lent_many) {
            moved |= borrowed.release(&gil) == Release::Moved;
        }
        drop(gil);
        if moved {
            return Err(retained_error(&self.name));
        }
        outcome
    }

    fn call_lent(
        &self,
        gil: &Gil,
        lent: &[BorrowedArray<'_>],
        kwargs: &[(&str, Scalar<'_>)],
    ) -> Result<StrongRef, Error> {
        if let ([single], []) = (lent, kwargs) {
            // SAFETY: the array is live until released, after this call.
            return unsafe { glue::detect(gil, &self.func, single.as_ptr()) }
                .map_err(Error::Python);
        }
        let values = kwargs
            .iter()
            .map(|(_, value)| value.to_python(gil))
            .collect::<Result<Vec<StrongRef>, _>>()
            .map_err(Error::Python)?;
        let names: Vec<&str> = kwargs.iter().map(|(name, _)| *name).collect();
        let kwnames = kwnames(gil, &names).map_err(Error::Python)?;
        let argv: Vec<*mut PyObject> = lent
            .iter()
            .map(BorrowedArray::as_ptr)
            .chain(values.iter().map(StrongRef::as_ptr))
            .collect();
        let kwnames_ptr = if kwargs.is_empty() {
            std::ptr::null_mut()
        } else {
            kwnames.as_ptr()
        };
        // SAFETY: every pointer in argv is live (lent arrays, `values`), and
        // kwnames names exactly the values after the positional arrays.
        unsafe { glue::call(gil, &self.func, &argv, lent.len(), kwnames_ptr) }
            .map_err(Error::Python)
    }

    /// Converts a result with `read`, naming this function in errors;
    /// `expected` says what `read` takes, for a result that is no array.
    pub(crate) fn convert<R>(
        &self,
        gil: &Gil,
        result: StrongRef,
        expected: impl FnOnce() -> String,
        read: impl FnOnce(&glue::ArrayDesc<'_>) -> Result<R, Mismatch>,
    ) -> Result<R, Error> {
        let mismatch = match describe(gil, &result) {
            Ok(desc) => match read(&desc) {
                Ok(value) => return Ok(value),
                Err(mismatch) => mismatch,
            },
            Err(found) => Mismatch {
                expected: expected(),
                found,
            },
        };
        Err(self.bad_result(mismatch.expected, mismatch.found))
    }

    /// The 1-D result as a `Vec<U>`, converted without loss.
    fn to_vec<U: Element>(&self, gil: &Gil, result: StrongRef) -> Result<Vec<U>, Error> {
        self.convert(gil, result, expected_vec::<U>, to_vec::<U>)
    }

    fn view<U: Element>(&self, gil: &Gil, result: StrongRef) -> Result<ArrayView<U>, Error> {
        ArrayView::new(gil, result).map_err(|(expected, found)| self.bad_result(expected, found))
    }

    fn bad_result(&self, expected: String, found: String) -> Error {
        Error::BadResult {
            function: self.name.clone(),
            expected,
            found,
        }
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .finish()
    }
}

/// A call being put together: arrays in order, then keyword arguments.
/// Made by [`Function::arg`] or [`Function::kwarg`].
#[must_use = "a Call does nothing until .call() or .call_view()"]
pub struct Call<'f, 'a> {
    function: &'f Function,
    arrays: Vec<RustArray<'a>>,
    kwargs: Vec<(&'a str, Scalar<'a>)>,
}

impl<'f, 'a> Call<'f, 'a> {
    /// Adds the next positional array argument.
    ///
    /// ```
    /// let add = py_in_mem::Function::from_source("doc_add", "def add(a, b):\n    return a + b\n", "add")?;
    /// assert_eq!(add.arg(&[1i64, 2]).arg(&[10i64, 20]).call::<i64>()?, vec![11, 22]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn arg(mut self, array: impl IntoArray<'a>) -> Self {
        self.arrays.push(array.into_rust_array());
        self
    }

    /// Adds a scalar keyword argument.
    ///
    /// ```
    /// let clip = py_in_mem::Function::from_source("doc_clip", "import numpy as np\ndef f(a, hi=1.0):\n    return np.minimum(a, hi)\n", "f")?;
    /// assert_eq!(clip.arg(&[0.5, 3.0]).kwarg("hi", 2).call::<f64>()?, vec![0.5, 2.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn kwarg(mut self, name: &'a str, value: impl Into<Scalar<'a>>) -> Self {
        self.kwargs.push((name, value.into()));
        self
    }

    /// Calls, converting the 1-D result to `Vec<U>` without loss.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call_b", "def f(a):\n    return a > 1\n", "f")?;
    /// assert_eq!(f.arg(&[1.0, 2.0]).call::<bool>()?, vec![false, true]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call<U: Element>(self) -> Result<Vec<U>, Error> {
        let function = self.function;
        function.invoke(&self.arrays, &self.kwargs, |gil, result| {
            function.to_vec::<U>(gil, result)
        })
    }

    /// Calls, reading the result in place (see [`Function::call_view`]).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call_view_b", "def f(a, b):\n    return a * b\n", "f")?;
    /// let view = f.arg(&[1.5, 2.0]).arg(&[2.0, 2.0]).call_view::<f64>()?;
    /// assert_eq!(&*view, &[3.0, 4.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_view<U: Element>(self) -> Result<ArrayView<U>, Error> {
        let function = self.function;
        function.invoke(&self.arrays, &self.kwargs, |gil, result| {
            function.view(gil, result)
        })
    }
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
