//! The process's one Python: whether the crate may call it, with which
//! thread state, whose turn it is, and the GIL. Everything above this layer
//! reaches Python through an [`Interpreter`] and a [`Gil`].
//!
//! Python is started once, on first use (or by a host program before it),
//! and never shut down by the crate (see [`python`] for why `Py_Finalize`
//! is never called).
//!
//! - [`build_info`]: what build.rs baked in.
//! - [`libpython`]: the libpython mapped is the one built against.
//! - [`lifecycle`]: may Python be touched from here at all (finalized by a
//!   host, a forked child, a thread exiting).
//! - [`thread_state`]: the thread state each thread calls with.
//! - [`scheduler`]: whose turn it is to take the GIL.
//! - [`gil`]: the GIL protocol.
//! - [`deadline`]: the watchdog that stops a call past its deadline.
//! - [`host_exit`]: in a Python a host started, the crate's calls drained
//!   before the host finalizes it.
//! - [`glue`]: the thin wrappers over the C glue in [`crate::raw`].
//! - [`thread_stack`]: the stack of the crate's threads that run Python.

use std::ffi::{CString, OsStr};
use std::path::Path;
use std::sync::{mpsc, OnceLock};
use std::thread;

use pyo3_ffi::Py_IsInitialized;

use crate::error::{Error, PyException};

mod build_info;
mod deadline;
mod gil;
pub(crate) mod glue;
mod host_exit;
mod libpython;
mod lifecycle;
pub mod scheduler;
pub(crate) mod task_state;
mod thread_stack;
mod thread_state;

use build_info::BUILD_NUMPY_SITE;
pub use build_info::{BUILD_NUMPY, BUILD_PYTHON, BUILD_PYTHON_VERSION, MODULE_DIR, PYTHON_ENV};
pub(crate) use deadline::{take_stopper, with_stopper, Deadline, Stopper, Watch};
pub(crate) use gil::{Gil, Interpreter, ScopeGil};
pub(crate) use gil::{PlainRef, SharedRef};
pub(crate) use glue::StrongRef;
pub(crate) use scheduler::CallStats;
pub(crate) use thread_stack::python_thread;

/// Whether Python may be called from this process now, taking nothing (no
/// GIL, no turn): for work handed to another thread ([`crate::serve`]).
pub(crate) fn check_callable() -> Result<(), crate::error::Unavailable> {
    lifecycle::check()
}

/// Whether Python may still be called, as far as the hooks have seen (one
/// load): an async call's future, polled after a fork or a finalization,
/// resolves with why not.
pub(crate) fn check_latched() -> Result<(), crate::error::Unavailable> {
    lifecycle::check_latched()
}

/// Whether this is a child forked after start-up ([`lifecycle`]).
pub(crate) fn is_forked_child() -> bool {
    lifecycle::is_forked_child()
}

/// In a child forked after start-up, ends the process, saying `why` on
/// stderr ([`lifecycle`]).
pub(crate) fn end_if_forked_child(why: &'static str) {
    lifecycle::end_if_forked_child(why);
}

/// Marks children forked from now on, as start-up does, without starting
/// Python: for unit tests of what a forked child does.
#[cfg(test)]
pub(crate) fn watch_fork() {
    lifecycle::watch_fork();
}

/// Forks while another thread holds what `hold` takes (a lock, held across
/// the fork as a thread of the parent's may hold it): `hold` gets the
/// callback to call while it holds it. Runs `child` in the child, which
/// ends with the code `child` returns; that code, or `None` if the child
/// ran past `limit` (then it is killed). For unit tests of what a forked
/// child does.
#[cfg(test)]
pub(crate) fn fork_while_held(
    hold: impl FnOnce(&mut dyn FnMut()) + Send + 'static,
    child: impl FnOnce() -> i32,
    limit: std::time::Duration,
) -> Option<i32> {
    let (locked, is_locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        hold(&mut || {
            locked.send(()).unwrap();
            let _ = released.recv();
        });
    });
    is_locked.recv().unwrap();
    // SAFETY: fork(2); the child runs `child` (the test keeps it to what a
    // forked child of a threaded process may do) and ends with _exit(2),
    // without the parent's exit hooks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child();
        // SAFETY: as above.
        unsafe { libc::_exit(code) };
    }
    release.send(()).unwrap();
    holder.join().unwrap();
    wait_for_child(pid, limit)
}

