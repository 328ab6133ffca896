//! EXPERIMENT for issue 12 (not part of `make bench`, not the library): the
//! measurements behind the scheduler's design. It prototypes a "turn" lock
//! *outside* the crate, around today's `Outliers::detect`, and measures it
//! with the contention table's own harness (`contention/rust_threads.rs`).
//! Delete it once the scheduler lands in the library.
//!
//! `cargo run --release -p py-in-mem-bench --bin sched_lab -- <command> [options]`
//!
//! - `contend`: calls/s and p50/p99 from N threads, one row per mode:
//!   `plain` (today's path), `pinned` (today's path, every thread on core
//!   0), `turn-nogap` (the turn lock, every call through it), `turn` (the
//!   turn handed on at the exit of a thread whose gaps between calls
//!   mostly exceed `--grace-us`), `turn-adaptive` (such a thread bypasses
//!   the turn instead), `turn-ewma` (`turn-adaptive`, and functions whose
//!   calls average `--long-us` or more bypass it too), `turn-slots`
//!   (`turn-adaptive`, and such long calls take one of `cores` slots
//!   instead of bypassing; one in 32 runs under the turn to re-measure),
//!   `pyo3` (PyO3 attach per call, for reference). All threads call on one
//!   shared slice, or with `--own-data` each on its own copy. Options: `--modes`, `--sizes`, `--threads`, `--secs` (per
//!   segment), `--rounds` (kept rounds), `--interval-us`, `--grace-us`, `--poll-us`,
//!   `--long-us`, `--rust-work-us` (Rust work between a thread's calls),
//!   `--switch-ms` (Python's switch interval), `--max-load L` (drop a
//!   round in which other processes used more than L cores; 0.25).
//! - `gil`: what the GIL primitives cost on one thread, and a wake-up
//!   ping-pong between two threads (both cores, then one).
//! - `floor`: N call-only calls of one path, for `valgrind --tool=callgrind`
//!   and `perf record`: `--path inmem|inmem-held|pyo3|python`, `--calls`.
//! - `pythread`: crate callers beside a Python thread spinning in Python.
//! - `hostgil`: a host thread holding the GIL calls through the turn lock,
//!   with (`--check`) and without the PyGILState_Check bypass.
//! - `crosswait`: a call that waits for another thread's call, with
//!   (`--check`) and without the head waiter's give-up rule.

// An experiment, not the bench: a long argument list and the library's own
// large Error are fine here.
#![allow(clippy::too_many_arguments, clippy::result_large_err)]

#[path = "../contention/cpu.rs"]
mod cpu;
#[path = "../data.rs"]
mod data;
#[path = "../malloc.rs"]
#[allow(dead_code)]
mod malloc;
#[path = "../contention/rust_threads.rs"]
mod rust_threads;

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::c_long;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::Thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyReadonlyArray1};
use py_in_mem::Outliers;
use pyo3::ffi;
use pyo3::prelude::*;

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------------------
// The turn lock
// ---------------------------------------------------------------------------

/// Who may call now: one owner keeps the turn across its consecutive calls
/// for up to `interval`; waiters queue FIFO. The head waiter polls every
/// `poll` and takes the turn when the owner has been outside a call for
/// `grace` (off in Rust code, or gone), so the GIL never sits idle for long
/// while someone waits.
struct Turn {
    state: Mutex<TurnState>,
    interval: Duration,
    grace: Duration,
    poll: Duration,
    /// Hand the turn on at exit when most of this thread's recent gaps
    /// between calls exceeded `grace`.
    predict_gaps: bool,
    /// Let the head waiter give up on an owner stuck in one call.
    head_bypass: bool,
    handoffs: AtomicU64,
    steals: AtomicU64,
    gave_up: AtomicU64,
}

thread_local! {
    static LAST_EXIT: Cell<Option<Instant>> = const { Cell::new(None) };
    static LONG_GAPS: Cell<u64> = const { Cell::new(0) };
}

struct TurnState {
    owner: Option<u64>,
    in_call: bool,
    /// When the owner's current call began.
    call_since: Instant,
    /// When the owner last left a call.
    outside_since: Instant,
    deadline: Instant,
    queue: VecDeque<(u64, Thread)>,
}

fn thread_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static KEY: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    KEY.with(|k| *k)
}

impl Turn {
    fn new(interval: Duration, grace: Duration, poll: Duration, predict_gaps: bool) -> Turn {
        let now = Instant::now();
        Turn {
            state: Mutex::new(TurnState {
                owner: None,
                in_call: false,
                call_since: now,
                outside_since: now,
                deadline: now,
                queue: VecDeque::new(),
            }),
            interval,
            grace,
            poll,
            predict_gaps,
            head_bypass: true,
            handoffs: AtomicU64::new(0),
            steals: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
        }
    }

