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
//! A queued call with a deadline (or one waiting for room) has the serving
//! layer's timer ([`super::timer`]) wake at its deadline. Then
//! [`expire_queued`] takes every queued call whose deadline has passed out
//! of the queue (under the queue's lock, held only for that scan),
//! resolves their futures, wakes
//! the futures waiting for room whose deadline has passed (each then
//! resolves itself and gives its place up), and has the timer wake again
//! at the earliest deadline still to come. It never touches Python: an
//! expired call never ran, and what its arguments hold goes back to the
//! future, as a served call's does. Calls without a deadline cost nothing
//! here; with calls served on time, the timer wakes about once per
//! deadline's length.
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use std::time::Instant;

use super::queue::{wake_caught, QUEUE};

/// Resolves every queued call whose deadline is `now` or before, and wakes
/// the futures waiting for room whose deadline has passed; the earliest
/// deadline still to come.
pub(super) fn expire_queued(now: Instant) -> Option<Instant> {
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
