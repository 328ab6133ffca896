//! The bounded queue of async calls, and the one lock that guards it with
//! the serving threads' bookkeeping.
//!
//! The lock is held only to push, to pop, or to change a count: never
//! while waiting for the GIL or the turn, never while Python runs, never
//! while a waker runs or is dropped (wakers are collected under it, woken
//! or dropped after: either runs the executor's code, which may drop
//! another future waiting for room, whose drop takes this lock). Every
//! use is preceded by a look at the life cycle: in a child forked after
//! start-up the lock may have been held by a thread that does not exist
//! there, so nothing touches it.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Instant;

use crate::error::Error;
use crate::runtime::CallStats;

/// The capacity of the queue when none was set.
pub(super) const DEFAULT_CAPACITY: usize = 1024;

pub(super) static CAPACITY: AtomicUsize = AtomicUsize::new(DEFAULT_CAPACITY);

/// The number of jobs in the queue, for [`super::queued`] and the serving
/// thread's batching of wakes (read without the lock).
pub(super) static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// The number of long jobs set aside ([`State::deferred`]), for
/// [`super::queued`].
pub(super) static DEFERRED: AtomicUsize = AtomicUsize::new(0);

/// One async call, type-erased: what the serving thread runs.
pub(super) struct Job {
    pub(super) task: Box<dyn Task>,
}

/// What a serving thread does with a job.
pub(super) trait Task: Send {
    /// The function's measure: a long function's calls run outside the
    /// serving thread's held-GIL scope, and another thread serves meanwhile.
    fn stats(&self) -> &CallStats;
    /// The future was dropped: the job is skipped.
    fn cancelled(&self) -> bool;
    /// Runs the call (through the ordinary call path, on this thread) and
    /// hands the result to the future; the future's waker, for the caller
    /// to wake (now, or with others: [`super::thread`]), and when the call
    /// ended (the clock read once, for the caller's own timing too).
    /// Records how long it took in its function's measure when `started`
    /// says when it began (in a held-GIL scope, where the call path itself
    /// measures nothing). In a child that the call forked, ends the process
    /// as soon as the call returns (`thread::end_if_forked`).
    fn run(self: Box<Self>, started: Option<Instant>) -> (Option<Waker>, Instant);
    /// Resolves the future with `error`, without running the call.
    fn fail(self: Box<Self>, error: Error);
    /// The call's deadline, if it has one ([`super::expire`]).
    fn expires(&self) -> Option<Instant>;
    /// Resolves the future with the timeout of a call whose deadline passed
    /// (at `now`) while it was queued, without running it; the future's
    /// waker, to wake.
    fn expire(self: Box<Self>, now: Instant) -> Option<Waker>;
}

/// A future waiting for room: its id, its waker, and its call's deadline
/// (at which [`super::expire`] wakes it, to resolve).
struct Waiter {
    id: u64,
    waker: Waker,
    expires: Option<Instant>,
}

/// The queue and the serving threads' counts, under one lock.
pub(super) struct State {
    pub(super) jobs: VecDeque<Job>,
    /// Long jobs taken from the queue while every thread for long calls was
    /// busy: the next such thread to finish runs them, in order, while the
    /// leader goes on with the queue. They count against the capacity, as
    /// queued jobs do.
    deferred: VecDeque<Job>,
    /// Room granted to waiting futures and not yet used: counts as taken.
    reserved: usize,
    /// Futures waiting for room, first come first served.
    waiters: VecDeque<Waiter>,
    /// Waiters granted room (taken out of `waiters`), not yet back.
    granted: Vec<u64>,
    next_waiter: u64,
    /// Serving threads started (they never end).
    pub(super) threads: usize,
    /// The leader waits for a job on [`Queue::jobs`].
    pub(super) leader_idle: bool,
    /// Followers waiting on [`Queue::lead`], not yet promised the lead.
    pub(super) followers_idle: usize,
    /// Leads offered to followers and not yet taken.
    pub(super) offers: usize,
    /// Idle followers asked to run the long jobs set aside, not yet up
    /// ([`super::thread::serve_deferred`]).
    pub(super) deferred_calls: usize,
    /// The serving thread that leads (its number), as it claimed the lead;
    /// a leader that finds another here has been relieved, and follows
    /// ([`super::lead`]).
    pub(super) leader: usize,
    /// The mark of the last stalled call whose leader was relieved: one
    /// relief a call.
    pub(super) relieved: u64,
}

