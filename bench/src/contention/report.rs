//! The contention table as Markdown, its line in the summary, and the targets
//! for threads and for a call's own cost, with the figures of this run.

use std::fmt::Write;

use super::{Input, Plan, RowResult, SizeResult};
use crate::report::{micros, thousands, times};
use crate::suite::{Key, SizeResult as SizeTable};

/// The thread counts held to 0.9× one thread's calls/s at 1,000 values.
const SMALL_THREADS: [usize; 3] = [2, 4, 8];

/// `0.45× (**missed**: 50% short of 0.9×)` for a ratio that must reach
/// `floor`.
fn at_least(ratio: f64, floor: f64) -> String {
    if ratio >= floor {
        format!("{} (met)", times(ratio))
    } else {
        format!(
            "{} (**missed**: {:.1}% short of {})",
            times(ratio),
            (1.0 - ratio / floor) * 100.0,
            times(floor)
        )
    }
}

/// `0.79× (**missed**: 32% over 0.6×)` for a ratio that must stay at or
/// under `ceiling`.
fn at_most(ratio: f64, ceiling: f64) -> String {
    if ratio <= ceiling {
        format!("{} (met)", times(ratio))
    } else {
        format!(
            "{} (**missed**: {:.0}% over {})",
            times(ratio),
            (ratio / ceiling - 1.0) * 100.0,
            times(ceiling)
        )
    }
}

/// Seconds as milliseconds, 2 decimals.
fn millis(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1e3)
}

