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
//! - The timer while calls are queued behind a leader inside a call, and
//!   the leader while long jobs wait aside ([`super::thread`]), read how
//!   much time each thread that has been inside one call for the takeover
//!   time wanted a core ([`Seen::wanted`]: the time it ran and the time it
//!   was ready to run but waited for a core, from Linux's per-thread
//!   `schedstat`; its CPU clock where that cannot be read), and judge it
//!   over windows of at least [`OBSERVED`], one after the other ([`look`]):
//!   one that wanted a core for less than a twentieth of a window, and is
//!   not ready to run at the end of it ([`Seen::ready`], its state in
//!   `/proc`), is waiting, and counted in [`WAITING`] until its call ends
//!   ([`end`]) or a window finds it working. A waiting thread is asleep,
//!   wanting next to nothing; the quarter second spans schedulers' slices
//!   (valgrind's, which runs one thread at a time, gave a working thread
//!   none over 20 ms).
//! - A thread that other load keeps from its core (other processes on a
//!   busy machine) uses little CPU time, and by that alone looked waiting:
//!   more threads then started, and CPU-bound long calls ran on more
//!   threads than cores (3 at once on 2 in one cell of `make matrix` run
//!   beside `make memcheck`). Its wait for a core counts as wanted, but
//!   Linux adds that wait only when it ends, so a thread still on the run
//!   queue is known by its state.
//! - A thread that waits is not busy: another may start to lead, or to run
//!   the long jobs set aside, up to [`HARD_MOST`] times the most. A thread
//!   doing work (numpy's loops, without the GIL) is busy, so CPU-bound long
//!   calls still overlap up to the core count only.
//!
//! - A thread counted waiting is uncounted once its call ends, when a look
//!   finds it working over a window, or, before the count is used, once it
//!   has used [`WORKS_AGAIN`] of CPU time since it was last judged
//!   ([`recheck`]).
//!
//! # Limitations
//!
//! Threads are never ended: a call that never returns keeps its thread for
//! good, and once [`HARD_MOST`] times the most are started, calls that
//! never return can again keep them all. Calls started while others were
//! counted waiting run on when those compute again: calls that wait, then
//! compute, may compute on up to [`HARD_MOST`] times the most threads at
//! once.
//!
//! A thread asleep for the GIL is asleep: one that waits a whole window for
//! it (held by Python code that runs on, or by a thread kept from its core)
//! counts as waiting, as a thread waiting for any other lock does, until it
//! gets it and works again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::lead::{self, Own};
use crate::runtime::task_state;

/// Threads started, waiting ones included, are at most this many times
/// [`max_threads`](super::max_threads).
pub(super) const HARD_MOST: usize = 4;

/// How long a thread's CPU time is watched before it is found waiting.
const OBSERVED: Duration = Duration::from_millis(250);

/// Time a thread counted waiting may want a core ([`Seen::wanted`]) before
/// it counts as busy again ([`recheck`]): a waiting thread wants next to
/// none; one that waits in bursts of work is counted busy until the next
/// look finds it waiting again (the safe side: fewer threads).
const WORKS_AGAIN: Duration = Duration::from_millis(5);

/// What a serving thread shares with the timer.
struct Shared {
    /// When its current call started ([`lead::mark`]); 0 between calls.
    call: AtomicU64,
    /// The timer found it waiting in its current call: counted in
    /// [`WAITING`] while set. Cleared, and uncounted, by whoever clears it
    /// first: the thread as its call ends ([`end`]), or the timer when it
    /// finds it working again.
    waiting: AtomicBool,
}

/// A serving thread, as the timer sees it.
struct Seen {
    shared: &'static Own<Shared>,
    /// Its CPU-time clock.
    clock: libc::clockid_t,
    /// Its folder in `/proc` (`/proc/self/task/<tid>`), if its scheduler
    /// statistics could be read there when it started.
    proc: Option<PathBuf>,
    /// The call, the time it had wanted a core ([`Seen::wanted`]) and the
    /// instant at the start of the window the timer judges it over.
    window: Option<(u64, Duration, Instant)>,
}

impl Seen {
    /// The time this thread has wanted a core: run, or waited to run (on
    /// the run queue, ready). From its `schedstat` when that was readable
    /// at its start (None if it cannot be read now: not judged then), else
    /// its CPU clock.
    fn wanted(&self) -> Option<Duration> {
        match &self.proc {
            Some(proc) => task_state::schedstat(proc).map(|stat| stat.wanted),
            None => cpu_time(self.clock),
        }
    }

    /// Whether this thread is ready to run (running, or on the run queue)
    /// by its state in `/proc`: a thread waiting in C code sleeps. False
    /// where that cannot be read.
    fn ready(&self) -> bool {
        self.proc.as_deref().is_some_and(task_state::is_ready)
    }
}

static THREADS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

/// Serving threads found waiting, in the calls they are still in.
static WAITING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARED: std::cell::Cell<Option<&'static Own<Shared>>> =
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
    let shared: &'static Own<Shared> = Box::leak(Box::new(Own(Shared {
        call: AtomicU64::new(0),
        waiting: AtomicBool::new(false),
    })));
    SHARED.set(Some(shared));
    threads().push(Seen {
        shared,
        clock,
        proc: proc_of_this_thread(),
        window: None,
    });
}

