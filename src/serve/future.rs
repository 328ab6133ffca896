//! [`CallFuture`]: an async call's future, and the slot its result comes
//! back in.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::give_back::{self, Kept};
use super::overdue::{self, Overdue};
use super::queue::{self, Job, Pushed, Task};
use super::thread;
use super::timer;
use crate::error::{Error, Unavailable};
use crate::runtime::{self, CallStats, Deadline, Stopper};

/// Where a job puts its result, shared by the job and its future.
struct Slot<R> {
    /// The future was dropped: the job is skipped if it has not started,
    /// and its result dropped if it has.
    cancelled: AtomicBool,
    inner: Mutex<SlotInner<R>>,
    /// For a call that stops when its future is dropped
    /// (`Call::stop_on_drop`).
    stopper: Option<Arc<Stopper>>,
}

/// What a job gives its future: the call's result, or the payload of a
/// panic in the caller's code that ran on the serving thread (a
/// [`FromResult`](crate::FromResult) or `Deserialize` impl of its own),
/// which the future resumes where it is polled, as a synchronous call
/// would have unwound into its caller.
type Outcome<R> = std::thread::Result<Result<R, Error>>;

struct SlotInner<R> {
    result: Option<Outcome<R>>,
    /// The owned inputs Python let go of during the call, for the future
    /// to drop ([`give_back`]).
    kept: Kept,
    /// The job's own allocation, with the function and what is left of the
    /// inputs, for the future to free: it was allocated on the future's
    /// thread, and freeing it on the serving thread would cost that thread
    /// (which holds the GIL for the queue) a free into the other thread's
    /// arena, under that arena's lock.
    spent: Option<Box<dyn Any + Send>>,
    waker: Option<Waker>,
    /// A result was put in the slot (it may have been taken since): the
    /// first to resolve the future wins ([`super::overdue`]).
    resolved: bool,
}

impl<R> SlotInner<R> {
    /// What the future frees besides the result: the inputs kept for it and
    /// the spent job.
    fn take_leftovers(&mut self) -> (Kept, Option<Box<dyn Any + Send>>) {
        (std::mem::take(&mut self.kept), self.spent.take())
    }
}

impl<R> Slot<R> {
    /// Puts the result, the inputs kept for the caller and the spent job
    /// in the slot; the future's waker, to wake.
    fn deliver(
        &self,
        result: Outcome<R>,
        kept: Kept,
        spent: Option<Box<dyn Any + Send>>,
    ) -> Option<Waker> {
        if self.cancelled.load(Ordering::Acquire) {
            // All dropped here, on the serving thread.
            thread::drop_caught((result, kept, spent));
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.resolved {
            // Resolved at its deadline while the call ran on: this result
            // is nobody's.
            drop(inner);
            thread::drop_caught((result, kept, spent));
            return None;
        }
        inner.resolved = true;
        inner.result = Some(result);
        inner.kept = kept;
        inner.spent = spent;
        inner.waker.take()
    }

    /// The future is dropped: a job not started is skipped, and whatever
    /// a job delivered already is dropped here, on the future's thread.
    /// Never waits: past a delivery under way (or, in a forked child, a
    /// lock left held), what is delivered is freed with the slot.
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Ok(mut inner) = self.inner.try_lock() {
            let delivered = (inner.result.take(), inner.take_leftovers());
            drop(inner);
            drop(delivered);
        }
    }
}

impl<R: Send + 'static> Overdue for Slot<R> {
    fn overrun(&self, timeout: Error) -> Option<Waker> {
        if self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.resolved {
            return None;
        }
        inner.resolved = true;
        inner.result = Some(Ok(Err(timeout)));
        inner.waker.take()
    }
}

/// What an async call calls: a function of the crate's, which keeps the
/// measure of its calls (implemented above this layer, by
/// [`Function`](crate::Function)). Dropped with the spent job, on the
/// thread that polls the future (on the serving thread if the future is
/// gone): its drop must not wait for the GIL.
pub(crate) trait Callee: Send + 'static {
    /// How long its calls take, for the scheduler and the serving threads.
    fn stats(&self) -> &CallStats;
    /// Its name, for the timeout of a call that expired in the queue.
    fn name(&self) -> &str;
}