/// One line per size: how each row scales with threads.
pub fn summary(md: &mut String, results: &[SizeResult]) {
    for result in results {
        let threads: Vec<usize> = result
            .rows
            .first()
            .map(|row| {
                row.points
                    .iter()
                    .map(|p| p.threads)
                    .filter(|&n| n > 1)
                    .collect()
            })
            .unwrap_or_default();
        let list = |n: &[usize]| {
            n.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rows: Vec<String> = result
            .rows
            .iter()
            .map(|row| {
                let ratios: Vec<String> = threads
                    .iter()
                    .map(|&n| row.scaling(n).map_or("n/a".to_owned(), times))
                    .collect();
                format!("{} {}", row.label, ratios.join(", "))
            })
            .collect();
        let _ = writeln!(
            md,
            "Contention, {} values: calls/s from {} threads ÷ from 1 thread: {}.\n",
            thousands(result.size),
            list(&threads),
            rows.join("; ")
        );
    }
}

/// The targets for threads and for a call's own cost, each with this run's
/// figure and verdict.
pub fn targets(md: &mut String, results: &[SizeResult], sizes: &[SizeTable], switch_interval: f64) {
    let _ = writeln!(
        md,
        "## Targets for threads and a call's own cost, from this run\n"
    );
    let _ = writeln!(
        md,
        "Why each: 0.9× one thread's calls/s from 2 to 8 threads at 1,000 values, so \
         that threads calling short functions lose nothing to GIL hand-overs; 1.6× from \
         2 threads at 1,000,000 values, so that numpy's loops, which give the GIL up, \
         stay parallel; p99 within a switch interval and 2 calls, the wait CPython's own \
         switching allows its threads; call only ≤ 0.6× PyO3 borrowed and, in a held-GIL \
         scope, within 3× Python itself, so that what the crate adds around a call stays \
         small next to the call.\n"
    );
    let crate_rows = || {
        results
            .iter()
            .flat_map(|r| r.rows.iter().map(move |row| (r.size, row)))
            .filter(|(_, row)| row.is_crate)
    };
    for (size, row) in crate_rows().filter(|(size, _)| *size == 1_000) {
        let cells: Vec<String> = SMALL_THREADS
            .iter()
            .filter_map(|&n| Some(format!("{n}: {}", at_least(row.scaling(n)?, 0.9))))
            .collect();
        let _ = writeln!(
            md,
            "- {}, {} values: 2, 4 and 8 threads ≥ 0.9× one thread's calls/s: {}",
            row.label,
            thousands(size),
            cells.join("; ")
        );
    }
    for (size, row) in crate_rows().filter(|(size, _)| *size == 1_000_000) {
        if let Some(two) = row.scaling(2) {
            let _ = writeln!(
                md,
                "- {}, {} values: 2 threads ≥ 1.6× one thread's calls/s: {}",
                row.label,
                thousands(size),
                at_least(two, 1.6)
            );
        }
    }
    for (size, row) in crate_rows() {
        p99_target(md, size, row, switch_interval);
    }
    call_only_targets(md, sizes);
    let _ = writeln!(md);
}

/// p99 under contention ≤ the switch interval + 2 calls, a call being the
/// row's own 1-thread p50 at that size.
fn p99_target(md: &mut String, size: usize, row: &RowResult, switch_interval: f64) {
    let Some(one) = row.at(1) else {
        return;
    };
    let bound = switch_interval + 2.0 * one.p50;
    let cells: Vec<String> = row
        .points
        .iter()
        .filter(|p| p.threads > 1)
        .map(|p| {
            let over = p.p99 - bound;
            if over <= 0.0 {
                format!("{}: {} (met)", p.threads, millis(p.p99))
            } else {
                // Little's law: with every thread calling nonstop, the mean
                // latency is threads ÷ calls/s, whatever the order of service.
                format!(
                    "{}: {} (**missed** by {}; the mean alone, threads ÷ calls/s, is {})",
                    p.threads,
                    millis(p.p99),
                    millis(over),
                    millis(p.threads as f64 / p.rate)
                )
            }
        })
        .collect();
    let _ = writeln!(
        md,
        "- {}, {} values: p99 latency under contention ≤ switch interval + 2 calls ({} + 2 × {} µs = {}): {}",
        row.label,
        thousands(size),
        millis(switch_interval),
        micros(one.p50),
        millis(bound),
        cells.join("; ")
    );
}

/// Call only ≤ 0.6× PyO3's borrowed call (the GIL taken per call), and, in a
/// held-GIL scope, within 3× Python's own call.
fn call_only_targets(md: &mut String, sizes: &[SizeTable]) {
    let ratio =
        |r: &SizeTable, a: Key, b: Key| Some(r.get(a, true)?.median / r.get(b, true)?.median);
    let pyo3: Vec<String> = sizes
        .iter()
        .filter_map(|r| Some((r.size, ratio(r, Key::InMem, Key::Pyo3Borrowed)?)))
        .map(|(size, x)| format!("{}: {}", thousands(size), at_most(x, 0.6)))
        .collect();
    if pyo3.is_empty() {
        let _ = writeln!(
            md,
            "- Call only ≤ 0.6× PyO3 borrowed: not measured in this run (no per-size tables)"
        );
    } else {
        let _ = writeln!(
            md,
            "- Call only ≤ 0.6× PyO3 borrowed with the GIL taken per call (py-in-mem ÷ PyO3): {}",
            pyo3.join("; ")
        );
    }
    for key in [Key::InMemHeldGil, Key::InMemHeldLent] {
        let held: Vec<String> = sizes
            .iter()
            .filter_map(|r| Some((r.size, ratio(r, key, Key::Python)?)))
            .map(|(size, x)| format!("{}: {}", thousands(size), at_most(x, 3.0)))
            .collect();
        if held.is_empty() {
            let _ = writeln!(
                md,
                "- Call only, {}, within 3× Python itself: not measured in this run",
                key.label()
            );
        } else {
            let _ = writeln!(
                md,
                "- Call only, {}, within 3× Python itself: {}",
                key.label(),
                held.join("; ")
            );
        }
    }
}

/// A table per size, and how the 1-thread figure compares with the main
/// table's (a worker thread against the main thread).
pub fn tables(
    md: &mut String,
    plan: &Plan,
    results: &[SizeResult],
    sizes: &[SizeTable],
    cores: usize,
) {
    if results.is_empty() {
        return;
    }
    let rounds = plan.rounds.max(1);
    let _ = writeln!(md, "## Contention: threads calling at once\n");
    let _ = writeln!(
        md,
        "Each thread calls `outliers.detect` nonstop on {input}. Every row \
         calls for {:.1} s at each point, in {rounds} rounds of {:.2} s interleaved with the \
         other rows; each round spawns its threads once and starts them together at a \
         barrier, after one checked call each. *calls/s*: calls ÷ wall time over the rounds \
         (the range: the rounds' own). *p50*, *p99*: every call's latency, timed on its own \
         thread, merged over threads and rounds. *other load*: cores' worth of CPU that \
         other processes used (or the hypervisor stole) meanwhile, from `/proc/stat`, mean \
         over the rounds kept; a round with more than {max_load} is run again, up to \
         {retries} times (*rerun*: how many times in all), and the last run kept. This \
         machine has {cores} cores and is shared: a point with other load near 1 measured \
         on about one core, where threads cannot contend. Python's own threads time their calls with \
         `time.perf_counter_ns` and call on a numpy array of their own making (in huge pages \
         from 4 MB on, where a `Vec` is not).\n",
        plan.point.as_secs_f64(),
        plan.point.as_secs_f64() / rounds as f64,
        max_load = plan.max_load,
        retries = plan.retries,
        input = match plan.input {
            Input::Shared => "one slice that all threads share",
            Input::PerThread => "its own copy of the data (`--contention-own-data`)",
        },
    );
    for result in results {
        let _ = writeln!(md, "### {} values\n", thousands(result.size));
        let _ = writeln!(
            md,
            "| path | threads | calls/s | ÷ 1 thread | p50 µs | p99 µs | calls/s by round | calls timed | other load | rerun |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &result.rows {
            for point in &row.points {
                let lo = point.rounds.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = point.rounds.iter().copied().fold(0.0, f64::max);
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {}–{} | {} | {:.2} | {} |",
                    row.label,
                    point.threads,
                    thousands(point.rate.round() as usize),
                    row.scaling(point.threads).map_or("n/a".to_owned(), times),
                    micros(point.p50),
                    micros(point.p99),
                    thousands(lo.round() as usize),
                    thousands(hi.round() as usize),
                    thousands(point.calls as usize),
                    point.foreign,
                    point.rerun
                );
            }
        }
        let _ = writeln!(md);
        let main = sizes
            .iter()
            .find(|r| r.size == result.size)
            .and_then(|r| r.get(Key::InMem, false));
        let one = result
            .rows
            .iter()
            .find(|row| row.is_crate)
            .and_then(|row| row.at(1));
        if let (Some(main), Some(one), true) = (main, one, result.size <= 1_000) {
            let _ = writeln!(
                md,
                "At {} values, one thread here (a thread Python has never seen, as in any \
                 worker pool) takes {} µs a call (p50) against {} µs on the main thread in \
                 the table above: {}.\n",
                thousands(result.size),
                micros(one.p50),
                micros(main.median),
                times(one.p50 / main.median)
            );
        }
    }
}
