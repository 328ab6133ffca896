//! The scheduler of the crate's calls: one calling thread at a time keeps
//! "the turn" across its consecutive calls, for up to a switch interval, and
//! the others wait for the turn asleep instead of for the GIL.
//!
//! # Why
//!
//! When several threads call small Python functions, the GIL changes hands
//! on nearly every call, and on two or more cores each change costs a
//! wake-up on another core, a cache migration and an idle gap: 2 threads
//! got about half of one thread's calls per second, 4 threads a quarter.
//! CPython keeps the GIL for its own threads for a switch interval
//! (`sys.getswitchinterval()`, 5 ms) for this reason; a Rust caller gives
//! the GIL back after every call, so that rule never applies. Every call of
//! the crate goes through here, so the crate can apply it itself: the thread
//! whose turn it is takes an uncontended GIL call after call, and nobody else
//! is woken for it.
//!
//! # The rules
//!
//! - **The turn.** A call takes the turn (or finds it is its thread's
//!   already), then the GIL; it gives the GIL back after the call, as
//!   always, but keeps the turn. Threads that find the turn taken queue,
//!   first come first served, and sleep.
//! - **Served within the interval.** With `n` threads waiting, the owner
//!   keeps the turn for the switch interval divided by `n + 1`, then hands it
//!   to the first waiter at the end of its current call (the first waiter
//!   asks for it too, in case it did not). The shares of the threads ahead of
//!   the last waiter add up to less than an interval, leaving room for the
//!   hand-overs, so every waiter is served within about one interval, plus
//!   the call in progress.
//! - **The GIL never sits idle for long.** The turn is kept only while its
//!   thread keeps calling: a waiter that sees the owner outside a call, with
//!   no new call, for [`IDLE_GRACE`] takes the turn over (the owner is off in
//!   Rust code, or done). A thread that is found to spend more than
//!   [`IDLE_GRACE`] between its calls (sampled) never takes the turn: its
//!   calls take the GIL directly, so its own Rust work overlaps other
//!   threads' calls.
//! - **What numpy runs in parallel stays parallel.** numpy gives the GIL up
//!   inside its loops over large arrays, so long calls of two threads
//!   overlap; serializing them would halve that. Each [`Function`] times
//!   its calls (two in 64, and every call after a long one, from when they
//!   have the turn and the GIL until they give the GIL back), and a function whose recent timed calls
//!   mostly take the long-call threshold (100 µs by default; see
//!   [`set_long_call`]) or more bypasses the turn, one call in 32 excepted,
//!   which runs under the turn to be timed again. Measured here on 2 cores
//!   (a sweep of call lengths): at 57 µs a call the turn was better at 2 and 4
//!   threads, at 88 µs it was better at 4 threads and worse at 2, at 162 µs
//!   bypassing was better at both.
//! - **Never a deadlock.** The turn is advisory: only the GIL protects
//!   Python. A thread waits for the turn only when it does not hold the GIL
//!   (a host thread, or a call nested in a call, goes straight to the GIL);
//!   nobody waits for the GIL holding the queue's lock; and every wait is
//!   bounded: when the owner stays inside one call for a whole interval (a
//!   call that waits for another thread's call, say), every waiter goes to
//!   the GIL directly until that call ends, and no thread waits for the turn
//!   more than four intervals in any case.
//!
//! Python threads of the host, and calls that bypass the turn, take the GIL
//! as before: CPython's own switching shares it with the turn's owner.
//!
//! [`Function`]: crate::Function

use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the owner of the turn may stay outside a call, without calling
/// again, before a waiting thread takes the turn over; and the gap between
/// calls above which a thread does not take the turn at all.
pub const IDLE_GRACE: Duration = Duration::from_micros(10);

/// How often the first waiter looks at the owner (its sleep between looks;
/// the kernel may add its timer slack, 50 µs by default, to each).
const POLL: Duration = Duration::from_micros(100);

/// No call waits for the turn longer than this many switch intervals: past
/// it, it goes to the GIL directly (a safety net; the rules above serve a
/// waiter within about one interval).
const MAX_WAIT_INTERVALS: u32 = 4;

/// One call in this many of a long function runs under the turn, to measure
/// it again.
const PROBE_EVERY: u32 = 32;

