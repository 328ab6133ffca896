//! Async calls served by the crate's own threads (`Function::call_async`,
//! `py_in_mem::serve`) against one synchronous thread: calls per second of
//! `outliers.detect` on the same values, from 64 concurrent tasks on a tokio
//! multi-threaded runtime and from one thread calling in a loop, in
//! interleaved rounds of one run. Both paths give each call an owned copy
//! of the values (`arg_owned(data.to_vec())`), made inside the timing.

use std::time::{Duration, Instant};

use py_in_mem::Function;

/// Concurrent tasks on the async side.
pub const TASKS: usize = 64;

/// One measurement: the medians over the rounds.
#[derive(Debug, Clone, Copy)]
pub struct ServeAsync {
    /// Calls per second, one synchronous thread.
    pub sync_per_s: f64,
    /// Calls per second, [`TASKS`] tasks awaiting `call_async`.
    pub async_per_s: f64,
    /// `async_per_s / sync_per_s`, the median of the rounds' ratios.
    pub ratio: f64,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data: std::sync::Arc<[f64]> = data.into();
    let per_task = calls.div_ceil(TASKS);
    // Warm up both paths (Python's caches, the serving thread started).
    sync_round(&detect, &data, expected, calls / 10 + 1)?;
    runtime.block_on(async_round(&detect, &data, expected, per_task / 10 + 1))?;
    let (mut sync_rates, mut async_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let sync = sync_round(&detect, &data, expected, calls)?;
        let sync = calls as f64 / sync.as_secs_f64();
        let served = runtime.block_on(async_round(&detect, &data, expected, per_task))?;
        let served = (per_task * TASKS) as f64 / served.as_secs_f64();
        sync_rates.push(sync);
        async_rates.push(served);
        ratios.push(served / sync);
    }
    Ok(ServeAsync {
        sync_per_s: median(sync_rates),
        async_per_s: median(async_rates),
        ratio: median(ratios),
    })
}

fn sync_round(
    detect: &Function,
    data: &[f64],
    expected: usize,
    calls: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for _ in 0..calls {
        let found: Vec<i64> = detect.arg_owned(data.to_vec()).call()?;
        anyhow::ensure!(found.len() == expected, "sync: {} outliers", found.len());
    }
    Ok(started.elapsed())
}

async fn async_round(
    detect: &Function,
    data: &std::sync::Arc<[f64]>,
    expected: usize,
    per_task: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (detect, data) = (detect.clone(), std::sync::Arc::clone(data));
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let found: Vec<i64> = detect.arg_owned(data.to_vec()).call_async().await?;
                    anyhow::ensure!(found.len() == expected, "async: {} outliers", found.len());
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
