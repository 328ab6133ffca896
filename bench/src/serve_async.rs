//! Async calls served by the crate's own threads (`Function::call_async`,
//! `py_in_mem::serve`) against one synchronous thread: calls per second of
//! `outliers.detect` on the same values, from 64 concurrent tasks on a tokio
//! multi-threaded runtime and from one thread calling in a loop, in
//! interleaved rounds of one run. Both paths give each call an owned copy
//! of the values (`arg_owned(data.to_vec())`), made inside the timing.
//!
//! This machine's two vCPUs can differ in speed by 1.5x at times, so the
//! two paths are compared on the same CPU: the synchronous thread and the
//! serving thread are pinned to the last CPU, tokio's workers (which only
//! copy the values and await) to the others. The first serving thread
//! inherits the pin: it is started by the first async call, which this
//! thread makes (pinned) before the runtime makes any. Other threads of the
//! crate's inherit the pin of whichever thread started them: the timer
//! thread, started from a tokio worker, starts a serving thread when it
//! finds the leader inside one call for the takeover time (which a vCPU
//! the host takes away for that long can do to a short call), and that
//! thread would serve on tokio's CPU (seen here when the host is busy).
//! So the serving threads and the timer are pinned again before every
//! async round. With one CPU nothing is pinned.
//! The 64 tasks are awaited by a task of the runtime, not by this thread's
//! `block_on`, which would wake on the serving thread's CPU as each ends.

use std::time::{Duration, Instant};

use py_in_mem::Function;

use crate::affinity::{pin, pin_named, Affinity};
use crate::stats::percentile;
use crate::steal::{cpu_times, describe as describe_steal, Steal};
use crate::thread_time;

