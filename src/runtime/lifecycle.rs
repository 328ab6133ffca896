//! What the process does around Python once it runs: a host program that
//! finalizes it, `fork()`, and process exit. Each is watched by a hook
//! installed at start-up, and none of them waits for the GIL without bound.
//!
//! - Finalize: after `Py_FinalizeEx` every object the crate holds belongs
//!   to a dead interpreter. [`check`] sees it (Python's own
//!   `Py_IsInitialized`, and a `Py_AtExit` hook that also catches a later
//!   re-initialization) and every call returns [`Unavailable::Finalized`]
//!   from then on; nothing is released or touched.
//! - Fork: a child forked after start-up may have the GIL, or the import
//!   lock, held by a thread that does not exist in it, so its first call
//!   could wait for ever. A `pthread_atfork` hook marks the child, where
//!   every call returns [`Unavailable::Forked`] (see its docs for why this
//!   and not a re-initialization).
//! - Exit: Python is never finalized by the crate (see
//!   [`crate::runtime`]), so nothing of Python runs at exit except one
//!   thing done here: `sys.stdout` and `sys.stderr` are flushed, so what a
//!   function printed reaches a pipe or a file. The flush waits at most
//!   [`EXIT_FLUSH_WAIT`] for the GIL (another thread may hold it for as
//!   long as its call lasts), then gives up.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;
use std::time::Duration;

use pyo3_ffi::{
    PyGILState_Ensure, PyGILState_GetThisThreadState, PyGILState_Release, Py_AtExit,
    Py_IsInitialized,
};

use crate::error::Unavailable;
use crate::raw;

/// How long process exit waits for the GIL to flush Python's `sys.stdout`
/// and `sys.stderr`: about a second, and only when another thread holds the
/// GIL (when none does, the flush takes the GIL at once).
pub(super) const EXIT_FLUSH_WAIT: Duration = Duration::from_secs(1);

/// How long process exit, holding the GIL once it has flushed, lets the
/// threads that were in C code without it (a multiplication in numpy) go
/// on before the process's libraries are torn down: they stop at their
/// next take of the GIL, and a multiplication takes a few milliseconds
/// (OpenBLAS's exit code frees the buffers it uses). Python's own exit
/// gives them the time its finalization takes. Then, while another thread
/// of the process still runs or is ready to run ([`grace`]), up to
/// [`EXIT_GRACE_MOST`].
const EXIT_GRACE: Duration = Duration::from_millis(20);

/// The most exit waits, holding the GIL, for other threads to stop running
/// ([`grace`]): on a loaded machine a multiplication that takes half a
/// millisecond alone took up to 124 ms, and one still in OpenBLAS when its
/// exit code ran crashed the process.
const EXIT_GRACE_MOST: Duration = Duration::from_millis(250);

/// How often [`grace`] looks at the other threads.
const EXIT_GRACE_STEP: Duration = Duration::from_millis(2);

/// How long exit keeps the GIL (from a thread of its own) for the process
/// to end: an exit handler registered before the crate's, which runs after
/// it, waits this long for the GIL at most.
const EXIT_HOLD: Duration = Duration::from_secs(1);

/// Python may be called.
const LIVE: u8 = 0;
/// The host finalized Python.
const FINALIZED: u8 = 1;
/// This process is a child forked after start-up.
const FORKED: u8 = 2;

/// The process's state, latched: once it leaves [`LIVE`] it never returns.
static STATE: AtomicU8 = AtomicU8::new(LIVE);

/// Fails if the process can no longer call Python, as far as the hooks have
/// seen; for start-up, before Python runs.
pub(super) fn check_latched() -> Result<(), Unavailable> {
    match STATE.load(Ordering::Acquire) {
        LIVE => Ok(()),
        state => Err(unavailable(state)),
    }
}

/// Whether this process is a child forked after start-up: there a lock of
/// the crate's (or the GIL) may have been held at the fork by a thread that
/// does not exist in the child, so nothing may wait for one.
pub(super) fn is_forked_child() -> bool {
    STATE.load(Ordering::Acquire) == FORKED
}

/// In a child forked after start-up, ends the process with status 0,
/// writing `why` (one line) to stderr first; elsewhere returns. For a thread
/// of the child that would otherwise wait for ever for what a thread of
/// the parent's held at the fork, or go back to a caller that is not there.
pub(super) fn end_if_forked_child(why: &'static str) {
    if is_forked_child() {
        // SAFETY: write(2) of a static buffer, then _exit(2): async-signal
        // safe, as a forked child of a threaded process needs; nothing of
        // the parent's (its threads, their locks) is waited for.
        unsafe {
            libc::write(2, why.as_ptr().cast(), why.len());
            libc::_exit(0);
        }
    }
}

