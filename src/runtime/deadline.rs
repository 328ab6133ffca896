//! Deadlines on calls: a call's [`Deadline`], and the watchdog that stops
//! Python code running past it.
//!
//! A call with a deadline is [armed](Watch::arm) once it holds the GIL. One
//! thread of the crate, the watchdog (`pim-deadline`, started by the
//! first armed call), keeps the deadlines of armed calls in a min-heap under
//! a mutex and sleeps on a condition variable until the earliest. When it
//! passes, the watchdog takes the GIL as the crate always does
//! ([`Interpreter::gil`]: never after a host finalized Python, nothing in a
//! forked child) and raises `py_in_mem.DeadlineExceeded` in the calling
//! thread (`PyThreadState_SetAsyncExc`), which Python raises there at its
//! next bytecode check: a long loop in C (numpy's) finishes first.
//!
//! Python code that runs gives the GIL to a thread asking for it only after
//! one switch interval (`sys.getswitchinterval()`, 5 ms): the waiter must
//! wait that long before it may ask the holder to drop it. So the watchdog
//! asks for the GIL [`lead`] early, one switch interval less a little, and
//! gets it about when the deadline passes. Should it get the GIL sooner (the
//! call gave it up, in C code or asleep), by no more than [`EARLY_HOLD`], it
//! keeps it until the deadline, so the call is at most paused that long
//! before its deadline, never stopped early; sooner than that, it gives the
//! GIL back and asks again at the deadline itself.
//!
//! Each armed call shares one state with the watchdog, decided race-free
//! because both sides change it only holding the GIL:
//!
//! - `RUNNING` when armed;
//! - `FIRED` by the watchdog once it raised the exception (and raises it
//!   again while the call runs on, [`REFIRE_MIN`]), which it does
//!   only in the call's own thread state: on CPython 3.11 and earlier a
//!   thread the call is starting carries the call's thread ident until it
//!   runs, and would take an exception raised by ident, so the watchdog
//!   asks again a little later then;
//! - `FINISHED` by the calling thread ([`Watch::finish`], or the watch's
//!   drop) right after the Python call returns, before it gives the GIL up.
//!   Had the watchdog fired and Python not raised the exception yet (the
//!   call returned first, from C code), the calling thread takes it back.
//!
//! Calls nest (Python code calling back into Rust, which calls again): one
//! thread then has several armed calls, and one pending exception slot for
//! all of them. An inner call that takes back its own exception puts it
//! back for an outer call that was stopped too.
//!
//! Locks: the calling thread takes the heap's mutex while holding the GIL
//! (GIL, then mutex); the watchdog never holds the mutex while it waits for
//! the GIL. A finished call's entry stays in the heap until its deadline
//! comes up (it is then dropped unfired) or a prune removes it.

use std::cell::{Cell, RefCell};
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::gil::{Gil, Interpreter};
use super::glue;
use crate::error::Error;

/// A call's deadline, fixed when the call is made: for the call's refusal
/// to start past it, the watchdog's arming, and an async call's expiry in
/// the queue ([`crate::serve`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    /// When the call was made.
    pub(crate) started: Instant,
    /// When the deadline passes.
    pub(crate) at: Instant,
    /// The limit as the caller gave it.
    pub(crate) limit: Duration,
}

impl Deadline {
    /// The timeout of a call of `function` not made: its deadline had
    /// passed at `now`, before it started.
    pub(crate) fn not_called(&self, function: &str, now: Instant) -> Error {
        Error::Timeout {
            function: function.to_owned(),
            limit: self.limit,
            elapsed: now.saturating_duration_since(self.started),
            ran: false,
            still_running: false,
        }
    }
}

/// The call runs (or is about to), and may be stopped.
const RUNNING: u8 = 0;
/// The call returned; the watchdog must leave its thread alone.
const FINISHED: u8 = 1;
/// The watchdog raised the exception in the call's thread.
const FIRED: u8 = 2;

/// What a call and the watchdog share.
struct Shared {
    state: AtomicU8,
    /// How many times the watchdog raised the exception in the call's
    /// thread (it raises it again while the call runs on: [`REFIRE_MIN`]).
    raises: AtomicU32,
    /// The calling thread's Python thread ident.
    thread: libc::c_ulong,
    /// Its thread state, as a number (only compared, never read): the
    /// exception goes to this state, not merely to the first with the ident
    /// ([`glue::raise_deadline`]).
    tstate: usize,
}

