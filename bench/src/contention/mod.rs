//! The contention table: calls/s and per-call latency when 1, 2, 4 and 8
//! threads call `outliers.detect` at once, for each way of calling (a row).
//!
//! A row is a [`Row`]: a label and a [`Contender`], which runs N threads for
//! a given time and returns every call's latency. Rust-side rows are one
//! closure each ([`Row::rust`]); Python's own `threading` is a harness of its
//! own ([`python_threads`]). Rows of one point (a size and a thread count)
//! are interleaved: every row runs one segment per round, in an order that
//! rotates each round, so drift on a shared machine hits all rows alike; a
//! segment during which other processes took more than `Plan::max_load`
//! cores ([`cpu`]) is run again, up to `Plan::retries` times.
//!
//! A row that needs set-up around its segments (a process-wide switch, say)
//! is a small type implementing [`Contender`] whose `run` sets it, calls
//! [`rust_threads::run`] and puts it back.

pub mod cpu;
pub mod python_threads;
pub mod report;
pub mod rust_threads;

use std::time::Duration;

use crate::data::Case;
use crate::stats::percentile;
pub use rust_threads::{Input, Segment};

/// How long to measure.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sizes: Vec<usize>,
    pub threads: Vec<usize>,
    /// The time each row calls at each point, over all rounds.
    pub point: Duration,
    /// Segments per point; threads are spawned once per segment.
    pub rounds: usize,
    /// One slice for all threads, or a copy each.
    pub input: Input,
    /// A segment during which other processes used more than this many
    /// cores is run again, up to `retries` times (the last run is kept).
    pub max_load: f64,
    pub retries: usize,
}

impl Plan {
    /// The time all rows take: every point of every row.
    pub fn total(&self, rows: usize) -> Duration {
        self.point * (rows * self.sizes.len() * self.threads.len()) as u32
    }
}

/// A way of calling from many threads at once.
pub trait Contender: Sync {
    /// `threads` threads calling on `case`'s data (`input` says whether they
    /// share it) for `time` after a common start, each checking its first
    /// result.
    fn run(
        &self,
        case: &Case,
        input: Input,
        threads: usize,
        time: Duration,
    ) -> anyhow::Result<Segment>;
}

/// Any closure on a slice, called from Rust threads.
struct RustCaller<F>(F);

impl<F> Contender for RustCaller<F>
where
    F: Fn(&[f64]) -> anyhow::Result<Vec<usize>> + Sync,
{
    fn run(
        &self,
        case: &Case,
        input: Input,
        threads: usize,
        time: Duration,
    ) -> anyhow::Result<Segment> {
        rust_threads::run(&self.0, &case.data, input, &case.expected, threads, time)
    }
}

/// A row of the table.
pub struct Row<'a> {
    pub label: String,
    /// The crate's own path: the targets for threads apply to it.
    pub is_crate: bool,
    contender: Box<dyn Contender + 'a>,
}

impl<'a> Row<'a> {
    /// A row whose threads are Rust threads calling `call` on their slice.
    pub fn rust<F>(label: &str, is_crate: bool, call: F) -> Row<'a>
    where
        F: Fn(&[f64]) -> anyhow::Result<Vec<usize>> + Sync + 'a,
    {
        Row::new(label, is_crate, RustCaller(call))
    }

    /// A row with a harness of its own.
    pub fn new(label: &str, is_crate: bool, contender: impl Contender + 'a) -> Row<'a> {
        Row {
            label: label.to_owned(),
            is_crate,
            contender: Box::new(contender),
        }
    }
}

/// One row at one point: the segments' figures combined.
#[derive(Clone, Debug)]
pub struct Point {
    pub threads: usize,
    /// All calls ÷ all wall time of the point's segments.
    pub rate: f64,
    /// Each segment's calls/s, for the spread between rounds.
    pub rounds: Vec<f64>,
    /// Per-call latency in seconds, every call of every thread and round.
    pub p50: f64,
    pub p99: f64,
    pub calls: u64,
    /// Cores' worth of CPU other processes used meanwhile, mean over the
    /// segments kept (NaN where `/proc` could not be read).
    pub foreign: f64,
    /// Segments run again because of other load.
    pub rerun: usize,
}

/// One row's points at one size.
#[derive(Clone, Debug)]
pub struct RowResult {
    pub label: String,
    pub is_crate: bool,
    pub points: Vec<Point>,
}

impl RowResult {
    pub fn at(&self, threads: usize) -> Option<&Point> {
        self.points.iter().find(|p| p.threads == threads)
    }

