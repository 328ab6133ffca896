//! The same rule in pure Rust: the floor of the work itself, for scale.

use std::time::Duration;

use super::{time_loop, Path};

/// Indices of values more than 2 population standard deviations from the
/// mean, as `outliers.detect` computes them.
pub fn detect(data: &[f64]) -> Vec<usize> {
    let n = data.len() as f64;
    let mean = data.iter().sum::<f64>() / n;
    let variance = data.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let limit = 2.0 * variance.sqrt();
    data.iter()
        .enumerate()
        .filter(|(_, x)| (*x - mean).abs() > limit)
        .map(|(i, _)| i)
        .collect()
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
