//! The ways of calling the same function that the bench compares, one file
//! each, behind one trait so the runner can interleave them.

pub mod grpc;
pub mod in_mem;
pub mod native;
pub mod pyo3_numpy;
pub mod python_itself;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// One way of calling the function on one input.
pub trait Path {
    /// One call, for the check before timing: the indices it returned.
    fn call(&mut self) -> anyhow::Result<Vec<usize>>;
    /// The time `calls` calls take.
    fn time(&mut self, calls: u64) -> anyhow::Result<Duration>;
}

/// Times `calls` calls of `call` from Rust, keeping every result alive
/// enough that the optimizer cannot drop the work.
pub fn time_loop(
    calls: u64,
    mut call: impl FnMut() -> anyhow::Result<Vec<usize>>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..calls {
        black_box(call()?);
    }
    Ok(start.elapsed())
}
