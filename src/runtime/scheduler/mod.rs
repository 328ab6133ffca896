//! The scheduler of the crate's calls: one calling thread at a time keeps
//! "the turn" across its consecutive calls, for up to a switch interval, and
//! the others wait for the turn asleep instead of for the GIL.
//!
//! # Why
//!
//! When several threads call small Python functions, the GIL changes hands
//! on nearly every call, and on two or more cores each change costs a
//! wake-up on another core, a cache migration and an idle gap: 2 threads
//! got about half of one thread's calls per second, 4 threads a quarter.
//! CPython keeps the GIL for its own threads for a switch interval
//! (`sys.getswitchinterval()`, 5 ms) for this reason; a Rust caller gives
//! the GIL back after every call, so that rule never applies. Every call of
//! the crate goes through here, so the crate can apply it itself: the thread
//! whose turn it is takes an uncontended GIL call after call, and nobody else
//! is woken for it.
//!
//! # The rules
//!
//! - **The turn.** A call takes the turn (or finds it is its thread's
//!   already), then the GIL; it gives the GIL back after the call, as
//!   always, but keeps the turn. Threads that find the turn taken queue,
//!   first come first served, and sleep.
//! - **Served within the interval.** With `n` threads waiting, the owner
//!   keeps the turn for the switch interval divided by `n + 1`, then hands it
//!   to the first waiter at the end of its current call (the first waiter
//!   asks for it too, in case it did not). The shares of the threads ahead of
//!   the last waiter add up to less than an interval, leaving room for the
//!   hand-overs, so every waiter is served within about one interval, plus
//!   the call in progress.
//! - **The GIL never sits idle for long.** The turn is kept only while its
//!   thread keeps calling: a waiter that sees the owner outside a call, with
//!   no new call, for [`IDLE_GRACE`] takes the turn over (the owner is off in
//!   Rust code, or done). A thread that is found to spend more than
//!   [`IDLE_GRACE`] between its calls (sampled) never takes the turn: its
//!   calls take the GIL directly, so its own Rust work overlaps other
//!   threads' calls.
//! - **What numpy runs in parallel stays parallel.** numpy gives the GIL up
//!   inside its loops over large arrays, so long calls of two threads
//!   overlap; serializing them would halve that. Each [`Function`] times
//!   its calls (two in 64, and every call after a long one, from when they
//!   have the turn and the GIL until they give the GIL back), and a function whose recent timed calls
//!   mostly take the long-call threshold (100 µs by default; see
//!   [`set_long_call`]) or more bypasses the turn, one call in 32 excepted,
//!   which runs under the turn to be timed again. Measured here on 2 cores
//!   (a sweep of call lengths): at 57 µs a call the turn was better at 2 and 4
//!   threads, at 88 µs it was better at 4 threads and worse at 2, at 162 µs
//!   bypassing was better at both.
//! - **Never a deadlock.** The turn is advisory: only the GIL protects
//!   Python. A thread waits for the turn only when it does not hold the GIL
//!   (a host thread, or a call nested in a call, goes straight to the GIL);
//!   nobody waits for the GIL holding the queue's lock; and every wait is
//!   bounded: when the owner stays inside one call for a whole interval (a
//!   call that waits for another thread's call, say), every waiter goes to
//!   the GIL directly until that call ends, and no thread waits for the turn
//!   more than four intervals in any case.
//!
//! Python threads of the host, and calls that bypass the turn, take the GIL
//! as before: CPython's own switching shares it with the turn's owner.
//!
//! [`Function`]: crate::Function

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

mod stats;
mod turn;

pub(crate) use stats::CallStats;
use turn::release_all_waiters;
pub(crate) use turn::{enter, enter_scope, Ticket};

/// How long the owner of the turn may stay outside a call, without calling
/// again, before a waiting thread takes the turn over; and the gap between
/// calls above which a thread does not take the turn at all.
pub const IDLE_GRACE: Duration = Duration::from_micros(10);

/// How often the first waiter looks at the owner (its sleep between looks;
/// the kernel may add its timer slack, 50 µs by default, to each).
const POLL: Duration = Duration::from_micros(100);

/// No call waits for the turn longer than this many switch intervals: past
/// it, it goes to the GIL directly (a safety net; the rules above serve a
/// waiter within about one interval).
const MAX_WAIT_INTERVALS: u32 = 4;