/// A job: the function, the inputs of the call, the call to make of them,
/// and the slot for its result. The call and the slot are taken out when
/// it runs; the box, with the function and the inputs (what Python did not
/// take of them), goes to the slot, for the future to free.
struct Typed<R, C, I, F> {
    function: C,
    inputs: I,
    deadline: Option<Deadline>,
    work: Option<F>,
    slot: Option<Arc<Slot<R>>>,
}

impl<R, C, I, F> Task for Typed<R, C, I, F>
where
    R: Send + 'static,
    C: Callee,
    I: Send + 'static,
    F: FnOnce(&C, &I) -> Result<R, Error> + Send + 'static,
{
    fn stats(&self) -> &CallStats {
        self.function.stats()
    }

    fn cancelled(&self) -> bool {
        self.slot
            .as_ref()
            .is_some_and(|slot| slot.cancelled.load(Ordering::Acquire))
    }

    fn run(mut self: Box<Self>, started: Option<Instant>) -> (Option<Waker>, Instant) {
        let (Some(work), Some(slot)) = (self.work.take(), self.slot.take()) else {
            unreachable!("a job runs once");
        };
        // A panic in the caller's code (its result type's reading) must not
        // end the serving thread: the queue would never be served again.
        // The call path is unwind-safe as a synchronous call's is (guards
        // give back what the call took); the future resumes the panic.
        // With a deadline, the future resolves at it even while the call
        // runs on in C code ([`overdue`]).
        let registered = self.deadline.map(|deadline| {
            let future: Arc<dyn Overdue> = slot.clone();
            let (registered, tell) = overdue::running(deadline, self.function.name(), future);
            if let Some(at) = tell {
                timer::watch(at);
            }
            registered
        });
        let stopper = slot.stopper.clone();
        let (result, kept) = give_back::collect(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                runtime::with_stopper(stopper, || work(&self.function, &self.inputs))
            }))
        });
        thread::end_if_forked();
        drop(registered);
        let ended = Instant::now();
        if let Some(started) = started {
            self.function
                .stats()
                .record(ended.saturating_duration_since(started));
        }
        let waker = slot.deliver(result, kept, Some(self));
        // A future dropped while the result went in (its cancel found the
        // slot locked) leaves this the last handle: the result, and the
        // caller's types in it, go with it, their Drop's panic caught.
        thread::drop_caught(slot);
        (waker, ended)
    }

    fn fail(mut self: Box<Self>, error: Error) {
        if let Some(slot) = self.slot.take() {
            queue::wake_caught(slot.deliver(Ok(Err(error)), Kept::default(), None));
            thread::drop_caught(slot);
        }
    }

    fn expires(&self) -> Option<Instant> {
        self.deadline.map(|deadline| deadline.at)
    }

    fn expire(mut self: Box<Self>, now: Instant) -> Option<Waker> {
        let (Some(slot), Some(deadline)) = (self.slot.take(), self.deadline) else {
            return None;
        };
        let timeout = deadline.not_called(self.function.name(), now);
        // The job goes back to the future, as a served one does (with it
        // the inputs, which go with the slot if the future is gone).
        let waker = slot.deliver(Ok(Err(timeout)), Kept::default(), Some(self));
        thread::drop_caught(slot);
        waker
    }
}

/// The future of an async call ([`Function::call_async`],
/// [`Call::call_async`]): resolves to what the synchronous call would have
/// returned. `Send + 'static` (for `R: Send`): it owns the function and
/// the arguments, so it can go to `tokio::spawn`, an axum handler, any
/// executor.
///
/// Polling it never blocks: the first poll puts the call in the serving
/// queue (or, if the queue is full, waits for room, asleep), later polls
/// look for the result. Dropping it before its call starts means the call
/// never runs; dropping it during the call discards the result, and stops
/// the call if it was made with
/// [`Call::stop_on_drop`](crate::Call::stop_on_drop).
///
/// # Panics
///
/// Where the synchronous call would have panicked into its caller: a
/// panic in code of the caller's that runs on the serving thread (a
/// [`FromResult`](crate::FromResult) or `Deserialize` impl reading the
/// result) is caught there, and resumed by the poll that finds it, in the
/// task awaiting the future (tokio's `JoinHandle` reports it as a panic).
/// The serving thread goes on with the queue. A result nobody waits for
/// whose `Drop` panics is dropped on the serving thread, the panic caught.
/// Polling the future again after it resolved panics.
///
/// [`Function::call_async`]: crate::Function::call_async
/// [`Call::call_async`]: crate::Call::call_async
#[must_use = "a CallFuture does nothing until it is awaited or polled"]
pub struct CallFuture<R> {
    state: State<R>,
}