pub(super) struct Queue {
    state: Mutex<State>,
    /// The leader waits here for a job.
    pub(super) jobs: Condvar,
    /// Followers wait here for the lead.
    pub(super) lead: Condvar,
}

pub(super) static QUEUE: Queue = Queue {
    state: Mutex::new(State {
        jobs: VecDeque::new(),
        deferred: VecDeque::new(),
        reserved: 0,
        waiters: VecDeque::new(),
        granted: Vec::new(),
        next_waiter: 0,
        threads: 0,
        leader_idle: false,
        followers_idle: 0,
        offers: 0,
        deferred_calls: 0,
        leader: 0,
        relieved: 0,
    }),
    jobs: Condvar::new(),
    lead: Condvar::new(),
};

impl Queue {
    /// The lock. Callers first check that this is not a forked child (the
    /// module's docs).
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves counts only, all consistent between
        // statements: go on with them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether the queue's lock may be taken: not in a child forked after
/// start-up (the module's docs). After the host finalized Python it may:
/// futures waiting for room still give it back, to the next waiter.
pub(super) fn usable() -> bool {
    !crate::runtime::is_forked_child()
}

/// What [`push`] did.
pub(super) enum Pushed {
    /// The job is in the queue, `behind` others; start the first serving
    /// thread if the flag says so.
    Queued { start_thread: bool, behind: usize },
    /// The queue is full: the job comes back, and the future waits as
    /// waiter `id` (its waker is kept, and woken when room is granted).
    Full(Job, u64),
}

impl State {
    fn capacity() -> usize {
        CAPACITY.load(Ordering::Relaxed).max(1)
    }

    /// Grants free room to the first waiters; the wakers to wake (after
    /// the lock).
    pub(super) fn grant_room(&mut self) -> Vec<Waker> {
        let mut wake = Vec::new();
        while self.taken() < Self::capacity() {
            let Some(Waiter { id, waker, .. }) = self.waiters.pop_front() else {
                break;
            };
            self.reserved += 1;
            self.granted.push(id);
            wake.push(waker);
        }
        wake
    }

    /// The room taken: queued jobs, deferred ones, and room granted.
    fn taken(&self) -> usize {
        self.jobs.len() + self.deferred.len() + self.reserved
    }

    /// Takes the jobs whose deadline is `now` or before out of the queue
    /// (the others keep their order), with the wakers of the futures
    /// waiting for room whose deadline has passed (woken, they resolve); the
    /// earliest deadline still to come.
    pub(super) fn take_expired(&mut self, now: Instant) -> (Vec<Job>, Vec<Waker>, Option<Instant>) {
        let expired = |job: &Job| job.task.expires().is_some_and(|at| at <= now);
        let mut taken = Vec::new();
        for (jobs, count) in [(&mut self.jobs, &QUEUED), (&mut self.deferred, &DEFERRED)] {
            if jobs.iter().any(expired) {
                for job in std::mem::take(jobs) {
                    if expired(&job) {
                        taken.push(job);
                    } else {
                        jobs.push_back(job);
                    }
                }
                count.store(jobs.len(), Ordering::Relaxed);
            }
        }
        // An executor's `clone` may panic as its `wake` may ([`wake_caught`]):
        // here, on the timer's thread, under the lock, with the expired jobs
        // taken out and not yet resolved. A waiter whose waker cannot be
        // cloned is woken by nobody now; it resolves when next polled.
        let waiting = self
            .waiters
            .iter()
            .filter(|w| w.expires.is_some_and(|at| at <= now))
            .filter_map(|w| std::panic::catch_unwind(AssertUnwindSafe(|| w.waker.clone())).ok())
            .collect();
        // A waiter woken stays until its future abandons its place: only
        // deadlines to come count, or this would wake at once again.
        let next = self
            .jobs
            .iter()
            .chain(&self.deferred)
            .filter_map(|job| job.task.expires())
            .chain(self.waiters.iter().filter_map(|w| w.expires))
            .filter(|&at| at > now)
            .min();
        (taken, waiting, next)
    }

    /// Takes the next job out of the queue. Its room is granted to waiting
    /// futures by the caller's [`grant_room`](Self::grant_room) once it has
    /// decided whether to [`defer`](Self::defer) it.
    pub(super) fn pop(&mut self) -> Option<Job> {
        let job = self.jobs.pop_front()?;
        QUEUED.store(self.jobs.len(), Ordering::Relaxed);
        Some(job)
    }

