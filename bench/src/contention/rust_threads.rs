//! N Rust threads calling one closure at once: the harness behind every
//! Rust-side row of the contention table.
//!
//! The threads are spawned once per segment; each makes one checked call
//! (on the shared input, or on its own copy of it), then waits at a barrier
//! with the others and the timer. From the barrier
//! on, each thread times every call on its own clock until told to stop.
//!
//! Only `std` and `anyhow`: the scheduler experiments in `src/bin/` use this
//! file too, so their figures come from the same harness as the table's.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// What one segment measured: every call of every thread.
#[derive(Debug, Default)]
pub struct Segment {
    /// Calls completed by all threads together.
    pub calls: u64,
    /// From the common start to the end of the last call.
    pub wall: Duration,
    /// Each call's own latency in nanoseconds, all threads merged.
    pub latencies_ns: Vec<u64>,
}

impl Segment {
    /// Calls per second over the segment.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64()
    }
}

/// What the threads call on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// One slice, read by every thread.
    Shared,
    /// A copy per thread, made before the start.
    PerThread,
}

/// Runs `threads` threads calling `call` on `data` (or their own copy of it)
/// for `time` after a common start. Each thread's first call (before the
/// start) must return `expected`; it also makes the thread known to Python.
pub fn run<F>(
    call: &F,
    data: &[f64],
    input: Input,
    expected: &[usize],
    threads: usize,
    time: Duration,
) -> anyhow::Result<Segment>
where
    F: Fn(&[f64]) -> anyhow::Result<Vec<usize>> + Sync,
{
    assert!(threads > 0, "at least one thread");
    let start = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (start, stop) = (&start, &stop);
                scope.spawn(move || worker(call, data, input, expected, start, stop))
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        let mut segment = Segment::default();
        let mut last_end = began;
        let mut failure = None;
        for handle in workers {
            match handle.join() {
                Ok(Ok(done)) => {
                    segment.calls += done.latencies_ns.len() as u64;
                    segment.latencies_ns.extend(done.latencies_ns);
                    last_end = last_end.max(done.end);
                }
                Ok(Err(error)) => failure = failure.or(Some(error)),
                Err(_) => failure = failure.or(Some(anyhow::anyhow!("a bench thread panicked"))),
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        segment.wall = last_end - began;
        Ok(segment)
    })
}

/// One thread's calls.
struct Done {
    latencies_ns: Vec<u64>,
    end: Instant,
}

fn worker<F>(
    call: &F,
    data: &[f64],
    input: Input,
    expected: &[usize],
    start: &Barrier,
    stop: &AtomicBool,
) -> anyhow::Result<Done>
where
    F: Fn(&[f64]) -> anyhow::Result<Vec<usize>>,
{
    let copy;
    let own = match input {
        Input::Shared => data,
        Input::PerThread => {
            copy = data.to_vec();
            &copy[..]
        }
    };
    // Checked before the start, but the barrier is reached whatever the
    // outcome, so a failing thread cannot leave the others waiting.
    let checked = call(own).and_then(|got| {
        anyhow::ensure!(
            got == expected,
            "returned {} indices {:?}..., expected {} {:?}...",
            got.len(),
            &got[..got.len().min(5)],
            expected.len(),
            &expected[..expected.len().min(5)]
        );
        Ok(())
    });
    let mut latencies_ns = Vec::with_capacity(1 << 16);
    start.wait();
    checked?;
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        black_box(call(own)?);
        latencies_ns.push(began.elapsed().as_nanos() as u64);
    }
    Ok(Done {
        latencies_ns,
        end: Instant::now(),
    })
}
