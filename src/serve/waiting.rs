//! Serving threads waiting in C code: a thread inside one call for a while
//! that uses next to no CPU time meanwhile (a `socket.recv` or a
//! `Queue.get` without a timeout, a long sleep) does not count against
//! [`max_threads`](super::max_threads), so that the queue is still served.
//!
//! # Why
//!
//! A deadline stops Python code at its next bytecode, but a call waiting in
//! C code has none: its future resolves to `Timeout`, and its thread stays
//! in the call until the call returns. With every serving thread in such a
//! call (three on 2 cores), no thread was left to take the queue, and every
//! async call timed out from then on, for good if those calls never
//! returned, while synchronous calls went on.
//!
//! # How
//!
//! - Each serving thread marks when its current call started ([`begin`],
//!   [`end`]: a store each, on a cache line of its own).
//! - The timer, while it looks for a stalled leader (calls queued), reads
//!   the CPU clock of each thread that has been inside one call for the
//!   takeover time, and again at its looks after: one that used less than
//!   a twentieth of the time since, over at least [`OBSERVED`], is waiting
//!   ([`look`]). A thread doing work gets more than that even with twenty
//!   others on its core, and a waiting one next to none; the quarter
//!   second spans schedulers' slices (valgrind's, which runs one thread at
//!   a time, gave a working thread none over 20 ms).
//! - A thread that waits is not counted: another may be started to lead,
//!   up to [`HARD_MOST`] times the most. A thread doing work (numpy's
//!   loops, without the GIL) counts, so long calls still overlap up to the
//!   core count only.
//!
//! # Limitations
//!
//! Threads are never ended: a call that never returns keeps its thread for
//! good, and once [`HARD_MOST`] times the most are started, calls that
//! never return can again keep them all.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::lead::{self, Own};

/// Threads started, waiting ones included, are at most this many times
/// [`max_threads`](super::max_threads).
pub(super) const HARD_MOST: usize = 4;

/// How long a thread's CPU time is watched before it is found waiting.
const OBSERVED: Duration = Duration::from_millis(250);

/// A serving thread, as the timer sees it.
struct Seen {
    /// When its current call started ([`lead::mark`]); 0 between calls.
    call: &'static Own<AtomicU64>,
    /// Its CPU-time clock.
    clock: libc::clockid_t,
    /// The call, its CPU time and the instant at the timer's first look
    /// inside it.
    first_look: Option<(u64, Duration, Instant)>,
}

static THREADS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

/// Serving threads found waiting at the timer's last look.
static WAITING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CALL: std::cell::Cell<Option<&'static Own<AtomicU64>>> =
        const { std::cell::Cell::new(None) };
}

fn threads() -> MutexGuard<'static, Vec<Seen>> {
    THREADS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes this serving thread known to the timer. Once per thread, at its
/// start (serving threads never end, so neither does what this keeps).
pub(super) fn register() {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self is this live thread; the call writes `clock`.
    if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } != 0 {
        return; // never seen waiting: counted, as before
    }
    let call: &'static Own<AtomicU64> = Box::leak(Box::new(Own(AtomicU64::new(0))));
    CALL.set(Some(call));
    threads().push(Seen {
        call,
        clock,
        first_look: None,
    });
}

/// This serving thread's call started at `at`.
#[inline]
pub(super) fn begin(at: Instant) {
    if let Some(call) = CALL.get() {
        call.0.store(lead::mark(at), Ordering::Relaxed);
    }
}

/// This serving thread's call ended.
#[inline]
pub(super) fn end() {
    if let Some(call) = CALL.get() {
        call.0.store(0, Ordering::Relaxed);
    }
}

/// Serving threads found waiting at the timer's last look.
pub(super) fn waiting() -> usize {
    WAITING.load(Ordering::Relaxed)
}

/// The timer's look, at `now`, with `after` the takeover time: counts the
/// threads waiting (see the module's docs).
pub(super) fn look(now: Instant, after: Duration) {
    let mut waiting = 0;
    for seen in threads().iter_mut() {
        let call = seen.call.0.load(Ordering::Relaxed);
        if call == 0 || now.saturating_duration_since(lead::instant_of(call)) < after {
            seen.first_look = None;
            continue;
        }
        let Some(cpu) = cpu_time(seen.clock) else {
            continue;
        };
        match seen.first_look {
            Some((looked_call, cpu_then, then)) if looked_call == call => {
                let wall = now.saturating_duration_since(then);
                if wall >= OBSERVED && cpu.saturating_sub(cpu_then) < wall / 20 {
                    waiting += 1;
                }
            }
            _ => seen.first_look = Some((call, cpu, now)),
        }
    }
    WAITING.store(waiting, Ordering::Relaxed);
}

/// The CPU time a thread has used, by its clock.
fn cpu_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock` is a live serving thread's CPU clock (they never
    // end); the call writes `time`.
    if unsafe { libc::clock_gettime(clock, &mut time) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(time.tv_sec).ok()?,
        u32::try_from(time.tv_nsec).ok()?,
    ))
}
