//! Async calls, served: [`Function::call_async`](crate::Function::call_async)
//! and [`Call::call_async`](crate::Call::call_async) put the call in a
//! bounded queue, and threads of the crate's own make it, while the
//! executor's thread goes on with other tasks.
//!
//! # Why
//!
//! A synchronous call in an async handler blocks the executor's thread for
//! as long as it waits for the scheduler's turn and the GIL, and for the
//! call itself; `spawn_blocking` moves that wait to a pool of threads that
//! then contend for the GIL, handing it over on nearly every call (the
//! cost [`crate::scheduler`] exists to avoid). Here the calls go to a queue
//! instead, and one serving thread takes the GIL once for many of them.
//!
//! # How
//!
//! - **The queue** holds at most [`queue_capacity`] calls (1024 unless
//!   [`set_queue_capacity`] says otherwise). A future that finds it full
//!   waits for room asleep (its waker is kept, first come first served),
//!   so a burst of requests never grows it without bound. Calls are served
//!   in the order they entered the queue (a long call may wait aside,
//!   below); a future granted room enters when its executor next polls it.
//! - **The serving threads**, named `pim-serve-N`, start on the first
//!   async call, one more each time a long call needs one, up to one per
//!   core and the leader ([`max_threads`]) busy at once; a thread waiting
//!   in C code in a long call is not busy, and up to four times that many
//!   are started. One of them, the leader,
//!   takes the GIL and the turn once (a held-GIL scope, as
//!   [`hold_gil`](crate::hold_gil) takes them) and makes the queued calls
//!   back to back through the ordinary call path: the
//!   arguments, the retention rule, the conversion of the result and its
//!   errors are those of a synchronous call. It gives the GIL and the turn up
//!   when the queue is empty (then spins for [`idle_spin`], 200 µs unless
//!   [`set_idle_spin`] says otherwise, before it sleeps) and after each
//!   switch interval
//!   ([`scheduler::switch_interval`](crate::scheduler::switch_interval),
//!   Python's `sys.getswitchinterval()`), so synchronous callers and
//!   Python's own threads get their share.
//! - **Results are woken together** while the queue has a backlog: waking
//!   a task of the executor's is a system call, paid by the serving thread
//!   while it holds the GIL, so a result waits until the queue holds no
//!   more than 8 calls, and no more than there are results waiting, or for
//!   2 ms, counted when a call ends. A lone caller's result is woken at
//!   once; a result made before a call that stays in the scope, when the
//!   leader is taken over from (below), not when that call ends.
//! - **Long calls overlap**: a function the scheduler has found long (numpy
//!   runs it mostly without the GIL; see
//!   [`scheduler::set_long_call`](crate::scheduler::set_long_call)) is
//!   called outside the scope, and another serving thread takes over the
//!   queue meanwhile. With one long call per core running, the next long
//!   call waits aside for the first of them to finish, and the queue's
//!   other calls go on: a long call never holds the queue up once its
//!   function is known to be long.
//! - **A stalled leader is taken over from**: a call that stays inside the
//!   scope for [`takeover_after`] with calls queued (a function not yet
//!   known long, one that waits for I/O) has another serving thread take
//!   the queue over ([`set_takeover_after`]).
//! - **Deadlines in the queue**: a queued call whose deadline passes is
//!   taken out of the queue and its future resolved to
//!   [`Error::Timeout`](crate::Error::Timeout) then, by the crate's thread
//!   `pim-serve-timer`, even while no serving thread can take calls (a
//!   long call ahead, the GIL held elsewhere); a future waiting for room in
//!   a full queue resolves at its deadline too.
//! - **Cancellation**: a future dropped before its call starts means the
//!   call never runs; dropped during the call, the result is dropped, and
//!   the arguments given to Python are freed when Python lets them go. The
//!   call runs on to its end unless it was made with
//!   [`Call::stop_on_drop`](crate::Call::stop_on_drop), which has the
//!   deadline watchdog stop it as at a deadline.
//! - **Inputs are freed by the caller**: an owned array Python lets go of
//!   during its call goes back with the result, and is freed on the thread
//!   that polls the future, not on the serving thread: freeing memory of
//!   another thread's allocator arena can wait for that arena's lock, and
//!   the serving thread holds the GIL for the whole queue. The job's own
//!   allocation goes back the same way, with what the arguments hold
//!   besides (the list of the positional ones past the first, the keyword
//!   arguments, a [`Value`](crate::Value)'s lists and strings, the boxes
//!   that make a `Value` or an [`Object`](crate::Object) into its Python
//!   object): the serving thread frees nothing the caller allocated.
//! - **When Python cannot be called** (a child forked after start-up, a host
//!   that finalized Python), the future resolves at once to the same
//!   [`Error::Unavailable`](crate::Error::Unavailable) a synchronous call
//!   returns.
//!
//! # Limitations
//!
//! - **Do not block on an async call while holding the GIL**: inside a
//!   [`hold_gil`](crate::hold_gil) scope, a call, or a Python thread, a
//!   `block_on(f.call_async(..))` would wait for ever, since the serving
//!   thread needs the GIL. A future polled on a thread that holds the GIL
//!   resolves to [`Error::InvalidArgument`](crate::Error::InvalidArgument)
//!   instead of waiting.
//! - **Inputs are owned**: an async call takes only `'static` arguments
//!   (owned arrays with [`Call::arg_owned`](crate::Call::arg_owned),
//!   [`Value`](crate::Value)s, scalars, an [`Object`](crate::Object) by
//!   value, `&'static` data). A slice lent for the length of a call cannot
//!   cross an `.await`: the future may be dropped mid-call, and the caller's
//!   memory with it.
//! - **Threads stay**: the serving threads sleep when idle and are never
//!   joined; at process exit they are left asleep. A forked child has none
//!   (its async calls resolve to [`Unavailable::Forked`](crate::Unavailable::Forked)).
//! - **Threads inherit their starter's CPU affinity**, as every thread does
//!   on Linux: the first serving thread that of the first async call's
//!   thread; the timer that of the thread whose call first needed it (a
//!   deadline, a call queued behind a running one); a serving thread
//!   started to take over from a stalled leader, the timer's. A program
//!   that pins its executor's threads to one core each may find serving
//!   threads on those cores: pin the crate's threads (named
//!   `pim-serve-N` and `pim-serve-timer`) where they should run, as
//!   `make bench` does (`bench/src/serve_async.rs`).