/// This serving thread's call started at `at`.
#[inline]
pub(super) fn begin(at: Instant) {
    if let Some(shared) = SHARED.get() {
        shared.0.call.store(lead::mark(at), Ordering::Relaxed);
    }
}

/// This serving thread's call ended: it is not waiting any more.
#[inline]
pub(super) fn end() {
    if let Some(shared) = SHARED.get() {
        // SeqCst, as [`look`]'s swap and load: of this store then load and
        // that swap then load, one side sees the other's write (x86 would
        // let a Relaxed store pass the load, and both miss).
        shared.0.call.store(0, Ordering::SeqCst);
        uncount(&shared.0);
    }
}

/// Calls [`end`] when dropped: the call ends even if its job unwinds.
pub(super) struct EndOnDrop;

impl Drop for EndOnDrop {
    #[inline]
    fn drop(&mut self) {
        end();
    }
}

/// Serving threads found waiting, in the calls they are still in.
pub(super) fn waiting() -> usize {
    WAITING.load(Ordering::Relaxed)
}

fn uncount(shared: &Shared) {
    // A load first: at the end of every call, the flag is nearly always
    // clear, and a load costs less than a swap.
    if shared.waiting.load(Ordering::SeqCst) && shared.waiting.swap(false, Ordering::AcqRel) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Before the count is used ([`super::thread`]'s `busy`): a thread counted
/// waiting that has wanted a core for [`WORKS_AGAIN`] since it was last
/// judged is uncounted at once. Without this, nothing but the next look
/// (by the timer while calls are queued behind a stalled leader, by the
/// leader while long calls wait aside) would see it work again, and a call
/// that waits, then computes ("fetch, then compute") counted as waiting
/// for as long as it computed, while other long calls started beside it
/// (trial 20: four CPU-bound calls at once on 2 cores). Reads the times of
/// counted threads only; costs a load when none is.
pub(super) fn recheck(now: Instant) {
    if WAITING.load(Ordering::Acquire) == 0 {
        return;
    }
    for seen in threads().iter_mut() {
        let shared = &seen.shared.0;
        if !shared.waiting.load(Ordering::Acquire) {
            continue;
        }
        let Some((call, wanted_then, _)) = seen.window else {
            continue;
        };
        if shared.call.load(Ordering::SeqCst) != call {
            // Its call ended (and `end` uncounts it), or it is in another.
            uncount(shared);
            continue;
        }
        if let Some(wanted) = seen.wanted() {
            if wanted.saturating_sub(wanted_then) >= WORKS_AGAIN || seen.ready() {
                uncount(shared);
                seen.window = Some((call, wanted, now));
            }
        }
    }
}

/// The timer's look, at `now`, with `after` the takeover time: which
/// threads wait (see the module's docs). Each is judged over windows of at
/// least [`OBSERVED`], one after the other, so one that works again is
/// counted as busy within one window.
pub(super) fn look(now: Instant, after: Duration) {
    for seen in threads().iter_mut() {
        let shared = &seen.shared.0;
        let call = shared.call.load(Ordering::Relaxed);
        if call == 0 || now.saturating_duration_since(lead::instant_of(call)) < after {
            seen.window = None;
            continue;
        }
        match seen.window {
            Some((window_call, wanted_then, then)) if window_call == call => {
                let wall = now.saturating_duration_since(then);
                if wall < OBSERVED {
                    continue;
                }
                let Some(wanted) = seen.wanted() else {
                    continue;
                };
                if wanted.saturating_sub(wanted_then) < wall / 20 && !seen.ready() {
                    // Counted unless its call ended meanwhile (`end` cleared
                    // the mark: then it is not waiting). SeqCst: see `end`.
                    // The count goes up before the flag is set: the thread's
                    // `end` may clear the flag and take one off as soon as
                    // it is set, and the count must not wrap below zero
                    // meanwhile (trial 25: `busy` read 0 threads then).
                    WAITING.fetch_add(1, Ordering::AcqRel);
                    if shared.waiting.swap(true, Ordering::SeqCst) {
                        // Counted already.
                        WAITING.fetch_sub(1, Ordering::AcqRel);
                    } else if shared.call.load(Ordering::SeqCst) != call {
                        uncount(shared);
                    }
                } else {
                    uncount(shared);
                }
                seen.window = Some((call, wanted, now));
            }
            _ => seen.window = seen.wanted().map(|wanted| (call, wanted, now)),
        }
    }
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

/// This thread's folder in `/proc`, if its scheduler statistics can be
/// read there and are kept: a kernel that keeps none writes "0 0 0", where
/// this running thread has been given at least one slice.
fn proc_of_this_thread() -> Option<PathBuf> {
    let task = task_state::this_thread();
    let stat = task_state::schedstat(&task)?;
    (stat.slices > 0 && task_state::is_ready(&task)).then_some(task)
}
