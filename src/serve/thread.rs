//! The serving threads: one leader at a time takes the queue's jobs under
//! one held-GIL scope; the others, followers, sleep until the leader hands
//! them the lead to run a long call outside its scope.
//!
//! - **The leader** waits (without the GIL) for a job, takes the GIL and the
//!   turn once ([`Interpreter::hold`], as `hold_gil` does), and runs jobs
//!   back to back through the ordinary call path, which sees the held scope
//!   and takes nothing. It gives the scope up when the queue is empty, and
//!   after each switch interval (then takes it again, queueing for the
//!   turn behind the threads that wait for it), so synchronous callers and
//!   Python's threads get their turn.
//! - **A long call** (its function's [`CallStats`] say long: numpy runs it
//!   mostly without the GIL) would stop the queue while it runs. So the
//!   leader hands the lead over (to a sleeping follower, or to a new
//!   thread), gives its scope up, and runs the call as any thread would
//!   (long calls bypass the turn); then it becomes a follower. Up to one
//!   thread per core runs long calls at once, besides the leader: a long
//!   call that finds them all busy is set aside (deferred), never run in
//!   the scope, and the first of them to finish its call runs it, while the
//!   leader goes on with the queue. A thread waiting in C code is not busy
//!   ([`super::waiting`]).
//! - **Threads never end**: they sleep on a condition variable when there is
//!   nothing to do, holding nothing of Python's. At process exit they are
//!   left asleep; a forked child has none, and never touches their queue.
//!
//! [`Interpreter::hold`]: crate::runtime::Interpreter::hold
//! [`CallStats`]: crate::runtime::CallStats

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::lead::{self, LEADER_CALL, STALL_WATCHED};
use super::queue::{self, wake_caught, Job, State, QUEUE};
use super::waiting;
use crate::error::{Error, PyException};
use crate::runtime::{self, scheduler, CallStats};

/// The most serving threads: one per core for long calls, and the leader,
/// which never runs one. Counted once (the standard library reads the
/// cgroup's files at every `available_parallelism`, and a long job asks
/// for each hand-over).
pub(super) fn max_threads() -> usize {
    static MOST: OnceLock<usize> = OnceLock::new();
    *MOST.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) + 1
    })
}

/// Numbers the threads' names (`pim-serve-N`: Linux keeps 15 bytes of a
/// thread's name, so the number shows in `/proc` and `top`).
static NAMED: AtomicUsize = AtomicUsize::new(0);

/// Starts a serving thread that leads from the start; the caller counted
/// it in `threads` already. False if the system refused a thread (the
/// count is given back).
pub(super) fn start_leader() -> bool {
    start_thread(serve)
}

/// Starts a serving thread that first runs the long jobs set aside, then
/// follows ([`serve_deferred`]); counted as [`start_leader`]'s.
fn start_runner() -> bool {
    start_thread(|n| loop {
        follow();
        lead(n);
    })
}

/// Starts a serving thread running `life` (given its number); the caller
/// counted it in `threads` already.
fn start_thread(life: fn(usize)) -> bool {
    let n = NAMED.fetch_add(1, Ordering::Relaxed) + 1;
    // Python's threads' stack, not Rust's 2 MiB: numpy's OpenBLAS needs it.
    let started = runtime::python_thread(format!("pim-serve-{n}")).spawn(move || {
        waiting::register();
        life(n)
    });
    if started.is_ok() {
        return true;
    }
    let mut state = QUEUE.lock();
    state.threads -= 1;
    if state.threads == 0 {
        // Nobody would ever serve these: fail them rather than hang.
        let (jobs, wake) = state.drain();
        drop(state);
        wake_caught(wake);
        let error = Error::Python(PyException::status(
            "py-in-mem could not start a thread to serve async calls".into(),
        ));
        for job in jobs {
            job.task.fail(error.clone());
        }
    }
    false
}

/// A serving thread's life (`id`, its number): lead, then follow until led
/// again.
fn serve(id: usize) {
    loop {
        lead(id);
        follow();
    }
}

