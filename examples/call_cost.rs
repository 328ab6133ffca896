//! Time per `Outliers::detect` call on the article's 1,000 values, and the
//! resident memory a long run of calls adds. Compare with Python's own time:
//!
//! ```text
//! cargo run --release --example call_cost -- 1000000
//! .venv/bin/python -m timeit -s 'import sys; sys.path.insert(0, "python"); \
//!     import numpy as np, outliers; data = np.random.rand(1000); data[[7, 113, 835]] += 97' \
//!     'outliers.detect(data)'
//! ```
//!
//! The argument is the number of calls for the memory run (default 1,000,000).

use std::time::Instant;

use py_in_mem::Outliers;

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), py_in_mem::Error> {
    let memory_calls: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let outliers = Outliers::new("outliers", "detect")?;
    let mut data: Vec<f64> = (0..1000)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    for i in [7, 113, 835] {
        data[i] += 97.0;
    }
    assert_eq!(outliers.detect(&data)?, [7, 113, 835]);

    // Timing: 21 rounds of 2,000 calls; per-call median, p10 and p90.
    let mut per_call_us: Vec<f64> = (0..21)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..2000 {
                std::hint::black_box(outliers.detect(std::hint::black_box(&data)).unwrap());
            }
            start.elapsed().as_secs_f64() * 1e6 / 2000.0
        })
        .collect();
    per_call_us.sort_by(f64::total_cmp);
    println!(
        "detect, 1,000 values: {:.2} µs/call median (p10 {:.2}, p90 {:.2}), 21 rounds of 2,000 calls",
        per_call_us[10], per_call_us[2], per_call_us[18]
    );

    // Memory: warm up, then a long run of calls.
    for _ in 0..10_000 {
        outliers.detect(&data)?;
    }
    let before = vm_rss_kib();
    for _ in 0..memory_calls {
        outliers.detect(&data)?;
    }
    let after = vm_rss_kib();
    println!(
        "VmRSS after warm-up {before} KiB, after {memory_calls} more calls {after} KiB ({:+} KiB)",
        after as i64 - before as i64
    );
    Ok(())
}
