//! What the retention check costs per borrowed call: `Function::call` (with
//! the check) against `Function::call_unchecked` (without), on a Python
//! function that returns a constant empty array, so the call is all there is.
//! Rounds alternate A B A B so drift on a shared machine hits both alike.
//!
//! `cargo run --release --example retention_cost`

use std::hint::black_box;
use std::time::Instant;

use py_in_mem::Function;

const SOURCE: &str =
    "import numpy as np\nCONST = np.empty(0, dtype=np.int64)\ndef const(x):\n    return CONST\n\
def cycle(x):\n    holder = [x]\n    holder.append(holder)\n    return CONST\n";
const ROUNDS: usize = 41;
const CALLS: usize = 20_000;

fn per_call_ns(mut call: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS {
        call();
    }
    start.elapsed().as_secs_f64() * 1e9 / CALLS as f64
}

fn summary(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn main() -> Result<(), py_in_mem::Error> {
    let constant = Function::from_source("retention_cost", SOURCE, "const")?;
    let data = vec![0.5f64; 1000];
    assert!(constant.call::<Vec<i64>>(&data)?.is_empty());
    let (mut checked, mut unchecked, mut difference) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let with = per_call_ns(|| {
            black_box(constant.call::<Vec<i64>>(black_box(&data)).unwrap());
        });
        let without = per_call_ns(|| {
            // SAFETY: `const` keeps nothing of its argument.
            black_box(unsafe { constant.call_unchecked::<Vec<i64>>(black_box(&data)) }.unwrap());
        });
        checked.push(with);
        unchecked.push(without);
        difference.push(with - without);
    }
    let (m, lo, hi) = summary(checked);
    println!(
        "borrowed call, with retention check:    {m:7.1} ns median (p10 {lo:.1}, p90 {hi:.1})"
    );
    let (m, lo, hi) = summary(unchecked);
    println!(
        "borrowed call, without retention check: {m:7.1} ns median (p10 {lo:.1}, p90 {hi:.1})"
    );
    let (m, lo, hi) = summary(difference);
    println!("cost of the check, per call:            {m:7.1} ns median (p10 {lo:.1}, p90 {hi:.1}); {ROUNDS} interleaved rounds of {CALLS} calls");
    // The slow path: the input left in a garbage cycle, which the check
    // collects (the youngest generation, here) before it decides.
    let cycle = Function::load("retention_cost", "cycle")?;
    let mut left = Vec::new();
    for _ in 0..ROUNDS {
        left.push(per_call_ns(|| {
            black_box(cycle.call::<Vec<i64>>(black_box(&data)).unwrap());
        }));
    }
    let (m, lo, hi) = summary(left);
    println!(
        "input left in a garbage cycle, per call: {m:7.1} ns median (p10 {lo:.1}, p90 {hi:.1})"
    );
    Ok(())
}