/// The exit status of the forked child `pid`, or `None` if it ran past
/// `limit` (then it is killed).
#[cfg(test)]
fn wait_for_child(pid: libc::pid_t, limit: std::time::Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waits for the caller's own child, without blocking.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return Some(libc::WEXITSTATUS(status)).filter(|_| libc::WIFEXITED(status));
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kills and reaps the caller's own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Does this thread hold the GIL right now (a held-GIL scope, a call, a
/// Python thread)? Python must have started.
pub(crate) fn holds_gil() -> bool {
    // SAFETY: PyGILState_Check may be called on any thread at any time once
    // Python runs (the caller's promise); it only reads this thread's state.
    unsafe { pyo3_ffi::PyGILState_Check() != 0 }
}

/// Who started Python: the crate, or a host program (PyO3, a C host) before
/// the crate's first call.
#[derive(Clone, Copy)]
enum Starter {
    Crate,
    Host,
}

/// Started once, on first use; an error is kept, and returned by every later
/// call (Python starts only once per process). Its initializer never waits
/// for the GIL: when the crate starts Python nobody else can hold it, and
/// when a host did, the crate's part is done in [`prepare_host_python`],
/// outside this lock.
static STARTED: OnceLock<Result<Starter, Error>> = OnceLock::new();

/// The crate's part of a Python a host started (numpy's C API, `sys.path`),
/// done once by whichever call gets the GIL first.
static HOST_PYTHON_READY: OnceLock<Result<(), Error>> = OnceLock::new();

/// Starts Python and numpy on first call; later calls return the first
/// result. Works whether the crate or a host program started Python, with
/// the GIL held by any thread or by none.
///
/// Python is never finalized by the crate (`Py_Finalize` is never called),
/// for three reasons: numpy's C extension cannot be initialized a second
/// time in one process, so Python could not be started again; objects the
/// host still holds (an `Outliers` in a static, another thread mid-call)
/// would point into a dead interpreter; and finalizing while another thread
/// is inside a call hangs or crashes. The operating system reclaims the
/// interpreter at exit; what that leaves undone is listed in
/// [`crate::runtime::lifecycle`]. A host that finalizes Python itself gets
/// [`Unavailable::Finalized`](crate::Unavailable::Finalized) from every call
/// after that.
pub(crate) fn python() -> Result<Interpreter, Error> {
    lifecycle::check_latched()?;
    let starter = STARTED.get_or_init(start).clone()?;
    // SAFETY: STARTED holds a starter only once Python runs.
    let python = unsafe { Interpreter::assume_started() };
    match starter {
        Starter::Crate => Ok(python),
        Starter::Host => match HOST_PYTHON_READY.get() {
            Some(ready) => ready.clone().map(|()| python),
            None => prepare_host_python(python),
        },
    }
}

/// The interpreter whose prefix and site-packages Python takes: the one in
/// [`PYTHON_ENV`] if set, else [`BUILD_PYTHON`]. For messages, too.
pub(crate) fn interpreter() -> String {
    match std::env::var(PYTHON_ENV) {
        Ok(chosen) if !chosen.is_empty() => chosen,
        _ => BUILD_PYTHON.to_owned(),
    }
}

fn start() -> Result<Starter, Error> {
    lifecycle::watch_fork();
    let python = interpreter();
    // Never start Python on another installation's libpython, nor run the
    // glue on a Python of another version than it was compiled for (a host's
    // included: for it, the version is all that is checked).
    libpython::check(&python)?;
    // SAFETY: Py_IsInitialized may be called before Python runs.
    if unsafe { Py_IsInitialized() } != 0 {
        lifecycle::watch_python();
        // Before any GIL is taken, so that the host's exit sees them all.
        host_exit::count_guards();
        return Ok(Starter::Host);
    }
    let program = CString::new(python.as_str()).map_err(|_| Error::InvalidName(python.clone()))?;
    let module_dir = module_dir()?;
    let started = if lifecycle::on_main_thread() {
        // SAFETY: STARTED runs this once per process; Python does not run,
        // so nobody holds the GIL.
        let started = unsafe { glue::start_python(&program, &module_dir) };
        // SAFETY: Py_IsInitialized may be called at any time.
        if unsafe { Py_IsInitialized() } != 0 {
            thread_state::started_python_here();
        }
        started
    } else {
        start_on_own_thread(program, module_dir)
    };
    // SAFETY: as above.
    if unsafe { Py_IsInitialized() } != 0 {
        lifecycle::watch_python();
    }
    if started.is_ok() {
        scheduler::default_switch_interval(glue::switch_interval());
    }
    started.map(|()| Starter::Crate).map_err(|cause| {
        let pythonhome = std::env::var_os("PYTHONHOME");
        Error::Init {
            hint: startup_hint(&python, &cause, pythonhome.as_deref(), false),
            python,
            cause,
        }
    })
}

fn module_dir() -> Result<CString, Error> {
    CString::new(MODULE_DIR).map_err(|_| Error::InvalidName(MODULE_DIR.into()))
}

/// Starts Python on a thread of its own that never exits, so that Python's
/// main thread (`threading.main_thread()`, the thread signal handlers run
/// on) is alive for the life of the process, not the first caller, which
/// may be a worker that ends. The process's main thread starts it itself.
fn start_on_own_thread(program: CString, module_dir: CString) -> Result<(), PyException> {
    let (started_tx, started_rx) = mpsc::channel();
    let spawned = thread_stack::python_thread("pim-python-main").spawn(move || {
        // SAFETY: STARTED runs this once per process, and waits for it;
        // Python does not run, so nobody holds the GIL.
        let started = unsafe { glue::start_python(&program, &module_dir) };
        let _ = started_tx.send(started);
        // SAFETY: as in `start`.
        if unsafe { Py_IsInitialized() } != 0 {
            loop {
                thread::park(); // Python's main thread: it must not exit
            }
        }
    });
    let failed = PyException::status;
    match spawned {
        Ok(_) => started_rx
            .recv()
            .unwrap_or_else(|_| Err(failed("the thread starting Python ended early".into()))),
        Err(e) => Err(failed(format!("could not start a thread for Python: {e}"))),
    }
}

/// The crate's part of a Python a host program started: waits for the GIL
/// (holding no lock, so a host thread that holds the GIL and calls the crate
/// goes on meanwhile), then prepares Python unless another call did.
fn prepare_host_python(python: Interpreter) -> Result<Interpreter, Error> {
    let module_dir = module_dir()?;
    // The host's exit drains the crate's calls from the first GIL on, this
    // one's preparation (numpy's import, which gives the GIL up at times)
    // included: registered before this thread waits for the GIL, unless it
    // holds it already.
    if !holds_gil() {
        host_exit::watch_before_gil(glue::register_at_exit_aside)?;
    }
    let gil = python.gil()?;
    host_exit::watch(|hook| glue::register_at_exit(&gil, hook));
    let ready = match HOST_PYTHON_READY.get() {
        Some(ready) => ready.clone(),
        None => glue::prepare(&gil, &module_dir).map_err(|cause| {
            let python = glue::running_python(&gil)
                .unwrap_or_else(|| "the Python the host program started".to_owned());
            Error::Init {
                hint: format!(
                    "{}; the host program started Python itself, so the crate uses this \
                     interpreter and the sys.path the host gave it",
                    startup_hint(&python, &cause, None, true)
                ),
                python,
                cause,
            }
        }),
    };
    // Read holding the GIL: another thread's prepare writes it under the GIL.
    if ready.is_ok() {
        scheduler::default_switch_interval(glue::switch_interval());
    }
    drop(gil);
    let ready = HOST_PYTHON_READY.get_or_init(|| ready).clone();
    ready.map(|()| python)
}

/// What to do about a failed start-up: each known cause with its fix.
/// `host_started`: Python was started by the host program, not from this
/// repository's set-up.
fn startup_hint(
    python: &str,
    cause: &PyException,
    pythonhome: Option<&OsStr>,
    host_started: bool,
) -> String {
    let message = cause.message.as_str();
    let mut install = format!("`{python} -m pip install 'numpy>=1.26'`");
    if host_started {
        // The host's sys.path decides; add_sys_path cannot help, since the
        // crate imports numpy before it adds anything.
        install.push_str(&format!(
            ", or put {BUILD_NUMPY_SITE} (where the numpy py-in-mem was built against is \
             installed) on the host's sys.path (PYTHONPATH, or the host's own code) before \
             the crate's first call"
        ));
    } else {
        // build.rs sets PY_IN_MEM_IN_CHECKOUT when built in this repository's
        // checkout, the one place where `make setup` exists.
        install.push_str(if option_env!("PY_IN_MEM_IN_CHECKOUT").is_some() {
            " (in this repository: `make setup`)"
        } else {
            ", or build against a Python that has numpy (PYO3_PYTHON; py-in-mem's \
             docs/deploying.md, \"Your own binary\")"
        });
    }
    if message.contains("C-API version") || message.contains("compiled against API version") {
        // import_array (numpy 2 headers, then 1.26 headers' wording): the
        // running numpy's C API is older than the glue's NPY_TARGET_VERSION
        // (numpy 1.25's C API, see build.rs).
        format!(
            "the numpy imported at run time is older than the crate needs (its C API is \
             older than numpy 1.25's; the crate was compiled against numpy {BUILD_NUMPY}): \
             upgrade it with `{python} -m pip install --upgrade 'numpy>=1.26'`, and check \
             that PYTHONPATH does not put an older numpy first"
        )
    } else if message.contains("compiled using NumPy 1.x")
        || message.contains("compiled against ABI version")
    {
        // numpy 1.x headers, numpy 2 at run time: numpy 2 refuses with an
        // ImportError before import_array's own ABI check could.
        format!(
            "the crate was compiled against numpy {BUILD_NUMPY}, whose binary interface \
             differs from the numpy imported at run time: rebuild the crate against the \
             numpy you run (`cargo clean -p py-in-mem`, then build), or install a numpy of \
             the same major version as {BUILD_NUMPY}"
        )
    } else if cause.type_name == "ModuleNotFoundError" && message.contains("'numpy") {
        format!(
            "numpy is not installed for the Python interpreter {python}: install it with {install}"
        )
    } else if cause.type_name.is_empty() {
        // A PyStatus from Py_InitializeFromConfig: Python itself did not start.
        match pythonhome {
            Some(home) => format!(
                "PYTHONHOME is set to {home:?}, where this Python's standard library was not \
                 found: unset PYTHONHOME (the crate finds its prefix from {python}) or set it \
                 to the prefix of {python}"
            ),
            None => format!(
                "Python's standard library was not found from {python}: check that it runs \
                 (`{python} -c 'import encodings'`), or set {PYTHON_ENV} to a working \
                 interpreter of the version the crate was built with"
            ),
        }
    } else if message.contains("numpy") || cause.type_name.contains("ImportError") {
        format!("numpy failed to import in {python}: reinstall it with {install}")
    } else {
        format!("check that {python} runs, and PYTHONHOME and PYTHONPATH if set")
    }
}

/// Puts `dir` first on Python's `sys.path`, starting Python if needed, so
/// modules in it can be loaded with [`crate::Outliers::new`].
///
/// Idempotent: a directory already on the path is left where it is.
///
/// ```
/// let dir = std::env::temp_dir().join("py_in_mem_doc_add_sys_path");
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("doc_mod.py"), "def detect(data):\n    return (data > 1).nonzero()[0]\n").unwrap();
/// py_in_mem::add_sys_path(&dir).unwrap();
/// let found = py_in_mem::Outliers::new("doc_mod", "detect").unwrap();
/// assert_eq!(found.detect(&[0.5, 3.0]).unwrap(), vec![1]);
/// ```
pub fn add_sys_path(dir: &Path) -> Result<(), Error> {
    let python = python()?;
    let text = dir
        .to_str()
        .ok_or_else(|| Error::InvalidName(dir.display().to_string()))?;
    let dir = CString::new(text).map_err(|_| Error::InvalidName(text.to_owned()))?;
    let gil = python.gil()?;
    glue::add_sys_path(&gil, &dir).map_err(Error::Python)
}