/// Of every 64 calls a thread makes, the first two are timed (a clock read
/// costs about 25 ns here, a sixth of a call): the first's end and the
/// second's start give the gap between calls.
const SAMPLE_EVERY: u32 = 64;

// ---- Settings -----------------------------------------------------------------

/// Not read yet from [`SCHEDULER_ENV`].
const UNSET: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

static ENABLED: AtomicU8 = AtomicU8::new(UNSET);
static INTERVAL_NS: AtomicU64 = AtomicU64::new(5_000_000);
static INTERVAL_SET: AtomicBool = AtomicBool::new(false);
static LONG_CALL_NS: AtomicU64 = AtomicU64::new(100_000);

/// Environment variable that switches the scheduler off for the process
/// (`PY_IN_MEM_SCHEDULER=off`), read at the first call; [`set_enabled`]
/// overrides it.
pub const SCHEDULER_ENV: &str = "PY_IN_MEM_SCHEDULER";

/// Switches the scheduler on or off for the whole process (it is on unless
/// [`SCHEDULER_ENV`] says `off`). Off, every call takes the GIL directly, as
/// a plain embedding of Python does; threads waiting for the turn go to the
/// GIL at once.
///
/// ```
/// py_in_mem::scheduler::set_enabled(false);
/// assert!(!py_in_mem::scheduler::is_enabled());
/// py_in_mem::scheduler::set_enabled(true);
/// assert!(py_in_mem::scheduler::is_enabled());
/// ```
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
    if !on {
        release_all_waiters();
    }
}

/// Whether calls go through the scheduler (see [`set_enabled`]).
pub fn is_enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => enabled_from_env(),
    }
}

#[cold]
fn enabled_from_env() -> bool {
    let off = std::env::var(SCHEDULER_ENV).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        v == "off" || v == "0" || v == "false" || v == "no"
    });
    let _ = ENABLED.compare_exchange(
        UNSET,
        if off { OFF } else { ON },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    ENABLED.load(Ordering::Relaxed) == ON
}

/// Sets the switch interval: how long one thread keeps the turn while
/// others wait (at least 100 µs). By default it is Python's own,
/// `sys.getswitchinterval()` as it was when Python started (5 ms unless the
/// host changed it).
///
/// ```
/// use std::time::Duration;
/// py_in_mem::scheduler::set_switch_interval(Duration::from_millis(2));
/// assert_eq!(py_in_mem::scheduler::switch_interval(), Duration::from_millis(2));
/// py_in_mem::scheduler::set_switch_interval(Duration::from_millis(5));
/// ```
pub fn set_switch_interval(interval: Duration) {
    store_interval(interval);
    INTERVAL_SET.store(true, Ordering::Relaxed);
}