    /// Calls/s from `threads` threads ÷ from one.
    pub fn scaling(&self, threads: usize) -> Option<f64> {
        Some(self.at(threads)?.rate / self.at(1)?.rate)
    }
}

/// Every row at one size.
#[derive(Clone, Debug)]
pub struct SizeResult {
    pub size: usize,
    pub rows: Vec<RowResult>,
}

/// Measures every row at every point of `plan`, interleaved per point.
pub fn measure(rows: &[Row<'_>], plan: &Plan) -> anyhow::Result<Vec<SizeResult>> {
    let rounds = plan.rounds.max(1);
    let segment = plan.point / rounds as u32;
    let mut results = Vec::new();
    for &size in &plan.sizes {
        let case = Case::new(size);
        let mut by_row: Vec<RowResult> = rows
            .iter()
            .map(|row| RowResult {
                label: row.label.clone(),
                is_crate: row.is_crate,
                points: Vec::new(),
            })
            .collect();
        for &threads in &plan.threads {
            eprintln!(
                "bench: contention, {size} values from {threads} threads, {} rows",
                rows.len()
            );
            let mut segments: Vec<Vec<Kept>> = rows.iter().map(|_| Vec::new()).collect();
            for round in 0..rounds {
                for k in 0..rows.len() {
                    let i = (round + k) % rows.len();
                    let mut attempt = 0;
                    loop {
                        let before = cpu::Reading::now();
                        let got = rows[i]
                            .contender
                            .run(&case, plan.input, threads, segment)
                            .map_err(|e| {
                                e.context(format!(
                                    "{} from {threads} threads at {size} values",
                                    rows[i].label
                                ))
                            })?;
                        let foreign = match (before, cpu::Reading::now()) {
                            (Some(before), Some(after)) => after.foreign_since(&before),
                            _ => f64::NAN,
                        };
                        if foreign > plan.max_load && attempt < plan.retries {
                            attempt += 1;
                            continue;
                        }
                        segments[i].push((got, foreign, attempt));
                        break;
                    }
                }
            }
            for (result, segments) in by_row.iter_mut().zip(segments) {
                result.points.push(combine(threads, segments));
            }
        }
        results.push(SizeResult { size, rows: by_row });
    }
    Ok(results)
}

/// A segment, the other load during it, and how often it was run again.
type Kept = (Segment, f64, usize);

fn combine(threads: usize, segments: Vec<Kept>) -> Point {
    let foreign = segments.iter().map(|(_, f, _)| f).sum::<f64>() / segments.len() as f64;
    let rerun = segments.iter().map(|(_, _, r)| r).sum();
    let rounds = segments.iter().map(|(s, _, _)| s.rate()).collect();
    let calls: u64 = segments.iter().map(|(s, _, _)| s.calls).sum();
    let wall: f64 = segments.iter().map(|(s, _, _)| s.wall.as_secs_f64()).sum();
    let mut latencies: Vec<u64> = segments
        .into_iter()
        .flat_map(|(s, _, _)| s.latencies_ns)
        .collect();
    latencies.sort_unstable();
    let at = |q| percentile(&latencies, q).map_or(f64::NAN, |ns| ns as f64 * 1e-9);
    Point {
        threads,
        rate: calls as f64 / wall,
        rounds,
        p50: at(0.5),
        p99: at(0.99),
        calls,
        foreign,
        rerun,
    }
}