    /// Takes the turn (true), or gives up waiting for it (false): the head
    /// waiter stops waiting when the owner has been inside one call for a
    /// whole interval (a long call, or one blocked on something, perhaps on
    /// this very waiter), and calls on the GIL alone.
    fn enter(&self) -> bool {
        let me = thread_key();
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        if s.owner == Some(me) {
            s.in_call = true;
            s.call_since = now;
            return true;
        }
        if s.owner.is_none() && s.queue.is_empty() {
            s.owner = Some(me);
            s.in_call = true;
            s.call_since = now;
            s.deadline = now + self.interval;
            return true;
        }
        s.queue.push_back((me, std::thread::current()));
        loop {
            if s.owner == Some(me) {
                // Granted by the owner's exit, which dequeued us.
                s.in_call = true;
                s.call_since = Instant::now();
                return true;
            }
            let head = s.queue.front().map(|(k, _)| *k) == Some(me);
            if head {
                let now = Instant::now();
                if self.head_bypass
                    && s.owner.is_some()
                    && s.in_call
                    && now.duration_since(s.call_since) >= self.interval
                {
                    s.queue.pop_front();
                    if let Some((_, head)) = s.queue.front() {
                        head.unpark();
                    }
                    self.gave_up.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                let idle = s.owner.is_some()
                    && !s.in_call
                    && now.duration_since(s.outside_since) >= self.grace;
                if s.owner.is_none() || idle {
                    if idle {
                        self.steals.fetch_add(1, Ordering::Relaxed);
                    }
                    s.queue.pop_front();
                    s.owner = Some(me);
                    s.in_call = true;
                    s.call_since = now;
                    s.deadline = now + self.interval;
                    // The new head must learn it is head, to start polling
                    // (found the hard way: without this, a parked second
                    // waiter never woke up).
                    if let Some((_, head)) = s.queue.front() {
                        head.unpark();
                    }
                    return true;
                }
            }
            drop(s);
            if head {
                std::thread::park_timeout(self.poll);
            } else {
                // Woken when it becomes head; the timeout is a safety net.
                std::thread::park_timeout(self.interval);
            }
            s = self.state.lock().unwrap();
        }
    }

    fn exit(&self) {
        let me = thread_key();
        let mut s = self.state.lock().unwrap();
        if s.owner != Some(me) {
            return;
        }
        let now = Instant::now();
        s.in_call = false;
        s.outside_since = now;
        // A thread whose gaps between calls are long would leave the GIL
        // idle while keeping the turn: it hands the turn on at once.
        let loose = self.predict_gaps && LONG_GAPS.with(Cell::get) > 512;
        if now >= s.deadline || (loose && !s.queue.is_empty()) {
            if let Some((next, thread)) = s.queue.pop_front() {
                s.owner = Some(next);
                // Reserved for the woken waiter: not idle while it wakes.
                s.in_call = true;
                s.call_since = now;
                s.deadline = now + self.interval;
                self.handoffs.fetch_add(1, Ordering::Relaxed);
                thread.unpark();
                // The new head starts polling.
                if let Some((_, head)) = s.queue.front() {
                    head.unpark();
                }
            } else {
                // Nobody waits: the turn is free; the owner retakes it
                // without queueing on its next call anyway.
                s.owner = None;
            }
        }
    }
}

/// At most `cap` long calls at once (a counting semaphore): numpy's loops
/// run on every core, and no more callers contend for the GIL than cores.
struct Slots {
    in_use: Mutex<usize>,
    freed: std::sync::Condvar,
    cap: usize,
}

impl Slots {
    fn acquire(&self) {
        let mut n = self.in_use.lock().unwrap();
        while *n >= self.cap {
            n = self.freed.wait(n).unwrap();
        }
        *n += 1;
    }

    fn release(&self) {
        *self.in_use.lock().unwrap() -= 1;
        self.freed.notify_all();
    }

    fn acquire_all(&self) {
        let mut n = self.in_use.lock().unwrap();
        while *n > 0 {
            n = self.freed.wait(n).unwrap();
        }
        *n = self.cap;
    }

    fn release_all(&self) {
        *self.in_use.lock().unwrap() = 0;
        self.freed.notify_all();
    }
}

/// A call through the scheduler: the turn for short functions, nothing for
/// long ones (by an EWMA of this function's call time), nothing for a
/// thread that already holds the GIL.
struct Scheduled {
    turn: Turn,
    /// EWMA of call time in ns (0: no call yet); only read when bypassing.
    ewma_ns: AtomicU64,
    /// Calls at or above this average bypass the turn (u64::MAX: never).
    long_ns: u64,
    check_gil: bool,
    /// Bypass the turn for threads with long gaps between calls.
    loose_bypass: bool,
    /// Long calls take a slot (at most cores at once) instead of bypassing;
    /// their EWMA is refreshed by one call in 32 made under the turn.
    slots: Option<Slots>,
    calls: AtomicU64,
    bypassed: AtomicU64,
}

impl Scheduled {
    fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        // This thread's time outside calls: an EWMA of how often the gap
        // exceeds the grace (of 1024), robust to the odd long gap (a Vec
        // growing, a preemption).
        let now = Instant::now();
        if let Some(last) = LAST_EXIT.with(Cell::get) {
            let long = if now.duration_since(last) > self.turn.grace {
                1024 / 8
            } else {
                0
            };
            LONG_GAPS.with(|g| g.set(g.get() - g.get() / 8 + long));
        }
        let result = self.call_inner(f);
        LAST_EXIT.with(|last| last.set(Some(Instant::now())));
        result
    }

