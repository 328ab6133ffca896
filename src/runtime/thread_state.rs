//! The Python thread states of the threads that call the crate.
//!
//! To take the GIL a thread needs a Python thread state. On a thread Python
//! has never seen, PyGILState_Ensure makes one and the matching Release
//! destroys it: about 10 µs a call (with its frame-stack chunk mapped and
//! unmapped again). So the first call on such a thread makes a state that
//! the crate keeps while the thread lives; every later Ensure/Release on it
//! is a plain GIL take and give.
//!
//! The crate keeps only the states it made. A thread that already has one
//! (a thread Python created with `threading`, a ctypes callback's, a host's
//! inside `allow_threads`/`detach`, the thread that started Python) uses it
//! for the call and keeps nothing: its owner deletes it when it sees fit,
//! and the crate never touches it again.
//!
//! A kept state is given back when its thread exits, without waiting for the
//! GIL on the exiting thread (a host holding the GIL may be joining it): a
//! thread-exit destructor (a `pthread_key_create` destructor, which runs
//! after every Rust thread-local's destructor, so those may still call)
//! hands the state to the reaper, a thread of the crate's that waits for the
//! GIL and deletes it. The reaper has no thread state of its own: Python
//! 3.12 and later unbind a deleted state from the *deleting* thread's
//! PyGILState slot, which would break a thread that has one (checked on
//! 3.9 to 3.13).

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

use pyo3_ffi::{
    PyEval_RestoreThread, PyEval_SaveThread, PyGILState_Ensure, PyGILState_GetThisThreadState,
    PyGILState_Release, PyGILState_STATE, PyThreadState,
};

use super::{host_exit, lifecycle};
use crate::error::Unavailable;
use crate::raw;

/// What the crate knows of this thread's Python thread state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not known yet, or owned by Python or a host: looked at on each call.
    Unknown,
    /// Made and kept by the crate until the thread exits (or for good: the
    /// main thread state, on the thread that started Python).
    Kept,
    /// Given back (the thread is exiting), or this is the reaper thread:
    /// the crate calls nothing here.
    Exited,
}

thread_local! {
    // `const` and without a destructor: readable until the thread is gone,
    // thread-exit destructors included.
    static THIS_THREAD: Cell<Status> = const { Cell::new(Status::Unknown) };
    /// The state kept for this thread while its status is `Kept`; null
    /// otherwise.
    static KEPT: Cell<*mut PyThreadState> = const { Cell::new(std::ptr::null_mut()) };
}

/// The thread state the crate keeps for this thread, if it keeps one: a
/// call takes the GIL with it directly (what PyGILState_Ensure does after
/// looking it up, without the lookup and the count).
#[inline]
pub(super) fn kept() -> Option<*mut PyThreadState> {
    let tstate = KEPT.get();
    (!tstate.is_null()).then_some(tstate)
}

/// Fails once this thread's exit has begun (its state given back): before
/// anything else of a call's, the scheduler's turn included.
#[inline]
pub(super) fn check_not_exiting() -> Result<(), Unavailable> {
    match THIS_THREAD.get() {
        Status::Exited => Err(Unavailable::ThreadExiting),
        Status::Unknown | Status::Kept => Ok(()),
    }
}

/// Makes sure this thread has a Python thread state that PyGILState_Ensure
/// will use; on a thread Python has never seen, makes one and keeps it. Call
/// only while Python runs, without the GIL held through a crate guard.
#[inline]
pub(super) fn enter() -> Result<(), Unavailable> {
    match THIS_THREAD.get() {
        Status::Kept => Ok(()),
        Status::Unknown => {
            keep_if_new();
            Ok(())
        }
        Status::Exited => Err(Unavailable::ThreadExiting),
    }
}

/// This thread started Python: its thread state is the interpreter's main
/// one, which the crate made and keeps for good (it is never deleted, and
/// its thread is the process's main thread, whose end is the process's).
/// Call only once Python runs.
pub(super) fn started_python_here() {
    THIS_THREAD.set(Status::Kept);
    // SAFETY: Python runs; this reads this thread's PyGILState slot only.
    KEPT.set(unsafe { PyGILState_GetThisThreadState() });
}

