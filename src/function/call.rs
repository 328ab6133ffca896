//! Building and making a call: arguments lent ([`crate::array::borrow`]) or
//! made into Python objects for the call, the call, and the retention rule
//! after it. The result goes to [`crate::convert::from_result`] as whatever
//! type the caller asked for; nothing here knows the types.

use pyo3_ffi::PyObject;

use super::args::Args;
use super::deadline::{starting_now, Clock, Limit};
use super::Function;
use crate::array::borrow::{retained_error, BorrowedArray, Release, UntrackedArray};
use crate::array::element::Element;
use crate::array::lent::LentSlot;
use crate::array::owned::OwnedArray;
use crate::convert::from_result::{convert, FromResult};
use crate::convert::into_arg::{tuple_of, Arg, ArgKind, IntoArg};
use crate::convert::view::ResultView;
use crate::error::Error;
use crate::object::Held;
use crate::runtime::glue::{self};
use crate::runtime::Deadline;
use crate::runtime::{Gil, StrongRef};

impl Function {
    /// Calls the function with one argument and converts the result to `R`,
    /// the type asked for ([`FromResult`]): a number, a `String`, a `Vec`, an
    /// n-D array, a tuple, a map. An array argument is lent read-only, with
    /// no copy, for the call only ([`IntoArg`]).
    ///
    /// ```
    /// use py_in_mem::Function;
    ///
    /// let data: Vec<f64> = (1..=10).map(f64::from).collect();
    /// let m: f64 = Function::load("numpy", "mean")?.call(&data)?;
    /// assert_eq!(m, 5.5);
    ///
    /// let f = Function::from_source("doc_call", "def f(x):\n    return x.astype('int32') + 1\n", "f")?;
    /// let out: Vec<i64> = f.call(&[1u8, 2, 3])?; // int32 results read as i64
    /// assert_eq!(out, vec![2, 3, 4]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call<'a, R: FromResult>(&self, input: impl IntoArg<'a>) -> Result<R, Error> {
        self.invoke(&[input.into_arg()], &[], |gil, result| {
            self.convert(gil, result)
        })
    }

    /// Calls the function with no argument at all (`f()` in Python), and
    /// converts the result to `R` as [`call`](Self::call) does. On a
    /// method ([`Object::method`](crate::Object::method)), `obj.name()`.
    ///
    /// ```
    /// use py_in_mem::Function;
    ///
    /// let info = Function::from_source("doc_call0", "def info():\n    return 'digits', 64\n", "info")?;
    /// let (name, n): (String, i64) = info.call0()?;
    /// assert_eq!((name.as_str(), n), ("digits", 64));
    ///
    /// // A class is a function too: calling it makes an instance.
    /// let empty: Vec<f64> = Function::load("builtins", "list")?.call0()?;
    /// assert!(empty.is_empty());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call0<R: FromResult>(&self) -> Result<R, Error> {
        self.invoke(&[], &[], |gil, result| self.convert(gil, result))
    }

    /// Like [`call`](Self::call), with the result read in place: the same
    /// as `call::<ResultView<U>>`. The result must be a numpy array of
    /// dtype `U` exactly, of any rank.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call_view", "def f(x):\n    return x * 10\n", "f")?;
    /// let view = f.call_view::<f32>(&[1.0f32, 2.0])?;
    /// assert_eq!(&view[..], &[10.0, 20.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_view<'a, U: Element>(
        &self,
        input: impl IntoArg<'a>,
    ) -> Result<ResultView<U>, Error> {
        self.call(input)
    }

    /// Like [`call0`](Self::call0), with the result read in place, as
    /// [`call_view`](Self::call_view) reads it.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source(
    ///     "doc_call0_view",
    ///     "import numpy as np\ndef f():\n    return np.arange(3.0)\n",
    ///     "f",
    /// )?;
    /// assert_eq!(&*f.call0_view::<f64>()?, &[0.0, 1.0, 2.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call0_view<U: Element>(&self) -> Result<ResultView<U>, Error> {
        self.call0()
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
    /// let sums: Vec<i64> = keep.call_owned(vec![1i64, 2, 3])?;
    /// assert_eq!(sums, vec![1, 3, 6]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_owned<I: OwnedArray, R: FromResult>(&self, input: I) -> Result<R, Error> {
        let gil = self.0.python.gil_for_call(&self.0.stats)?;
        let callee = self.callee(&gil)?;
        let array = Box::new(input).into_numpy(&gil).map_err(Error::Python)?;
        let array = Held::new(&gil, array);
        // SAFETY: `array` is a live object we own for the call; the function
        // is live while `self` holds it.
        let result = unsafe { glue::call_one(&gil, callee.callable, array.as_ptr()) }
            .map_err(|raised| Error::Python(raised.fetch()));
        drop(array);
        self.convert(&gil, result?)
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
    /// let indices: Vec<i64> = unsafe { f.call_unchecked(&data)? };
    /// assert_eq!(indices, vec![3]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub unsafe fn call_unchecked<'a, R: FromResult>(
        &self,
        input: impl IntoArg<'a>,
    ) -> Result<R, Error> {
        let gil = self.0.python.gil_for_call(&self.0.stats)?;
        let callee = self.callee(&gil)?;
        match input.into_arg().0 {
            ArgKind::Array(array) => {
                // SAFETY: the caller promises the function keeps nothing.
                let array = unsafe { UntrackedArray::new(&gil, &array) }.map_err(Error::Python)?;
                // The result is converted while the input is still lent: it
                // may be a view of it.
                let converted = self.call_one(&gil, callee.callable, array.as_ptr());
                array.release(&gil);
                converted
            }
            made => {
                let made = PyArg::new(&gil, &Arg(made), &self.0.name)?;
                self.call_one(&gil, callee.callable, made.as_ptr())
            }
        }
    }

    /// Calls `callable` (this function's [`callee`](Self::callee)) with
    /// `arg` (live for the call) and converts the result.
    fn call_one<R: FromResult>(
        &self,
        gil: &Gil,
        callable: glue::Callable,
        arg: *mut PyObject,
    ) -> Result<R, Error> {
        // SAFETY: the caller keeps `arg` live for the call, `self` the function.
        let result = unsafe { glue::call_one(gil, callable, arg) };
        self.convert(gil, result.map_err(|raised| Error::Python(raised.fetch()))?)
    }

    /// Starts a call with several arguments: positional ones in order, then
    /// keyword ones, finished by [`Call::call`] or [`Call::call_view`].
    ///
    /// ```
    /// let data = [1.0, 2.0, 3.0, 4.0, 100.0];
    /// let percentile = py_in_mem::Function::load("numpy", "percentile")?;
    /// let p50: f64 = percentile.arg(&data).arg(50).call()?;
    /// assert_eq!(p50, 3.0);
    /// let lower: f64 = percentile.arg(&data).arg(90.0).kwarg("method", "lower").call()?;
    /// assert_eq!(lower, 4.0);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn arg<'a>(&self, value: impl IntoArg<'a>) -> Call<'_, 'a> {
        Call {
            args: Args::One(value.into_arg()),
            ..Call::new(self)
        }
    }

    /// Starts a call with an owned array as its first positional argument,
    /// given to Python without a copy: Python may keep it, and it is freed
    /// when Python lets it go ([`OwnedArray`]). Any shape, any position:
    /// [`Call::arg_owned`] adds more, among lent and made arguments.
    ///
    /// ```
    /// use py_in_mem::{Function, NdVec};
    /// let model = Function::from_source(
    ///     "doc_arg_owned",
    ///     "class Counter:\n    def __init__(self):\n        self.seen = []\n    def count(self, batch):\n        self.seen.append(batch)\n        return sum(b.shape[0] for b in self.seen)\n",
    ///     "Counter",
    /// )?.call0::<py_in_mem::Object>()?;
    /// let count = model.method("count")?;
    /// let batch = NdVec::new(vec![0.5; 6], vec![3, 2])?;
    /// let n: usize = count.arg_owned(batch).call()?; // the model keeps it
    /// assert_eq!(n, 3);
    /// assert_eq!(count.arg_owned(NdVec::new(vec![1.0; 2], vec![1, 2])?).call::<usize>()?, 4);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn arg_owned<'a>(&self, value: impl OwnedArray) -> Call<'_, 'a> {
        Call {
            args: Args::One(Arg::owned(value)),
            ..Call::new(self)
        }
    }

    /// Starts a call with a keyword argument (and no positional one yet).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_kw", "import numpy as np\ndef f(n=1):\n    return np.arange(n)\n", "f")?;
    /// assert_eq!(f.kwarg("n", 3).call::<Vec<i64>>()?, vec![0, 1, 2]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn kwarg<'a>(&self, name: &'a str, value: impl IntoArg<'a>) -> Call<'_, 'a> {
        Call {
            kwargs: vec![(name, value.into_arg())],
            ..Call::new(self)
        }
    }

    /// Starts a call with an owned array as a keyword argument (and no
    /// positional one yet), given to Python without a copy, as
    /// [`arg_owned`](Function::arg_owned) gives a positional one.
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_kwarg_owned", "def f(scale=1.0, values=None):\n    return (values * scale).tolist()\n", "f")?;
    /// let out: Vec<f64> = f.kwarg_owned("values", vec![1.0, 2.0]).kwarg("scale", 3.0).call()?;
    /// assert_eq!(out, [3.0, 6.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn kwarg_owned<'a>(&self, name: &'a str, value: impl OwnedArray) -> Call<'_, 'a> {
        Call {
            kwargs: vec![(name, Arg::owned(value))],
            ..Call::new(self)
        }
    }

    /// The borrowed call: lends or makes the arguments, calls, lets `finish`
    /// turn the result into `R` (releasing it), then releases the arguments
    /// and applies the retention rule to every lent array.
    pub(crate) fn invoke<'a, R>(
        &self,
        args: &[Arg<'a>],
        kwargs: &[(&str, Arg<'a>)],
        finish: impl FnOnce(&Gil, StrongRef) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.invoke_until(None, args, kwargs, finish)
    }

    /// [`invoke`](Self::invoke), stopped at `deadline` ([`super::deadline`]).
    pub(super) fn invoke_until<'a, R>(
        &self,
        deadline: Option<Deadline>,
        args: &[Arg<'a>],
        kwargs: &[(&str, Arg<'a>)],
        finish: impl FnOnce(&Gil, StrongRef) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if let ([arg], []) = (args, kwargs) {
            return self.invoke_one(deadline, arg, finish);
        }
        // CPython's vectorcall requires unique keyword names, and Python
        // itself refuses f(a=1, a=2): an error before anything is lent.
        if let Some(name) = repeated_keyword(kwargs) {
            return Err(Error::InvalidArgument(format!(
                "keyword argument '{name}' given more than once in a call of {}",
                self.0.name
            )));
        }
        let gil = self.0.python.gil_for_call(&self.0.stats)?;
        let clock = Clock::start(&gil, deadline, &self.0.name)?;
        // Within the deadline, as the rest of the call (a method's name is
        // made at its first call).
        let callee = self.callee(&gil)?;
        let mut made = Vec::with_capacity(args.len() + kwargs.len());
        let mut outcome = Ok(());
        for arg in args.iter().chain(kwargs.iter().map(|(_, arg)| arg)) {
            match PyArg::new(&gil, arg, &self.0.name) {
                Ok(one) => made.push(one),
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        let outcome = outcome.and_then(|()| {
            let called = self.call_made(&gil, &clock, callee.callable, &made, kwargs);
            // The conversion under the deadline too: it may run Python code.
            clock.stop(called.and_then(|result| finish(&gil, result)))
        });
        // The result and any exception are released by now, so the counts
        // are exact.
        let mut moved = Vec::new();
        for (i, made) in made.into_iter().enumerate() {
            if made.release(&gil, &self.0.name) == Release::Moved {
                moved.push(match i.checked_sub(args.len()) {
                    Some(k) => format!("keyword '{}'", kwargs[k].0),
                    None => format!("argument {i}"),
                });
            }
        }
        drop(callee);
        drop(gil);
        if !moved.is_empty() {
            return Err(retained_error(&self.0.name, moved, outcome));
        }
        outcome
    }

    /// [`invoke`](Self::invoke) with one positional argument, the common
    /// call (`Outliers::detect`, `f.call(&data)`): the same steps, without
    /// a list of arguments (the floor of every call: the fixed cost the
    /// crate adds to the Python function's own time).
    fn invoke_one<R>(
        &self,
        deadline: Option<Deadline>,
        arg: &Arg<'_>,
        finish: impl FnOnce(&Gil, StrongRef) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let gil = self.0.python.gil_for_call(&self.0.stats)?;
        let clock = Clock::start(&gil, deadline, &self.0.name)?;
        // Within the deadline, as the rest of the call (a method's name is
        // made at its first call).
        let callee = self.callee(&gil)?;
        let made = PyArg::new(&gil, arg, &self.0.name)?;
        // SAFETY: the argument is live until released, after this call; the
        // function while `self` holds it.
        let outcome = unsafe { glue::call_one(&gil, callee.callable, made.as_ptr()) }
            .map_err(|raised| clock.fetch(raised));
        let outcome = clock.stop(outcome.and_then(|result| finish(&gil, result)));
        // As in invoke: the result and any exception are released by now.
        let moved = made.release(&gil, &self.0.name) == Release::Moved;
        drop(callee);
        drop(gil);
        if moved {
            let arguments = vec!["argument 0".to_owned()];
            return Err(retained_error(&self.0.name, arguments, outcome));
        }
        outcome
    }

    /// Calls `callable` (this function's [`callee`](Self::callee)) with
    /// `made` (positional arguments, then the values of `kwargs`).
    fn call_made(
        &self,
        gil: &Gil,
        clock: &Clock<'_, '_>,
        callable: glue::Callable,
        made: &[PyArg<'_, '_>],
        kwargs: &[(&str, Arg<'_>)],
    ) -> Result<StrongRef, Error> {
        let kwnames = if kwargs.is_empty() {
            None
        } else {
            Some(self.0.keywords.tuple(gil, kwargs).map_err(Error::Python)?)
        };
        let kwnames_ptr = kwnames.as_ref().map_or(std::ptr::null_mut(), Held::as_ptr);
        // A method's receiver goes first (glue::call).
        let receiver = callable.receiver();
        let argv: Vec<*mut PyObject> = receiver
            .into_iter()
            .chain(made.iter().map(PyArg::as_ptr))
            .collect();
        let nargs = receiver.is_some() as usize + made.len() - kwargs.len();
        // SAFETY: the function is live (`self` holds it); every pointer in
        // argv is live (lent arrays and made values, released after this
        // call), and kwnames names exactly the values after the positional
        // ones.
        unsafe { glue::call(gil, callable, &argv, nargs, kwnames_ptr) }
            .map_err(|raised| clock.fetch(raised))
    }

    /// Converts a call's result to `R`, naming this function in errors.
    pub(super) fn convert<R: FromResult>(&self, gil: &Gil, result: StrongRef) -> Result<R, Error> {
        convert(gil, result).map_err(|mismatch| mismatch.into_error(&self.0.name))
    }
}

/// An argument as Python sees it, for the length of one call.
enum PyArg<'a, 'py> {
    /// Rust memory, lent.
    Lent(BorrowedArray<'a>),
    /// Rust memory lent for a held-GIL scope: its array, and the scope's
    /// record of it.
    Scoped(*mut PyObject, &'a LentSlot),
    /// A Python object made for the call.
    Made(Held<'py>),
}

impl<'a, 'py> PyArg<'a, 'py> {
    fn new(gil: &'py Gil, arg: &Arg<'a>, lent_to: &'a str) -> Result<Self, Error> {
        let made = match &arg.0 {
            ArgKind::Array(array) => BorrowedArray::new(gil, array, lent_to).map(PyArg::Lent),
            ArgKind::Lent(slot) => slot.array(gil).map(|array| PyArg::Scoped(array, slot)),
            ArgKind::Value(value) => value.to_python(gil).map(PyArg::Made),
            ArgKind::Tuple(values) => tuple_of(gil, values.iter().copied()).map(PyArg::Made),
            ArgKind::Given(given) => given.make(gil).map(|obj| PyArg::Made(Held::new(gil, obj))),
            ArgKind::Object(object) => {
                // SAFETY: the object is live: the caller's Object holds it
                // for 'a, and the GIL is held.
                let object = unsafe { Held::new_ref(gil, object.as_ptr()) };
                Ok(PyArg::Made(object))
            }
            ArgKind::Invalid(why) => return Err(Error::InvalidArgument(why.clone())),
        };
        made.map_err(Error::Python)
    }

    #[inline]
    fn as_ptr(&self) -> *mut PyObject {
        match self {
            PyArg::Lent(array) => array.as_ptr(),
            PyArg::Scoped(array, _) => *array,
            PyArg::Made(value) => value.as_ptr(),
        }
    }

    /// Gives the argument back; for a lent array, with the retention rule
    /// (a scope's array is checked, and stays lent unless Python kept it).
    fn release(self, gil: &Gil, lent_to: &str) -> Release {
        match self {
            PyArg::Lent(array) => array.release(gil),
            PyArg::Scoped(_, slot) => slot.after_call(gil, lent_to),
            PyArg::Made(_) => Release::Free,
        }
    }
}

/// A call being put together: positional arguments in order, then keyword
/// arguments, and a deadline if any. Made by [`Function::arg`],
/// [`Function::kwarg`] or [`Function::timeout`].
#[must_use = "a Call does nothing until .call() or .call_view()"]
pub struct Call<'f, 'a> {
    function: &'f Function,
    args: Args<'a>,
    kwargs: Vec<(&'a str, Arg<'a>)>,
    /// Its timeout or deadline, if any ([`super::deadline`]).
    pub(super) limit: Option<Limit>,
    /// An async call stops when its future is dropped
    /// ([`Call::stop_on_drop`]).
    pub(super) stop_on_drop: bool,
}

/// What [`Call::into_parts`] gives.
pub(super) type CallParts<'f, 'a> = (
    &'f Function,
    Args<'a>,
    Vec<(&'a str, Arg<'a>)>,
    Option<Deadline>,
    bool,
);

impl<'f, 'a> Call<'f, 'a> {
    /// A call of `function` with no argument yet.
    pub(super) fn new(function: &'f Function) -> Self {
        Call {
            function,
            args: Args::None,
            kwargs: Vec::new(),
            limit: None,
            stop_on_drop: false,
        }
    }

    /// The function, the positional and the keyword arguments, and the
    /// deadline, fixed now (for [`Call::call_async`](super::call_async)).
    pub(super) fn into_parts(self) -> CallParts<'f, 'a> {
        let deadline = starting_now(self.limit);
        (
            self.function,
            self.args,
            self.kwargs,
            deadline,
            self.stop_on_drop,
        )
    }

    /// Adds the next positional argument.
    ///
    /// ```
    /// let add = py_in_mem::Function::from_source("doc_add", "def add(a, b):\n    return a + b\n", "add")?;
    /// assert_eq!(add.arg(&[1i64, 2]).arg(&[10i64, 20]).call::<Vec<i64>>()?, vec![11, 22]);
    /// assert_eq!(add.arg(&[1i64, 2]).arg(10).call::<Vec<i64>>()?, vec![11, 12]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn arg(mut self, value: impl IntoArg<'a>) -> Self {
        self.args.push(value.into_arg());
        self
    }

    /// Adds a keyword argument. A name may be given once a call, as in
    /// Python: a repeated one is [`Error::InvalidArgument`] before anything
    /// runs.
    ///
    /// ```
    /// let clip = py_in_mem::Function::from_source("doc_clip", "import numpy as np\ndef f(a, hi=1.0):\n    return np.minimum(a, hi)\n", "f")?;
    /// assert_eq!(clip.arg(&[0.5, 3.0]).kwarg("hi", 2).call::<Vec<f64>>()?, vec![0.5, 2.0]);
    /// assert!(clip.arg(&[0.5]).kwarg("hi", 2).kwarg("hi", 3).call::<Vec<f64>>().is_err());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn kwarg(mut self, name: &'a str, value: impl IntoArg<'a>) -> Self {
        self.kwargs.push((name, value.into_arg()));
        self
    }

    /// Adds the next positional argument, an owned array given to Python
    /// without a copy: it may keep it ([`Function::arg_owned`]).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call_arg_owned", "def f(a, b, w):\n    return (a * w + b).tolist()\n", "f")?;
    /// let weights = vec![1.0, 2.0];
    /// let out: Vec<f64> = f.arg(&[1.0, 1.0]).arg_owned(vec![10.0, 20.0]).arg(&weights).call()?;
    /// assert_eq!(out, [11.0, 22.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn arg_owned(mut self, value: impl OwnedArray) -> Self {
        self.args.push(Arg::owned(value));
        self
    }

    /// Adds a keyword argument, an owned array given to Python without a
    /// copy ([`Function::arg_owned`]).
    pub fn kwarg_owned(mut self, name: &'a str, value: impl OwnedArray) -> Self {
        self.kwargs.push((name, Arg::owned(value)));
        self
    }

    /// Calls, converting the result to `R` ([`FromResult`]).
    ///
    /// ```
    /// let data = [1.0, 2.0, 2.0, 3.0, 9.0];
    /// let histogram = py_in_mem::Function::load("numpy", "histogram")?;
    /// let (counts, edges): (Vec<i64>, Vec<f64>) = histogram.arg(&data).kwarg("bins", 4).call()?;
    /// assert_eq!(counts, [3, 1, 0, 1]);
    /// assert_eq!(edges, [1.0, 3.0, 5.0, 7.0, 9.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call<R: FromResult>(self) -> Result<R, Error> {
        let function = self.function;
        let deadline = starting_now(self.limit);
        function.invoke_until(
            deadline,
            self.args.as_slice(),
            &self.kwargs,
            |gil, result| function.convert(gil, result),
        )
    }

    /// Calls with no positional argument, as [`Function::call0`] does, with
    /// what the builder has besides (keyword arguments, a deadline):
    /// `f.timeout(limit).call0()`. A positional argument given to the
    /// builder makes the call [`Error::InvalidArgument`], Python not called
    /// (use [`call`](Self::call)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let f = py_in_mem::Function::from_source("doc_call_call0", "def f(scale=1):\n    return 2 * scale\n", "f")?;
    /// assert_eq!(f.timeout(Duration::from_secs(5)).call0::<i64>()?, 2);
    /// assert_eq!(f.kwarg("scale", 10).call0::<i64>()?, 20);
    /// assert!(f.arg(3).call0::<i64>().is_err());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call0<R: FromResult>(self) -> Result<R, Error> {
        if !self.args.as_slice().is_empty() {
            return Err(Error::InvalidArgument(
                "call0 makes a call with no positional argument, and one was given: use call"
                    .into(),
            ));
        }
        self.call()
    }

    /// Calls, reading the result in place (see [`Function::call_view`]).
    ///
    /// ```
    /// let f = py_in_mem::Function::from_source("doc_call_view_b", "def f(a, b):\n    return a * b\n", "f")?;
    /// let view = f.arg(&[1.5, 2.0]).arg(&[2.0, 2.0]).call_view::<f64>()?;
    /// assert_eq!(&*view, &[3.0, 4.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_view<U: Element>(self) -> Result<ResultView<U>, Error> {
        self.call()
    }
}

/// The first keyword name that `kwargs` gives twice, if any (a few names a
/// call: comparing each pair costs less than hashing them).
fn repeated_keyword<'k>(kwargs: &'k [(&str, Arg<'_>)]) -> Option<&'k str> {
    kwargs
        .iter()
        .enumerate()
        .find(|(i, (name, _))| kwargs[..*i].iter().any(|(earlier, _)| earlier == name))
        .map(|(_, (name, _))| *name)
}