    fn call_inner<R>(&self, f: impl FnOnce() -> R) -> R {
        let long = self.ewma_ns.load(Ordering::Relaxed) >= self.long_ns;
        // SAFETY: Python is initialized (the bench loaded functions first).
        let holds_gil = self.check_gil && unsafe { ffi::PyGILState_Check() } == 1;
        // A thread that mostly leaves the GIL idle between its calls gains
        // nothing from a turn: it calls on the GIL alone.
        let loose = self.loose_bypass && LONG_GAPS.with(Cell::get) > 512;
        if let (Some(slots), true, false) = (&self.slots, long, holds_gil) {
            let probe = self
                .calls
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(32);
            self.bypassed.fetch_add(1, Ordering::Relaxed);
            if probe {
                // Alone, so the time measured is the call's own.
                slots.acquire_all();
                let began = Instant::now();
                let result = f();
                self.record(began.elapsed());
                slots.release_all();
                return result;
            }
            slots.acquire();
            let result = f();
            slots.release();
            return result;
        }
        if long || holds_gil || loose {
            self.bypassed.fetch_add(1, Ordering::Relaxed);
            let began = Instant::now();
            let result = f();
            self.record(began.elapsed());
            return result;
        }
        if !self.turn.enter() {
            self.bypassed.fetch_add(1, Ordering::Relaxed);
            return f();
        }
        // Leave the turn even if the call panics.
        struct Exit<'a>(&'a Turn);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                self.0.exit();
            }
        }
        let exit = Exit(&self.turn);
        let began = Instant::now();
        let result = f();
        self.record(began.elapsed());
        drop(exit);
        result
    }

    fn record(&self, took: Duration) {
        if self.long_ns == u64::MAX {
            return;
        }
        let sample = took.as_nanos() as u64;
        let old = self.ewma_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.ewma_ns.store(new, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

struct Opts {
    modes: Vec<String>,
    sizes: Vec<usize>,
    threads: Vec<usize>,
    secs: f64,
    rounds: usize,
    interval_us: u64,
    grace_us: u64,
    poll_us: u64,
    long_us: u64,
    rust_work_us: u64,
    switch_ms: Option<f64>,
    calls: u64,
    path: String,
    check: bool,
    own_data: bool,
    /// Rounds with more foreign load (cores) than this are dropped.
    max_load: f64,
}

fn list<T: std::str::FromStr>(s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .ok()
                .context(format!("bad list item {x:?}"))
        })
        .collect()
}

