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
//! The callback is registered before the crate's first GIL: by the first
//! caller if it holds the GIL already, else by a thread of the glue's own
//! (`pim-at-exit`, pure C) that the first callers wait for, holding no GIL
//! and no lock. Had they waited for the GIL themselves, and the host's
//! exit begun meanwhile, Python would have ended them inside the crate's
//! frames as they took it; it ends that thread instead, and they see the
//! finalization and are refused ([`Unavailable::Finalized`]).
//!
//! # Limitations
//!
//! An exit already running the `atexit` callbacks when the callback is
//! registered does not run it (Python runs only the callbacks registered
//! before it began), and a first call made then is not drained, as before.
//!
//! On Python 3.9, a host whose finalization begins while the registering
//! thread waits for the GIL may hang in that finalization: the thread,
//! having asked the GIL's holder to hand it over, is ended by Python,
//! which then waits for ever for it to take the GIL (CPython gh-96387,
//! fixed in 3.10 and 3.11). Any thread waiting for the GIL then does the
//! same, the first caller itself before this registration.
//!
//! A call that does not end within [`DRAIN_WAIT`] (a wait in C code, an
//! endless loop without a deadline) is left to the finalization: its thread
//! is ended when it takes the GIL back, which may abort the process, as
//! before this drain. Give such calls a deadline
//! ([`Call::timeout`](crate::Call::timeout)): a deadline still stops Python
//! code during the drain.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::lifecycle;
use crate::error::Unavailable;
use crate::raw;

/// The longest the host's exit waits for the crate's calls in progress.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// The host started Python: the crate's GILs are counted.
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

/// Counts the crate's GILs from now on: in a Python the host started, from
/// the first contact, before any GIL is taken.
pub(super) fn count_guards() {
    COUNTING.store(true, Ordering::SeqCst);
}

/// The exit callback is registered (by either way below).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Where the glue's thread stands with the registration.
#[derive(Clone, Copy, PartialEq)]
enum Aside {
    NotBegun,
    /// The thread waits for the GIL, or registers.
    Pending,
    /// Registered, failed, or the thread could not start: calls go on.
    Over,
}

static ASIDE: Mutex<Aside> = Mutex::new(Aside::NotBegun);
static ASIDE_OVER: Condvar = Condvar::new();

fn aside() -> MutexGuard<'static, Aside> {
    ASIDE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Has the exit callback registered by the glue's thread, which `start`
/// starts (given [`at_host_exit`] and the function it calls once done;
/// false if it could not), and waits for it (not for the GIL): in a Python
/// the host started, before a first GIL that the calling thread does not
/// hold already. Refused if the host's finalization begins meanwhile (the
/// glue's thread is then ended by Python, or never gets the GIL), or in a
/// forked child. If the thread cannot start, [`watch`] registers once the
/// caller holds the GIL.
pub(super) fn watch_before_gil(
    start: impl FnOnce(extern "C" fn(), extern "C" fn(raw::pim_status)) -> bool,
) -> Result<(), Unavailable> {
    if REGISTERED.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut state = aside();
    if *state == Aside::NotBegun {
        *state = if start(at_host_exit, aside_done) {
            Aside::Pending
        } else {
            Aside::Over
        };
    }
    while *state == Aside::Pending {
        lifecycle::check()?;
        // Waiting releases the lock; the glue's thread takes it to say it
        // is done, and never waits for the GIL while holding it.
        state = ASIDE_OVER
            .wait_timeout(state, Duration::from_millis(1))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    Ok(())
}

/// The glue's thread registered (`PIM_OK`) or failed; it holds no GIL.
extern "C" fn aside_done(status: raw::pim_status) {
    if status == raw::pim_status::PIM_OK {
        REGISTERED.store(true, Ordering::Release);
    }
    *aside() = Aside::Over;
    ASIDE_OVER.notify_all();
}

/// Registers the exit callback with `register` (given [`at_host_exit`]),
/// unless it is: in a Python the host started, with the GIL held (by a
/// first caller that held it already, or when the glue's thread could not
/// register). Without it (the callback could not be registered), the crate
/// goes on as before: its GILs counted for nothing.
///
/// The first caller here claims the registration and the others go on
/// without waiting: a caller holds the GIL, and the registration runs
/// Python code, which may hand the GIL to another caller; had that one
/// waited (a `Once`), neither could go on. The glue's thread may register
/// too meanwhile: the callback then runs twice, the second time doing
/// nothing.
pub(super) fn watch<E>(register: impl FnOnce(extern "C" fn()) -> Result<(), E>) {
    static CLAIMED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.load(Ordering::Acquire)
        && !CLAIMED.swap(true, Ordering::AcqRel)
        && register(at_host_exit).is_ok()
    {
        REGISTERED.store(true, Ordering::Release);
    }
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

/// Counts a GIL about to be taken (true), or refuses it: for a call
/// (`call`) once the drain has begun, and for anything once the process is
/// latched finalized. Counted before the GIL is taken, and checked after
/// counting, so that the drain, which flags then waits for the count (and
/// latches, then waits again), either sees this GIL or is seen by it: no
/// take of the GIL slips past the drain into the finalization. False when
/// nothing is counted (a Python the crate started).
#[inline]
pub(super) fn enter(call: bool) -> Result<bool, Unavailable> {
    if !COUNTING.load(Ordering::Relaxed) {
        return Ok(false);
    }
    HELD.fetch_add(1, Ordering::SeqCst);
    let refused = if call && DRAINING.load(Ordering::SeqCst) {
        Err(Unavailable::Finalized)
    } else {
        lifecycle::check_latched()
    };
    match refused {
        Ok(()) => {
            HELD_HERE.with(|n| n.set(n.get() + 1));
            Ok(true)
        }
        Err(why) => {
            HELD.fetch_sub(1, Ordering::SeqCst);
            Err(why)
        }
    }
}

/// A guard gave the GIL back: the pair of an [`enter`] that counted (as
/// `counted` says).
#[inline]
pub(super) fn gave(counted: bool) {
    if counted {
        HELD.fetch_sub(1, Ordering::SeqCst);
        HELD_HERE.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Python's `atexit` runs this on the finalizing thread, holding the GIL.
extern "C" fn at_host_exit() {
    // A child forked after start-up calls nothing of the crate's, and the
    // calls its parent had in progress are not in it: nothing to wait for.
    if lifecycle::is_forked_child() {
        return;
    }
    // Registered twice (see `watch`): the first run drained.
    if DRAINING.swap(true, Ordering::SeqCst) {
        return;
    }
    // This thread's own guards (a host ending Python inside a crate call)
    // are not waited for.
    let own = HELD_HERE.with(Cell::get);
    let until = Instant::now() + DRAIN_WAIT;
    // SAFETY: this thread holds the GIL (atexit's callbacks run with it);
    // SaveThread gives it up with this thread's state, which RestoreThread
    // takes back below, on this thread.
    let state = unsafe { pyo3_ffi::PyEval_SaveThread() };
    wait_for_guards(own, until);
    // Nothing takes the GIL through the crate from now on; a take counted
    // just before the latch is waited for too.
    lifecycle::latch_finalized();
    wait_for_guards(own, until);
    // SAFETY: as above.
    unsafe { pyo3_ffi::PyEval_RestoreThread(state) };
}

/// Waits, the GIL given up, until the crate's guards are `own` (this
/// thread's) or `until` passes.
fn wait_for_guards(own: usize, until: Instant) {
    while HELD.load(Ordering::SeqCst) > own && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}