/// One call in this many of a long function runs under the turn, to measure
/// it again.
const PROBE_EVERY: u32 = 32;

/// Of every 64 calls a thread makes, the first two are timed (a clock read
/// costs about 25 ns here, a sixth of a call): the first's end and the
/// second's start give the gap between calls.
const SAMPLE_EVERY: u32 = 64;

// ---- Settings -----------------------------------------------------------------

/// Not read yet from [`SCHEDULER_ENV`].
const UNSET: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

static ENABLED: AtomicU8 = AtomicU8::new(UNSET);
static INTERVAL_NS: AtomicU64 = AtomicU64::new(5_000_000);
static INTERVAL_SET: AtomicBool = AtomicBool::new(false);
static LONG_CALL_NS: AtomicU64 = AtomicU64::new(100_000);

/// Environment variable that switches the scheduler off for the process
/// (`PY_IN_MEM_SCHEDULER=off`), read at the first call; [`set_enabled`]
/// overrides it.
pub const SCHEDULER_ENV: &str = "PY_IN_MEM_SCHEDULER";

/// Switches the scheduler on or off for the whole process (it is on unless
/// [`SCHEDULER_ENV`] says `off`). Off, every call takes the GIL directly, as
/// a plain embedding of Python does; threads waiting for the turn go to the
/// GIL at once.
///
/// ```
/// py_in_mem::scheduler::set_enabled(false);
/// assert!(!py_in_mem::scheduler::is_enabled());
/// py_in_mem::scheduler::set_enabled(true);
/// assert!(py_in_mem::scheduler::is_enabled());
/// ```
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
    if !on {
        release_all_waiters();
    }
}

/// Whether calls go through the scheduler (see [`set_enabled`]).
pub fn is_enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => enabled_from_env(),
    }
}

#[cold]
fn enabled_from_env() -> bool {
    let off = std::env::var(SCHEDULER_ENV).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        v == "off" || v == "0" || v == "false" || v == "no"
    });
    let _ = ENABLED.compare_exchange(
        UNSET,
        if off { OFF } else { ON },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    ENABLED.load(Ordering::Relaxed) == ON
}

/// Sets the switch interval: how long one thread keeps the turn while
/// others wait (at least 100 µs). By default it is Python's own,
/// `sys.getswitchinterval()` as it was when Python started (5 ms unless the
/// host changed it).
///
/// ```
/// use std::time::Duration;
/// py_in_mem::scheduler::set_switch_interval(Duration::from_millis(2));
/// assert_eq!(py_in_mem::scheduler::switch_interval(), Duration::from_millis(2));
/// py_in_mem::scheduler::set_switch_interval(Duration::from_millis(5));
/// ```
pub fn set_switch_interval(interval: Duration) {
    store_interval(interval);
    INTERVAL_SET.store(true, Ordering::Relaxed);
}

/// The interval, at least 100 µs.
fn store_interval(interval: Duration) {
    let ns = interval.max(Duration::from_micros(100)).as_nanos();
    INTERVAL_NS.store(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The switch interval (see [`set_switch_interval`]).
pub fn switch_interval() -> Duration {
    Duration::from_nanos(INTERVAL_NS.load(Ordering::Relaxed))
}

/// Python's own switch interval, at start-up: the default, unless the user
/// set one already.
pub(super) fn default_switch_interval(seconds: f64) {
    if !INTERVAL_SET.load(Ordering::Relaxed) && seconds.is_finite() && seconds > 0.0 {
        store_interval(Duration::from_secs_f64(seconds));
    }
}

/// Sets the long-call threshold: a function whose timed calls mostly take
/// this long or more bypasses the turn, so that calls which numpy runs mostly without the
/// GIL still run in parallel (100 µs by default; see the module's docs for
/// the measurements behind it).
///
/// ```
/// use std::time::Duration;
/// py_in_mem::scheduler::set_long_call(Duration::from_micros(200));
/// assert_eq!(py_in_mem::scheduler::long_call(), Duration::from_micros(200));
/// py_in_mem::scheduler::set_long_call(Duration::from_micros(100));
/// ```
pub fn set_long_call(threshold: Duration) {
    LONG_CALL_NS.store(
        u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The long-call threshold (see [`set_long_call`]).
pub fn long_call() -> Duration {
    Duration::from_nanos(LONG_CALL_NS.load(Ordering::Relaxed))
}