/// Runs the long jobs set aside while every thread was busy, then waits
/// for the lead, or to be asked to run more such jobs
/// ([`serve_deferred`]). (No look at the life cycle here or below: a
/// forked child has no serving threads, and after a host's finalization
/// the leader still resolves every job, with the error.)
fn follow() {
    let mut state = QUEUE.lock();
    loop {
        // Under one hold of the lock with the count of idle followers: a
        // long job is deferred while no follower may take it (none idle, or
        // too many threads busy), and then the timer asks an idle one to
        // run it once one may ([`serve_deferred`]).
        // This thread counts as busy: it takes the next one only while no
        // more than the most are. A thread back from a call it was counted
        // waiting in had its place taken meanwhile, and would compute beside
        // the threads that took it (trial 21: 9 at once on 2 cores).
        while busy(&state) <= max_threads() {
            let Some((job, wake)) = state.take_deferred() else {
                break;
            };
            drop(state);
            wake_caught(wake);
            if job.task.cancelled() {
                drop_caught(job);
            } else {
                // Outside any scope, as a long call the leader handed over.
                wake_caught(run(job, None).0);
            }
            state = QUEUE.lock();
        }
        state.followers_idle += 1;
        loop {
            if state.offers > 0 {
                // Promised the lead (`successor` counted it busy).
                state.offers -= 1;
                return;
            }
            if state.deferred_calls > 0 {
                state.deferred_calls -= 1;
                state.followers_idle -= 1;
                break;
            }
            state = QUEUE.lead.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Runs `job` ([`Task::run`](super::queue::Task::run)); in a child that
/// the job's Python code forked (`os.fork()`), the job ends the process
/// instead of returning ([`end_if_forked`]).
///
/// In such a child this thread is the only one, and the caller it would
/// hand the result to is in the parent: it would serve a queue nobody fills
/// for ever, an orphan process asleep. Python code that forks ends its
/// child itself (`os._exit`), or it ends here, when its call returns, with
/// status 0 and a line on stderr saying why: as a Python script's child
/// ends once it runs off the end of the script.
fn run(job: Job, started: Option<Instant>) -> (Option<Waker>, Instant) {
    waiting::begin(started.unwrap_or_else(Instant::now));
    // Ended even if the job unwinds (it catches the caller's panics: none
    // should), or the thread would count as in the call for good.
    let _end = waiting::EndOnDrop;
    job.task.run(started)
}

/// In a child that a job's Python code forked, ends the process (see
/// [`run`]). The job calls this as soon as its Python call returns, before
/// it touches a lock: in the child, the overdue calls' list, the result's
/// slot or the queue may have been locked at the fork by a thread of the
/// parent's, and the child would wait for ever (trial 25).
pub(super) fn end_if_forked() {
    runtime::end_if_forked_child(
        "py-in-mem: a process forked by Python code in an async call returned from that call \
         on the crate's serving thread, which has nothing to return to in the child: the child \
         ends here (end it with os._exit in Python)\n",
    );
}

/// What to do with a job.
enum Handoff {
    /// Run it in the scope: a short one.
    Keep,
    /// A sleeping follower leads next.
    Follower,
    /// A new thread leads next (counted already).
    NewThread,
}

/// Leads until it hands the lead over (after which it runs that long job
/// and returns, to follow), or finds it relieved of the lead
/// ([`super::lead`]).
fn lead(id: usize) {
    claim(id);
    loop {
        if queue::DEFERRED.load(Ordering::Relaxed) > 0 {
            serve_deferred(Instant::now());
        }
        if !wait_for_jobs(id) {
            return;
        }
        let held = runtime::python().and_then(|python| python.hold().map_err(Error::from));
        let mut scope = match held {
            Ok(scope) => Some(scope),
            Err(error) => {
                fail_all(&error);
                continue;
            }
        };
        let since = Instant::now();
        // One clock read a job: a job's end is the next one's start (the
        // pop between them is part of it), the switch interval's and the
        // wake batch's "now".
        let mut started = since;
        let mut wakers = Wakers::default();
        loop {
            // The mark of the next job's start, which `next_job` stores if
            // the job runs in the scope.
            let call = lead::mark(started);
            let (job, handoff) = match next_job(id, call) {
                Next::Job(job, handoff) => (job, handoff),
                Next::Empty => break,
                Next::Relieved => {
                    drop(scope);
                    wakers.wake_all();
                    return;
                }
            };
            match handoff {
                Handoff::Keep => {
                    let (waker, ended) = run(job, Some(started));
                    // Before the result is woken, whose caller's next call
                    // must not find this one still running.
                    lead::clear(call);
                    wakers.add(waker, started, ended);
                    started = ended;
                }
                Handoff::Follower | Handoff::NewThread => {
                    // The scope (GIL and turn) first, so the next leader
                    // takes them at once.
                    drop(scope.take());
                    wakers.wake_all();
                    let handed = hand_lead(&handoff);
                    // The ordinary call path, outside any scope.
                    wake_caught(run(job, None).0);
                    if handed {
                        return;
                    }
                    break;
                }
            }
            if started.saturating_duration_since(since) >= scheduler::switch_interval() {
                break;
            }
        }
        drop(scope);
        wakers.wake_all();
    }
}

/// A result waits to be woken for at most this long (from its call's
/// start) while the queue has a backlog: under the switch interval (5 ms),
/// and long enough for a batch of tens of results with calls of tens of
/// microseconds (1 ms cut `make bench`'s batches to about 23 results, and
/// fewer when the host was busy; `docs/benchmark.md` has the runs).
const WAKE_WITHIN: Duration = Duration::from_millis(2);

/// The wakers of the futures whose results are in, not woken yet.
///
/// Waking a task of another thread's executor costs the serving thread a
/// system call, while it holds the GIL, to wake one of the executor's
/// sleeping threads; on a virtual machine that is an interrupt to an idle
/// vCPU, about 8 µs of the waking thread's time on the machine of
/// `make bench` (`bench/python/wake_cost.py`; more when the host is
/// busy). So results wait to be woken together while the queue has a
/// backlog ([`wake_now`]).
///
/// They wait in [`HELD`], where the timer reaches them: the leader decides
/// to wake them only when its next call ends, and a call that stays in the
/// scope (one not known long, waiting for I/O) kept the results made
/// before it for as long, for ever if it never returned (trial 24: 3 s and
/// more, deadlines or not, their calls being over). The timer wakes them
/// once the leader has been inside one call for the takeover time, as it
/// hands the queue over ([`relieve_stalled`]).
#[derive(Default)]
struct Wakers {
    /// How many this leader put in [`HELD`] since it last woke them.
    waiting: usize,
    since: Option<Instant>,
    /// The wakers being woken: taken out of [`HELD`] under its lock, woken
    /// after it (its capacity kept from one batch to the next).
    waking: Vec<Waker>,
}

/// The wakers of results made and not woken yet ([`Wakers`]).
static HELD: Mutex<Vec<Waker>> = Mutex::new(Vec::new());

fn held() -> MutexGuard<'static, Vec<Waker>> {
    // A list, whole between statements: go on after a panic.
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes every result held: by the timer, for a leader found inside one
/// call for the takeover time.
fn wake_held() {
    let wake: Vec<Waker> = held().drain(..).collect();
    wake_caught(wake);
}

/// The calls left in the queue when results are woken while it has a
/// backlog: this many (or as many as results wait, if fewer), so that the
/// serving thread has work while the executor wakes up and makes the
/// callers' next calls.
const KEEP_QUEUED: usize = 8;

/// Whether the `waiting` results, the first of whose calls started
/// `waited` ago, are to be woken now, with `queued` calls in the queue.
///
/// Not while the queue holds more than [`KEEP_QUEUED`] calls, or more
/// calls than results wait: until then the serving thread has work, and
/// the callers' next calls are not needed yet. From then on, they are, or
/// the queue runs dry: all are woken at once, one wake-up of the executor
/// for the calls in flight but the few still queued (with 64 callers, up
/// to 56 results a wake-up, with 8 calls still queued; about 36 in
/// `make bench`'s `serve_async` on 6 December, at 30 to 45 µs a call,
/// where the executor has some of the calls in hand), which keep the
/// serving thread busy while the executor wakes up and makes the next
/// ones. A lone caller (nothing queued) is woken at once; with a deep
/// queue of many callers, no result waits longer than [`WAKE_WITHIN`].
///
/// Larger batches measured faster (`docs/benchmark.md` has the runs).
fn wake_now(queued: usize, waiting: usize, waited: Duration) -> bool {
    queued <= waiting.min(KEEP_QUEUED) || waited >= WAKE_WITHIN
}

impl Wakers {
    /// A job that began at `started` ended `now`, with `waker` to wake.
    fn add(&mut self, waker: Option<Waker>, started: Instant, now: Instant) {
        if let Some(waker) = waker {
            self.since.get_or_insert(started);
            held().push(waker);
            self.waiting += 1;
        }
        let waited = self
            .since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        if wake_now(queue::QUEUED.load(Ordering::Relaxed), self.waiting, waited) {
            self.wake_all();
        }
    }

    fn wake_all(&mut self) {
        self.since = None;
        if std::mem::take(&mut self.waiting) > 0 {
            self.waking.extend(held().drain(..));
            wake_caught(self.waking.drain(..));
        }
    }
}

/// Claims the lead for this thread (`id`), and wakes a relieved leader
/// asleep in [`wait_for_jobs`].
///
/// A leader relieved inside a call that ends before its successor claims
/// the lead still leads: it may take the next job, then go to sleep on
/// [`Queue::jobs`](super::queue::Queue::jobs) for the next. Left asleep
/// there beside the new leader, it could take the wake-up of the next
/// queued call (one thread is woken a call), find the lead gone, and
/// follow, while the new leader slept on: the call waited for ever, or
/// until its deadline (`make memcheck`, where threads start slowly: "its
/// deadline of 10 s passed while the call waited 10 s to start").
fn claim(id: usize) {
    let mut state = QUEUE.lock();
    state.leader = id;
    // Only a relieved leader waits there now: this thread is not waiting.
    QUEUE.jobs.notify_all();
}

/// Waits, without the GIL, until a job is queued; false if this thread
/// (`id`) no longer leads.
///
/// It first spins for up to [`super::idle_spin`] (without the GIL and
/// without the lock, reading the queue's count): a sleeping thread is woken
/// by a system call of the caller's, and, on a virtual machine, only once
/// its idle vCPU is running again, which the next job of a request at a
/// time would wait for.
fn wait_for_jobs(id: usize) -> bool {
    let spin = super::idle_spin();
    if !spin.is_zero() && queue::QUEUED.load(Ordering::Relaxed) == 0 {
        let until = Instant::now() + spin;
        while queue::QUEUED.load(Ordering::Relaxed) == 0 && Instant::now() < until {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        }
    }
    let mut state = QUEUE.lock();
    // A relieved leader leaves `leader_idle` alone: it is the new leader's.
    while state.jobs.is_empty() && state.leader == id {
        state.leader_idle = true;
        if !state.has_deferred() {
            state = QUEUE.jobs.wait(state).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        // Long jobs wait aside: the idle leader looks after them.
        state = QUEUE
            .jobs
            .wait_timeout(state, look_every())
            .unwrap_or_else(|e| e.into_inner())
            .0;
        drop(state);
        serve_deferred(Instant::now());
        state = QUEUE.lock();
    }
    if state.leader == id {
        state.leader_idle = false;
    }
    state.leader == id
}

/// The serving threads busy: leading, or in a call without waiting in C
/// code ([`waiting`]).
fn busy(state: &State) -> usize {
    // Threads counted waiting that work again count as busy at once, not
    // at the next look, which may be far off (trial 20).
    waiting::recheck(Instant::now());
    state
        .threads
        .saturating_sub(state.followers_idle)
        .saturating_sub(waiting::waiting())
}

/// Who leads next when the leader cannot (it runs a long call, or is
/// stalled inside one): a sleeping follower, promised the lead now, or a
/// new thread, counted now, while fewer than [`max_threads`] are busy
/// (leading, or in a call without waiting in C code: [`waiting`]); None
/// when that many are. Then [`hand_lead`], after the lock.
fn successor(state: &mut State) -> Option<Handoff> {
    if busy(state) >= max_threads() {
        None
    } else if state.followers_idle > state.deferred_calls {
        // An idle follower besides those asked to run the jobs set aside
        // and not up yet ([`serve_deferred`]): offered the lead, one of
        // those would take the offer first, and leave the request standing
        // with no follower idle to take it (none is asked again, nor a
        // thread started, while it stands).
        // The offer with the count, in one hold of the lock: a follower
        // woken meanwhile (for jobs set aside) must find the offer, not
        // take itself out of the idle count a second time.
        state.followers_idle -= 1;
        state.offers += 1;
        Some(Handoff::Follower)
    } else if state.threads < waiting::HARD_MOST * max_threads() {
        state.threads += 1;
        Some(Handoff::NewThread)
    } else {
        None
    }
}

/// Gives the lead to the [`successor`] chosen: offers it to a follower, or
/// starts the thread. False if the system refused a thread.
fn hand_lead(handoff: &Handoff) -> bool {
    match handoff {
        Handoff::Follower => {
            // Counted in `offers` already ([`successor`]); every waiter on
            // `lead` is an idle follower, any of which may take it.
            QUEUE.lead.notify_one();
            true
        }
        Handoff::NewThread => start_leader(),
        Handoff::Keep => false, // not a hand-over
    }
}

/// What the leader takes next.
enum Next {
    /// A job that was not cancelled, and what to do with it.
    Job(Job, Handoff),
    /// The queue is empty.
    Empty,
    /// Another thread leads now ([`super::lead`]).
    Relieved,
}

/// The next job that was not cancelled, and whether the lead passes on
/// for it; None when the queue is empty. Wakes the futures its room goes
/// to.
///
/// A long job never runs in the scope: the queue would wait for it. With
/// every thread for long calls busy, it is set aside, and the first of them
/// to finish runs it ([`follow`]).
fn next_job(id: usize, call: u64) -> Next {
    loop {
        let mut state = QUEUE.lock();
        if state.leader != id {
            return Next::Relieved;
        }
        let Some(job) = state.pop() else {
            return Next::Empty;
        };
        let cancelled = job.task.cancelled();
        let handoff = if cancelled || !is_long(job.task.stats()) {
            Handoff::Keep
        } else if let Some(handoff) = successor(&mut state) {
            handoff
        } else {
            // The threads for long calls may be waiting in C code: the
            // leader looks after the jobs set aside ([`serve_deferred`]),
            // at every round of the queue and while it is idle.
            // The timer looks after it too, once a call queued after it
            // asks ([`super::timer::watch_for_stall`]).
            state.defer(job);
            continue;
        };
        if !cancelled && matches!(handoff, Handoff::Keep) {
            // Under the lock: a call queued after this one was taken finds
            // the leader inside a call, and has the timer look for a stall.
            // Stored after the lock, a call queued in between found neither
            // the mark nor a call ahead of it, and asked for no look
            // ([`super::timer::watch_for_stall`]; trial 24).
            LEADER_CALL.0.store(call, Ordering::Relaxed);
        }
        let wake = state.grant_room();
        drop(state);
        wake_caught(wake);
        if cancelled {
            // Its inputs are freed here, in the scope.
            drop_caught(job);
            continue;
        }
        return Next::Job(job, handoff);
    }
}

/// The timer's look for a stalled leader ([`super::lead`]), at `now`: if
/// the leader has been inside one call for [`lead::stall_after`], the
/// results it made before that call are woken ([`Wakers`]), and, with calls
/// queued, a sleeping follower or a new thread is given the lead. Long jobs
/// set aside are looked after as the leader does ([`serve_deferred`]): a
/// leader inside a call does not. When to look again: while calls are
/// queued or set aside.
pub(super) fn relieve_stalled(now: Instant) -> Option<Instant> {
    if !STALL_WATCHED.load(Ordering::Acquire) {
        return None;
    }
    let Some(after) = lead::stall_after() else {
        // Never (set so since the look was asked for).
        STALL_WATCHED.store(false, Ordering::SeqCst);
        return None;
    };
    // Which threads wait in C code, for the successor below.
    waiting::look(now, after);
    if queue::DEFERRED.load(Ordering::Relaxed) > 0 {
        serve_deferred(now);
    }
    let call = LEADER_CALL.0.load(Ordering::Relaxed);
    if call != 0 {
        let due = lead::instant_of(call).checked_add(after).unwrap_or(now);
        if now < due {
            return Some(due);
        }
        // The results made before this call do not wait for its end.
        wake_held();
        let mut state = QUEUE.lock();
        let stalled = LEADER_CALL.0.load(Ordering::Relaxed) == call
            && state.relieved != call
            && !state.jobs.is_empty();
        // Every thread busy: the leader's call ends first.
        let handoff = if stalled { successor(&mut state) } else { None };
        if handoff.is_some() {
            state.relieved = call;
        }
        drop(state);
        if let Some(handoff) = handoff {
            hand_lead(&handoff);
        }
    }
    // Not more often than every millisecond, however short the takeover
    // time is set: the timer would spin.
    let again = now.checked_add(after.max(Duration::from_millis(1)));
    // Results held back count too: between the load of the mark above and
    // this look, the leader may have taken the last queued call, and stall
    // in it with results held; nothing would ask for a look again until a
    // call is queued (trial 25).
    let pending = || {
        queue::QUEUED.load(Ordering::SeqCst) + queue::DEFERRED.load(Ordering::SeqCst) > 0
            || !held().is_empty()
    };
    if pending() {
        return again;
    }
    STALL_WATCHED.store(false, Ordering::SeqCst);
    // A call queued before the store saw the timer looking, and did not ask.
    if pending() && !STALL_WATCHED.swap(true, Ordering::SeqCst) {
        return again;
    }
    None
}

/// How often the timer looks at the serving threads while it must: the
/// takeover time, or four switch intervals if there is none.
fn look_every() -> Duration {
    lead::stall_after().unwrap_or_else(|| scheduler::switch_interval() * 4)
}

/// The leader's look while long jobs wait aside, at `now` (at each round
/// of the queue, and every [`look_every`] while it is idle): the threads
/// found waiting in C code ([`waiting`]) are not busy, so an idle follower
/// or a new thread may run those jobs.
fn serve_deferred(now: Instant) {
    let every = look_every();
    waiting::look(now, every);
    let mut state = QUEUE.lock();
    let mut runner = false;
    if state.has_deferred() && state.deferred_calls == 0 && busy(&state) < max_threads() {
        if state.followers_idle > 0 {
            // An idle follower, not promised the lead, runs them.
            state.deferred_calls += 1;
            QUEUE.lead.notify_all();
        } else if state.threads < waiting::HARD_MOST * max_threads() {
            state.threads += 1;
            runner = true;
        }
    }
    drop(state);
    if runner {
        start_runner();
    }
}

/// Drops `value` (a cancelled job, or a result nobody waits for) on a
/// serving thread: a panic in a `Drop` of the caller's types would end the
/// thread and leave the queue unserved, so it is caught here (the panic
/// hook has reported it).
pub(super) fn drop_caught<T>(value: T) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(value)));
}

fn is_long(stats: &CallStats) -> bool {
    scheduler::is_enabled() && stats.is_long()
}

/// Python cannot be called (finalized by the host): every queued job
/// resolves with the error a synchronous call gets.
fn fail_all(error: &Error) {
    let (jobs, wake) = QUEUE.lock().drain();
    wake_caught(wake);
    for job in jobs {
        job.task.fail(error.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::{
        claim, max_threads, successor, wait_for_jobs, wake_now, Handoff, KEEP_QUEUED, QUEUE,
        WAKE_WITHIN,
    };
    use std::sync::{mpsc, Mutex, PoisonError};
    use std::time::Duration;

    /// The tests below set the queue's shared state by hand: one at a time.
    static QUEUE_STATE: Mutex<()> = Mutex::new(());

    /// The lost wake-up of [`claim`]'s doc: thread 1 leads and sleeps for a
    /// job; thread 2 claims the lead. Thread 1 must wake and follow, so
    /// that the next call's wake-up is not spent on it. (No Python: the
    /// queue's state alone, which no other test of this crate's uses.)
    #[test]
    fn a_relieved_leader_asleep_for_a_job_wakes_and_follows_when_another_claims_the_lead() {
        let _one = QUEUE_STATE.lock().unwrap_or_else(PoisonError::into_inner);
        claim(1);
        let (sender, woken) = mpsc::channel();
        std::thread::spawn(move || sender.send(wait_for_jobs(1)).unwrap());
        // Set under the lock just before the wait, which lets it go.
        while !QUEUE.lock().leader_idle {
            std::thread::sleep(Duration::from_millis(1));
        }
        claim(2);
        let led = woken.recv_timeout(Duration::from_secs(10));
        assert_eq!(led, Ok(false), "the relieved leader slept on");
        let mut state = QUEUE.lock();
        assert_eq!(state.leader, 2);
        (state.leader, state.leader_idle) = (0, false);
    }

    /// Trial 24: an idle follower asked to run the long jobs set aside, and
    /// not up yet, is not offered the lead. Offered it, that follower would
    /// take the offer first and leave the request standing, with no idle
    /// follower left to run the jobs set aside and none asked again.
    #[test]
    fn the_lead_is_not_offered_to_a_follower_asked_to_run_the_jobs_set_aside() {
        let _one = QUEUE_STATE.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = QUEUE.lock();
        let before = (
            state.threads,
            state.followers_idle,
            state.offers,
            state.deferred_calls,
        );
        assert_eq!(before, (0, 0, 0, 0), "no serving thread in this binary");
        assert!(max_threads() >= 2, "max_threads() is at least 2");
        // Two threads: a leader, and one idle follower asked for the jobs set
        // aside. One thread is busy, fewer than the most.
        (state.threads, state.followers_idle, state.deferred_calls) = (2, 1, 1);
        let handoff = successor(&mut state);
        let after = (
            state.threads,
            state.followers_idle,
            state.offers,
            state.deferred_calls,
        );
        // Another idle follower, besides the one asked: offered the lead.
        (state.threads, state.followers_idle, state.offers) = (3, 2, 0);
        let second = successor(&mut state);
        let after_second = (state.threads, state.followers_idle, state.offers);
        (
            state.threads,
            state.followers_idle,
            state.offers,
            state.deferred_calls,
        ) = before;
        drop(state);
        assert!(
            matches!(handoff, Some(Handoff::NewThread)),
            "a new thread leads"
        );
        assert_eq!(after, (3, 1, 0, 1), "the asked follower is left to its job");
        assert!(
            matches!(second, Some(Handoff::Follower)),
            "the other follower leads"
        );
        assert_eq!(after_second, (3, 1, 1));
    }

    #[test]
    fn results_wait_while_the_queue_holds_more_than_keep_queued_calls_or_than_results_wait() {
        let soon = Duration::from_micros(100);
        // A lone caller: nothing queued behind its result.
        assert!(wake_now(0, 1, Duration::ZERO));
        // 64 callers: woken at 56 results, with 8 calls queued.
        assert!(!wake_now(40, 20, soon));
        assert!(!wake_now(32, 31, soon));
        assert!(!wake_now(21, 42, soon));
        assert!(!wake_now(9, 55, soon));
        assert!(wake_now(8, 56, soon));
        assert!(wake_now(3, 60, soon));
        // Few callers: woken once no more calls are queued than results
        // wait, up to KEEP_QUEUED of them.
        assert!(wake_now(1, 1, soon));
        assert!(!wake_now(2, 1, soon));
        assert!(wake_now(4, 4, soon));
        assert!(!wake_now(5, 4, soon));
        assert!(!wake_now(KEEP_QUEUED + 1, 14, soon));
        assert!(wake_now(KEEP_QUEUED, 14, soon));
        // A deep queue: the time bound.
        assert!(!wake_now(1000, 10, WAKE_WITHIN - Duration::from_nanos(1)));
        assert!(wake_now(1000, 10, WAKE_WITHIN));
    }
}
