//! Async calls against one synchronous thread (`bench/src/serve_async.rs`),
//! alone (not part of `make bench`):
//!
//! ```text
//! cargo run --release -p py-in-mem-bench --bin serve_async [CALLS] [ROUNDS]   # 5000 41
//! ```

#[path = "../affinity.rs"]
mod affinity;
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
    let case = data::Case::new(1_000);
    let m = serve_async::measure(&case.data, case.expected.len(), calls, rounds)?;
    println!(
        "outliers.detect on 1,000 values, {calls} calls x {rounds} interleaved rounds: \
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
            "cpu per call: sync thread {sync:.2} us, serving thread {serving:.2} us ({:.3}x)",
            serving / sync
        );
    }
    Ok(())
}
