//! Thin unsafe-inside, typed-outside wrappers over the C glue in [`crate::raw`].
//!
//! Each wrapper turns C conventions (NULL, status codes, malloc'ed strings)
//! into Rust ones (`Result`, owned `String`s, RAII) and nothing more. The GIL
//! is a value here: functions that need it take `&Gil`.

use std::cell::Cell;
use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::OnceLock;

use pyo3_ffi::compat::PyThreadState_GetUnchecked;
use pyo3_ffi::{
    PyEval_RestoreThread, PyEval_SaveThread, PyGILState_Ensure, PyGILState_Release,
    PyGILState_STATE, PyObject, PyThreadState,
};

use crate::error::{PyException, Unavailable};
use crate::scheduler::{self, CallStats, Ticket};
use crate::{lifecycle, raw, thread_state};

thread_local! {
    /// The thread state with which this thread's innermost held-GIL scope
    /// ([`crate::hold_gil`]) holds the GIL; null outside scopes, and while a
    /// scope has given the GIL up ([`ScopeGil::released`]).
    static SCOPE_TSTATE: Cell<*mut PyThreadState> = const { Cell::new(std::ptr::null_mut()) };
}

/// Does this thread hold the GIL, now, through a held-GIL scope of its own?
///
/// Being inside a scope is not enough: Python code the scope calls, or C
/// code that Python calls (ctypes, cffi and many extensions release the
/// GIL around a foreign call), may have given the GIL up on this thread and
/// then called back into the crate. So the scope's thread state must also
/// be the thread's current one, which is true only while this thread holds
/// the GIL with it (before 3.12 the current state is the GIL holder's,
/// whichever thread that is; since, this thread's, and NULL while it is
/// detached). One thread-local read and one call into libpython.
#[inline]
fn in_held_scope() -> bool {
    let scope_tstate = SCOPE_TSTATE.get();
    // SAFETY: a scope's thread state is set only while Python runs, and
    // reading the current thread state is allowed on any thread, with or
    // without the GIL (it is only compared, never dereferenced).
    !scope_tstate.is_null() && unsafe { PyThreadState_GetUnchecked() } == scope_tstate
}

/// Proof that Python ran in this process. Only [`crate::runtime`] makes one,
/// once Python runs and is prepared. The crate never finalizes Python; a
/// host program may, and [`Interpreter::gil`] then refuses.
#[derive(Clone, Copy)]
pub(crate) struct Interpreter {
    _private: (),
}

impl Interpreter {
    /// # Safety
    /// Python must have been initialized in this process.
    pub(crate) unsafe fn assume_started() -> Interpreter {
        Interpreter { _private: () }
    }

    /// Takes the GIL for a crate call on this thread, whichever thread it is,
    /// with the GIL held already (by a host, or by an outer call) or not.
    /// The one way the crate takes the GIL; [`Gil`] gives it back.
    ///
    /// Fails, touching nothing of Python's, once the host has finalized
    /// Python, in a child forked after start-up, and on a thread that has
    /// given its thread state back as it exits.
    ///
    /// Inside a held-GIL scope that holds the GIL right now, the GIL is this
    /// thread's already: the guard takes nothing (only a fork since start-up
    /// is checked, one load). A scope whose GIL C code has given up (a
    /// callback from ctypes, say) is no help: the GIL is taken as outside.
    pub(crate) fn gil(self) -> Result<Gil, Unavailable> {
        if in_held_scope() {
            lifecycle::check_latched()?;
            return Ok(Gil::scoped());
        }
        lifecycle::check()?;
        thread_state::enter()?;
        Ok(Gil::ensure())
    }

