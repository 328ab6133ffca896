//! The turn: who has it (one atomic word), the queue of waiters, and
//! entering and leaving a call. The rules it keeps are the module's
//! ([`super`]); every change of owner is one compare-exchange on [`WORD`],
//! made only by a thread that finds the owner outside a call.

use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::stats::{CallStats, LONG, SETTLED, VOTING};
use super::{
    is_enabled, switch_interval, IDLE_GRACE, MAX_WAIT_INTERVALS, POLL, PROBE_EVERY, SAMPLE_EVERY,
};

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
    /// Its sleep ([`Waiter::sleep`], [`Waiter::wake`]): a condition
    /// variable of its own, not `thread::park`, whose `thread::current()`
    /// panics in a thread-exit destructor (a pthread key's) that calls the
    /// crate once the thread's Rust thread-locals are gone.
    woken: Mutex<bool>,
    wake_up: Condvar,
    /// [`WAITING_STATE`], [`GRANTED`] (the turn was handed to it) or
    /// [`RELEASED`] (go to the GIL directly).
    state: AtomicU8,
}

impl Waiter {
    /// Sleeps until woken or `limit` passes, as `thread::park_timeout`
    /// does (a wake before the sleep is not lost).
    fn sleep(&self, limit: Duration) {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        if !*woken {
            woken = self
                .wake_up
                .wait_timeout(woken, limit)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *woken = false;
    }

    /// Wakes the waiter, asleep or about to sleep.
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake_up.notify_one();
    }
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
    watch_exit();
    token
}

/// Has [`on_thread_exit`] give the turn back when this thread exits
/// holding it: a pthread key's destructor, not a Rust thread-local's, whose
/// registration (`__cxa_thread_atexit`) leaks when the thread's first call
/// comes from a thread-exit destructor, after those have run (32 bytes a
/// thread, under `make memcheck`); a key's value may be set then.
fn watch_exit() {
    static KEY: std::sync::OnceLock<Option<libc::pthread_key_t>> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = 0;
        // SAFETY: writes `key`; the destructor may run on any exiting
        // thread, and the key is never deleted.
        (unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } == 0).then_some(key)
    });
    if let Some(key) = *key {
        // SAFETY: a live key; the value only marks the thread (never read
        // as a pointer).
        unsafe { libc::pthread_setspecific(key, std::ptr::dangling_mut::<libc::c_void>()) };
    }
}

/// Runs as a thread that took a turn token exits.
extern "C" fn on_thread_exit(_marker: *mut libc::c_void) {
    // In a child forked after start-up the queue's lock may have been held
    // by a thread that does not exist there: touch nothing (no call is made
    // there anyway).
    if crate::runtime::lifecycle::check_latched().is_err() {
        return;
    }
    // LOCAL is `const` without a destructor: readable until the thread is
    // gone.
    let token = LOCAL.try_with(|local| local.token.get()).unwrap_or(0);
    if token != 0 {
        give_up(token);
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
        woken: Mutex::new(false),
        wake_up: Condvar::new(),
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
        me.sleep(if first { POLL } else { switch_interval() });
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
                next.wake();
            }
        }
    }
    drop(queue);
    (me.state.load(Ordering::Acquire) == GRANTED).then_some(me.token)
}

/// Hands the turn of `token`, outside a call, to the first waiter. True if
/// it did.
fn hand_over(token: u32) -> bool {
    // In a child forked after start-up (by Python code inside a call, which
    // then returns here) the queue's lock may have been held at the fork by
    // a waiter that does not exist in the child: no waiter to hand to, and
    // no lock to take (trial 26: 1 child in 100 to 200 hung on it).
    if crate::runtime::lifecycle::is_forked_child() {
        return false;
    }
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
    first.wake();
    if let Some(next) = queue.front() {
        next.wake();
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

pub(super) fn release_all_waiters() {
    if crate::runtime::lifecycle::check_latched().is_err() {
        return; // a forked child: see on_thread_exit
    }
    let mut queue = queue();
    for waiter in queue.drain(..) {
        waiter.state.store(RELEASED, Ordering::Release);
        waiter.wake();
    }
    WAITING.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trial 26: a child that Python code forked inside a call returns to
    /// the crate, and its call's end may hand the turn over; the turn's
    /// queue lock may have been held at the fork by a waiter of the
    /// parent's, which the child does not have. The child must not take it.
    #[test]
    fn in_a_forked_child_leaving_the_turn_takes_no_lock_held_at_the_fork() {
        crate::runtime::watch_fork();
        let status = crate::runtime::fork_while_held(
            // A waiter of the parent's, polling whether it is first.
            |held| {
                let _queue = queue();
                held();
            },
            || {
                // A call of token 7's ends with a waiter waiting and the
                // hand-over asked for: the state in which `leave` hands over.
                let token = 7;
                WORD.store(pack(token, 0, true), Ordering::Relaxed);
                WAITING.store(1, Ordering::Relaxed);
                HANDOFF.store(true, Ordering::Relaxed);
                leave(token);
                give_up(token);
                0
            },
            Duration::from_secs(20),
        );
        assert_eq!(status, Some(0), "the child hung on the turn's queue lock");
    }

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
}
