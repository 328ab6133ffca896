//! The same rule in pure Rust: the floor of the work itself, for scale.

use std::time::Duration;

use super::{time_loop, Path};

/// Indices of values more than 2 population standard deviations from the
/// mean, as `outliers.detect` computes them.
pub fn detect(data: &[f64]) -> Vec<usize> {
    let n = data.len() as f64;
    let mean = sum_of(data, |x| x) / n;
    let variance = sum_of(data, |x| (x - mean) * (x - mean)) / n;
    let limit = 2.0 * variance.sqrt();
    data.iter()
        .enumerate()
        .filter(|(_, x)| (*x - mean).abs() > limit)
        .map(|(i, _)| i)
        .collect()
}

/// The sum of `f(x)` in 8 independent lanes, which the compiler vectorizes
/// (one running sum would wait on each addition): numpy sums in SIMD too.
fn sum_of(data: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0; 8];
    let chunks = data.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

pub struct Native<'a> {
    pub data: &'a [f64],
}

impl Path for Native<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Ok(detect(std::hint::black_box(self.data)))
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        time_loop(calls, || self.call())
    }
}