/// On a thread without a Python thread state: makes one and keeps it.
#[cold]
fn keep_if_new() {
    // SAFETY: Python runs (the caller's promise); this reads this thread's
    // PyGILState slot only.
    if !unsafe { PyGILState_GetThisThreadState() }.is_null() {
        return; // Python's or a host's: used per call, never kept
    }
    let Some(key) = exit_key() else {
        return; // without a thread-exit hook a kept state would leak
    };
    if !reaper_started() {
        return;
    }
    // SAFETY: Python runs and this thread has no thread state, so Ensure
    // makes one and takes the GIL (waiting for it, with no lock held);
    // SaveThread gives the GIL back and leaves the state, with the Ensure
    // count of 1 that keeps PyGILState_Release from deleting it, to this
    // thread.
    let tstate = unsafe {
        PyGILState_Ensure();
        PyEval_SaveThread()
    };
    // SAFETY: `key` is a live key; the value is only read back by the
    // thread-exit destructor.
    if unsafe { libc::pthread_setspecific(key, tstate.cast()) } == 0 {
        THIS_THREAD.set(Status::Kept);
        KEPT.set(tstate);
    } else {
        // Out of memory for the key's slot: without the hook the state would
        // leak, so it goes now, as Release deletes a state Ensure made;
        // Ensure then makes a fresh one per call on this thread.
        // SAFETY: tstate is this thread's, saved above, with the count of 1.
        unsafe {
            PyEval_RestoreThread(tstate);
            PyGILState_Release(PyGILState_STATE::PyGILState_UNLOCKED);
        }
    }
}

/// The key whose destructor gives a kept state back at thread exit.
fn exit_key() -> Option<libc::pthread_key_t> {
    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: creates a key with a destructor that is safe to run on any
        // exiting thread; the key is never deleted.
        (unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } == 0).then_some(key)
    })
}

/// Runs as a thread exits, after its Rust thread-locals' destructors, with
/// the thread state kept for it.
unsafe extern "C" fn on_thread_exit(tstate: *mut c_void) {
    THIS_THREAD.set(Status::Exited);
    KEPT.set(std::ptr::null_mut());
    // Once Python is finalized the state was freed with the interpreter; in
    // a forked child it belongs to the parent: either way, it is left alone.
    if lifecycle::check().is_ok() {
        reaper_hand_over(tstate.cast());
    }
}

/// A dead thread's state, waiting for the reaper.
struct DeadState(*mut PyThreadState);

// SAFETY: the state's own thread has exited; only the reaper uses it now.
unsafe impl Send for DeadState {}

static DEAD: Mutex<Vec<DeadState>> = Mutex::new(Vec::new());
static DEAD_ADDED: Condvar = Condvar::new();

fn reaper_hand_over(tstate: *mut PyThreadState) {
    let mut dead = DEAD.lock().unwrap_or_else(PoisonError::into_inner);
    dead.push(DeadState(tstate));
    DEAD_ADDED.notify_one();
}

/// Starts the reaper thread once; false if it could not be started.
fn reaper_started() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        super::thread_stack::python_thread("pim-reaper")
            .spawn(reap)
            .is_ok()
    })
}

/// The reaper: deletes dead threads' states as they come, for ever.
fn reap() {
    // Deleting a state may run Python code (a __del__ of something it
    // held); a call back into the crate from here would need a thread state
    // of this thread's own, which it must never have.
    THIS_THREAD.set(Status::Exited);
    loop {
        let dead = {
            let mut dead = DEAD.lock().unwrap_or_else(PoisonError::into_inner);
            while dead.is_empty() {
                dead = DEAD_ADDED
                    .wait(dead)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::take(&mut *dead)
        };
        // The lock is released: the GIL is waited for holding nothing.
        for DeadState(tstate) in dead {
            // Counted for a host's exit, as every take of the GIL: its drain
            // waits for this one, or (latched finalized) it is not made.
            // Uncounted, a take that met the finalization ended this thread
            // inside Rust's frames: an abort (`make matrix`, Python 3.10).
            let Ok(counted) = host_exit::enter(false) else {
                continue; // the state goes with the interpreter
            };
            if lifecycle::check().is_ok() {
                // SAFETY: Python runs; tstate was made by PyGILState_Ensure
                // on a thread that has exited, with the GIL released, and
                // nothing else has it; this thread has no thread state.
                unsafe { raw::pim_thread_state_delete(tstate) };
            }
            host_exit::gave(counted);
        }
    }
}