    /// Sets a long job aside, keeping its room, for the next thread that
    /// finishes a long call ([`take_deferred`](Self::take_deferred)).
    pub(super) fn defer(&mut self, job: Job) {
        self.deferred.push_back(job);
        DEFERRED.store(self.deferred.len(), Ordering::Relaxed);
    }

    /// The first long job set aside; its room is granted (the wakers).
    /// Whether long jobs wait aside.
    pub(super) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    pub(super) fn take_deferred(&mut self) -> Option<(Job, Vec<Waker>)> {
        let job = self.deferred.pop_front()?;
        DEFERRED.store(self.deferred.len(), Ordering::Relaxed);
        Some((job, self.grant_room()))
    }

    /// Takes every job, queued and deferred, out (to fail them), and grants
    /// their room: the jobs, and the wakers.
    pub(super) fn drain(&mut self) -> (Vec<Job>, Vec<Waker>) {
        let jobs: Vec<Job> = self.jobs.drain(..).chain(self.deferred.drain(..)).collect();
        QUEUED.store(0, Ordering::Relaxed);
        DEFERRED.store(0, Ordering::Relaxed);
        let wake = self.grant_room();
        (jobs, wake)
    }
}

/// Puts `job` in the queue if there is room for it: a future that waited
/// (`waiter`) uses the room granted to it; a new one goes in only if nobody
/// waits before it (first come first served).
pub(super) fn push(job: Job, waiter: Option<u64>, waker: &Waker) -> Pushed {
    let mut state = QUEUE.lock();
    let room = match waiter {
        Some(id) => match state.granted.iter().position(|&g| g == id) {
            Some(at) => {
                state.granted.swap_remove(at);
                state.reserved -= 1;
                true
            }
            None => false,
        },
        None => state.waiters.is_empty() && state.taken() < State::capacity(),
    };
    // A waker replaced is dropped after the lock: its drop is the
    // executor's code, and may drop another future waiting for room, whose
    // own drop takes this lock ([`abandon`]).
    let mut replaced = None;
    if !room {
        let id = match waiter {
            Some(id) => {
                if let Some(entry) = state.waiters.iter_mut().find(|w| w.id == id) {
                    if !entry.waker.will_wake(waker) {
                        replaced = Some(std::mem::replace(&mut entry.waker, waker.clone()));
                    }
                }
                id
            }
            None => {
                let id = state.next_waiter;
                state.next_waiter += 1;
                let expires = job.task.expires();
                state.waiters.push_back(Waiter {
                    id,
                    waker: waker.clone(),
                    expires,
                });
                id
            }
        };
        drop(state);
        drop(replaced);
        return Pushed::Full(job, id);
    }
    state.jobs.push_back(job);
    QUEUED.store(state.jobs.len(), Ordering::Relaxed);
    let start_thread = state.threads == 0;
    if start_thread {
        state.threads = 1;
    } else if state.leader_idle {
        QUEUE.jobs.notify_one();
    }
    Pushed::Queued {
        start_thread,
        behind: state.jobs.len() - 1,
    }
}

/// A waiting future is dropped: it leaves the waiters, or gives its granted
/// room to the next one.
pub(super) fn abandon(id: u64) {
    let mut state = QUEUE.lock();
    let mut left = None;
    let wake = if let Some(at) = state.granted.iter().position(|&g| g == id) {
        state.granted.swap_remove(at);
        state.reserved -= 1;
        state.grant_room()
    } else {
        // Its waker is dropped after the lock (see [`push`]).
        if let Some(at) = state.waiters.iter().position(|w| w.id == id) {
            left = state.waiters.remove(at);
        }
        Vec::new()
    };
    drop(state);
    drop(left);
    wake_caught(wake);
}

/// The capacity changed: room may be free for waiters.
pub(super) fn capacity_changed() {
    let wake = QUEUE.lock().grant_room();
    wake_caught(wake);
}

/// Wakes each of `wakers`, catching a panic in any: an executor's `wake`
/// may panic (one whose task channel is closed, or full, after its runtime
/// was dropped), and on a thread of the crate's that would end the thread,
/// leaving the queue unserved, or leave the other wakers unwoken, and
/// their tasks pending for ever. The panic hook has reported it; the task
/// whose waker panicked is that executor's to lose. Used wherever the crate
/// wakes futures, on its threads or the caller's.
pub(super) fn wake_caught(wakers: impl IntoIterator<Item = Waker>) {
    for waker in wakers {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(move || waker.wake()));
    }
}
