//! [`Object`]: a Python object held by Rust, its attributes read and its
//! methods called as [`Function`]s.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::{c_string, load_error, Function};
use crate::convert::from_result::Reader;
use crate::convert::from_result::{convert, FromResult};
use crate::convert::into_arg::{Arg, ArgKind, Given, IntoArg};
use crate::convert::read::Mismatch;
use crate::error::Error;
use crate::object::Held;
use crate::runtime::{self, glue};
use crate::runtime::{Interpreter, SharedRef};

/// A Python object held by Rust: a model, a fitted estimator, a connection,
/// anything a call returns. Ask for it as a result ([`FromResult`]), pass
/// it to calls by reference (`&object` is an [`IntoArg`]: Python gets the
/// object itself, not a copy), read its attributes
/// ([`getattr`](Self::getattr)) and call its methods
/// ([`method`](Self::method)) as any [`Function`], with the same arguments,
/// typed results and retention rule.
///
/// `Object` is `Send + Sync`, and cheap to clone (the clones share one
/// reference, with no GIL needed). It may be dropped on any thread, at any
/// time, without waiting: a drop inside a [`hold_gil`](crate::hold_gil)
/// scope releases the reference at once; any other drop (where taking the
/// GIL might wait, since another thread may hold it) leaves the reference
/// to the crate's thread `pim-release`, which takes the GIL and releases it
/// soon after: the object's `__del__` runs there, never inside another
/// call (nor against that call's deadline).
///
/// ```
/// use py_in_mem::{Function, NdSlice, NdVec, Object};
///
/// let source = "import numpy as np\n\
///     class Scaler:\n\
///     \x20   def __init__(self, factor=1.0):\n\
///     \x20       self.factor = factor\n\
///     \x20       self.calls = 0\n\
///     \x20   def fit(self, x):\n\
///     \x20       self.mean_ = x.mean(axis=0)\n\
///     \x20       return self\n\
///     \x20   def transform(self, x):\n\
///     \x20       self.calls += 1\n\
///     \x20       return (x - self.mean_) * self.factor\n";
/// let class = Function::from_source("doc_object", source, "Scaler")?;
/// let scaler: Object = class.kwarg("factor", 2.0).call()?; // a class is a callable
///
/// let x = [1.0, 10.0, 3.0, 30.0];
/// let _: Object = scaler.method("fit")?.call(NdSlice::new(&x, &[2, 2])?)?;
/// let scaled: NdVec<f64> = scaler.method("transform")?.call(NdSlice::new(&x, &[2, 2])?)?;
/// assert_eq!(scaled.as_slice(), &[-2.0, -20.0, 2.0, 20.0]);
///
/// let mean: Vec<f64> = scaler.getattr("mean_")?;
/// assert_eq!(mean, [2.0, 20.0]);
/// assert_eq!(scaler.getattr::<i64>("calls")?, 1);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
#[derive(Clone)]
pub struct Object(Arc<ObjectInner>);

/// How many of an object's methods [`Object::method`] keeps.
const KEPT_METHODS: usize = 8;

/// What an [`Object`]'s clones share.
struct ObjectInner {
    /// The reference, shared with its methods' [`Function`]s (which hold
    /// this, not the `ObjectInner` that keeps them: no cycle).
    inner: Arc<SharedRef>,
    /// The name of its type (`Scaler`).
    type_name: Box<str>,
    /// What its attributes are named after in messages: the type's name,
    /// or a module's own (`Scaler.predict`, `pkg.models.f`).
    owner_name: Box<str>,
    python: Interpreter,
    /// The first [`KEPT_METHODS`] methods asked for, in the order asked:
    /// set once, never replaced, so read without a lock.
    methods: [OnceLock<Function>; KEPT_METHODS],
}

