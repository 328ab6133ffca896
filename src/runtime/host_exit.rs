//! A host's exit: the crate's calls drained before Python finalizes.
//!
//! # Rationale
//!
//! Before Python 3.14, a thread that takes the GIL once `Py_FinalizeEx` has
//! begun is ended on the spot with `pthread_exit`, which unwinds through
//! the Rust frames below it: undefined behaviour, in practice an abort
//! ("FATAL: exception not rethrown") or a fatal error of Python's (a
//! thread state released that is not current). A call in progress when a
//! host ends Python takes the GIL back often: whenever its Python code
//! hands the GIL to another thread, and when it returns from C code. So in
//! a Python a host started (the `python` executable running an extension
//! built on the crate, or a program that calls `Py_FinalizeEx`), the crate
//! registers a callback with Python's `atexit`, which `Py_FinalizeEx` runs
//! after joining the host's non-daemon threads and before finalization
//! begins. It:
//!
//! 1. refuses calls from then on ([`Unavailable::Finalized`]): queued async
//!    calls resolve to that error, and a held-GIL scope cannot begin;
//! 2. waits, with the GIL given up so that the calls can go on, until no
//!    thread holds the GIL through the crate, for up to [`DRAIN_WAIT`];
//! 3. latches the process finalized, so that nothing of the crate's (its
//!    serving threads, `pim-release`, the deadline watchdog) takes the GIL
//!    again.
//!
//! A Python the crate started itself is never finalized, and needs none of
//! this: the count below is kept only in a host's Python.
//!
//! # Limitations
//!
//! A call that does not end within [`DRAIN_WAIT`] (a wait in C code, an
//! endless loop without a deadline) is left to the finalization: its thread
//! is ended when it takes the GIL back, which may abort the process, as
//! before this drain. Give such calls a deadline
//! ([`Call::timeout`](crate::Call::timeout)): a deadline still stops Python
//! code during the drain.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::lifecycle;
use crate::error::Unavailable;

/// The longest the host's exit waits for the crate's calls in progress.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// The host started Python, and the exit callback is registered: the
/// crate's GILs are counted.
static COUNTING: AtomicBool = AtomicBool::new(false);

/// The exit callback began: calls are refused.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// GILs the crate's guards hold, on every thread (a held-GIL scope that
/// gave its GIL up for a while counts on).
static HELD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's part of [`HELD`].
    static HELD_HERE: Cell<usize> = const { Cell::new(0) };
}

/// Registers the exit callback with `register` (given [`at_host_exit`]),
/// once: in a Python the host started, with the GIL held. Without it (the
/// callback could not be registered), the crate goes on as before.
pub(super) fn watch<E>(register: impl FnOnce(extern "C" fn()) -> Result<(), E>) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if register(at_host_exit).is_ok() {
            COUNTING.store(true, Ordering::Release);
        }
    });
}

/// Refuses a call once the host's exit has begun.
#[inline]
pub(super) fn check_call() -> Result<(), Unavailable> {
    if DRAINING.load(Ordering::Acquire) {
        Err(Unavailable::Finalized)
    } else {
        Ok(())
    }
}

/// A guard took the GIL (see [`HELD`]).
#[inline]
pub(super) fn took() {
    if COUNTING.load(Ordering::Relaxed) {
        HELD.fetch_add(1, Ordering::AcqRel);
        HELD_HERE.with(|n| n.set(n.get() + 1));
    }
}

/// A guard gave the GIL back: the pair of [`took`] (counted only if that
/// was, as `counted` says).
#[inline]
pub(super) fn gave(counted: bool) {
    if counted {
        HELD.fetch_sub(1, Ordering::AcqRel);
        HELD_HERE.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Whether [`took`] counts now.
#[inline]
pub(super) fn counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

/// Python's `atexit` runs this on the finalizing thread, holding the GIL.
extern "C" fn at_host_exit() {
    DRAINING.store(true, Ordering::Release);
    // This thread's own guards (a host ending Python inside a crate call)
    // are not waited for.
    let own = HELD_HERE.with(Cell::get);
    let until = Instant::now() + DRAIN_WAIT;
    // SAFETY: this thread holds the GIL (atexit's callbacks run with it);
    // SaveThread gives it up with this thread's state, which RestoreThread
    // takes back below, on this thread.
    let state = unsafe { pyo3_ffi::PyEval_SaveThread() };
    while HELD.load(Ordering::Acquire) > own && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: as above.
    unsafe { pyo3_ffi::PyEval_RestoreThread(state) };
    lifecycle::latch_finalized();
}