enum State<R> {
    /// Not in the queue yet: `waiter` is set once it waits for room.
    Start {
        job: Job,
        slot: Arc<Slot<R>>,
        waiter: Option<u64>,
    },
    /// In the queue, or running.
    Queued(Arc<Slot<R>>),
    /// Resolved without a job (an error found before the call).
    Ready(Result<R, Error>),
    /// The result was taken.
    Done,
}

// The result is only ever moved, never pinned.
impl<R> Unpin for CallFuture<R> {}

impl<R: Send + 'static> CallFuture<R> {
    /// A future that runs `work` of `function` and `inputs` on a serving
    /// thread, inside its held-GIL scope (or, for a long function, outside
    /// it). The inputs stay in the job, and are dropped with it by the
    /// thread that polls the future (by the serving thread if the future is
    /// gone): their drop must not wait for the GIL.
    pub(crate) fn new<C: Callee, I: Send + 'static>(
        function: C,
        inputs: I,
        deadline: Option<Deadline>,
        stop_on_drop: bool,
        work: impl FnOnce(&C, &I) -> Result<R, Error> + Send + 'static,
    ) -> CallFuture<R> {
        let slot = Arc::new(Slot {
            cancelled: AtomicBool::new(false),
            stopper: stop_on_drop.then(Arc::default),
            inner: Mutex::new(SlotInner {
                result: None,
                kept: Kept::default(),
                spent: None,
                waker: None,
                resolved: false,
            }),
        });
        let task = Box::new(Typed {
            function,
            inputs,
            deadline,
            work: Some(work),
            slot: Some(Arc::clone(&slot)),
        });
        CallFuture {
            state: State::Start {
                job: Job { task },
                slot,
                waiter: None,
            },
        }
    }
}

impl<R> CallFuture<R> {
    /// A future resolved already: an error found before the call.
    pub(crate) fn ready(result: Result<R, Error>) -> CallFuture<R> {
        CallFuture {
            state: State::Ready(result),
        }
    }
}

/// The slot's lock, unless this is a forked child and the lock is held: a
/// thread of the parent's held it at the fork (delivering a result), and
/// no thread in the child will ever let it go.
fn lock_unless_forked<R>(slot: &Slot<R>) -> Option<MutexGuard<'_, SlotInner<R>>> {
    match slot.inner.try_lock() {
        Ok(inner) => Some(inner),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) if runtime::is_forked_child() => None,
        // A delivery under way: a few stores.
        Err(TryLockError::WouldBlock) => {
            Some(slot.inner.lock().unwrap_or_else(PoisonError::into_inner))
        }
    }
}

/// What a poll on a thread that holds the GIL gets, instead of a wait that
/// could never end: the serving thread needs the GIL to make the call.
fn holds_gil_error() -> Error {
    Error::InvalidArgument(
        "an async call was awaited on a thread that holds the GIL (in a hold_gil scope, in a \
         call, or a Python thread): its serving thread needs the GIL, so blocking on it here \
         would wait for ever; await it outside the scope, or make the call synchronously"
            .into(),
    )
}