    /// Takes the GIL for one call of a function measured by `stats`: first
    /// this thread's turn from the scheduler ([`crate::scheduler`]), then
    /// the GIL. The guard gives the GIL back, then the turn.
    pub(crate) fn gil_for_call(self, stats: &CallStats) -> Result<CallGil<'_>, Unavailable> {
        if in_held_scope() {
            lifecycle::check_latched()?;
            return Ok(CallGil {
                gil: Gil::scoped(),
                _ticket: Ticket::none(),
            });
        }
        lifecycle::check()?;
        thread_state::enter()?;
        if inside_a_scope() {
            // A callback inside a scope whose GIL C code gave up: the scope
            // holds this thread's turn already.
            return Ok(CallGil {
                gil: Gil::ensure(),
                _ticket: Ticket::none(),
            });
        }
        // The turn before the GIL, never the other way round: nobody waits
        // for the turn holding the GIL.
        let mut ticket = scheduler::enter(stats);
        let gil = Gil::ensure();
        ticket.start_timing();
        Ok(CallGil {
            gil,
            _ticket: ticket,
        })
    }

    /// Holds the GIL, and the turn, until [`ScopeGil`] drops: what
    /// [`crate::hold_gil`] runs its closure in. Nests, also inside a
    /// callback from C code that gave an outer scope's GIL up.
    pub(crate) fn hold(self) -> Result<ScopeGil, Unavailable> {
        let outer = SCOPE_TSTATE.get();
        if in_held_scope() {
            lifecycle::check_latched()?;
            return Ok(ScopeGil {
                gil: Some(Gil::scoped()),
                _ticket: Ticket::none(),
                outer,
            });
        }
        lifecycle::check()?;
        thread_state::enter()?;
        let ticket = if outer.is_null() {
            scheduler::enter_scope()
        } else {
            Ticket::none() // the outer scope holds this thread's turn
        };
        let gil = Gil::ensure();
        // SAFETY: this thread holds the GIL (just taken), so the current
        // thread state is its own; only read.
        SCOPE_TSTATE.set(unsafe { PyThreadState_GetUnchecked() });
        Ok(ScopeGil {
            gil: Some(gil),
            _ticket: ticket,
            outer,
        })
    }
}

/// Is this thread inside a held-GIL scope, whether or not it holds the GIL
/// right now?
#[inline]
fn inside_a_scope() -> bool {
    !SCOPE_TSTATE.get().is_null()
}

/// The GIL, held by this thread until the guard drops. Not `Send`: it must be
/// released on the thread that took it.
pub struct Gil {
    taken: Taken,
    _not_send: PhantomData<*mut ()>,
}

/// How a [`Gil`] took the GIL, so it gives it back the same way.
#[derive(Clone, Copy)]
enum Taken {
    /// PyGILState_Ensure (which nests).
    Ensured(PyGILState_STATE),
    /// With the thread state the crate keeps for this thread, which did not
    /// hold the GIL: PyEval_RestoreThread, given back with SaveThread.
    Restored,
    /// Nothing: the thread's held-GIL scope holds it, and gives it back.
    Scoped,
}

impl Gil {
    /// Takes the GIL (or nests, if this thread holds it already).
    fn ensure() -> Gil {
        if let Some(tstate) = thread_state::kept() {
            // SAFETY: Python runs (our callers checked); the current thread
            // state is only read. Before 3.12 it is the GIL holder's,
            // whichever thread that is; since, this thread's: either way it
            // is ours only if this thread holds the GIL.
            if unsafe { PyThreadState_GetUnchecked() } != tstate {
                // SAFETY: tstate is this thread's own, kept by the crate, and
                // this thread does not hold the GIL: what Ensure would do
                // after finding it.
                unsafe { PyEval_RestoreThread(tstate) };
                return Gil {
                    taken: Taken::Restored,
                    _not_send: PhantomData,
                };
            }
        }
        // SAFETY: our callers checked that Python runs; this thread has a
        // thread state PyGILState knows, or Ensure makes one for the call;
        // Ensure may be called from any thread, and nests.
        let state = unsafe { PyGILState_Ensure() };
        Gil {
            taken: Taken::Ensured(state),
            _not_send: PhantomData,
        }
    }