/// How much less than one switch interval before a deadline the watchdog
/// asks for the GIL: the time its wake-up and the hand-over take.
const LEAD_MARGIN: Duration = Duration::from_micros(200);

/// How soon the watchdog asks again when a thread the call is starting
/// would take the exception ([`stop`]), and at the most, later on.
const RETRY_MIN: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(100);

/// The longest the watchdog holds the GIL waiting for a deadline, when it
/// got the GIL early.
const EARLY_HOLD: Duration = Duration::from_millis(1);

/// A call still running after the watchdog raised the exception has
/// swallowed it: a bare `except:`, or an exception that landed in a
/// `__del__` or a weakref callback, which Python reports ("Exception
/// ignored in ...") and goes on from. The watchdog raises it again after
/// as long as the call's limit, at least `REFIRE_MIN` and at most
/// `REFIRE_MAX`, and again at that interval until the call returns, so
/// that a call stopped once stays stopped: handlers that catch it and
/// return at once still return what they return.
const REFIRE_MIN: Duration = Duration::from_millis(100);
const REFIRE_MAX: Duration = Duration::from_secs(1);

/// How long before a deadline the watchdog asks for the GIL: one switch
/// interval (as start-up read it), less [`LEAD_MARGIN`], at most 50 ms.
/// Called holding the GIL (see `pim_switch_interval`).
fn lead() -> Duration {
    let interval = Duration::try_from_secs_f64(glue::switch_interval()).unwrap_or_default();
    interval
        .min(Duration::from_millis(50))
        .saturating_sub(LEAD_MARGIN)
}

/// One deadline in the heap.
struct Entry {
    /// When the watchdog asks for the GIL: the order of the heap.
    ask_at: Instant,
    /// The deadline, or once the exception was raised, when to raise it
    /// again.
    at: Instant,
    /// How long after a raise the watchdog raises the exception again
    /// while the call runs ([`REFIRE_MIN`]).
    refire: Duration,
    /// Order of arming, so that entries with one deadline compare unequal.
    seq: u64,
    call: Arc<Shared>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.ask_at, self.seq) == (other.ask_at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.ask_at, self.seq).cmp(&(other.ask_at, other.seq))
    }
}

/// The heap of deadlines, earliest on top.
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// At this many entries the next push first drops finished ones, so
    /// that many calls with long deadlines that all return in time do not
    /// grow the heap without bound.
    prune_at: usize,
}

/// The smallest [`Queue::prune_at`].
const PRUNE_FLOOR: usize = 256;

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    heap: BinaryHeap::new(),
    seq: 0,
    prune_at: PRUNE_FLOOR,
});

/// Signalled when a new earliest deadline is pushed.
static WAKE: Condvar = Condvar::new();

/// The watchdog is started once, by the first armed call.
static WATCHDOG: Once = Once::new();

thread_local! {
    /// This thread's armed calls, outermost first (calls nest). It has a
    /// destructor (the `Vec`): a call made from another thread-local's
    /// destructor after it ran finds it gone, and is armed without it
    /// (trial 26: `with_borrow_mut` there aborted the process).
    static ARMED: RefCell<Vec<Arc<Shared>>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// Whether [`STOPPER`] holds a stopper: read by every call, and with no
    /// destructor, so that a thread that never makes an async call's job
    /// registers none (a call made from another thread-local's destructor
    /// at thread exit would register one then, and glibc would lose it:
    /// `make memcheck`, `tests/lifecycle.rs`).
    static HAS_STOPPER: Cell<bool> = const { Cell::new(false) };
    /// The stopper of the async call this serving thread is making
    /// ([`with_stopper`]), for the call's outermost [`Watch`] to take.
    static STOPPER: Cell<Option<Arc<Stopper>>> = const { Cell::new(None) };
}