mod expire;
mod future;
mod give_back;
mod lead;
mod overdue;
mod queue;
mod thread;
mod timer;
mod waiting;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use future::CallFuture;
pub(crate) use future::Callee;
pub(crate) use give_back::release;

/// The queue's capacity when none is set: 1024 calls.
pub const DEFAULT_QUEUE_CAPACITY: usize = queue::DEFAULT_CAPACITY;

/// Sets how many async calls may wait in the queue at once (at least 1);
/// the futures of further calls wait, asleep, for room. Any time: a larger
/// capacity lets waiting futures in at once, a smaller one lets the queue
/// drain below it first.
///
/// ```
/// py_in_mem::serve::set_queue_capacity(256);
/// assert_eq!(py_in_mem::serve::queue_capacity(), 256);
/// py_in_mem::serve::set_queue_capacity(py_in_mem::serve::DEFAULT_QUEUE_CAPACITY);
/// ```
pub fn set_queue_capacity(capacity: usize) {
    queue::CAPACITY.store(capacity.max(1), Ordering::Relaxed);
    if queue::usable() {
        queue::capacity_changed();
    }
}

/// How many async calls may wait in the queue at once (see
/// [`set_queue_capacity`]).
pub fn queue_capacity() -> usize {
    queue::CAPACITY.load(Ordering::Relaxed).max(1)
}

/// How many async calls wait in the queue now, long calls waiting aside
/// for a thread included (not counting those being made, nor the futures
/// waiting for room).
///
/// ```
/// assert!(py_in_mem::serve::queued() <= py_in_mem::serve::queue_capacity());
/// ```
pub fn queued() -> usize {
    queue::QUEUED.load(Ordering::Relaxed) + queue::DEFERRED.load(Ordering::Relaxed)
}