    /// The GIL this thread's held-GIL scope holds.
    fn scoped() -> Gil {
        Gil {
            taken: Taken::Scoped,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Gil {
    fn drop(&mut self) {
        match self.taken {
            // SAFETY: `state` came from PyGILState_Ensure on this thread (Gil
            // is not Send), and guards drop in reverse order of creation.
            Taken::Ensured(state) => unsafe { PyGILState_Release(state) },
            Taken::Restored => {
                // SAFETY: this thread took the GIL with RestoreThread (in
                // `ensure`, on this thread) and holds it with its own state.
                unsafe { PyEval_SaveThread() };
            }
            Taken::Scoped => {}
        }
    }
}

/// The GIL for one call, and the call's place in the schedule: gives the
/// GIL back first, then the turn (fields drop in order).
pub(crate) struct CallGil<'s> {
    gil: Gil,
    _ticket: Ticket<'s>,
}

impl Deref for CallGil<'_> {
    type Target = Gil;
    fn deref(&self) -> &Gil {
        &self.gil
    }
}

/// The GIL and the turn held for a held-GIL scope.
pub(crate) struct ScopeGil {
    /// Taken out (and put back) by [`ScopeGil::released`].
    gil: Option<Gil>,
    _ticket: Ticket<'static>,
    /// The enclosing scope's thread state (null if none), put back when
    /// this scope ends: scopes end in the reverse order of their start.
    outer: *mut PyThreadState,
}

impl ScopeGil {
    /// The GIL this scope holds.
    pub(crate) fn gil(&self) -> &Gil {
        self.gil.as_ref().expect("a held-GIL scope holds the GIL")
    }

    /// Runs `f` with the GIL (and the turn) given back, so other threads,
    /// Python's own included, run meanwhile; takes them again after. Calls
    /// inside `f` take the GIL as calls outside any scope do.
    pub(crate) fn released<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let scope_tstate = SCOPE_TSTATE.replace(std::ptr::null_mut());
        // SAFETY: this thread holds the GIL (the scope's), with its thread
        // state current; SaveThread releases it and returns that state, which
        // RestoreThread below takes back on this same thread.
        let tstate = unsafe { PyEval_SaveThread() };
        let ticket = std::mem::replace(&mut self._ticket, Ticket::none());
        drop(ticket);
        // Put back even if f panics: the scope's guard still needs them.
        struct Restore<'g> {
            tstate: *mut pyo3_ffi::PyThreadState,
            scope_tstate: *mut pyo3_ffi::PyThreadState,
            scope: &'g mut ScopeGil,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                if self.scope.outer.is_null() {
                    self.scope._ticket = scheduler::enter_scope();
                }
                // SAFETY: tstate is this thread's, saved above.
                unsafe { PyEval_RestoreThread(self.tstate) };
                SCOPE_TSTATE.set(self.scope_tstate);
            }
        }
        let _restore = Restore {
            tstate,
            scope_tstate,
            scope: self,
        };
        f()
    }
}

impl Drop for ScopeGil {
    fn drop(&mut self) {
        SCOPE_TSTATE.set(self.outer);
        // The GIL goes before the turn (fields would drop the other way).
        drop(self.gil.take());
    }
}

/// One owned strong reference to a Python object.
pub struct StrongRef {
    ptr: NonNull<PyObject>,
}

// SAFETY: the reference is only used, and released, with the GIL held (see
// `Drop`), which serializes all access across threads.
unsafe impl Send for StrongRef {}
// SAFETY: `&StrongRef` only hands out the pointer; using it needs the GIL.
unsafe impl Sync for StrongRef {}

impl StrongRef {
    /// # Safety
    /// `ptr` is a new (owned) reference, or NULL; Python is initialized.
    pub(crate) unsafe fn from_owned(ptr: *mut PyObject) -> Option<StrongRef> {
        NonNull::new(ptr).map(|ptr| StrongRef { ptr })
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ptr.as_ptr()
    }

