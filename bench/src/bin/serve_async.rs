//! Async calls against one synchronous thread (`bench/src/serve_async.rs`),
//! alone (not part of `make bench`):
//!
//! ```text
//! cargo run --release -p py-in-mem-bench --bin serve_async [CALLS] [ROUNDS] [FUNCTION]
//! ```
//!
//! CALLS and ROUNDS are 5000 and 41 unless given, as in `make bench`.
//! FUNCTION is `detect` (`outliers.detect`, the bench's) unless
//! `python-loop` is given: a loop of plain Python a little longer than
//! `detect` on this machine, which neither reads the values nor calls
//! numpy. Where both paths lose the same share of their speed on it as on
//! `detect`, the difference lies in how fast the serving thread runs
//! Python, not in numpy, the values' memory or the result.

#[path = "../affinity.rs"]
mod affinity;
#[path = "../cpu_model.rs"]
mod cpu_model;
#[path = "../data.rs"]
#[allow(dead_code)]
mod data;
#[path = "../serve_async.rs"]
#[allow(dead_code)] // section(): the bench's report
mod serve_async;
#[path = "../stats.rs"]
#[allow(dead_code)] // Spread: the bench's report
mod stats;
#[path = "../steal.rs"]
#[allow(dead_code)] // steal_since: the bench's machine section
mod steal;
#[path = "../thread_time.rs"]
mod thread_time;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(41), |a| a.parse())?;
    let which = args.next().unwrap_or_else(|| "detect".into());
    let case = data::Case::new(1_000);
    // The ratio depends on the CPU under the vCPUs (`cpu_model`).
    println!("cpu: {}", cpu_model::describe());
    let (m, name) = match which.as_str() {
        "detect" => (
            serve_async::measure(&case.data, case.expected.len(), calls, rounds)?,
            "outliers.detect",
        ),
        "python-loop" => (
            serve_async::measure_function(&python_loop()?, &case.data, 0, calls, rounds)?,
            "a plain Python loop",
        ),
        other => anyhow::bail!("serve_async: FUNCTION is detect or python-loop, not {other:?}"),
    };
    println!(
        "{name} on 1,000 values, {calls} calls x {rounds} interleaved rounds: \
         1 sync thread {:.0} calls/s, {} async tasks {:.0} calls/s, ratio {:.3}x \
         (p10-p90 {:.3}-{:.3}x)",
        m.sync_per_s,
        serve_async::TASKS,
        m.async_per_s,
        m.ratio,
        m.ratio_p10,
        m.ratio_p90
    );
    println!(
        "steal: sync rounds {}; async rounds {}",
        steal::describe(&m.steal_sync),
        steal::describe(&m.steal_async)
    );
    if let (Some(sync), Some(serving)) = (m.cpu_sync_us, m.cpu_serving_us) {
        println!(
            "cpu per call: sync thread {sync:.2} us, serving thread {serving:.2} us ({:.3}x); \
             serving threads {}",
            serving / sync,
            m.serving_threads
        );
    }
    Ok(())
}

/// 850 turns of a plain Python loop (about 24 µs here, where `detect`
/// takes about 18 µs), given the values and ignoring them; it returns the
/// same empty `int64` array each time (0 "outliers", as the bench's check
/// of each result expects).
fn python_loop() -> anyhow::Result<py_in_mem::Function> {
    Ok(py_in_mem::Function::from_source(
        "serve_async_python_loop",
        "import numpy as np\n\n_NONE = np.zeros(0, dtype=np.int64)\n\n\
         def spin(values):\n    total = 0\n    for i in range(850):\n        total += i\n    \
         return _NONE\n",
        "spin",
    )?)
}