fn parse(args: &[String]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        modes: vec![
            "plain".into(),
            "pinned".into(),
            "turn".into(),
            "turn-ewma".into(),
        ],
        sizes: vec![1_000, 1_000_000],
        threads: vec![1, 2, 4, 8],
        secs: 0.25,
        rounds: 8,
        interval_us: 5_000,
        grace_us: 50,
        poll_us: 200,
        long_us: 500,
        rust_work_us: 0,
        switch_ms: None,
        calls: 1_000_000,
        path: "inmem".into(),
        check: false,
        own_data: false,
        max_load: 0.25,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().cloned().context(format!("{a} needs a value"));
        match a.as_str() {
            "--modes" => o.modes = list(&v()?)?,
            "--sizes" => o.sizes = list(&v()?)?,
            "--threads" => o.threads = list(&v()?)?,
            "--secs" => o.secs = v()?.parse()?,
            "--rounds" => o.rounds = v()?.parse()?,
            "--interval-us" => o.interval_us = v()?.parse()?,
            "--grace-us" => o.grace_us = v()?.parse()?,
            "--poll-us" => o.poll_us = v()?.parse()?,
            "--long-us" => o.long_us = v()?.parse()?,
            "--rust-work-us" => o.rust_work_us = v()?.parse()?,
            "--switch-ms" => o.switch_ms = Some(v()?.parse()?),
            "--calls" => o.calls = v()?.parse()?,
            "--path" => o.path = v()?,
            "--check" => o.check = true,
            "--own-data" => o.own_data = true,
            "--max-load" => o.max_load = v()?.parse()?,
            _ => bail!("unknown option {a}"),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------

struct Funcs {
    detect: Outliers,
    constant: Outliers,
    py_detect: Py<PyAny>,
    py_const: Py<PyAny>,
    timer: Py<PyAny>,
}

fn load() -> anyhow::Result<Funcs> {
    py_in_mem::add_sys_path(&std::path::Path::new(BENCH_DIR).join("python"))?;
    let detect = Outliers::new("outliers", "detect")?;
    let constant = Outliers::new("bench_funcs", "const")?;
    Python::attach(|py| -> anyhow::Result<Funcs> {
        Ok(Funcs {
            detect,
            constant,
            py_detect: py.import("outliers")?.getattr("detect")?.unbind(),
            py_const: py.import("bench_funcs")?.getattr("const")?.unbind(),
            timer: py.import("bench_funcs")?.getattr("time_calls")?.unbind(),
        })
    })
}

fn set_switch_interval(ms: f64) -> anyhow::Result<()> {
    Python::attach(|py| -> PyResult<()> {
        py.import("sys")?
            .call_method1("setswitchinterval", (ms / 1e3,))?;
        Ok(())
    })?;
    Ok(())
}

fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_setaffinity on
    // the calling thread (pid 0) with a set of the right size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn spin_for(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// The bench's input and the indices `outliers.detect` must return.
fn case(size: usize) -> (Vec<f64>, Vec<usize>) {
    let case = data::Case::new(size);
    (case.data, case.expected)
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1e3
}

// ---------------------------------------------------------------------------
// contend
// ---------------------------------------------------------------------------

/// One segment of one mode at one thread count.
fn segment(
    mode: &str,
    funcs: &Funcs,
    sched: &Scheduled,
    data: &[f64],
    expected: &[usize],
    threads: usize,
    time: Duration,
    work: Duration,
    input: rust_threads::Input,
) -> anyhow::Result<rust_threads::Segment> {
    let run = |call: &(dyn Fn(&[f64]) -> anyhow::Result<Vec<usize>> + Sync)| {
        rust_threads::run(&|d: &[f64]| call(d), data, input, expected, threads, time)
    };
    match mode {
        "plain" => run(&|d| {
            spin_for(work);
            Ok(funcs.detect.detect(d)?)
        }),
        "pinned" => run(&|d| {
            thread_local!(static PINNED: Cell<bool> = const { Cell::new(false) });
            if !PINNED.with(|p| p.replace(true)) {
                pin_to_core(0);
            }
            spin_for(work);
            Ok(funcs.detect.detect(d)?)
        }),
        "turn" | "turn-ewma" | "turn-nogap" | "turn-adaptive" | "turn-slots" => run(&|d| {
            spin_for(work);
            Ok(sched.call(|| funcs.detect.detect(d))?)
        }),
        "pyo3" => run(&|d| {
            spin_for(work);
            pyo3_call(&funcs.py_detect, d)
        }),
        other => bail!("unknown mode {other}"),
    }
}

/// Rounds are the outer loop: in each, every mode (in rotating order) runs
/// every thread count back to back, so a mode's N-thread figure is divided
/// by its 1-thread figure *of the same round*. A round of a mode is kept
/// only if other processes used at most `--max-load` cores during each of
/// its segments; rounds run until `--rounds` are kept per mode (at most
/// 4 × `--rounds` tries).
fn contend(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    if let Some(ms) = o.switch_ms {
        set_switch_interval(ms)?;
    }
    let interval = Duration::from_micros(o.interval_us);
    let grace = Duration::from_micros(o.grace_us);
    let poll = Duration::from_micros(o.poll_us);
    let work = Duration::from_micros(o.rust_work_us);
    let seg_time = Duration::from_secs_f64(o.secs);
    let input = if o.own_data {
        rust_threads::Input::PerThread
    } else {
        rust_threads::Input::Shared
    };
    anyhow::ensure!(o.threads.first() == Some(&1), "--threads must start with 1");
    println!(
        "# contend: interval {} µs, grace {} µs, poll {} µs, long ≥ {} µs, Rust work between calls {} µs, \
         own data {}, {} s segments, {} kept rounds per mode, other load ≤ {} cores",
        o.interval_us, o.grace_us, o.poll_us, o.long_us, o.rust_work_us, o.own_data, o.secs, o.rounds, o.max_load
    );
    println!("| mode | values | threads | calls/s (kept rounds) | ÷ 1 thread, median of rounds [min–max] | p50 µs | p99 µs | max µs | handoffs/s | steals/s | bypassed |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for &size in &o.sizes {
        let (data, expected) = case(size);
        let scheds: Vec<Scheduled> = o
            .modes
            .iter()
            .map(|mode| Scheduled {
                turn: Turn::new(interval, grace, poll, mode == "turn"),
                ewma_ns: AtomicU64::new(0),
                long_ns: if mode == "turn-ewma" || mode == "turn-slots" {
                    o.long_us * 1_000
                } else {
                    u64::MAX
                },
                check_gil: true,
                loose_bypass: mode == "turn-adaptive"
                    || mode == "turn-ewma"
                    || mode == "turn-slots",
                slots: (mode == "turn-slots").then(|| Slots {
                    in_use: Mutex::new(0),
                    freed: std::sync::Condvar::new(),
                    cap: std::thread::available_parallelism().map_or(2, |n| n.get()),
                }),
                calls: AtomicU64::new(0),
                bypassed: AtomicU64::new(0),
            })
            .collect();
        // kept[mode] = rounds; each round: per thread count (segment, counters).
        type Kept = Vec<Vec<(rust_threads::Segment, (u64, u64, u64))>>;
        let mut kept: Vec<Kept> = o.modes.iter().map(|_| Vec::new()).collect();
        let mut tried = 0;
        let mut dropped = 0;
        while kept.iter().any(|k| k.len() < o.rounds) && tried < 4 * o.rounds {
            for k in 0..o.modes.len() {
                let i = (tried + k) % o.modes.len();
                if kept[i].len() >= o.rounds {
                    continue;
                }
                let sched = &scheds[i];
                let mut round = Vec::new();
                let mut clean = true;
                for &threads in &o.threads {
                    let before = (
                        sched.turn.handoffs.load(Ordering::Relaxed),
                        sched.turn.steals.load(Ordering::Relaxed),
                        sched.bypassed.load(Ordering::Relaxed),
                    );
                    let load_before = cpu::Reading::now();
                    let seg = segment(
                        &o.modes[i],
                        &funcs,
                        sched,
                        &data,
                        &expected,
                        threads,
                        seg_time,
                        work,
                        input,
                    )?;
                    let foreign = match (load_before, cpu::Reading::now()) {
                        (Some(b), Some(a)) => a.foreign_since(&b),
                        _ => 0.0,
                    };
                    clean &= foreign <= o.max_load;
                    let counters = (
                        sched.turn.handoffs.load(Ordering::Relaxed) - before.0,
                        sched.turn.steals.load(Ordering::Relaxed) - before.1,
                        sched.bypassed.load(Ordering::Relaxed) - before.2,
                    );
                    round.push((seg, counters));
                }
                if clean {
                    kept[i].push(round);
                } else {
                    dropped += 1;
                }
            }
            tried += 1;
        }
        for (i, mode) in o.modes.iter().enumerate() {
            for (t, &threads) in o.threads.iter().enumerate() {
                let rounds = &kept[i];
                if rounds.is_empty() {
                    println!("| {mode} | {size} | {threads} | no clean round | | | | | | | |");
                    continue;
                }
                let calls: u64 = rounds.iter().map(|r| r[t].0.calls).sum();
                let wall: f64 = rounds.iter().map(|r| r[t].0.wall.as_secs_f64()).sum();
                let mut ratios: Vec<f64> = rounds
                    .iter()
                    .map(|r| r[t].0.rate() / r[0].0.rate())
                    .collect();
                ratios.sort_by(f64::total_cmp);
                let mut lat: Vec<u64> = rounds
                    .iter()
                    .flat_map(|r| r[t].0.latencies_ns.iter().copied())
                    .collect();
                lat.sort_unstable();
                let sum =
                    |f: fn(&(u64, u64, u64)) -> u64| rounds.iter().map(|r| f(&r[t].1)).sum::<u64>();
                println!(
                    "| {mode} | {size} | {threads} | {:.0} ({}) | {:.2}× [{:.2}–{:.2}] | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {} |",
                    calls as f64 / wall,
                    rounds.len(),
                    ratios[ratios.len() / 2],
                    ratios[0],
                    ratios[ratios.len() - 1],
                    pct(&lat, 0.5),
                    pct(&lat, 0.99),
                    pct(&lat, 1.0),
                    sum(|c| c.0) as f64 / wall,
                    sum(|c| c.1) as f64 / wall,
                    sum(|c| c.2)
                );
            }
        }
        println!(
            "({size} values: {tried} rounds tried, {dropped} mode-rounds dropped for other load)"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// gil: the primitives
// ---------------------------------------------------------------------------

fn per_op(n: u64, f: impl FnOnce()) -> f64 {
    let began = Instant::now();
    f();
    began.elapsed().as_nanos() as f64 / n as f64
}

fn gil(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    let n = o.calls;
    // Give this thread a kept thread state, as the crate does for callers.
    let data = [1.0, 2.0, 3.0];
    funcs.constant.detect(&data)?;
    for rep in 0..3 {
        // SAFETY: Python is initialized (here and in the six blocks below); each
        // Ensure is paired with a Release on this thread, each Save with a
        // Restore, and the thread holds the GIL wherever Check runs.
        let ensure = per_op(n, || unsafe {
            for _ in 0..n {
                let s = ffi::PyGILState_Ensure();
                ffi::PyGILState_Release(s);
            }
        });
        // SAFETY: as above.
        let outer = unsafe { ffi::PyGILState_Ensure() };
        // SAFETY: as above.
        let tstate = unsafe { ffi::PyEval_SaveThread() };
        // SAFETY: as above.
        let restore = per_op(n, || unsafe {
            for _ in 0..n {
                ffi::PyEval_RestoreThread(tstate);
                ffi::PyEval_SaveThread();
            }
        });
        // SAFETY: as above.
        unsafe { ffi::PyEval_RestoreThread(tstate) };
        // SAFETY: as above.
        let check_held = per_op(n, || unsafe {
            for _ in 0..n {
                std::hint::black_box(ffi::PyGILState_Check());
            }
        });
        // SAFETY: as above.
        let nested = per_op(n, || unsafe {
            for _ in 0..n {
                let s = ffi::PyGILState_Ensure();
                ffi::PyGILState_Release(s);
            }
        });
        // SAFETY: as above.
        unsafe { ffi::PyGILState_Release(outer) };
        let inmem = per_op(n / 10, || {
            for _ in 0..n / 10 {
                std::hint::black_box(funcs.constant.detect(&data).unwrap());
            }
        });
        // A held-GIL scope as the library would give it, approximated: an
        // outer Ensure makes the crate's own Ensure/Release nest (cheap).
        let held = per_op(n / 10, || {
            Python::attach(|_py| {
                for _ in 0..n / 10 {
                    std::hint::black_box(funcs.constant.detect(&data).unwrap());
                }
            })
        });
        let pyo3 = per_op(n / 10, || {
            for _ in 0..n / 10 {
                std::hint::black_box(pyo3_call(&funcs.py_const, &data).unwrap());
            }
        });
        let attach = per_op(n, || {
            for _ in 0..n {
                Python::attach(|py| {
                    std::hint::black_box(py);
                });
            }
        });
        let py_own = python_own_call_ns(&funcs, n / 10)?;
        println!(
            "round {rep}: PyGILState_Ensure+Release {ensure:.1} ns; PyEval_RestoreThread+SaveThread {restore:.1} ns; \
             PyGILState_Check (held) {check_held:.1} ns; nested Ensure+Release (held) {nested:.1} ns; \
             Python::attach (empty) {attach:.1} ns; call only: py-in-mem {inmem:.1} ns, \
             py-in-mem under an outer GIL hold {held:.1} ns, PyO3 borrowed {pyo3:.1} ns, Python's own call {py_own:.1} ns"
        );
    }
    for pinned in [false, true] {
        let rt = pingpong(200_000, pinned);
        println!(
            "park/unpark ping-pong, {}: {:.2} µs a one-way wake-up",
            if pinned {
                "both threads on core 0"
            } else {
                "free to use both cores"
            },
            rt / 2.0 / 1e3
        );
    }
    Ok(())
}

fn pyo3_call(func: &Py<PyAny>, data: &[f64]) -> anyhow::Result<Vec<usize>> {
    Python::attach(|py| {
        // SAFETY: the array views `data`, which outlives the call, and
        // the function called keeps nothing.
        let input = unsafe {
            PyArray1::borrow_from_array(&ArrayView1::from(data), py.None().into_bound(py))
        };
        let result = func.bind(py).call1((input,))?;
        let array: PyReadonlyArray1<'_, i64> = result.extract()?;
        Ok(array.as_array().iter().map(|&i| i as usize).collect())
    })
}

fn python_own_call_ns(funcs: &Funcs, calls: u64) -> anyhow::Result<f64> {
    let ns: u64 = Python::attach(|py| -> PyResult<u64> {
        let arr = PyArray1::from_slice(py, &[1.0, 2.0, 3.0]);
        funcs
            .timer
            .bind(py)
            .call1((funcs.py_const.bind(py), arr, calls))?
            .extract()
    })?;
    Ok(ns as f64 / calls as f64)
}

/// Round trips of park/unpark between two threads: ns per round trip.
fn pingpong(n: u64, pinned: bool) -> f64 {
    let turn = AtomicUsize::new(0);
    let threads: Mutex<Vec<Thread>> = Mutex::new(Vec::new());
    let ready = std::sync::Barrier::new(2);
    let began = Mutex::new(None::<Instant>);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|me| {
                let (turn, threads, ready, began) = (&turn, &threads, &ready, &began);
                s.spawn(move || {
                    if pinned {
                        pin_to_core(0);
                    }
                    threads.lock().unwrap().push(std::thread::current());
                    ready.wait();
                    let other = {
                        let all = threads.lock().unwrap();
                        all.iter()
                            .find(|t| t.id() != std::thread::current().id())
                            .unwrap()
                            .clone()
                    };
                    if me == 0 {
                        *began.lock().unwrap() = Some(Instant::now());
                    }
                    for _ in 0..n {
                        while turn.load(Ordering::Acquire) % 2 != me {
                            std::thread::park();
                        }
                        turn.fetch_add(1, Ordering::AcqRel);
                        other.unpark();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let start = began.lock().unwrap().unwrap();
    start.elapsed().as_nanos() as f64 / n as f64
}

// ---------------------------------------------------------------------------
// floor: for callgrind / perf
// ---------------------------------------------------------------------------

#[inline(never)]
fn floor_inmem(funcs: &Funcs, data: &[f64], n: u64) {
    for _ in 0..n {
        std::hint::black_box(funcs.constant.detect(data).unwrap());
    }
}

#[inline(never)]
fn floor_inmem_held(funcs: &Funcs, data: &[f64], n: u64) {
    Python::attach(|_py| {
        for _ in 0..n {
            std::hint::black_box(funcs.constant.detect(data).unwrap());
        }
    })
}

#[inline(never)]
fn floor_inmem_scope(funcs: &Funcs, data: &[f64], n: u64) {
    py_in_mem::hold_gil(|_| {
        for _ in 0..n {
            std::hint::black_box(funcs.constant.detect(data)?);
        }
        Ok(())
    })
    .unwrap()
}

#[inline(never)]
fn floor_inmem_scope_lent(func: &py_in_mem::Function, data: &[f64], n: u64) {
    py_in_mem::hold_gil(|scope| {
        let data = scope.lend(data)?;
        for _ in 0..n {
            std::hint::black_box(func.call::<Vec<i64>>(data)?);
        }
        Ok(())
    })
    .unwrap()
}

#[inline(never)]
fn floor_pyo3(funcs: &Funcs, data: &[f64], n: u64) {
    for _ in 0..n {
        std::hint::black_box(pyo3_call(&funcs.py_const, data).unwrap());
    }
}

fn floorcmp(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    let data = vec![0.5; 1_000];
    funcs.constant.detect(&data)?;
    pyo3_call(&funcs.py_const, &data)?;
    let n = o.calls;
    let per = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let mut on = Vec::new();
    let mut off = Vec::new();
    let mut pyo3 = Vec::new();
    for _ in 0..41 {
        py_in_mem::scheduler::set_enabled(true);
        on.push(per(&|| floor_inmem(&funcs, &data, n)));
        py_in_mem::scheduler::set_enabled(false);
        off.push(per(&|| floor_inmem(&funcs, &data, n)));
        py_in_mem::scheduler::set_enabled(true);
        pyo3.push(per(&|| floor_pyo3(&funcs, &data, n)));
    }
    let med = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = |a: &Vec<f64>, b: &Vec<f64>| med(&a.iter().zip(b).map(|(x, y)| x / y).collect());
    println!(
        "median ns: on {:.1}, off {:.1}, pyo3 {:.1}; on/pyo3 {:.3}, off/pyo3 {:.3}",
        med(&on),
        med(&off),
        med(&pyo3),
        ratio(&on, &pyo3),
        ratio(&off, &pyo3)
    );
    Ok(())
}

fn scopecmp(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    let constant = py_in_mem::Function::load("bench_funcs", "const")?;
    let data = vec![0.5; 1_000];
    let n = o.calls;
    let per = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..41 {
        a.push(per(&|| floor_inmem_scope(&funcs, &data, n)));
        b.push(per(&|| floor_inmem_scope_lent(&constant, &data, n)));
        d.push(per(&|| {
            py_in_mem::hold_gil(|_| {
                for _ in 0..n {
                    std::hint::black_box(constant.call::<Vec<i64>>(&data)?);
                }
                Ok(())
            })
            .unwrap()
        }));
        c.push(per(&|| {
            python_own_call_ns(&funcs, n).unwrap();
        }));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median ns: scope {:.1}, scope-lent {:.1}, scope Function::call {:.1}, python {:.1}",
        med(&mut a),
        med(&mut b),
        med(&mut d),
        med(&mut c)
    );
    Ok(())
}

fn floor(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    let data = vec![0.5; 1_000];
    // Warm up: thread state, capsule, caches.
    funcs.constant.detect(&data)?;
    pyo3_call(&funcs.py_const, &data)?;
    let began = Instant::now();
    match o.path.as_str() {
        "inmem" => floor_inmem(&funcs, &data, o.calls),
        "pyo3" => floor_pyo3(&funcs, &data, o.calls),
        "inmem-held" => floor_inmem_held(&funcs, &data, o.calls),
        "inmem-scope" => floor_inmem_scope(&funcs, &data, o.calls),
        "inmem-scope-lent" => floor_inmem_scope_lent(
            &py_in_mem::Function::load("bench_funcs", "const")?,
            &data,
            o.calls,
        ),
        "python" => {
            python_own_call_ns(&funcs, o.calls)?;
        }
        other => bail!("unknown path {other}"),
    }
    println!(
        "{} call-only calls of {}: {:.1} ns a call",
        o.calls,
        o.path,
        began.elapsed().as_nanos() as f64 / o.calls as f64
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// pythread: a Python thread spinning in Python beside crate callers
// ---------------------------------------------------------------------------

fn pythread(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    let (data, expected) = case(1_000);
    let spinner = Python::attach(|py| -> PyResult<Py<PyAny>> {
        let code = c"import threading, time\n\
def start():\n    state = {'run': True, 'n': 0}\n    def spin():\n        n = 0\n        while state['run']:\n            n += 1\n        state['n'] = n\n    t = threading.Thread(target=spin)\n    t.start()\n    return state, t\n";
        let module = PyModule::from_code(py, code, c"spinner.py", c"spinner")?;
        Ok(module.getattr("start")?.unbind())
    })?;
    let secs = Duration::from_secs_f64(o.secs);
    let interval = Duration::from_micros(o.interval_us);
    let grace = Duration::from_micros(o.grace_us);
    let poll = Duration::from_micros(o.poll_us);
    println!("| crate threads | mode | with a Python thread | crate calls/s | Python loop iterations/s |");
    println!("|---:|---|---|---:|---:|");
    for threads in [1usize, 2] {
        for mode in ["plain", "turn"] {
            for with_python in [false, true] {
                let sched = Scheduled {
                    turn: Turn::new(interval, grace, poll, true),
                    ewma_ns: AtomicU64::new(0),
                    long_ns: u64::MAX,
                    check_gil: true,
                    loose_bypass: true,
                    slots: None,
                    calls: AtomicU64::new(0),
                    bypassed: AtomicU64::new(0),
                };
                let handle = if with_python {
                    Some(Python::attach(|py| -> PyResult<(Py<PyAny>, Py<PyAny>)> {
                        let pair = spinner.bind(py).call0()?;
                        Ok((pair.get_item(0)?.unbind(), pair.get_item(1)?.unbind()))
                    })?)
                } else {
                    None
                };
                let began = Instant::now();
                let seg = rust_threads::run(
                    &|d: &[f64]| {
                        if mode == "turn" {
                            Ok(sched.call(|| funcs.detect.detect(d))?)
                        } else {
                            Ok(funcs.detect.detect(d)?)
                        }
                    },
                    &data,
                    rust_threads::Input::Shared,
                    &expected,
                    threads,
                    secs,
                )?;
                let py_rate = match handle {
                    Some((state, thread)) => Python::attach(|py| -> PyResult<f64> {
                        let state = state.bind(py);
                        state.set_item("run", false)?;
                        thread.bind(py).call_method0("join")?;
                        let n: c_long = state.get_item("n")?.extract()?;
                        Ok(n as f64 / began.elapsed().as_secs_f64())
                    })?,
                    None => f64::NAN,
                };
                println!(
                    "| {threads} | {mode} | {with_python} | {:.0} | {:.0} |",
                    seg.rate(),
                    py_rate
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// hostgil: a host thread that holds the GIL calls through the scheduler
// ---------------------------------------------------------------------------

fn hostgil(o: &Opts) -> anyhow::Result<()> {
    let funcs = load()?;
    let (data, _) = case(1_000);
    let sched = Scheduled {
        turn: Turn::new(
            Duration::from_micros(o.interval_us),
            Duration::from_micros(o.grace_us),
            Duration::from_micros(o.poll_us),
            true,
        ),
        ewma_ns: AtomicU64::new(0),
        long_ns: u64::MAX,
        check_gil: o.check,
        loose_bypass: false,
        slots: None,
        calls: AtomicU64::new(0),
        bypassed: AtomicU64::new(0),
    };
    let done = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    std::thread::scope(|s| {
        // A watchdog: a deadlock is reported, then the process exits.
        s.spawn(|| {
            let began = Instant::now();
            while !done.load(Ordering::Relaxed) {
                if began.elapsed() > Duration::from_secs(5) {
                    println!(
                        "hostgil (check {}): DEADLOCK: no progress after 5 s ({} calls made)",
                        o.check,
                        calls.load(Ordering::Relaxed)
                    );
                    std::process::exit(3);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let worker = s.spawn(|| {
            for _ in 0..2_000 {
                sched.call(|| funcs.detect.detect(&data)).unwrap();
                calls.fetch_add(1, Ordering::Relaxed);
            }
        });
        // The host: holds the GIL (PyO3) across many crate calls.
        let host = s.spawn(|| {
            Python::attach(|_py| {
                for _ in 0..2_000 {
                    sched.call(|| funcs.detect.detect(&data)).unwrap();
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        });
        worker.join().unwrap();
        host.join().unwrap();
        done.store(true, Ordering::Relaxed);
    });
    println!(
        "hostgil (check {}): both threads finished, {} calls, {} bypassed the turn",
        o.check,
        calls.load(Ordering::Relaxed),
        sched.bypassed.load(Ordering::Relaxed)
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// crosswait: a call that waits for another thread's call
// ---------------------------------------------------------------------------

/// Thread A's call waits (in Python, GIL released) for an event that thread
/// B's call sets. B starts once A owns the turn. Without the head waiter's
/// give-up rule (`--check` off), B waits for the turn that A keeps while it
/// waits for B: a deadlock, broken here only by the wait's 5 s timeout.
fn crosswait(o: &Opts) -> anyhow::Result<()> {
    let _funcs = load()?;
    let source = "import builtins, threading\nimport numpy as np\n\
ev = builtins.__dict__.setdefault('_pim_lab_event', threading.Event())\n\
def wait(data):\n    ok = ev.wait(5.0)\n    ev.clear()\n    return np.array([1 if ok else 0])\n\
def set(data):\n    ev.set()\n    return np.array([1])\n";
    let wait = py_in_mem::Function::from_source("lab_cross_a", source, "wait")?;
    let set = py_in_mem::Function::from_source("lab_cross_b", source, "set")?;
    let mut turn = Turn::new(
        Duration::from_micros(o.interval_us),
        Duration::from_micros(o.grace_us),
        Duration::from_micros(o.poll_us),
        true,
    );
    turn.head_bypass = o.check;
    let sched = Scheduled {
        turn,
        ewma_ns: AtomicU64::new(0),
        long_ns: u64::MAX,
        check_gil: true,
        loose_bypass: false,
        slots: None,
        calls: AtomicU64::new(0),
        bypassed: AtomicU64::new(0),
    };
    let data = [1.0];
    let began = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| sched.call(|| wait.call::<Vec<i64>>(&data)));
        // Let A take the turn and start waiting.
        std::thread::sleep(Duration::from_millis(50));
        let b = s.spawn(|| sched.call(|| set.call::<Vec<i64>>(&data)));
        (a.join().unwrap(), b.join().unwrap())
    });
    println!(
        "crosswait (give-up rule {}): A's wait {} after {:.3} s; B {}; gave up on the turn: {}",
        o.check,
        if a?[0] == 1 {
            "saw B's event"
        } else {
            "TIMED OUT (deadlock)"
        },
        began.elapsed().as_secs_f64(),
        if b.is_ok() { "done" } else { "failed" },
        sched.turn.gave_up.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // As the bench does: the same allocator for every mode (see malloc.rs).
    malloc::fix_thresholds();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        bail!("usage: sched_lab contend|gil|floor|pythread|hostgil|crosswait [options]");
    };
    let o = parse(&args[1..])?;
    match command.as_str() {
        "contend" => contend(&o),
        "gil" => gil(&o),
        "floor" => floor(&o),
        "floorcmp" => floorcmp(&o),
        "scopecmp" => scopecmp(&o),
        "pythread" => pythread(&o),
        "hostgil" => hostgil(&o),
        "crosswait" => crosswait(&o),
        other => bail!("unknown command {other}"),
    }
}