/// Fails unless Python runs and this process may call it. On every call's
/// path: one atomic load, `Py_IsInitialized` and whether a finalization
/// has begun (a thread that takes the GIL then is ended by Python, inside
/// the crate's frames: the call is refused instead).
#[inline]
pub(super) fn check() -> Result<(), Unavailable> {
    let state = STATE.load(Ordering::Acquire);
    // SAFETY: Py_IsInitialized and pim_is_finalizing read one field of the
    // runtime each; they may be called at any time, before, during and
    // after finalization, without the GIL.
    let running = unsafe { Py_IsInitialized() != 0 && raw::pim_is_finalizing() == 0 };
    if state == LIVE && running {
        Ok(())
    } else {
        Err(gone(state))
    }
}

/// Python stopped running under us: the host is finalizing it, or has.
/// Latched, since a later `Py_Initialize` makes another interpreter, which
/// the crate's objects do not belong to.
#[cold]
fn gone(state: u8) -> Unavailable {
    if state == LIVE {
        let _ = STATE.compare_exchange(LIVE, FINALIZED, Ordering::AcqRel, Ordering::Acquire);
    }
    unavailable(STATE.load(Ordering::Acquire))
}

fn unavailable(state: u8) -> Unavailable {
    if state == FORKED {
        Unavailable::Forked
    } else {
        Unavailable::Finalized
    }
}

/// Marks a child forked from now on. Once per process, before Python starts
/// (so that a fork during start-up is seen too).
pub(super) fn watch_fork() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only stores an atomic, which is
        // async-signal-safe as the child of a multi-threaded fork requires.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

extern "C" fn after_fork_in_child() {
    STATE.store(FORKED, Ordering::Release);
}

/// Watches for finalization and flushes Python's output at exit. Once per
/// process, once Python runs (whoever started it).
pub(super) fn watch_python() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: Python runs; Py_AtExit only records the function, which
        // Py_FinalizeEx calls once its teardown is done. libc::atexit records
        // a function for exit(3). Neither can fail but for a full table, in
        // which case that hook is simply missing (Py_IsInitialized still
        // shows a finalization; output is not flushed).
        unsafe {
            Py_AtExit(Some(after_finalize));
            libc::atexit(at_process_exit);
        }
    });
}

extern "C" fn after_finalize() {
    latch_finalized();
}

/// From now on every call returns [`Unavailable::Finalized`] (unless this
/// is a forked child, which stays one).
pub(super) fn latch_finalized() {
    let _ = STATE.compare_exchange(LIVE, FINALIZED, Ordering::AcqRel, Ordering::Acquire);
}

/// Does this thread hold the GIL, with the thread state Python knows it by?
///
/// # Safety
/// Python runs.
unsafe fn this_thread_holds_gil() -> bool {
    // SAFETY: both only read this thread's (or, before 3.12, the runtime's)
    // current thread state and PyGILState slot; neither needs the GIL.
    // Before 3.12 the current state is the GIL holder's, whichever thread
    // it is, so the two are equal only on the thread that holds the GIL.
    unsafe {
        let current = raw::pim_current_thread_state();
        !current.is_null() && current == PyGILState_GetThisThreadState()
    }
}

/// exit(3)'s hook: flushes `sys.stdout` and `sys.stderr`, without waiting
/// for the GIL for more than [`EXIT_FLUSH_WAIT`], and keeps the GIL from
/// then on (for [`EXIT_HOLD`] at most), so that Python threads (ones a
/// call started, still looping) stop at their next take of it, as Python's
/// own exit stops them, instead of running on while the process's
/// libraries are torn down (OpenBLAS's exit code frees the buffers a
/// thread's next multiplication uses); those in C code meanwhile get
/// [`EXIT_GRACE`] to finish it.
extern "C" fn at_process_exit() {
    if check().is_err() {
        return;
    }
    // SAFETY: Python runs (checked above).
    if unsafe { this_thread_holds_gil() } {
        // SAFETY: this thread holds the GIL (exit called from inside a
        // call), and keeps it to the end.
        unsafe { raw::pim_flush_stdio() };
        grace();
        return;
    }
    flush_on_helper_thread();
}