impl<R> Future for CallFuture<R> {
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => panic!("a CallFuture polled after it resolved"),
                State::Ready(result) => return Poll::Ready(result),
                State::Start { job, slot, waiter } => {
                    if let Err(why) = runtime::check_callable() {
                        if let Some(id) = waiter {
                            // After a finalization too: room granted to this
                            // future goes on to the next waiter, which
                            // resolves in turn (trial 25: they slept on).
                            if queue::usable() {
                                queue::abandon(id);
                            }
                        }
                        return Poll::Ready(Err(why.into()));
                    }
                    if runtime::holds_gil() {
                        if let Some(id) = waiter {
                            queue::abandon(id);
                        }
                        return Poll::Ready(Err(holds_gil_error()));
                    }
                    let expires = job.task.expires();
                    let passed = expires.and_then(|at| {
                        let now = Instant::now();
                        (at <= now).then_some(now)
                    });
                    if let Some(now) = passed {
                        // Past its deadline before it got into the queue
                        // (waiting for room, or made with one passed): it
                        // never runs, and its place goes to the next.
                        if let Some(id) = waiter {
                            queue::abandon(id);
                        }
                        // No waker: the future was not polled as queued.
                        let _ = job.task.expire(now);
                        this.state = State::Queued(slot);
                        continue;
                    }
                    let pushed = queue::push(job, waiter, cx.waker());
                    if let Some(at) = expires {
                        // Once queued, or waiting for room: resolved at its
                        // deadline either way.
                        timer::watch(at);
                    }
                    match pushed {
                        Pushed::Queued {
                            start_thread,
                            behind,
                        } => {
                            timer::watch_for_stall(behind);
                            if start_thread {
                                thread::start_leader();
                            }
                            this.state = State::Queued(slot);
                        }
                        Pushed::Full(job, id) => {
                            this.state = State::Start {
                                job,
                                slot,
                                waiter: Some(id),
                            };
                            return Poll::Pending;
                        }
                    }
                }
                State::Queued(slot) => {
                    let Some(mut inner) = lock_unless_forked(&slot) else {
                        slot.cancel();
                        return Poll::Ready(Err(Unavailable::Forked.into()));
                    };
                    if let Some(result) = inner.result.take() {
                        // Freed here, on the polling thread.
                        let leftovers = inner.take_leftovers();
                        drop(inner);
                        drop(leftovers);
                        match result {
                            Ok(result) => return Poll::Ready(result),
                            Err(panic) => std::panic::resume_unwind(panic),
                        }
                    }
                    if runtime::check_latched().is_err() || runtime::holds_gil() {
                        drop(inner);
                        slot.cancel();
                        return Poll::Ready(Err(match runtime::check_latched() {
                            Err(why) => why.into(),
                            Ok(()) => holds_gil_error(),
                        }));
                    }
                    match &mut inner.waker {
                        Some(waker) => waker.clone_from(cx.waker()),
                        None => inner.waker = Some(cx.waker().clone()),
                    }
                    drop(inner);
                    this.state = State::Queued(slot);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<R> Drop for CallFuture<R> {
    fn drop(&mut self) {
        match &self.state {
            State::Start {
                waiter: Some(id), ..
            } if queue::usable() => queue::abandon(*id),
            State::Queued(slot) => {
                slot.cancel();
                if let Some(stopper) = &slot.stopper {
                    if queue::usable() {
                        stopper.stop();
                    }
                }
            }
            _ => {}
        }
    }
}

impl<R> fmt::Debug for CallFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start { waiter: None, .. } => "not started",
            State::Start { .. } => "waiting for room in the queue",
            State::Queued(_) => "queued or running",
            State::Ready(_) => "ready",
            State::Done => "done",
        };
        f.debug_struct("CallFuture").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    //! A job run on another thread, as a serving thread runs it, without
    //! the queue or Python: where its parts are dropped, and that each is
    //! dropped once.