    /// Gives up ownership, for an API that steals the reference.
    pub(crate) fn into_raw(self) -> *mut PyObject {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for StrongRef {
    fn drop(&mut self) {
        // SAFETY: a StrongRef exists only once Python is initialized.
        let python = unsafe { Interpreter::assume_started() };
        // Without the GIL (Python finalized by the host, a forked child, a
        // thread that is exiting) the reference is left as it is: the object
        // is gone with its interpreter, or must not be touched from here.
        if let Ok(gil) = python.gil() {
            // SAFETY: we own this reference and hold the GIL.
            unsafe { raw::pim_decref(self.ptr.as_ptr()) };
            drop(gil);
        }
    }
}

/// Python's `sys.getswitchinterval()` in seconds, as start-up read it (0
/// before).
pub(crate) fn switch_interval() -> f64 {
    // SAFETY: reads a double the glue wrote under the GIL at start-up; both
    // callers (in runtime.rs) read it after that start-up handed over, or
    // holding the GIL, so the read does not race the write.
    unsafe { raw::pim_switch_interval() }
}

/// An owned C string from the glue, copied into a `String` (None for NULL).
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for reads.
unsafe fn owned_c_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL, so NUL-terminated and readable, as the caller promised.
    let text = unsafe { CStr::from_ptr(ptr) };
    Some(text.to_string_lossy().into_owned())
}

/// Copies a `py_error` into an owned exception and frees the C strings.
fn take_error(mut raw_err: raw::pim_error) -> PyException {
    // SAFETY: the glue fills each field with NULL or a malloc'ed,
    // NUL-terminated string that stays valid until py_error_free.
    let exception = unsafe {
        PyException {
            type_name: owned_c_string(raw_err.type_name).unwrap_or_default(),
            message: owned_c_string(raw_err.message).unwrap_or_default(),
            traceback: owned_c_string(raw_err.traceback).map(String::into_boxed_str),
        }
    };
    // SAFETY: the strings were malloc'ed by the glue and are freed once here.
    unsafe { raw::pim_error_free(&mut raw_err) };
    exception
}

/// Fetches and clears the exception the last glue call left set.
pub(crate) fn last_error(_gil: &Gil) -> PyException {
    let mut raw_err = raw::pim_error::default();
    // SAFETY: the GIL is held; pim_last_error fills raw_err with owned strings.
    unsafe { raw::pim_last_error(&mut raw_err) };
    take_error(raw_err)
}

/// Starts Python on this thread (its main thread from now on), without its
/// signal handlers or faulthandler, with `program`'s prefix and
/// site-packages and `module_dir` last on `sys.path`, and prepares it
/// ([`prepare`]). Returns with the GIL released.
///
/// # Safety
/// Call once per process, before Python runs, without the GIL.
pub(crate) unsafe fn start_python(program: &CStr, module_dir: &CStr) -> Result<(), PyException> {
    let mut raw_err = raw::pim_error::default();
    // SAFETY: both strings are valid for the call; the caller guarantees the
    // once-per-process, no-GIL contract.
    let status =
        unsafe { raw::pim_start_python(program.as_ptr(), module_dir.as_ptr(), &mut raw_err) };
    match status {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(take_error(raw_err)),
    }
}

/// Imports numpy's C API and puts `module_dir` last on `sys.path`, in a
/// Python that a host program started. Idempotent.
pub(crate) fn prepare(gil: &Gil, module_dir: &CStr) -> Result<(), PyException> {
    // SAFETY: the GIL is held; module_dir is a valid C string for the call.
    match unsafe { raw::pim_prepare(module_dir.as_ptr()) } {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(last_error(gil)),
    }
}

/// `<sys.prefix>/bin/pythonX.Y` of the running Python, for messages.
pub(crate) fn running_python(_gil: &Gil) -> Option<String> {
    // SAFETY: the GIL is held; the glue returns NULL or a malloc'ed string,
    // which is copied and freed once here.
    unsafe {
        let path = raw::pim_running_python();
        let text = owned_c_string(path);
        libc::free(path.cast());
        text
    }
}

/// Puts `dir` first on `sys.path` unless it is already there.
pub(crate) fn add_sys_path(gil: &Gil, dir: &CStr) -> Result<(), PyException> {
    // SAFETY: the GIL is held; dir is a valid C string for the call.
    match unsafe { raw::pim_add_sys_path(dir.as_ptr()) } {
        raw::pim_status::PIM_OK => Ok(()),
        raw::pim_status::PIM_ERR => Err(last_error(gil)),
    }
}

/// Why loading a function failed: the exception, and whether it came from
/// importing the module (rather than from getting the function).
pub(crate) struct LoadError {
    pub(crate) exception: PyException,
    pub(crate) importing: bool,
}

/// Turns a load's result and its `importing` flag into a `Result`.
///
/// # Safety
/// As for [`owned_or_error`].
unsafe fn loaded(gil: &Gil, ptr: *mut PyObject, importing: c_int) -> Result<StrongRef, LoadError> {
    // SAFETY: guaranteed by the caller.
    unsafe { owned_or_error(gil, ptr) }.map_err(|exception| LoadError {
        exception,
        importing: importing != 0,
    })
}

/// `import module; module.func`, checked callable.
pub(crate) fn load_func(gil: &Gil, module: &CStr, func: &CStr) -> Result<StrongRef, LoadError> {
    let mut importing = 0;
    // SAFETY: the GIL is held; the strings are valid for the call; load_func
    // returns a new reference or NULL, and sets `importing`.
    unsafe {
        let func = raw::pim_load_func(module.as_ptr(), func.as_ptr(), &mut importing);
        loaded(gil, func, importing)
    }
}

/// Compiles `source` as module `module` and returns `module.func`.
pub(crate) fn load_source(
    gil: &Gil,
    module: &CStr,
    source: &CStr,
    func: &CStr,
) -> Result<StrongRef, LoadError> {
    let mut importing = 0;
    // SAFETY: the GIL is held; the strings are valid for the call;
    // load_source returns a new reference or NULL, and sets `importing`.
    unsafe {
        let func = raw::pim_load_source(
            module.as_ptr(),
            source.as_ptr(),
            func.as_ptr(),
            &mut importing,
        );
        loaded(gil, func, importing)
    }
}

/// Turns a glue call's new reference (or NULL with an exception set) into a
/// `Result`.
///
/// # Safety
/// `ptr` is a new reference or NULL, returned with `gil` held.
pub(crate) unsafe fn owned_or_error(
    gil: &Gil,
    ptr: *mut PyObject,
) -> Result<StrongRef, PyException> {
    // SAFETY: guaranteed by the caller.
    unsafe { StrongRef::from_owned(ptr) }.ok_or_else(|| last_error(gil))
}

/// `func(*args[..nargs], **dict(zip(kwnames, args[nargs..])))`.
///
/// # Safety
/// Every pointer in `args` is a live object; `kwnames` is NULL or a tuple of
/// `args.len() - nargs` strings.
pub(crate) unsafe fn call(
    gil: &Gil,
    func: &StrongRef,
    args: &[*mut PyObject],
    nargs: usize,
    kwnames: *mut PyObject,
) -> Result<StrongRef, PyException> {
    // SAFETY: the GIL is held, the objects are live (caller), and
    // pim_call_function borrows them for the call only.
    unsafe {
        let result = raw::pim_call_function(func.as_ptr(), args.as_ptr(), nargs, kwnames);
        owned_or_error(gil, result)
    }
}

/// The article's call: `func(arg)`, with one argument.
///
/// # Safety
/// `arg` is a live object.
pub(crate) unsafe fn call_one(
    gil: &Gil,
    func: &StrongRef,
    arg: *mut PyObject,
) -> Result<StrongRef, PyException> {
    // SAFETY: the GIL is held; func and arg are live; pim_call_one returns a
    // new reference, or NULL with an exception set.
    unsafe { owned_or_error(gil, raw::pim_call_one(func.as_ptr(), arg)) }
}

/// numpy's type number for elements of `kind` and `itemsize`, if any.
/// Looked up in the glue once per kind and size (every lend needs one).
pub(crate) fn npy_typenum(kind: u8, itemsize: usize) -> Option<libc::c_int> {
    const KINDS: [u8; 5] = [b'b', b'i', b'u', b'f', b'c'];
    const SIZES: usize = 17; // itemsizes 0..=16
    static TABLE: OnceLock<[[libc::c_int; SIZES]; KINDS.len()]> = OnceLock::new();
    let k = KINDS.iter().position(|&known| known == kind)?;
    if itemsize >= SIZES {
        return None;
    }
    let table = TABLE.get_or_init(|| {
        KINDS.map(|kind| {
            std::array::from_fn(|size| {
                // SAFETY: a pure lookup of numpy's constants; no Python
                // state involved.
                unsafe { raw::pim_npy_typenum(kind as c_char, size as libc::c_int) }
            })
        })
    });
    let typenum = table[k][itemsize];
    (typenum >= 0).then_some(typenum)
}