/// A serving thread's name: `pim-serve-N`.
fn is_serving(name: &str) -> bool {
    name.strip_prefix("pim-serve-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A serving thread, or the serving layer's timer, `pim-serve-timer`,
/// which starts serving threads too.
fn is_serving_or_timer(name: &str) -> bool {
    is_serving(name) || name == "pim-serve-timer"
}

/// Concurrent tasks on the async side.
pub const TASKS: usize = 64;

/// One measurement: the medians over the rounds.
#[derive(Debug, Clone)]
pub struct ServeAsync {
    /// Calls per round each way, and rounds.
    pub calls: usize,
    pub rounds: usize,
    /// The lowest and highest of the rounds' ratios, and their 10th and
    /// 90th percentiles.
    pub ratio_min: f64,
    pub ratio_max: f64,
    pub ratio_p10: f64,
    pub ratio_p90: f64,
    /// Calls per second, one synchronous thread.
    pub sync_per_s: f64,
    /// Calls per second, [`TASKS`] tasks awaiting `call_async`.
    pub async_per_s: f64,
    /// `async_per_s / sync_per_s`, the median of the rounds' ratios.
    pub ratio: f64,
    /// Each CPU's steal (the host's share of its time) over all the
    /// synchronous rounds, and over all the async rounds.
    pub steal_sync: Vec<f64>,
    pub steal_async: Vec<f64>,
    /// CPU time per call, in µs, as the scheduler accounts it (steal left
    /// out): the synchronous thread's over its rounds, and the serving
    /// threads' over the async rounds (their idle spin included). None
    /// where the system has no per-thread figures.
    pub cpu_sync_us: Option<f64>,
    pub cpu_serving_us: Option<f64>,
    /// The serving threads there were at the end (one unless a call was
    /// taken over from, or found long).
    pub serving_threads: usize,
}

/// Measures `rounds` interleaved rounds of `calls` calls each way on
/// `data` (1,000 values of the bench's `Case`), checking every result's
/// length against `expected` (the outliers' count).
pub fn measure(
    data: &[f64],
    expected: usize,
    calls: usize,
    rounds: usize,
) -> anyhow::Result<ServeAsync> {
    let detect = Function::load("outliers", "detect")?;
    measure_function(&detect, data, expected, calls, rounds)
}

/// [`measure`] with another function than `detect`, whose results must
/// have `expected` values each.
pub fn measure_function(
    function: &Function,
    data: &[f64],
    expected: usize,
    calls: usize,
    rounds: usize,
) -> anyhow::Result<ServeAsync> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let restore = Affinity::current()?;
    if cpus > 1 {
        pin(cpus - 1..cpus)?;
    }
    let measured = measure_pinned(function, data, expected, calls, rounds, cpus);
    // The rest of the bench (and the services it starts) runs unpinned.
    restore.set()?;
    measured
}

fn measure_pinned(
    function: &Function,
    data: &[f64],
    expected: usize,
    calls: usize,
    rounds: usize,
    cpus: usize,
) -> anyhow::Result<ServeAsync> {
    // The serving thread, started by this (pinned) thread's first async call.
    let first: Vec<i64> = tokio::runtime::Builder::new_current_thread()
        .build()?
        .block_on(function.arg_owned(data.to_vec()).call_async())?;
    anyhow::ensure!(first.len() == expected, "async: {} outliers", first.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if cpus > 1 {
                // Best effort: a refused pin only makes the figure noisier.
                let _ = pin(0..cpus - 1);
            }
        })
        .build()?;
    let data: std::sync::Arc<[f64]> = data.into();
    let per_task = calls.div_ceil(TASKS);
    let pin_serving = || -> anyhow::Result<()> {
        if cpus > 1 {
            pin_named(is_serving_or_timer, cpus - 1..cpus)?;
        }
        Ok(())
    };
    // Warm up both paths (Python's caches, the serving thread started).
    sync_round(function, &data, expected, calls / 10 + 1)?;
    pin_serving()?;
    runtime.block_on(async_round(function, &data, expected, per_task / 10 + 1))?;
    let (mut sync_rates, mut async_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut steal_sync, mut steal_async) = (Steal::default(), Steal::default());
    let (mut cpu_sync, mut cpu_serving) = (Some(0), Some(0));
    for _ in 0..rounds {
        let before = cpu_times();
        let ran = thread_time::this_thread();
        let sync = sync_round(function, &data, expected, calls)?;
        add_since(&mut cpu_sync, ran, thread_time::this_thread());
        let between = cpu_times();
        steal_sync.add(&before, &between);
        let sync = calls as f64 / sync.as_secs_f64();
        pin_serving()?;
        let ran = thread_time::named(is_serving);
        let served = runtime.block_on(async_round(function, &data, expected, per_task))?;
        add_since(&mut cpu_serving, ran, thread_time::named(is_serving));
        steal_async.add(&between, &cpu_times());
        let served = (per_task * TASKS) as f64 / served.as_secs_f64();
        sync_rates.push(sync);
        async_rates.push(served);
        ratios.push(served / sync);
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| percentile(&ratios, q).expect("at least one round");
    Ok(ServeAsync {
        calls,
        rounds,
        ratio_min: at(0.0),
        ratio_max: at(1.0),
        ratio_p10: at(0.1),
        ratio_p90: at(0.9),
        sync_per_s: median(sync_rates),
        async_per_s: median(async_rates),
        ratio: at(0.5),
        steal_sync: steal_sync.shares(),
        steal_async: steal_async.shares(),
        cpu_sync_us: cpu_sync.map(|ns| ns as f64 / 1e3 / (calls * rounds) as f64),
        cpu_serving_us: cpu_serving.map(|ns| ns as f64 / 1e3 / (per_task * TASKS * rounds) as f64),
        serving_threads: thread_time::count(is_serving),
    })
}

/// Adds the nanoseconds run between `before` and `after` to `sum`, which
/// becomes None once a reading is missing.
fn add_since(sum: &mut Option<u64>, before: Option<u64>, after: Option<u64>) {
    *sum = match (*sum, before, after) {
        (Some(sum), Some(before), Some(after)) => Some(sum + after.saturating_sub(before)),
        _ => None,
    };
}

fn sync_round(
    function: &Function,
    data: &[f64],
    expected: usize,
    calls: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for _ in 0..calls {
        let found: Vec<i64> = function.arg_owned(data.to_vec()).call()?;
        anyhow::ensure!(found.len() == expected, "sync: {} outliers", found.len());
    }
    Ok(started.elapsed())
}

async fn async_round(
    function: &Function,
    data: &std::sync::Arc<[f64]>,
    expected: usize,
    per_task: usize,
) -> anyhow::Result<Duration> {
    let (function, data) = (function.clone(), std::sync::Arc::clone(data));
    let started = Instant::now();
    // The tasks are awaited by a task of the runtime, on its workers' CPU:
    // awaited from `block_on`, each finished task would wake this (pinned)
    // thread on the serving thread's CPU, and take that CPU from it.
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (function, data) = (function.clone(), std::sync::Arc::clone(&data));
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        let found: Vec<i64> =
                            function.arg_owned(data.to_vec()).call_async().await?;
                        anyhow::ensure!(found.len() == expected, "async: {} outliers", found.len());
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    })
    .await??;
    Ok(started.elapsed())
}

