//! The serving layer's timer: one thread of the crate's, `pim-serve-timer`,
//! that wakes at the earliest instant it was told of ([`watch`]) and does
//! what is due then: resolves queued calls whose deadline passed
//! ([`super::expire`]), hands the queue to another thread when the
//! leader has been inside one call too long ([`super::lead`]), and resolves
//! the futures of started calls past their deadline ([`super::overdue`]).
//!
//! It is started by the first instant watched, holds the queue's lock only
//! for what it does, never touches Python and never waits for the GIL. A
//! forked child has no such thread, and never queues (its calls resolve to
//! `Unavailable` at once); the thread never ends, as the serving threads do
//! not.

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::lead::{self, LEADER_CALL, STALL_WATCHED};
use super::queue::DEFERRED;

struct Timer {
    /// The earliest instant to wake at; None when nothing is watched.
    next: Option<Instant>,
    started: bool,
}

static TIMER: Mutex<Timer> = Mutex::new(Timer {
    next: None,
    started: false,
});

static WAKE: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Timer> {
    // Two fields, consistent between statements: go on after a panic.
    TIMER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Something is due at `at`: the thread wakes then if that is the earliest
/// instant it knows of. Without the thread (the system refused one), a
/// serving thread still refuses an expired call when it reaches it, and a
/// stalled leader still serves the queue once its call ends.
pub(super) fn watch(at: Instant) {
    let mut timer = lock();
    if timer.next.is_some_and(|next| next <= at) {
        return;
    }
    timer.next = Some(at);
    if timer.started {
        WAKE.notify_one();
        return;
    }
    timer.started = std::thread::Builder::new()
        .name("pim-serve-timer".into())
        .spawn(run)
        .is_ok();
}

fn run() {
    let mut timer = lock();
    loop {
        let Some(next) = timer.next else {
            timer = WAKE.wait(timer).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let now = Instant::now();
        if now < next {
            timer = WAKE
                .wait_timeout(timer, next - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        // Instants watched meanwhile lower `next` again; what is still to
        // come is merged in after the work.
        timer.next = None;
        drop(timer);
        let later = [
            super::expire::expire_queued(now),
            super::thread::relieve_stalled(now),
            super::overdue::resolve_overdue(now),
        ]
        .into_iter()
        .flatten()
        .min();
        timer = lock();
        if let Some(at) = later {
            timer.next = Some(timer.next.map_or(at, |next| next.min(at)));
        }
    }
}

/// A call was queued, `behind` others: if the leader is inside a call, or
/// calls wait before this one or aside, the timer is to look for a stalled
/// leader (unless it is looking already), and after the calls set aside.
/// A lone call to an idle leader costs three loads.
///
/// Calls set aside: a leader inside a call looks after none, and the calls
/// ahead of them may wait in C code (trial 24: one waited for the whole of
/// the leader's 3 s call, though the threads ahead of it slept). The leader
/// gets inside a call only by taking a call queued after them, or before
/// them and still queued then (`behind`): either asks here.
pub(super) fn watch_for_stall(behind: usize) {
    // Ordered after the push, against the timer's giving up ([`super::thread::relieve_stalled`]):
    // one of the two sees the other.
    std::sync::atomic::fence(Ordering::SeqCst);
    if STALL_WATCHED.load(Ordering::Relaxed) {
        return;
    }
    let call = LEADER_CALL.0.load(Ordering::Relaxed);
    if call == 0 && behind == 0 && DEFERRED.load(Ordering::Relaxed) == 0 {
        return;
    }
    // Never taken over (set so): nothing to look for.
    let Some(after) = lead::stall_after() else {
        return;
    };
    if STALL_WATCHED.swap(true, Ordering::SeqCst) {
        return;
    }
    let from = if call == 0 {
        Instant::now()
    } else {
        lead::instant_of(call)
    };
    watch(from.checked_add(after).unwrap_or(from));
}