/// How long a serving thread spins, when the queue empties, before it
/// sleeps, when none was set: 200 µs.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(200);

/// The idle spin in nanoseconds.
static IDLE_SPIN_NS: AtomicU64 = AtomicU64::new(DEFAULT_IDLE_SPIN.as_nanos() as u64);

/// Sets how long a serving thread that emptied the queue spins, watching
/// for the next call, before it sleeps ([`Duration::ZERO`]: it sleeps at
/// once). Any time; at most one second.
///
/// A sleeping serving thread is woken by the next async call's poll with a
/// system call, and on a virtual machine runs only once the host runs its
/// idle vCPU again: at one request at a time, that wait is part of every
/// call's latency. The spin keeps the thread awake, on one core and
/// without the GIL, for at most this long after each time the queue
/// empties; a service that is idle for long spends nothing more. Set it to
/// zero where cores are scarcer than latency matters (a crowded container,
/// a battery).
///
/// ```
/// use std::time::Duration;
/// py_in_mem::serve::set_idle_spin(Duration::ZERO);
/// assert_eq!(py_in_mem::serve::idle_spin(), Duration::ZERO);
/// py_in_mem::serve::set_idle_spin(Duration::from_secs(5));
/// assert_eq!(py_in_mem::serve::idle_spin(), Duration::from_secs(1));
/// py_in_mem::serve::set_idle_spin(py_in_mem::serve::DEFAULT_IDLE_SPIN);
/// ```
pub fn set_idle_spin(spin: Duration) {
    let ns = spin.min(Duration::from_secs(1)).as_nanos() as u64;
    IDLE_SPIN_NS.store(ns, Ordering::Relaxed);
}

/// How long a serving thread spins before it sleeps (see
/// [`set_idle_spin`]).
pub fn idle_spin() -> Duration {
    Duration::from_nanos(IDLE_SPIN_NS.load(Ordering::Relaxed))
}

/// Sets how long the leading serving thread may stay inside one call,
/// with other calls queued behind it, before another serving thread takes
/// the queue over; `None` restores the default, four switch intervals
/// ([`scheduler::switch_interval`](crate::scheduler::switch_interval): 20
/// ms with Python's 5 ms), the longest a synchronous caller waits for the
/// scheduler's turn. `Duration::MAX` never takes over.
///
/// The serving thread makes a function's calls in its held-GIL scope until
/// it knows the function is long, and the queue waits for each: a call of
/// a function not known long that sleeps, waits for I/O or runs numpy
/// without the GIL for a second held every other async call for that
/// second. After this long, a sleeping serving thread, or a new one while
/// there are fewer than [`max_threads`], takes the queue over; the other
/// finishes its call and sleeps. The results the stalled thread made
/// before that call, whose wake-ups it held back while the queue had a
/// backlog, are woken then too. With `Duration::MAX`, the queue and those
/// results wait for the call's end, and long calls set aside are looked
/// after only between the leader's calls.
///
/// ```
/// use std::time::Duration;
/// use py_in_mem::serve;
///
/// serve::set_takeover_after(Some(Duration::from_millis(50)));
/// assert_eq!(serve::takeover_after(), Duration::from_millis(50));
/// serve::set_takeover_after(Some(Duration::MAX));
/// assert_eq!(serve::takeover_after(), Duration::MAX);
/// serve::set_takeover_after(None);
/// assert_eq!(serve::takeover_after(), 4 * py_in_mem::scheduler::switch_interval());
/// ```
pub fn set_takeover_after(after: Option<Duration>) {
    lead::set_stall_after(after);
}

/// How long the leading serving thread may stay inside one call before
/// another takes the queue over (see [`set_takeover_after`]);
/// `Duration::MAX`: never.
pub fn takeover_after() -> Duration {
    lead::stall_after().unwrap_or(Duration::MAX)
}

/// The most serving threads busy at once: one per core
/// (`std::thread::available_parallelism`) for long calls, and the one that
/// serves the queue meanwhile. A thread whose call waits in C code (next to
/// no CPU time for a quarter second after a takeover time) is not busy, and
/// another may start beside it, up to four times this many threads in all.
pub fn max_threads() -> usize {
    thread::max_threads()
}