/// The interval, at least 100 µs.
fn store_interval(interval: Duration) {
    let ns = interval.max(Duration::from_micros(100)).as_nanos();
    INTERVAL_NS.store(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The switch interval (see [`set_switch_interval`]).
pub fn switch_interval() -> Duration {
    Duration::from_nanos(INTERVAL_NS.load(Ordering::Relaxed))
}

/// Python's own switch interval, at start-up: the default, unless the user
/// set one already.
pub(crate) fn default_switch_interval(seconds: f64) {
    if !INTERVAL_SET.load(Ordering::Relaxed) && seconds.is_finite() && seconds > 0.0 {
        store_interval(Duration::from_secs_f64(seconds));
    }
}

/// Sets the long-call threshold: a function whose timed calls mostly take
/// this long or more bypasses the turn, so that calls which numpy runs mostly without the
/// GIL still run in parallel (100 µs by default; see the module's docs for
/// the measurements behind it).
///
/// ```
/// use std::time::Duration;
/// py_in_mem::scheduler::set_long_call(Duration::from_micros(200));
/// assert_eq!(py_in_mem::scheduler::long_call(), Duration::from_micros(200));
/// py_in_mem::scheduler::set_long_call(Duration::from_micros(100));
/// ```
pub fn set_long_call(threshold: Duration) {
    LONG_CALL_NS.store(
        u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The long-call threshold (see [`set_long_call`]).
pub fn long_call() -> Duration {
    Duration::from_nanos(LONG_CALL_NS.load(Ordering::Relaxed))
}

// ---- The turn -------------------------------------------------------------------

/// The turn, in one word: the owner's thread token (0: nobody), a count of
/// the owner's calls, and whether the owner is inside a call. Only a thread
/// that finds it outside a call may change the owner, with one
/// compare-exchange, so a waiter that saw the same word a while ago knows
/// the owner made no call since.
static WORD: AtomicU64 = AtomicU64::new(0);

fn pack(owner: u32, count: u32, in_call: bool) -> u64 {
    (u64::from(owner) << 32) | (u64::from(count & 0x7fff_ffff) << 1) | u64::from(in_call)
}

fn owner_of(word: u64) -> u32 {
    (word >> 32) as u32
}

fn count_of(word: u64) -> u32 {
    ((word >> 1) & 0x7fff_ffff) as u32
}

fn in_call(word: u64) -> bool {
    word & 1 == 1
}

/// The first waiter asks the owner to hand the turn over after its call.
static HANDOFF: AtomicBool = AtomicBool::new(false);

/// The owner has stayed inside the call this word shows for a whole
/// interval: while the word is this, arriving threads go to the GIL
/// directly. `u64::MAX`: no stall.
static STALLED: AtomicU64 = AtomicU64::new(u64::MAX);

/// The threads waiting for the turn, first come first served. Locked only
/// briefly, never while waiting for anything else and never by a thread that
/// holds the GIL through the crate.
static QUEUE: Mutex<VecDeque<Arc<Waiter>>> = Mutex::new(VecDeque::new());

/// The number of waiters, for the first waiter's share of the interval.
static WAITING: AtomicU32 = AtomicU32::new(0);

const WAITING_STATE: u8 = 0;
const GRANTED: u8 = 1;
const RELEASED: u8 = 2;

struct Waiter {
    token: u32,
    thread: Thread,
    /// [`WAITING_STATE`], [`GRANTED`] (the turn was handed to it) or
    /// [`RELEASED`] (go to the GIL directly).
    state: AtomicU8,
}

fn queue() -> MutexGuard<'static, VecDeque<Arc<Waiter>>> {
    QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- Per thread -------------------------------------------------------------------

struct Local {
    /// This thread's token (0 until its first call through the turn).
    token: Cell<u32>,
    /// Calls made, for sampling.
    calls: Cell<u32>,
    /// When the last sampled call ended.
    last_exit: Cell<Option<Instant>>,
    /// Moving average of the sampled gaps between calls, in ns.
    gap_ns: Cell<u64>,
    /// When this thread last got the turn.
    turn_since: Cell<Option<Instant>>,
}

thread_local! {
    // No destructor: readable while other thread-local destructors run.
    static LOCAL: Local = const {
        Local {
            token: Cell::new(0),
            calls: Cell::new(0),
            last_exit: Cell::new(None),
            gap_ns: Cell::new(0),
            turn_since: Cell::new(None),
        }
    };
    // Gives the turn back when its thread exits holding it.
    static EXIT_HOOK: ExitHook = const { ExitHook };
}

impl Local {
    /// The average gap is above [`IDLE_GRACE`]: this thread's calls go to
    /// the GIL directly.
    fn is_loose(&self) -> bool {
        self.gap_ns.get() > IDLE_GRACE.as_nanos() as u64
    }
}

static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

fn token(local: &Local) -> u32 {
    let token = local.token.get();
    if token != 0 {
        return token;
    }
    let mut token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    if token == 0 {
        // Wrapped after 2^32 threads: a token may now be shared by two
        // threads, which costs at worst a call that waits for the GIL.
        token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    }
    local.token.set(token);
    // Registers the exit hook (a no-op once registered).
    let _ = EXIT_HOOK.try_with(|_| ());
    token
}

struct ExitHook;

impl Drop for ExitHook {
    fn drop(&mut self) {
        // In a child forked after start-up the queue's lock may have been
        // held by a thread that does not exist there: touch nothing (no call
        // is made there anyway).
        if crate::runtime::lifecycle::check_latched().is_err() {
            return;
        }
        let token = LOCAL.try_with(|local| local.token.get()).unwrap_or(0);
        if token != 0 {
            give_up(token);
        }
    }
}

/// The owner `token` gives the turn up, outside a call: to the first waiter
/// if there is one, else to nobody.
fn give_up(token: u32) {
    if hand_over(token) {
        return;
    }
    let word = WORD.load(Ordering::Acquire);
    if owner_of(word) == token && !in_call(word) {
        let _ = WORD.compare_exchange(
            word,
            pack(0, count_of(word), false),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

// ---- What each function measures ---------------------------------------------------

/// How long a [`Function`](crate::Function)'s calls take, measured while
/// they hold the GIL under the turn: it decides whether the function takes
/// the turn at all.
///
/// A vote, not an average: each sampled call votes long (the threshold or
/// more) or short, and the function changes sides only when most recent
/// votes agree, so one slow call (the first, which warms caches and imports,
/// or one the host's Python threads interrupted) does not send a short
/// function around the turn, where it would meet contention and look long.
#[derive(Default)]
pub(crate) struct CallStats {
    /// Up by one for a long sample, down by one for a short one, within
    /// 0..=[`VOTES_MAX`].
    votes: AtomicU32,
    /// [`SETTLED`], [`VOTING`] or [`LONG`]: what a call needs to know, in one
    /// load.
    mode: AtomicU8,
    /// Counts calls while long, to probe one in [`PROBE_EVERY`].
    probes: AtomicU32,
}

/// Short, and no recent long call: timed only as sampled.
const SETTLED: u8 = 0;
/// Short, with a recent long call: timed at every call until the vote
/// settles, so a long function is found within a few calls, not dozens.
const VOTING: u8 = 1;
/// Long: calls bypass the turn, one in [`PROBE_EVERY`] excepted.
const LONG: u8 = 2;

const VOTES_MAX: u32 = 8;
/// Long from this many votes up, short again from [`SHORT_AT`] down.
const LONG_AT: u32 = 6;
const SHORT_AT: u32 = 2;

impl CallStats {
    fn record(&self, took: Duration) {
        let threshold = LONG_CALL_NS.load(Ordering::Relaxed);
        let long_sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX) >= threshold;
        // Threads may race here; a lost vote only delays a change of side.
        let votes = self.votes.load(Ordering::Relaxed);
        let votes = if long_sample {
            (votes + 1).min(VOTES_MAX)
        } else {
            votes.saturating_sub(1)
        };
        self.votes.store(votes, Ordering::Relaxed);
        let was_long = self.mode.load(Ordering::Relaxed) == LONG;
        let long = if votes >= LONG_AT {
            true
        } else if votes <= SHORT_AT {
            false
        } else {
            was_long
        };
        let mode = match (long, votes) {
            (true, _) => LONG,
            (false, 0) => SETTLED,
            (false, _) => VOTING,
        };
        self.mode.store(mode, Ordering::Relaxed);
    }

    /// Whether the function's calls bypass the turn (for tests).
    #[cfg(test)]
    fn is_long(&self) -> bool {
        self.mode.load(Ordering::Relaxed) == LONG
    }
}

// ---- Entering and leaving a call ----------------------------------------------------

/// A call's place in the schedule, from before it takes the GIL to after it
/// gives the GIL back. Drop it after the GIL guard. Not `Send`: it is given
/// back on the thread that took it.
pub(crate) struct Ticket<'s> {
    /// The turn is this thread's for the call (it owns the word).
    owner: Option<u32>,
    /// The call is timed ([`Ticket::start_timing`]).
    sampled: bool,
    /// When a timed call took the GIL.
    started: Option<Instant>,
    /// The call's end is marked, for the gap to the thread's next call.
    marks_end: bool,
    stats: &'s CallStats,
    _not_send: PhantomData<*mut ()>,
}

impl Ticket<'_> {
    /// The call has the GIL: a sampled call is timed from now. Neither the
    /// wait for the turn nor for the GIL is the function's: counted in, they
    /// would make a short function look long under contention.
    pub(crate) fn start_timing(&mut self) {
        if self.sampled {
            self.started = Some(Instant::now());
        }
    }

    /// A call that takes the GIL directly.
    pub(crate) fn none() -> Ticket<'static> {
        static UNMEASURED: CallStats = CallStats {
            votes: AtomicU32::new(0),
            mode: AtomicU8::new(SETTLED),
            probes: AtomicU32::new(0),
        };
        Ticket {
            owner: None,
            sampled: false,
            started: None,
            marks_end: false,
            stats: &UNMEASURED,
            _not_send: PhantomData,
        }
    }
}

/// Takes this thread's turn for one call of a function measured by
/// `stats`, waiting for it if another thread has it; or decides the call
/// goes to the GIL directly. Call before taking the GIL, and only while
/// Python may be called.
pub(crate) fn enter(stats: &CallStats) -> Ticket<'_> {
    if !is_enabled() {
        return Ticket::none();
    }
    LOCAL.with(|local| {
        let calls = local.calls.get().wrapping_add(1);
        local.calls.set(calls);
        let slot = calls % SAMPLE_EVERY;
        let mode = stats.mode.load(Ordering::Relaxed);
        if slot >= 2 && mode == SETTLED && !local.is_loose() {
            // The common call: nothing to time, and the turn to take.
            return Ticket {
                owner: acquire(token(local)),
                sampled: false,
                started: None,
                marks_end: false,
                stats,
                _not_send: PhantomData,
            };
        }
        // The first call of a sampled pair marks its end; the second
        // measures the gap from it.
        if slot == 1 {
            if let Some(last) = local.last_exit.take() {
                let gap = u64::try_from(last.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let old = local.gap_ns.get();
                let gap = old - old / 4 + gap / 4;
                local.gap_ns.set(gap);
            }
        }
        let probing =
            mode == LONG && stats.probes.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == 0;
        let bypass = local.is_loose() || (mode == LONG && !probing);
        let owner = if bypass {
            // A thread that still owns the turn from before gives it up, so
            // that waiters need not notice it is idle.
            let token = local.token.get();
            if token != 0 && owner_of(WORD.load(Ordering::Relaxed)) == token {
                give_up(token);
            }
            None
        } else {
            acquire(token(local))
        };
        Ticket {
            owner,
            sampled: probing || slot < 2 || mode == VOTING,
            started: None,
            marks_end: slot == 0,
            stats,
            _not_send: PhantomData,
        }
    })
}

/// Takes this thread's turn for a held-GIL scope (see [`crate::hold_gil`]):
/// as for a call, but for as long as the scope lasts, whatever its calls'
/// lengths and the thread's gaps (a scope is one long hold, and its thread
/// gives the GIL up only where CPython's own switching makes it).
pub(crate) fn enter_scope() -> Ticket<'static> {
    if !is_enabled() {
        return Ticket::none();
    }
    let owner = LOCAL.with(|local| acquire(token(local)));
    Ticket {
        owner,
        ..Ticket::none()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let ended = self.started.map(|started| (started, Instant::now()));
        if let Some(token) = self.owner {
            leave(token);
        }
        if let Some((started, ended)) = ended {
            if self.owner.is_some() {
                self.stats.record(ended.duration_since(started));
            }
            if self.marks_end {
                let _ = LOCAL.try_with(|local| local.last_exit.set(Some(ended)));
            }
        }
    }
}

/// The owner `token` is outside its call again; it hands the turn over if
/// its share of the interval is used up.
fn leave(token: u32) {
    let word = WORD.load(Ordering::Relaxed);
    if owner_of(word) == token && in_call(word) {
        // Only the owner changes a word that shows it inside a call.
        WORD.store(pack(token, count_of(word) + 1, false), Ordering::Release);
    }
    let waiting = WAITING.load(Ordering::Relaxed);
    if waiting > 0 && (HANDOFF.load(Ordering::Relaxed) || share_used_up(waiting)) {
        hand_over(token);
    }
}

/// Has this thread had the turn for its share of the interval, with
/// `waiting` threads waiting? The shares of the owner and of the waiters
/// ahead of the last one add up to less than an interval, so that the last
/// is served within one, hand-overs included.
fn share_used_up(waiting: u32) -> bool {
    let since = LOCAL
        .try_with(|local| local.turn_since.get())
        .ok()
        .flatten();
    since.is_none_or(|since| since.elapsed() >= switch_interval() / (waiting + 1))
}

/// This thread has just got the turn.
fn got_turn(token: u32) -> Option<u32> {
    let _ = LOCAL.try_with(|local| local.turn_since.set(Some(Instant::now())));
    Some(token)
}

/// The turn for `token`, at once if free or already its own; else after
/// waiting for it. `None`: go to the GIL directly.
fn acquire(token: u32) -> Option<u32> {
    let word = WORD.load(Ordering::Relaxed);
    let owner = owner_of(word);
    if owner == token {
        if in_call(word) {
            // A call nested in a call of this thread (a Python callback
            // calling the crate): it holds the GIL already.
            return None;
        }
        // The owner's common case, a plain store: no waiter changes a word
        // it has not seen unchanged for IDLE_GRACE, so a race with one is
        // rare, and harmless (the turn is advisory): the waiter's takeover
        // is then overwritten, and its call contends for the GIL once.
        WORD.store(word | 1, Ordering::Relaxed);
        return Some(token);
    }
    if owner == 0 {
        let taken = pack(token, count_of(word), true);
        if WORD
            .compare_exchange(word, taken, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return got_turn(token);
        }
    }
    wait_for_turn(token).and_then(got_turn)
}

/// Does this thread hold the GIL (a host's thread, or a Python thread)?
fn holds_gil() -> bool {
    // SAFETY: PyGILState_Check may be called on any thread at any time
    // once Python runs (our caller's promise); it only reads this thread's
    // state.
    unsafe { pyo3_ffi::PyGILState_Check() != 0 }
}

/// Takes the turn from an owner that has been outside a call, with no new
/// call, for `window` (or at once if nobody has it).
fn take_if_idle(token: u32, window: Duration) -> Option<u32> {
    let seen = WORD.load(Ordering::Acquire);
    if in_call(seen) {
        return None;
    }
    if owner_of(seen) != 0 {
        let start = Instant::now();
        while start.elapsed() < window {
            if WORD.load(Ordering::Relaxed) != seen {
                return None;
            }
            std::hint::spin_loop();
        }
    }
    WORD.compare_exchange(
        seen,
        pack(token, count_of(seen), true),
        Ordering::Acquire,
        Ordering::Relaxed,
    )
    .ok()
    .map(|_| token)
}

#[cold]
fn wait_for_turn(token: u32) -> Option<u32> {
    // Never wait for the turn holding the GIL: its owner may be waiting for
    // the GIL.
    if holds_gil() {
        return None;
    }
    if WORD.load(Ordering::Relaxed) == STALLED.load(Ordering::Relaxed) {
        return None;
    }
    if let Some(owner) = take_if_idle(token, IDLE_GRACE) {
        return Some(owner);
    }
    let me = Arc::new(Waiter {
        token,
        thread: thread::current(),
        state: AtomicU8::new(WAITING_STATE),
    });
    {
        let mut queue = queue();
        queue.push_back(Arc::clone(&me));
        WAITING.store(queue.len() as u32, Ordering::Relaxed);
    }
    let arrived = Instant::now();
    let mut seen = WORD.load(Ordering::Acquire);
    let mut stuck_since: Option<Instant> = None;
    // Since when this waiter is the first: its share of the interval counts
    // from then, so that each waiter's turn comes within about an interval
    // of its arrival (the shares of those ahead of it add up to one).
    let mut first_since: Option<Instant> = None;
    loop {
        let first = is_first(&me);
        if first && first_since.is_none() {
            first_since = Some(Instant::now());
        }
        thread::park_timeout(if first { POLL } else { switch_interval() });
        match me.state.load(Ordering::Acquire) {
            GRANTED => return Some(token),
            RELEASED => return None,
            _ => {}
        }
        if !is_enabled() || arrived.elapsed() >= MAX_WAIT_INTERVALS * switch_interval() {
            return leave_queue(&me);
        }
        if !is_first(&me) {
            continue;
        }
        let word = WORD.load(Ordering::Acquire);
        if !in_call(word) {
            // Outside a call: idle since the last look (no call made), or
            // about to call again; watch it for the grace period to tell.
            let idle = owner_of(word) == 0 || word == seen;
            let window = if idle { Duration::ZERO } else { IDLE_GRACE };
            if take_if_idle(token, window).is_some() {
                // (If it was granted meanwhile as well, it is ours either way.)
                leave_queue(&me);
                return Some(token);
            }
            stuck_since = None;
        } else if word == seen {
            // Inside the same call since the last look.
            let since = *stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= switch_interval() {
                stall(word);
                return leave_queue(&me);
            }
        } else {
            stuck_since = None;
        }
        // The owner hands over when its share is used up; this asks it to,
        // in case it got the turn without this thread seeing (a takeover).
        let waiters = WAITING.load(Ordering::Relaxed).max(1);
        if first_since.is_some_and(|since| since.elapsed() >= switch_interval() / waiters) {
            HANDOFF.store(true, Ordering::Relaxed);
        }
        seen = word;
    }
}

fn is_first(me: &Arc<Waiter>) -> bool {
    queue().front().is_some_and(|first| Arc::ptr_eq(first, me))
}

/// Takes `me` out of the queue (waking the next first waiter). `Some` if
/// the turn was handed to it meanwhile.
fn leave_queue(me: &Arc<Waiter>) -> Option<u32> {
    let mut queue = queue();
    if let Some(at) = queue.iter().position(|w| Arc::ptr_eq(w, me)) {
        queue.remove(at);
        WAITING.store(queue.len() as u32, Ordering::Relaxed);
        if at == 0 {
            if let Some(next) = queue.front() {
                next.thread.unpark();
            }
        }
    }
    drop(queue);
    (me.state.load(Ordering::Acquire) == GRANTED).then_some(me.token)
}

/// Hands the turn of `token`, outside a call, to the first waiter. True if
/// it did.
fn hand_over(token: u32) -> bool {
    HANDOFF.store(false, Ordering::Relaxed);
    let mut queue = queue();
    let Some(first) = queue.front() else {
        return false;
    };
    let word = WORD.load(Ordering::Acquire);
    if owner_of(word) != token || in_call(word) {
        // Not ours to give (taken over while idle): the new owner hands it
        // on when asked.
        HANDOFF.store(true, Ordering::Relaxed);
        return false;
    }
    let granted = pack(first.token, count_of(word), true);
    if WORD
        .compare_exchange(word, granted, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        HANDOFF.store(true, Ordering::Relaxed);
        return false;
    }
    let first = queue.pop_front().expect("the queue has a first waiter");
    WAITING.store(queue.len() as u32, Ordering::Relaxed);
    first.state.store(GRANTED, Ordering::Release);
    first.thread.unpark();
    if let Some(next) = queue.front() {
        next.thread.unpark();
    }
    true
}

/// The owner is stuck in one call: every waiter goes to the GIL, and so does
/// every thread that arrives until that call ends.
#[cold]
fn stall(word: u64) {
    STALLED.store(word, Ordering::Relaxed);
    release_all_waiters();
}

fn release_all_waiters() {
    if crate::runtime::lifecycle::check_latched().is_err() {
        return; // a forked child: see ExitHook
    }
    let mut queue = queue();
    for waiter in queue.drain(..) {
        waiter.state.store(RELEASED, Ordering::Release);
        waiter.thread.unpark();
    }
    WAITING.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_packs_owner_count_and_call() {
        let word = pack(7, 0x7fff_ffff, true);
        assert_eq!(
            (owner_of(word), count_of(word), in_call(word)),
            (7, 0x7fff_ffff, true)
        );
        // The count wraps within its 31 bits.
        assert_eq!(count_of(pack(7, 0x8000_0001, false)), 1);
        assert_eq!(owner_of(pack(u32::MAX, 0, false)), u32::MAX);
    }

    #[test]
    fn a_function_changes_sides_only_when_most_recent_calls_agree() {
        let stats = CallStats::default();
        let (short, long) = (Duration::from_micros(20), Duration::from_micros(400));
        // One or two slow calls among short ones: still short.
        for sample in [long, long, short, long, short, short] {
            stats.record(sample);
            assert!(!stats.is_long(), "{sample:?}");
        }
        // Long calls in a row: long after enough of them.
        let mut became = None;
        for n in 1..=8 {
            stats.record(long);
            if stats.is_long() && became.is_none() {
                became = Some(n);
            }
        }
        assert_eq!(became, Some(6));
        // A few short probes do not flip it back; most of them do.
        for _ in 0..5 {
            stats.record(short);
        }
        assert!(stats.is_long());
        stats.record(short);
        assert!(!stats.is_long());
    }
}