/// Stops a running call when its async future is dropped
/// (`Call::stop_on_drop`): shared by the future and the call's [`Watch`],
/// which registers the call in it when armed. [`stop`](Stopper::stop) has
/// the watchdog raise `DeadlineExceeded` in the call's thread now, as at a
/// deadline.
#[derive(Default)]
pub(crate) struct Stopper {
    inner: Mutex<StopperInner>,
}

#[derive(Default)]
struct StopperInner {
    /// The future was dropped.
    stopped: bool,
    /// The call, once armed.
    call: Option<Arc<Shared>>,
}

impl Stopper {
    fn lock(&self) -> MutexGuard<'_, StopperInner> {
        // Two fields, each set in one statement: go on after a panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The future is dropped: the call, if armed and still running, is
    /// stopped by the watchdog as soon as it gets the GIL; if not armed
    /// yet, it is stopped when armed. Never waits for the GIL (the heap's
    /// lock is never held while waiting for it), so an executor's thread
    /// may call it. Not in a forked child: the locks may be held by a
    /// thread of the parent's.
    pub(crate) fn stop(&self) {
        let call = {
            let mut inner = self.lock();
            inner.stopped = true;
            inner.call.take()
        };
        if let Some(call) = call {
            stop_now(call);
        }
    }

    /// Registers `call` (just armed) to be stopped; true if the future was
    /// dropped already, and the call is to be stopped now.
    fn register(&self, call: &Arc<Shared>) -> bool {
        let mut inner = self.lock();
        if inner.stopped {
            return true;
        }
        inner.call = Some(Arc::clone(call));
        false
    }
}

/// Runs `work` (an async call, on a serving thread) with `stopper` for
/// the call's outermost [`Watch`] to take; a call without a deadline is
/// then armed all the same, so that it can be stopped.
pub(crate) fn with_stopper<T>(stopper: Option<Arc<Stopper>>, work: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            // A call that never armed (it failed before Python ran) leaves
            // it: the next job must not find it.
            HAS_STOPPER.set(false);
            let _ = STOPPER.try_with(Cell::take);
        }
    }
    let Some(stopper) = stopper else {
        return work();
    };
    if STOPPER.try_with(|cell| cell.set(Some(stopper))).is_ok() {
        HAS_STOPPER.set(true);
    }
    let _clear = Clear;
    work()
}

/// The stopper of the async call this thread is making, taken: by the
/// call's outermost [`Watch`], so that calls nested in it do not see it.
#[inline]
pub(crate) fn take_stopper() -> Option<Arc<Stopper>> {
    if !HAS_STOPPER.replace(false) {
        return None;
    }
    STOPPER.try_with(Cell::take).ok().flatten()
}

/// How far off the deadline of a call armed only to be stopped
/// ([`Stopper`]) is: never reached.
const NO_DEADLINE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Deadline {
    /// The deadline of a call armed only so that it can be stopped
    /// ([`Stopper`]): one that never passes.
    pub(crate) fn never() -> Option<Deadline> {
        let started = Instant::now();
        Some(Deadline {
            started,
            at: started.checked_add(NO_DEADLINE)?,
            limit: NO_DEADLINE,
        })
    }
}

/// Has the watchdog raise `DeadlineExceeded` in `call`'s thread now, as
/// at its deadline, unless it has returned.
fn stop_now(call: Arc<Shared>) {
    if call.state.load(Ordering::Acquire) == FINISHED {
        return;
    }
    let now = Instant::now();
    let mut queue = queue();
    queue.seq += 1;
    let seq = queue.seq;
    queue.heap.push(Reverse(Entry {
        ask_at: now,
        at: now,
        refire: REFIRE_MIN,
        seq,
        call,
    }));
    drop(queue);
    WAKE.notify_one();
}

/// The heap's lock. Nothing that holds it can panic halfway through a
/// change, so a poisoned lock is taken as it is.
fn queue() -> MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A call with a deadline, armed, for as long as the calling thread holds
/// the GIL `'g`: [`finish`](Watch::finish) (or dropping it) marks the call
/// finished, with the GIL still held.
pub(crate) struct Watch<'g> {
    gil: &'g Gil,
    call: Arc<Shared>,
}