/// The "Async calls" section of the report.
pub fn section(md: &mut String, m: &ServeAsync) {
    use std::fmt::Write;
    let _ = writeln!(md, "## Async calls from many tasks\n");
    let _ = writeln!(
        md,
        "`outliers.detect` on 1,000 values (the article's case), each call given an owned \
         copy of the values (`arg_owned(data.to_vec())`, made inside the timing): {TASKS} \
         tokio tasks awaiting `call_async` (served by the crate's threads under one hold of \
         the GIL) against one thread calling `call` in a loop, {} calls each way in each of \
         {} interleaved rounds. The synchronous thread and the serving thread are pinned to \
         the same CPU, tokio's workers to the other (the two vCPUs' speeds differ). Target: \
         async ≥ 0.95× the synchronous thread's calls/s.\n",
        m.calls, m.rounds
    );
    let _ = writeln!(md, "| path | calls/s (median) |");
    let _ = writeln!(md, "|---|---:|");
    let _ = writeln!(md, "| 1 thread, `call` | {:.0} |", m.sync_per_s);
    let _ = writeln!(md, "| {TASKS} tasks, `call_async` | {:.0} |", m.async_per_s);
    let _ = writeln!(
        md,
        "\nAsync ÷ sync: **{:.3}×** (median of the rounds' ratios; 10th–90th percentiles \
         {:.3}–{:.3}×, range {:.3}–{:.3}×): target ≥ 0.95×, {}.\n",
        m.ratio,
        m.ratio_p10,
        m.ratio_p90,
        m.ratio_min,
        m.ratio_max,
        if m.ratio >= 0.95 { "met" } else { "missed" }
    );
    if !m.steal_sync.is_empty() {
        let _ = writeln!(
            md,
            "Time the host took from the vCPUs (steal, /proc/stat) during the synchronous \
             rounds: {}; during the async rounds: {}. The synchronous thread keeps one vCPU \
             busy, the async path both (tokio's workers on the other).\n",
            describe_steal(&m.steal_sync),
            describe_steal(&m.steal_async)
        );
    }
    if let (Some(sync), Some(serving)) = (m.cpu_sync_us, m.cpu_serving_us) {
        let _ = writeln!(
            md,
            "CPU time per call, as the scheduler accounts it (/proc/…/schedstat, which leaves \
             steal out on this kernel): the synchronous thread {sync:.2} µs; the serving thread \
             {serving:.2} µs ({:.2}×), its idle spin included. The rest of the gap between the \
             paths' calls/s is time the serving thread did not run: stolen by the host, or \
             asleep. Serving threads at the end: {} (one unless a call was taken over from).\n",
            serving / sync,
            m.serving_threads
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5).expect("at least one round")
}