/// Flushes on a thread of its own, which then keeps the GIL while the
/// process ends ([`EXIT_HOLD`] at most), so that the exiting thread can stop
/// waiting: a thread blocked on the GIL cannot be interrupted, but it can be
/// left behind when the process ends. A raw pthread, since Rust's own thread machinery may
/// already be torn down for this thread at exit. The helper says it has
/// flushed through a pipe, which the exiting thread polls for
/// [`EXIT_FLUSH_WAIT`].
fn flush_on_helper_thread() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) fills the two descriptors; on failure nothing is
    // flushed (as when no thread can be made).
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    let [read_end, write_end] = fds;
    let mut thread: libc::pthread_t = 0;
    // SAFETY: flush_thread is a valid start routine whose argument is the
    // pipe's write end, passed by value in the pointer.
    let created = unsafe {
        libc::pthread_create(
            &mut thread,
            ptr::null(),
            flush_thread,
            write_end as isize as *mut c_void,
        )
    };
    if created != 0 {
        return;
    }
    // SAFETY: the helper is never joined: it keeps the GIL while the
    // process ends.
    unsafe { libc::pthread_detach(thread) };
    let mut ready = libc::pollfd {
        fd: read_end,
        events: libc::POLLIN,
        revents: 0,
    };
    let wait_ms = EXIT_FLUSH_WAIT.as_millis() as libc::c_int;
    // SAFETY: polls one descriptor of ours; a signal's EINTR just ends the
    // wait early, as a timeout does.
    unsafe { libc::poll(&mut ready, 1, wait_ms) };
}

extern "C" fn flush_thread(write_end: *mut c_void) -> *mut c_void {
    let held = check().is_ok().then(|| {
        // SAFETY: Python runs; this new thread has no thread state, so
        // PyGILState_Ensure makes one (waiting for the GIL); pim_flush_stdio
        // runs with the GIL held.
        unsafe {
            let state = PyGILState_Ensure();
            raw::pim_flush_stdio();
            state
        }
    });
    if held.is_some() {
        grace();
    }
    let done = [1u8];
    // SAFETY: one byte to the pipe the exiting thread polls; its
    // descriptor came from pipe(2) in flush_on_helper_thread.
    unsafe { libc::write(write_end as isize as libc::c_int, done.as_ptr().cast(), 1) };
    if let Some(state) = held {
        // The process ends within this, as a rule. An exit that lasts
        // longer (an exit handler registered before the crate's, which
        // waits for the GIL) gets it then.
        sleep(EXIT_HOLD);
        // SAFETY: the state Ensure gave this thread above, released once.
        unsafe { PyGILState_Release(state) };
    }
    ptr::null_mut()
}

/// Holding the GIL at exit: sleeps [`EXIT_GRACE`], then on while another
/// thread of the process is running or ready to run (its state in `/proc`:
/// still in C code without the GIL, such as a multiplication that a busy
/// machine keeps from its core; a thread waiting for the GIL sleeps), up
/// to [`EXIT_GRACE_MOST`] in all.
fn grace() {
    sleep(EXIT_GRACE);
    let mut waited = EXIT_GRACE;
    while waited < EXIT_GRACE_MOST && another_thread_runs() {
        sleep(EXIT_GRACE_STEP);
        waited += EXIT_GRACE_STEP;
    }
}

/// Whether a thread of this process other than this one is running or
/// ready to run (state `R` in `/proc/self/task/<tid>/stat`). False where
/// that cannot be read.
fn another_thread_runs() -> bool {
    // SAFETY: gettid(2) takes nothing and cannot fail.
    let me = unsafe { libc::gettid() }.to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks
        .flatten()
        .any(|task| task.file_name() != me.as_str() && super::task_state::is_ready(&task.path()))
}

/// Sleeps `how_long`, holding the GIL at exit. A raw nanosleep: Rust's
/// own thread machinery may be torn down for this thread at exit.
fn sleep(how_long: Duration) {
    let grace = libc::timespec {
        tv_sec: how_long.as_secs() as libc::time_t,
        tv_nsec: how_long.subsec_nanos() as libc::c_long,
    };
    // SAFETY: nanosleep(2) of a timespec of ours; the remainder is not
    // asked for.
    unsafe { libc::nanosleep(&grace, ptr::null_mut()) };
}

/// Is this the process's main thread (whose exit is the process's)?
pub(super) fn on_main_thread() -> bool {
    // SAFETY: both are plain system calls without arguments.
    unsafe { libc::gettid() == libc::getpid() }
}
