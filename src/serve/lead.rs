//! Which serving thread leads, and the mark of the call it is making in its
//! held-GIL scope: what the timer ([`super::timer`]) reads to tell a leader
//! stalled inside one call, and hand the queue to another thread.
//!
//! # Why
//!
//! The leader makes the queue's calls in its scope one after the other. A
//! function's calls run there until the scheduler knows the function is
//! long (most of six calls in a row long, see
//! [`CallStats`](crate::runtime::CallStats)), and the queue waits for each
//! of them: a call that slept 0.3 s held every other async call for 0.3 s,
//! six times, and a function called rarely (a nightly retraining) is never
//! known long. Synchronous callers meet such a call for at most four switch
//! intervals (the scheduler then lets them go to the GIL directly); the
//! queue now has the same bound, [`stall_after`].
//!
//! # How
//!
//! - The leader stores when each call it makes in its scope started
//!   ([`LEADER_CALL`], on a cache line of its own), and clears it when the
//!   call ends ([`clear`]: unless a leader that took over has stored its
//!   own since).
//! - A future that queues a call while the leader is inside one, or behind
//!   other queued calls, has the timer look at [`stall_after`] from that
//!   call's start, unless it is looking already ([`STALL_WATCHED`]: a
//!   fence and one load a call once it is). The timer looks again every
//!   [`stall_after`] while calls are queued.
//! - When the leader is still inside the same call then, with calls
//!   queued, a sleeping follower or a new thread (while there are fewer
//!   than the most) is given the lead. It claims it ([`State::leader`]),
//!   and takes the GIL and the turn as a scope does: the turn is the
//!   stalled leader's, and the scheduler lets a waiter go to the GIL
//!   directly once an owner has stayed inside one call for an interval; the
//!   GIL is free whenever the stalled call runs without it (asleep, in
//!   numpy's loops), and shared with it by CPython's switching otherwise.
//! - The stalled leader, its call over, finds the lead claimed when it
//!   next takes a job, gives its scope up and follows.
//!
//! [`State::leader`]: super::queue::State::leader

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::runtime::scheduler;

/// A value on a cache line of its own: written by the leader at every
/// call, read by other threads only now and then.
#[repr(align(128))]
pub(super) struct Own<T>(pub(super) T);

/// When the leader's current call in its scope started ([`mark`]); 0 while
/// it is between calls or not leading.
pub(super) static LEADER_CALL: Own<AtomicU64> = Own(AtomicU64::new(0));

/// The timer is to look for a stalled leader.
pub(super) static STALL_WATCHED: AtomicBool = AtomicBool::new(false);

/// Unless set, the leader may stay inside one call this many switch
/// intervals: as long as a synchronous caller waits for the turn at most.
const STALL_INTERVALS: u32 = 4;

/// [`super::set_takeover_after`], in ns; 0: not set; `u64::MAX`: never.
static TAKEOVER_NS: AtomicU64 = AtomicU64::new(0);

/// Sets [`stall_after`]: `None`, the default; `Duration::MAX`, never. The
/// timer's look, if any, is given up: the next queued call asks again,
/// with the new limit.
pub(super) fn set_stall_after(after: Option<Duration>) {
    let ns = after.map_or(0, |after| {
        if after == Duration::MAX {
            u64::MAX
        } else {
            u64::try_from(after.as_nanos())
                .unwrap_or(u64::MAX - 1)
                .max(1)
        }
    });
    TAKEOVER_NS.store(ns, Ordering::Relaxed);
    STALL_WATCHED.store(false, Ordering::SeqCst);
}

/// How long the leader may stay inside one call, calls waiting, before
/// another thread takes the queue over; `None`: never.
pub(super) fn stall_after() -> Option<Duration> {
    match TAKEOVER_NS.load(Ordering::Relaxed) {
        0 => Some(scheduler::switch_interval() * STALL_INTERVALS),
        u64::MAX => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `at` as a mark: never 0.
pub(super) fn mark(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base()).as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

/// The instant a [`mark`] stands for.
pub(super) fn instant_of(mark: u64) -> Instant {
    base() + Duration::from_nanos(mark.saturating_sub(1))
}

/// The leader's call that started at `mark` ended: the mark is cleared,
/// unless a leader that took over has written its own since.
pub(super) fn clear(mark: u64) {
    let _ = LEADER_CALL
        .0
        .compare_exchange(mark, 0, Ordering::Relaxed, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::{instant_of, mark};
    use std::time::{Duration, Instant};

    #[test]
    fn a_mark_is_never_zero_and_stands_for_its_instant() {
        let _ = mark(Instant::now()); // the base, set
        let at = Instant::now();
        let m = mark(at);
        assert_ne!(m, 0);
        assert_eq!(instant_of(m), at);
        let later = at + Duration::from_millis(3);
        assert_eq!(instant_of(mark(later)) - at, Duration::from_millis(3));
    }
}