impl Object {
    /// Holds `held`'s reference for Rust.
    fn from_held(held: Held<'_>) -> Object {
        let type_name: Box<str> = held.type_name().into();
        let owner_name = held.owner_name().into();
        // SAFETY: a Held exists only once Python runs in this process.
        let python = unsafe { Interpreter::assume_started() };
        let gil = held.gil();
        // SAFETY: into_raw gives up the Held's own reference, not NULL.
        let inner =
            unsafe { SharedRef::from_owned(gil, held.into_raw()) }.expect("a Held is not NULL");
        Object(Arc::new(ObjectInner {
            inner: Arc::new(inner),
            type_name,
            owner_name,
            python,
            methods: Default::default(),
        }))
    }

    /// Imports `module` (from `sys.path`, as [`Function::load`] does) and
    /// holds the module itself: its globals read with
    /// [`getattr`](Self::getattr), such as a model a module makes as it is
    /// imported.
    ///
    /// ```
    /// use py_in_mem::Object;
    ///
    /// let math = Object::import("math")?;
    /// assert_eq!(math.getattr::<f64>("inf")?, f64::INFINITY);
    /// assert_eq!(math.method("floor")?.call::<i64>(2.5)?, 2);
    /// assert!(Object::import("no_such_module").is_err());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn import(module: &str) -> Result<Object, Error> {
        let c_module = c_string(module)?;
        let python = runtime::python()?;
        let gil = python.gil()?;
        let held = glue::import(&gil, &c_module)
            .map(|module| Held::new(&gil, module))
            .map_err(|e| load_error(module, e))?;
        Ok(Object::from_held(held))
    }

    /// Reads the attribute `name` (`obj.name` in Python) as any result type
    /// ([`FromResult`]): a number, an array, a string, another `Object`.
    ///
    /// ```
    /// use py_in_mem::{Function, Object};
    ///
    /// let make = Function::from_source(
    ///     "doc_getattr",
    ///     "import types\ndef make():\n    return types.SimpleNamespace(n=3, name='digits')\n",
    ///     "make",
    /// )?;
    /// let obj: Object = make.call0()?;
    /// assert_eq!(obj.getattr::<usize>("n")?, 3);
    /// assert_eq!(obj.getattr::<String>("name")?, "digits");
    /// assert_eq!(obj.getattr::<i64>("nope").unwrap_err().py_type(), Some("AttributeError"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn getattr<R: FromResult>(&self, name: &str) -> Result<R, Error> {
        check_name(name)?;
        let gil = self.0.python.gil()?;
        // SAFETY: the object is live while `self` holds it, and the GIL is
        // held; the new reference is the one the Held owns.
        let this = unsafe { Held::new_ref(&gil, self.0.inner.as_ptr()) };
        let value = this.getattr(name).map_err(Error::Python)?;
        drop(this);
        convert(&gil, value.into_strong()).map_err(|mismatch: Mismatch| {
            mismatch.into_error(&format!("{}.{name}", self.0.owner_name))
        })
    }

    /// The method `name` of this object, as a [`Function`]: called with
    /// the same builder, typed results and retention rule as any function
    /// (`.call(x)`, `.arg(a).kwarg("k", v).call()`, `.call0()`).
    ///
    /// The method is looked up at each call, inside the call's own hold of
    /// the GIL, as Python's `obj.name(...)` does (no bound method is made):
    /// so `method` itself needs no GIL, a method asked for per call
    /// (`model.method("predict")?.call(x)`) takes the GIL once, as PyO3's
    /// `call_method1` does, and every call sees what the object's
    /// attribute is at the time. Only a name with a NUL in it is refused
    /// here ([`Error::InvalidName`]); a missing or uncallable attribute is
    /// the call's error, as in Python.
    ///
    /// The object keeps the `Function`s of the first 8 method names it is
    /// asked for (in all its clones): asking again for one of them costs a
    /// comparison of names and a clone, not an allocation, and its calls
    /// share what the function learns of how long they take, for the
    /// [scheduler](crate::scheduler). A ninth name gets a new `Function`
    /// each time: keep it to call it often.
    ///
    /// ```
    /// use py_in_mem::{Function, Object};
    ///
    /// let counter: Object = Function::from_source(
    ///     "doc_method",
    ///     "class Counter:\n    def __init__(self):\n        self.n = 0\n    def add(self, k=1):\n        self.n += k\n        return self.n\n",
    ///     "Counter",
    /// )?
    /// .call0()?;
    /// let add = counter.method("add")?;
    /// assert_eq!(add.call0::<i64>()?, 1);
    /// assert_eq!(add.call::<i64>(10)?, 11);
    /// assert_eq!(add.kwarg("k", 5).call::<i64>()?, 16);
    /// assert_eq!(add.name(), "Counter.add");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    ///
    /// A missing attribute is an `AttributeError`, and one that cannot be
    /// called a `TypeError`, when called:
    ///
    /// ```
    /// # use py_in_mem::{Function, Object};
    /// let obj: Object = Function::from_source("doc_method_err", "class A:\n    x = 1\n", "A")?.call0()?;
    /// let err = obj.method("x")?.call0::<i64>().unwrap_err();
    /// assert_eq!(err.py_type(), Some("TypeError"));
    /// let err = obj.method("nope")?.call0::<i64>().unwrap_err();
    /// assert_eq!(err.py_type(), Some("AttributeError"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn method(&self, name: &str) -> Result<Function, Error> {
        check_name(name)?;
        let this = &*self.0;
        let make =
            || Function::method_of(Arc::clone(&this.inner), &this.owner_name, name, this.python);
        for slot in &this.methods {
            match slot.get() {
                Some(kept) if kept.method_name() == Some(name) => return Ok(kept.clone()),
                Some(_) => continue,
                None => {
                    let made = make();
                    // A thread that fills the slot first keeps its own
                    // method there; this one is then not kept, this time.
                    let _ = slot.set(made.clone());
                    return Ok(made);
                }
            }
        }
        Ok(make())
    }

    /// Whether the object has the attribute `name` (`hasattr(obj, name)`):
    /// true unless reading it raises `AttributeError`. Reading it may run
    /// Python code (a property); any other exception it raises is the error.
    ///
    /// ```
    /// let obj: py_in_mem::Object = py_in_mem::Function::load("builtins", "object")?.call0()?;
    /// assert!(obj.hasattr("__class__")?);
    /// assert!(!obj.hasattr("coef_")?);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn hasattr(&self, name: &str) -> Result<bool, Error> {
        check_name(name)?;
        builtin(&HASATTR, "hasattr")?.arg(self).arg(name).call()
    }

    /// Sets the attribute `name` to `value` (`obj.name = value` in Python),
    /// made from any argument ([`IntoArg`]): a number, a string, a
    /// [`Value`](crate::Value), another `Object`, an owned array. The object
    /// keeps the value: an array lent by reference (`&vec`) is kept past
    /// the call, so it is moved onto a copy and the call is
    /// [`Error::InputRetained`] (naming `Object::setattr("name")` and "the
    /// value"), as any call that keeps its input; give an owned one
    /// ([`Arg::owned`]) instead.
    ///
    /// ```
    /// use py_in_mem::{Arg, Function, Object};
    ///
    /// let model: Object = Function::from_source("doc_setattr", "class M:\n    pass\n", "M")?.call0()?;
    /// model.setattr("alpha", 0.5)?;
    /// model.setattr("weights", Arg::owned(vec![1.0, 2.0]))?;
    /// assert_eq!(model.getattr::<f64>("alpha")?, 0.5);
    /// assert_eq!(model.getattr::<Vec<f64>>("weights")?, [1.0, 2.0]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn setattr<'a>(&'a self, name: &'a str, value: impl IntoArg<'a>) -> Result<(), Error> {
        check_name(name)?;
        let set = builtin(&SETATTR, "setattr")?
            .arg(self)
            .arg(name)
            .arg(value)
            .call();
        // The call is builtins.setattr's, and the value its argument 2:
        // named as the caller wrote them.
        set.map_err(|error| match error {
            Error::InputRetained { error, .. } => Error::InputRetained {
                function: format!("Object::setattr({name:?})"),
                arguments: vec!["the value".to_owned()],
                error,
            },
            other => other,
        })
    }

    /// Whether the object is an instance of the class `class`, named as
    /// [`Error::is_instance_of`] names one: `"module.QualName"`
    /// (`"sklearn.linear_model._logistic.LogisticRegression"`) or the
    /// qualified name alone (`"LogisticRegression"`), matched against the
    /// object's type and every class it derives from (`type(obj).__mro__`).
    /// No import is made, and no Python code runs. A class's module is its
    /// `__module__`, which a library may set to where it is exported from
    /// (pandas 3: `"pandas.DataFrame"`, not `"pandas.core.frame.DataFrame"`);
    /// an abstract base class an object's type did not derive from
    /// (`numbers.Number`, `collections.abc.Sequence`) is not in the MRO:
    /// ask [`is_instance`](Self::is_instance) for Python's `isinstance`.
    ///
    /// ```
    /// let d: py_in_mem::Object = py_in_mem::Function::from_source(
    ///     "doc_is_instance_of",
    ///     "import collections\ndef make():\n    return collections.OrderedDict()\n",
    ///     "make",
    /// )?
    /// .call0()?;
    /// assert!(d.is_instance_of("collections.OrderedDict")?);
    /// assert!(d.is_instance_of("dict")?);
    /// assert!(d.is_instance_of("builtins.object")?);
    /// assert!(!d.is_instance_of("list")?);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn is_instance_of(&self, class: &str) -> Result<bool, Error> {
        let gil = self.0.python.gil()?;
        let classes = glue::type_classes(&gil, self.0.inner.as_ptr()).unwrap_or_default();
        Ok(crate::error::classes_include(&classes, class))
    }

    /// Whether the object is an instance of `class` (an [`Object`] of a
    /// class, or of a tuple of classes), as Python's `isinstance(obj,
    /// class)` says, `__instancecheck__` included: an abstract base class's
    /// registered and structural subclasses (`numbers.Number` of `1`,
    /// `collections.abc.Sequence` of a list), which
    /// [`is_instance_of`](Self::is_instance_of), matching names along the
    /// MRO, does not see. As PyO3's `Bound::is_instance`. The class check
    /// may run Python code; an exception it raises (a `class` that is not a
    /// class) is the error.
    ///
    /// ```
    /// use py_in_mem::{Function, Object};
    ///
    /// let number: Object = Object::import("numbers")?.getattr("Number")?;
    /// let one: Object = Function::load("builtins", "int")?.call(1)?;
    /// assert!(one.is_instance(&number)?);
    /// assert!(!one.is_instance_of("numbers.Number")?); // not in int's MRO
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn is_instance(&self, class: &Object) -> Result<bool, Error> {
        builtin(&ISINSTANCE, "isinstance")?
            .arg(self)
            .arg(class)
            .call()
    }

    /// Whether `self` and `other` are the same Python object (`is` in
    /// Python). No GIL needed.
    ///
    /// ```
    /// use py_in_mem::{Function, Object};
    ///
    /// let identity = Function::from_source("doc_is", "def same(x):\n    return x\n", "same")?;
    /// let a: Object = Function::load("builtins", "object")?.call0()?;
    /// let b: Object = identity.call(&a)?; // the object itself went in, and came back
    /// assert!(a.is(&b));
    /// let c: Object = Function::load("builtins", "object")?.call0()?;
    /// assert!(!a.is(&c));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn is(&self, other: &Object) -> bool {
        self.0.inner.as_ptr() == other.0.inner.as_ptr()
    }

    /// The name of the object's type (`Model`, `numpy.ndarray`), as it was
    /// when the object came to Rust.
    ///
    /// ```
    /// let obj: py_in_mem::Object = py_in_mem::Function::load("builtins", "dict")?.call0()?;
    /// assert_eq!(obj.type_name(), "dict");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn type_name(&self) -> &str {
        &self.0.type_name
    }

    /// The object's `PyObject*`, for code of your own that works on it with
    /// Python's C API, or with PyO3 (whose `pyo3::ffi` is this crate's
    /// `pyo3_ffi`: a build holds one). Borrowed: valid while this `Object`
    /// or a clone of it lives; as any `PyObject*`, using it needs the GIL.
    /// With PyO3, inside `Python::attach`:
    /// `Bound::from_borrowed_ptr(py, object.as_ptr())` takes a reference
    /// of its own.
    ///
    /// ```
    /// let obj: py_in_mem::Object = py_in_mem::Function::load("builtins", "dict")?.call0()?;
    /// // SAFETY: a live object of this process's interpreter, kept alive by `obj`.
    /// let same = unsafe { py_in_mem::Object::from_borrowed_ptr(obj.as_ptr()) }?;
    /// assert!(same.is(&obj));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut pyo3_ffi::PyObject {
        self.0.inner.as_ptr()
    }

    /// Holds the Python object at `ptr` for Rust, taking a reference of its
    /// own: an object made by PyO3 (`bound.as_ptr()`) or by C code of
    /// yours, then used as any other [`Object`]. The GIL is taken as any
    /// call takes it, so this may run inside PyO3's `Python::attach` (the
    /// thread holds the GIL already) or outside it.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live Python object of the interpreter this process
    /// runs (the one the crate started, or the one a host started), and the
    /// caller keeps a reference to it until this returns.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a null pointer; otherwise what any
    /// call returns when Python cannot be called ([`Error::Init`],
    /// [`Error::Unavailable`]).
    pub unsafe fn from_borrowed_ptr(ptr: *mut pyo3_ffi::PyObject) -> Result<Object, Error> {
        if ptr.is_null() {
            return Err(Error::InvalidArgument(
                "Object::from_borrowed_ptr was given a null pointer".into(),
            ));
        }
        let gil = runtime::python()?.gil()?;
        // SAFETY: the GIL is held (`gil`); `ptr` is a live object that the
        // caller keeps until this returns (the contract above).
        let held = unsafe { Held::new_ref(&gil, ptr) };
        Ok(Object::from_held(held))
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("type", &&*self.0.type_name)
            .field("at", &self.0.inner.as_ptr())
            .finish()
    }
}