impl<'g> Watch<'g> {
    /// Arms a call of this thread, which holds `gil` now and until the
    /// watch ends, to be stopped at `deadline`. Starts the watchdog on
    /// first use.
    ///
    /// # Panics
    /// If the operating system cannot start the watchdog thread (as
    /// `std::thread::spawn` panics).
    pub(crate) fn arm(
        gil: &'g Gil,
        deadline: &Deadline,
        stopper: Option<Arc<Stopper>>,
    ) -> Watch<'g> {
        start_watchdog();
        let at = deadline.at;
        let call = Arc::new(Shared {
            state: AtomicU8::new(RUNNING),
            raises: AtomicU32::new(0),
            thread: glue::thread_ident(),
            tstate: glue::thread_state(),
        });
        let _ = ARMED.try_with(|armed| armed.borrow_mut().push(Arc::clone(&call)));
        let mut queue = queue();
        if queue.heap.len() >= queue.prune_at {
            queue
                .heap
                .retain(|Reverse(entry)| entry.call.state.load(Ordering::Acquire) != FINISHED);
            queue.prune_at = PRUNE_FLOOR.max(2 * queue.heap.len());
        }
        queue.seq += 1;
        let seq = queue.seq;
        queue.heap.push(Reverse(Entry {
            ask_at: at.checked_sub(lead()).unwrap_or(at),
            at,
            refire: deadline.limit.clamp(REFIRE_MIN, REFIRE_MAX),
            seq,
            call: Arc::clone(&call),
        }));
        let earliest = queue.heap.peek().is_some_and(|Reverse(top)| top.seq == seq);
        drop(queue);
        if earliest {
            WAKE.notify_one();
        }
        // Its future dropped between the job's start and now: stopped now.
        if stopper.is_some_and(|stopper| stopper.register(&call)) {
            stop_now(Arc::clone(&call));
        }
        Watch { gil, call }
    }

    /// How many times the watchdog has raised the exception in the call's
    /// thread (it cannot while this thread holds the GIL): 0 while it has
    /// not fired.
    pub(crate) fn raises(&self) -> u32 {
        self.call.raises.load(Ordering::Acquire)
    }

    /// Marks the call finished (the Python call has returned), and tells
    /// whether the watchdog had fired. If it had, any `DeadlineExceeded`
    /// Python has not raised yet is taken back, so it cannot surface in
    /// later code of this thread.
    pub(crate) fn finish(self) -> bool {
        self.end()
        // Dropping the watch ends it again: a no-op now.
    }

    fn end(&self) -> bool {
        // The GIL is held (self.gil), so the watchdog cannot be between its
        // raise and its store of FIRED.
        let before = self.call.state.swap(FINISHED, Ordering::AcqRel);
        if before == FINISHED {
            return false; // ended already
        }
        // Gone (in a thread-exit destructor): no outer call is known.
        let outer_fired = ARMED
            .try_with(|armed| {
                let mut armed = armed.borrow_mut();
                if let Some(at) = armed.iter().rposition(|c| Arc::ptr_eq(c, &self.call)) {
                    armed.remove(at);
                }
                armed
                    .iter()
                    .any(|c| c.state.load(Ordering::Acquire) == FIRED)
            })
            .unwrap_or(false);
        if before == FIRED {
            // Not done only if a thread this one started from C code, with
            // no bytecode run since the raise, has not run yet (CPython 3.11
            // and earlier): then the exception may surface in later code.
            glue::clear_deadline(self.gil, self.call.thread, self.call.tstate);
            if outer_fired {
                // The slot was the outer call's too: its exception back.
                let _ = glue::raise_deadline(self.gil, self.call.thread, self.call.tstate);
            }
        }
        before == FIRED
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        // A call that failed before Python ran, or a panic: finished all
        // the same, with the GIL still held (the watch borrows it).
        let _ = self.end();
    }
}

fn start_watchdog() {
    WATCHDOG.call_once(|| {
        // SAFETY: only armed calls start the watchdog, and a call holds the
        // GIL, so Python runs.
        let python = unsafe { Interpreter::assume_started() };
        super::thread_stack::python_thread("pim-deadline")
            .spawn(move || watch(python))
            .expect("start the pim-deadline watchdog thread");
    });
}