    use super::*;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};
    use std::thread::{self, ThreadId};
    use std::time::Duration;

    type Drops = Arc<Mutex<Vec<(&'static str, ThreadId)>>>;

    /// Notes the thread it is dropped on.
    struct Noted(&'static str, Drops);

    impl Drop for Noted {
        fn drop(&mut self) {
            self.1
                .lock()
                .unwrap()
                .push((self.0, thread::current().id()));
        }
    }

    struct Probe {
        stats: CallStats,
        _noted: Noted,
    }

    impl Callee for Probe {
        fn stats(&self) -> &CallStats {
            &self.stats
        }

        fn name(&self) -> &str {
            "probe"
        }
    }

    /// A job that returns a `Noted("result")`, its function a
    /// `Noted("function")`; and its future, as once queued.
    fn job(drops: &Drops) -> (Box<dyn Task>, CallFuture<Noted>) {
        let function = Probe {
            stats: CallStats::default(),
            _noted: Noted("function", Arc::clone(drops)),
        };
        let result = Noted("result", Arc::clone(drops));
        let mut future = CallFuture::new(function, (), None, false, move |_: &Probe, _: &()| {
            Ok(result)
        });
        let State::Start { job, slot, .. } = std::mem::replace(&mut future.state, State::Done)
        else {
            unreachable!("a new future has its job");
        };
        (
            job.task,
            CallFuture {
                state: State::Queued(slot),
            },
        )
    }

    fn run_elsewhere(task: Box<dyn Task>) -> ThreadId {
        thread::spawn(move || {
            drop(task.run(None));
            thread::current().id()
        })
        .join()
        .unwrap()
    }

    fn poll<R>(future: &mut CallFuture<R>) -> Poll<Result<R, Error>> {
        Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_job_is_freed_by_the_thread_that_polls_the_future() {
        let drops = Drops::default();
        let (task, mut future) = job(&drops);
        run_elsewhere(task);
        // The job's allocation and its function wait in the slot.
        assert!(drops.lock().unwrap().is_empty());
        let Poll::Ready(Ok(result)) = poll(&mut future) else {
            panic!("the result is in");
        };
        let here = thread::current().id();
        assert_eq!(*drops.lock().unwrap(), [("function", here)]);
        drop((result, future));
        assert_eq!(
            *drops.lock().unwrap(),
            [("function", here), ("result", here)]
        );
    }

    #[test]
    fn a_result_delivered_to_a_dropped_future_goes_with_the_future() {
        let drops = Drops::default();
        let (task, future) = job(&drops);
        run_elsewhere(task);
        drop(future);
        let here = thread::current().id();
        let mut dropped = drops.lock().unwrap().clone();
        dropped.sort_by_key(|(what, _)| *what);
        assert_eq!(dropped, [("function", here), ("result", here)]);
    }

    #[test]
    fn in_a_forked_child_a_slot_locked_at_the_fork_fails_the_poll_at_once() {
        crate::runtime::watch_fork();
        let drops = Drops::default();
        let (_task, mut future) = job(&drops);
        let State::Queued(slot) = &future.state else {
            unreachable!("job() queues the future");
        };
        // A thread of the parent's holds the lock across the fork, as a
        // serving thread delivering a result would.
        let slot = Arc::clone(slot);
        let status = crate::runtime::fork_while_held(
            move |held| {
                let _inner = slot.inner.lock().unwrap();
                held();
            },
            // A failed poll exits 3; a hung one is killed (None).
            || match poll(&mut future) {
                Poll::Ready(Err(Error::Unavailable(Unavailable::Forked))) => 0,
                _ => 3,
            },
            Duration::from_secs(20),
        );
        assert_eq!(status, Some(0), "the child's poll failed or hung");
    }

    /// Notes the thread it is dropped on, then panics.
    struct PanicsOnDrop(Drops);

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.0
                .lock()
                .unwrap()
                .push(("result", thread::current().id()));
            panic!("a result's Drop panics");
        }
    }

    /// The future dropped while its result went in (its cancel found the
    /// slot locked, so the delivery did not see it cancelled): the serving
    /// thread's handle is the slot's last, and the result's Drop, which
    /// panics, runs there. Caught, not the end of the serving thread
    /// (trial 20: a 30 ms pause injected in `deliver` ended two serving
    /// threads, after which long calls never ran).
    #[test]
    fn a_result_left_to_the_serving_thread_is_dropped_there_its_panic_caught() {
        let drops = Drops::default();
        let function = Probe {
            stats: CallStats::default(),
            _noted: Noted("function", Arc::clone(&drops)),
        };
        let result = PanicsOnDrop(Arc::clone(&drops));
        let mut future = CallFuture::new(function, (), None, false, move |_: &Probe, _: &()| {
            Ok(result)
        });
        let State::Start { job, slot, .. } = std::mem::replace(&mut future.state, State::Done)
        else {
            unreachable!("a new future has its job");
        };
        // The future's handle goes without a cancel seen by the delivery.
        drop((slot, future));
        assert!(!job.task.cancelled());
        let runner = thread::spawn(move || {
            drop(job.task.run(None));
            thread::current().id()
        })
        .join()
        .expect("the serving thread lives on");
        let mut dropped = drops.lock().unwrap().clone();
        dropped.sort_by_key(|(what, _)| *what);
        assert_eq!(dropped, [("function", runner), ("result", runner)]);
    }

    #[test]
    fn a_job_whose_future_was_dropped_first_drops_everything_where_it_runs() {
        let drops = Drops::default();
        let (task, future) = job(&drops);
        assert!(!task.cancelled());
        drop(future);
        assert!(task.cancelled());
        let runner = run_elsewhere(task);
        let mut dropped = drops.lock().unwrap().clone();
        dropped.sort_by_key(|(what, _)| *what);
        assert_eq!(dropped, [("function", runner), ("result", runner)]);
    }
}