impl FromResult for Object {
    fn expected() -> String {
        "any Python object".into()
    }

    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let value = value.into_held();
        Ok(Object::from_held(value))
    }
}

impl<'a> IntoArg<'a> for &'a Object {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Object(&self.0.inner))
    }
}

/// The object itself, as `&object` passes it, held by the argument: what an
/// async call takes ([`Function::call_async`]), since its arguments must
/// own what they pass.
///
/// ```
/// use py_in_mem::{Function, Object};
///
/// let model: Object = Function::from_source("doc_object_arg", "class M:\n    k = 3\n", "M")?.call0()?;
/// let k: i64 = Function::from_source("doc_object_arg_k", "def k(m):\n    return m.k\n", "k")?.call(model.clone())?;
/// assert_eq!(k, 3);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
impl<'a> IntoArg<'a> for Object {
    fn into_arg(self) -> Arg<'a> {
        Arg(ArgKind::Given(Given::new(move |gil| {
            // SAFETY: the object is live while `self` (moved in here) holds
            // it, and the GIL is held; the new reference is the argument's.
            let object = unsafe { Held::new_ref(gil, self.0.inner.as_ptr()) };
            Ok(object.into_strong())
        })))
    }
}

static HASATTR: OnceLock<Function> = OnceLock::new();
static ISINSTANCE: OnceLock<Function> = OnceLock::new();
static SETATTR: OnceLock<Function> = OnceLock::new();

/// The builtin `name`, loaded once into `kept`.
fn builtin(kept: &'static OnceLock<Function>, name: &str) -> Result<&'static Function, Error> {
    if let Some(function) = kept.get() {
        return Ok(function);
    }
    let loaded = Function::load("builtins", name)?;
    Ok(kept.get_or_init(|| loaded))
}

/// The one check a C string would make of a name (no NUL in it), without
/// the copy.
fn check_name(name: &str) -> Result<(), Error> {
    match name.contains('\0') {
        true => Err(Error::InvalidName(name.to_owned())),
        false => Ok(()),
    }
}