/// The watchdog's loop: sleeps until the earliest deadline, and stops the
/// call it belongs to if it still runs. Never returns.
fn watch(python: Interpreter) {
    // This thread's Python thread state, made now: made at the first
    // deadline, it would cost a second wait for the GIL there.
    drop(python.gil());
    let mut queue = queue();
    loop {
        let now = Instant::now();
        let Some(Reverse(top)) = queue.heap.peek() else {
            queue = WAKE.wait(queue).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        if top.call.state.load(Ordering::Acquire) == FINISHED {
            queue.heap.pop(); // returned
        } else if top.ask_at > now {
            let wait = top.ask_at - now;
            queue = WAKE
                .wait_timeout(queue, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        } else if let Some(Reverse(due)) = queue.heap.pop() {
            // Never wait for the GIL holding the heap's lock.
            drop(queue);
            let again = stop(python, due);
            queue = self::queue();
            if let Some(entry) = again {
                queue.heap.push(Reverse(entry));
            }
        }
    }
}

/// Takes the GIL and, if the call still runs at its deadline (or at its
/// time to raise again, [`REFIRE_MIN`]), raises `DeadlineExceeded` in its
/// thread. Returns the entry to ask again: at the deadline itself if the
/// GIL came too early, or to raise again later.
fn stop(python: Interpreter, due: Entry) -> Option<Entry> {
    let call = &due.call;
    if call.state.load(Ordering::Acquire) == FINISHED {
        return None;
    }
    // Fails, touching nothing, once a host finalized Python or in a forked
    // child: there is nothing to stop then.
    let Ok(gil) = python.gil() else {
        return None;
    };
    let now = Instant::now();
    if now < due.at {
        let early = due.at - now;
        if early > EARLY_HOLD {
            drop(gil);
            return Some(Entry {
                ask_at: due.at,
                ..due
            });
        }
        // Holding the GIL (no lock of the crate's), at most EARLY_HOLD.
        thread::sleep(early);
    }
    // The calling thread changes the state only holding the GIL: it is
    // not FINISHED from this check to the store.
    if call.state.load(Ordering::Acquire) == FINISHED {
        return None;
    }
    match glue::raise_deadline(&gil, call.thread, call.tstate) {
        Ok(true) => {
            call.raises.fetch_add(1, Ordering::AcqRel);
            call.state.store(FIRED, Ordering::Release);
            // Raised again if the call swallows it (REFIRE_MIN); lead()
            // reads Python's switch interval, with the GIL held.
            let at = Instant::now() + due.refire;
            let ask_at = at.checked_sub(lead()).unwrap_or(at);
            drop(gil);
            return Some(Entry { ask_at, at, ..due });
        }
        Ok(false) => {
            // A thread the call is starting carries its ident, and would
            // take the exception (CPython 3.11 and earlier): ask again once
            // it runs, soon, backing off if it does not.
            drop(gil);
            let late = Instant::now().saturating_duration_since(due.at);
            return Some(Entry {
                ask_at: Instant::now() + (late / 4).clamp(RETRY_MIN, RETRY_MAX),
                ..due
            });
        }
        // The class cannot be made (no memory): the call runs on.
        Err(_) => {}
    }
    drop(gil);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call's share, returned already: the watchdog leaves it alone.
    fn returned() -> Arc<Shared> {
        Arc::new(Shared {
            state: AtomicU8::new(FINISHED),
            raises: AtomicU32::new(0),
            thread: 0,
            tstate: 0,
        })
    }

    #[test]
    fn a_stopper_stops_its_call_whichever_comes_first_the_drop_or_the_arming() {
        // Armed, then dropped: the drop takes the call, to stop it.
        let stopper = Stopper::default();
        let call = returned();
        assert!(!stopper.register(&call));
        assert!(stopper.lock().call.is_some());
        stopper.stop();
        let inner = stopper.lock();
        assert!(inner.stopped && inner.call.is_none());
        drop(inner);
        // Dropped between the job's start and the arming: the arming says
        // to stop the call at once, and keeps nothing.
        let stopper = Stopper::default();
        stopper.stop();
        assert!(stopper.register(&call));
        assert!(stopper.lock().call.is_none());
        // Nothing kept it: only this test holds the call.
        assert_eq!(Arc::strong_count(&call), 1);
    }
}
