//! Queued calls whose deadline passes before a serving thread reaches them:
//! their futures resolve to [`Error::Timeout`] at the deadline, not when
//! the queue gets to them.
//!
//! # Why
//!
//! A serving thread refuses a call whose deadline has passed when it takes
//! it from the queue, but it takes nothing while it runs a long call, or
//! while it waits for the GIL that something else holds (a `hold_gil`
//! scope, C code that keeps it). Without this, a queued call with a 50 ms
//! deadline behind a 2 s call resolved after 2 s: a service could not
//! answer by its deadline.
//!
//! # How
//!
//! One thread of the crate, `pim-expire`, started by the first queued
//! call that has a deadline, sleeps until the earliest deadline among the
//! calls it was told of ([`watch`]). Then it takes every queued call whose
//! deadline has passed out of the queue (under the queue's lock, which it
//! holds only for that scan), resolves their futures, wakes the futures
//! waiting for room whose deadline has passed (each then resolves itself
//! and gives its place up), and sleeps until the earliest deadline still
//! to come. It never touches Python: an expired
//! call never ran, and what its arguments hold goes back to the future, as
//! a served call's does. Calls without a deadline cost nothing here; with
//! calls served on time, it wakes about once per deadline's length.
//!
//! A forked child has no such thread, and never queues (its calls resolve
//! to `Unavailable` at once); the thread never ends, as the serving
//! threads do not.
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::queue::{wake_caught, QUEUE};

struct Expirer {
    /// The earliest deadline to wake for; None when nothing is watched.
    next: Option<Instant>,
    started: bool,
}

static EXPIRER: Mutex<Expirer> = Mutex::new(Expirer {
    next: None,
    started: false,
});

static WAKE: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Expirer> {
    // Two fields, consistent between statements: go on after a panic.
    EXPIRER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A call with deadline `at` was queued: the thread wakes for it if it is
/// the earliest. Without the thread (the system refused one), the serving
/// thread still refuses the call when it reaches it.
pub(super) fn watch(at: Instant) {
    let mut expirer = lock();
    if expirer.next.is_some_and(|next| next <= at) {
        return;
    }
    expirer.next = Some(at);
    if expirer.started {
        WAKE.notify_one();
        return;
    }
    expirer.started = std::thread::Builder::new()
        .name("pim-expire".into())
        .spawn(run)
        .is_ok();
}

fn run() {
    let mut expirer = lock();
    loop {
        let Some(next) = expirer.next else {
            expirer = WAKE.wait(expirer).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let now = Instant::now();
        if now < next {
            expirer = WAKE
                .wait_timeout(expirer, next - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        // Calls queued meanwhile lower `next` again; the earliest still
        // queued is merged in after the scan.
        expirer.next = None;
        drop(expirer);
        let still_queued = expire_queued(now);
        expirer = lock();
        if let Some(at) = still_queued {
            expirer.next = Some(expirer.next.map_or(at, |next| next.min(at)));
        }
    }
}

/// Resolves every queued call whose deadline is `now` or before, and wakes
/// the futures waiting for room whose deadline has passed; the earliest
/// deadline still to come.
fn expire_queued(now: Instant) -> Option<Instant> {
    let mut state = QUEUE.lock();
    let (expired, waiting, still_queued) = state.take_expired(now);
    let room = if expired.is_empty() {
        Vec::new()
    } else {
        state.grant_room()
    };
    drop(state);
    wake_caught(room);
    wake_caught(waiting);
    for job in expired {
        wake_caught(job.task.expire(now));
    }
    still_queued
}
