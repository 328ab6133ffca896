//! Started async calls past their deadline: their futures resolve to
//! [`Error::Timeout`] one switch interval after it, whatever the call's
//! thread is doing.
//!
//! # Why
//!
//! The watchdog stops Python code at its next bytecode
//! ([`crate::runtime::Watch`]); code in C (`time.sleep`, a lock, a
//! `Thread.join`, a numpy loop, a C extension that keeps the GIL) runs no
//! bytecode until it returns, however long. A synchronous caller waits for
//! its thread; an async caller need not: a service's answer (a 504) is due
//! at the deadline.
//!
//! # How
//!
//! A serving thread about to make a call with a deadline registers it
//! ([`running`]: one lock, and a push), and takes it out once the call
//! returns (one lock, and a removal among the few calls running). The
//! timer ([`super::timer`]) is told (by the caller) of the earliest instant
//! a registered call would be overdue, only when it knows of none sooner, so with a
//! stream of short calls it wakes about once a deadline, not once a call.
//! Then every call still registered past its deadline and a switch interval
//! (time for the watchdog's exception to stop Python code) resolves to
//! [`Error::Timeout`] (`ran: true`), unless the serving thread delivered its
//! result meanwhile (the first to resolve the future wins; the other's
//! result is dropped). The call itself goes on until its C code returns,
//! then its result is dropped, and the inputs are freed once Python lets
//! them go; the queue meanwhile goes to another serving thread
//! ([`super::lead`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Instant;

use super::queue::wake_caught;
use crate::error::Error;
use crate::runtime::{scheduler, Deadline};

/// A future a running call may resolve early.
pub(super) trait Overdue: Send + Sync {
    /// Resolves the future with `timeout`, unless it resolved already; the
    /// future's waker, to wake.
    fn overrun(&self, timeout: Error) -> Option<Waker>;
}

/// A call running with a deadline.
struct Entry {
    id: u64,
    due: Instant,
    deadline: Deadline,
    function: String,
    future: Arc<dyn Overdue>,
}

struct Running {
    entries: Vec<Entry>,
    next_id: u64,
    /// The earliest instant the timer was told of, and not yet past.
    told: Option<Instant>,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    entries: Vec::new(),
    next_id: 0,
    told: None,
});

fn lock() -> MutexGuard<'static, Running> {
    // Counts and a list, consistent between statements: go on after a panic.
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A registered call: taken out when dropped (when the call returned).
pub(super) struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut running = lock();
        if let Some(at) = running.entries.iter().position(|e| e.id == self.0) {
            running.entries.swap_remove(at);
        }
    }
}

/// A serving thread starts a call of `function` with `deadline`, whose
/// future is `future`: registered until the returned guard drops. With the
/// instant to tell the timer of ([`super::timer::watch`]), when it is the
/// earliest the timer would know of.
pub(super) fn running(
    deadline: Deadline,
    function: &str,
    future: Arc<dyn Overdue>,
) -> (Registered, Option<Instant>) {
    let due = deadline
        .at
        .checked_add(scheduler::switch_interval())
        .unwrap_or(deadline.at);
    let mut running = lock();
    let id = running.next_id;
    running.next_id += 1;
    running.entries.push(Entry {
        id,
        due,
        deadline,
        function: function.to_owned(),
        future,
    });
    let tell = running.told.is_none_or(|told| due < told);
    if tell {
        running.told = Some(due);
    }
    drop(running);
    (Registered(id), tell.then_some(due))
}

/// The timer's look at `now`: resolves the futures of the calls overdue;
/// when to look again (while calls are registered).
pub(super) fn resolve_overdue(now: Instant) -> Option<Instant> {
    let mut running = lock();
    let mut overdue = Vec::new();
    let mut at = 0;
    while at < running.entries.len() {
        if running.entries[at].due <= now {
            overdue.push(running.entries.swap_remove(at));
        } else {
            at += 1;
        }
    }
    let next = running.entries.iter().map(|e| e.due).min();
    running.told = next;
    drop(running);
    for entry in overdue {
        let timeout = Error::Timeout {
            function: entry.function,
            limit: entry.deadline.limit,
            elapsed: now.saturating_duration_since(entry.deadline.started),
            ran: true,
            still_running: true,
        };
        wake_caught(entry.future.overrun(timeout));
    }
    next
}
