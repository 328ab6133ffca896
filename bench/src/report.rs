//! The run as Markdown: a table per size, the contention table, a summary in
//! the article's words, the targets, and the machine. Every figure is a ratio
//! or a time from this run.

use std::fmt::Write;
use std::time::Duration;

use crate::contention;
use crate::kinds::{self, Kind, KindRow};
use crate::machine::Machine;
use crate::serving::{self, ServingRow};
use crate::suite::{Key, SizeResult};
use crate::Config;

/// `1,000,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as microseconds with 3 significant digits or more.
pub fn micros(seconds: f64) -> String {
    let us = seconds * 1e6;
    match us {
        x if x < 10.0 => format!("{x:.2}"),
        x if x < 100.0 => format!("{x:.1}"),
        x => thousands(x.round() as usize),
    }
}

/// A ratio as `45×`, `1.3×` or `0.82×`.
pub fn times(ratio: f64) -> String {
    match ratio {
        r if r >= 100.0 => format!("{}×", thousands(r.round() as usize)),
        r if r >= 10.0 => format!("{r:.0}×"),
        r => format!("{r:.2}×"),
    }
}

/// A ratio as a difference, `+3%` or `-2%`.
fn percent(ratio: f64) -> String {
    format!("{:+.0}%", (ratio - 1.0) * 100.0)
}

/// The figures of one size that the summary and the targets use.
struct Ratios {
    size: usize,
    /// gRPC ÷ py-in-mem, on the work.
    call: Option<f64>,
    /// gRPC ÷ py-in-mem, call only.
    call_only: Option<f64>,
    /// py-in-mem ÷ Python itself, on the work.
    over_python: Option<f64>,
    /// py-in-mem ÷ Python itself, call only.
    over_python_call_only: Option<f64>,
    /// PyO3 borrowed ÷ py-in-mem, call only.
    vs_pyo3_call_only: Option<f64>,
    /// PyO3 borrowed ÷ py-in-mem, on the work.
    vs_pyo3: Option<f64>,
}

impl Ratios {
    fn of(result: &SizeResult) -> Ratios {
        let ratio = |a: Key, b: Key, call_only: bool| {
            Some(result.get(a, call_only)?.median / result.get(b, call_only)?.median)
        };
        Ratios {
            size: result.size,
            call: ratio(Key::Grpc, Key::InMem, false),
            call_only: ratio(Key::Grpc, Key::InMem, true),
            over_python: ratio(Key::InMem, Key::Python, false),
            over_python_call_only: ratio(Key::InMem, Key::Python, true),
            vs_pyo3_call_only: ratio(Key::Pyo3Borrowed, Key::InMem, true),
            vs_pyo3: ratio(Key::Pyo3Borrowed, Key::InMem, false),
        }
    }
}

#[allow(clippy::too_many_arguments)] // one argument a section of the report
pub fn markdown(
    config: &Config,
    machine: &Machine,
    sizes: &[SizeResult],
    contention: &[contention::SizeResult],
    kinds: &[KindRow],
    serving: &[ServingRow],
    async_calls: Option<&crate::serve_async::ServeAsync>,
    http: Option<&crate::http::Results>,
    took: Duration,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# py-in-mem benchmark\n");
    if sizes.is_empty() && contention.is_empty() {
        let _ = writeln!(
            md,
            "From one run of the serving table alone (`--serving-only`{}; {} interleaved \
             rounds of about {} ms per path; {:.0} s in all). Time per call in µs: median, \
             with p10 and p90 over rounds. Allocator: {}.\n",
            if config.quick { ", `--quick`" } else { "" },
            config.plan.rounds,
            config.plan.batch.as_millis(),
            took.as_secs_f64(),
            config.allocator
        );
    } else if sizes.is_empty() {
        let _ = writeln!(
            md,
            "From one run of the contention table alone (`--contention-only`{}; {:.0} s in \
             all). Allocator: {}.\n",
            if config.quick { ", `--quick`" } else { "" },
            took.as_secs_f64(),
            config.allocator
        );
    } else {
        let kind = if config.quick {
            "`make bench-quick`"
        } else {
            "`make bench`"
        };
        let _ = writeln!(
            md,
            "From one {kind} run ({} interleaved rounds of about {} ms per path, then the \
             contention table; {:.0} s in all). Time per call in µs: median, with p10 and p90 \
             over rounds. *Call only*: the same paths calling a Python function that returns a \
             constant empty int64 array. Allocator: {}.\n",
            config.plan.rounds,
            config.plan.batch.as_millis(),
            took.as_secs_f64(),
            config.allocator
        );
    }
    summary(&mut md, sizes, contention, kinds, serving);
    if !sizes.is_empty() {
        targets(&mut md, sizes);
    }
    if !contention.is_empty() {
        contention::report::targets(&mut md, contention, sizes, machine.switch_interval);
    }
    for result in sizes {
        size_table(&mut md, result);
    }
    kinds::table(&mut md, kinds);
    serving::table(&mut md, serving);
    if let Some(async_calls) = async_calls {
        crate::serve_async::section(&mut md, async_calls);
    }
    contention::report::tables(
        &mut md,
        &config.contention,
        contention,
        sizes,
        machine.cores,
    );
    if let Some(http) = http {
        crate::http::section(&mut md, http);
    }
    machine_section(&mut md, machine);
    md
}

fn summary(
    md: &mut String,
    sizes: &[SizeResult],
    contention: &[contention::SizeResult],
    kinds: &[KindRow],
    serving: &[ServingRow],
) {
    let ratios: Vec<Ratios> = sizes.iter().map(Ratios::of).collect();
    let _ = writeln!(md, "## Summary\n");
    if ratios.is_empty() {
        serving::summary(md, serving);
        contention::report::summary(md, contention);
        return;
    }
    if let Some(r) = ratios.iter().find(|r| r.size == 1_000) {
        let show = |x: Option<f64>, f: fn(f64) -> String| x.map_or("n/a".to_owned(), f);
        let _ = writeln!(md, "At 1,000 values, as in the article:\n");
        let _ = writeln!(md, "- call: {} (gRPC ÷ py-in-mem)", show(r.call, times));
        let _ = writeln!(
            md,
            "- call only: {} (gRPC ÷ py-in-mem)",
            show(r.call_only, times)
        );
        let _ = writeln!(
            md,
            "- over Python itself: {} (py-in-mem ÷ Python's own time)",
            show(r.over_python, percent)
        );
        let _ = writeln!(
            md,
            "- vs PyO3 borrowed: {} (PyO3 borrow_from_array ÷ py-in-mem, call only)\n",
            show(r.vs_pyo3_call_only, times)
        );
    }
    let _ = write!(md, "| | ");
    let _ = writeln!(
        md,
        "{} |",
        ratios
            .iter()
            .map(|r| format!("{} values", thousands(r.size)))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---:|".repeat(ratios.len()));
    let line = |md: &mut String,
                label: &str,
                get: &dyn Fn(&Ratios) -> Option<f64>,
                f: fn(f64) -> String| {
        let cells: Vec<String> = ratios
            .iter()
            .map(|r| get(r).map_or("n/a".to_owned(), f))
            .collect();
        let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
    };
    line(md, "call (gRPC ÷ py-in-mem)", &|r| r.call, times);
    line(md, "call only (gRPC ÷ py-in-mem)", &|r| r.call_only, times);
    line(md, "over Python itself", &|r| r.over_python, percent);
    line(
        md,
        "over Python itself, call only",
        &|r| r.over_python_call_only,
        percent,
    );
    line(
        md,
        "vs PyO3 borrowed (PyO3 ÷ py-in-mem)",
        &|r| r.vs_pyo3,
        times,
    );
    line(
        md,
        "vs PyO3 borrowed, call only",
        &|r| r.vs_pyo3_call_only,
        times,
    );
    for (kind, what) in [
        (Kind::Scalar, "a scalar result (`np.mean` of 1,000 values)"),
        (
            Kind::Matrix,
            "a 2-D result (`np.outer` of two 100-value vectors), copied out",
        ),
        (Kind::MatrixInPlace, "the same 2-D result read in place"),
    ] {
        if let Some(ratio) = kinds::vs_pyo3(kinds, kind) {
            let _ = writeln!(
                md,
                "\nvs PyO3 + rust-numpy on {what}: {} (PyO3 ÷ py-in-mem).",
                times(ratio)
            );
        }
    }
    let _ = writeln!(md);
    serving::summary(md, serving);
    contention::report::summary(md, contention);
}

fn targets(md: &mut String, sizes: &[SizeResult]) {
    let ratios: Vec<Ratios> = sizes.iter().map(Ratios::of).collect();
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let _ = writeln!(md, "## Targets for one call, from this run\n");
    let _ = writeln!(
        md,
        "Why each: within 5% of Python itself, because a caller in Rust should pay \
         no more than a caller inside Python; call only no dearer than PyO3 borrowed, \
         the usual way to call Python from Rust; 20× faster than gRPC (1,000× on call \
         only), the article's case against a network hop; zero copy, so that a call's \
         own cost does not grow with its input.\n"
    );
    let over: Vec<String> = ratios
        .iter()
        .filter_map(|r| Some((r.size, r.over_python?)))
        .map(|(size, x)| {
            format!(
                "{}: {} ({})",
                thousands(size),
                percent(x),
                verdict(x <= 1.05)
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "- Within 5% of Python itself at every size: {}",
        over.join("; ")
    );
    for result in sizes {
        let huge = result.get(Key::InMemHuge, false);
        if let (Some(huge), Some(python)) = (huge, result.get(Key::Python, false)) {
            let _ = writeln!(
                md,
                "  - at {} values with the input in huge pages, as numpy's own arrays are: {} ({})",
                thousands(result.size),
                percent(huge.median / python.median),
                verdict(huge.median / python.median <= 1.05)
            );
        }
    }
    let pyo3: Vec<String> = ratios
        .iter()
        .filter_map(|r| Some((r.size, r.vs_pyo3_call_only?)))
        .map(|(size, x)| format!("{}: {} ({})", thousands(size), times(x), verdict(x >= 1.0)))
        .collect();
    let _ = writeln!(
        md,
        "- Call only no dearer than PyO3 borrowed (PyO3 ÷ py-in-mem ≥ 1): {}",
        pyo3.join("; ")
    );
    if let Some(r) = ratios.iter().find(|r| r.size == 1_000) {
        if let (Some(call), Some(call_only)) = (r.call, r.call_only) {
            let _ = writeln!(
                md,
                "- ≥ 20× faster than gRPC at 1,000 values: {} ({}); ≥ 1,000× on call only: {} ({})",
                times(call),
                verdict(call >= 20.0),
                times(call_only),
                verdict(call_only >= 1000.0)
            );
        }
    }
    let first = sizes.first();
    let last = sizes.last().filter(|r| r.size == 1_000_000);
    match (first, last) {
        (Some(small), Some(big)) => {
            let growth = |key: Key| Some(big.get(key, true)?.median / small.get(key, true)?.median);
            if let (Some(in_mem), Some(grpc)) = (growth(Key::InMem), growth(Key::Grpc)) {
                let _ = writeln!(
                    md,
                    "- Zero copy: call only at 1,000,000 values ÷ at {} values: py-in-mem {} ({}, target ≤ 1.5×); gRPC {}",
                    thousands(small.size),
                    times(in_mem),
                    verdict(in_mem <= 1.5),
                    times(grpc)
                );
            }
        }
        _ => {
            let _ = writeln!(
                md,
                "- Zero copy (1,000,000 values): not measured in this run"
            );
        }
    }
    let _ = writeln!(md);
}

fn size_table(md: &mut String, result: &SizeResult) {
    let python = |call_only| result.get(Key::Python, call_only).map(|s| s.median);
    let _ = writeln!(md, "## {} values\n", thousands(result.size));
    let _ = writeln!(
        md,
        "| path | µs/call | p10 | p90 | ÷ Python itself | page faults/call |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    for call_only in [false, true] {
        for key in Key::ALL {
            if let Some(row) = result.row(key, call_only) {
                let s = row.spread;
                let label = if call_only {
                    format!("{}, call only", key.label())
                } else {
                    key.label().to_owned()
                };
                let vs = python(call_only).map_or("n/a".to_owned(), |p| times(s.median / p));
                let _ = writeln!(
                    md,
                    "| {label} | {} | {} | {} | {vs} | {:.0} |",
                    micros(s.median),
                    micros(s.p10),
                    micros(s.p90),
                    row.faults
                );
            }
        }
    }
    let _ = writeln!(md);
}

pub(crate) fn machine_section(md: &mut String, m: &Machine) {
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "- CPU: {}, {} logical cores available", m.cpu, m.cores);
    let _ = writeln!(
        md,
        "- Linux {}; load average at start: {}",
        m.kernel, m.load
    );
    let _ = writeln!(
        md,
        "- Python {}; numpy {}; grpcio {}",
        m.python, m.numpy, m.grpcio
    );
    let _ = writeln!(md, "- BLAS/threads environment: {}", m.blas_env);
    let _ = writeln!(
        md,
        "- Python's switch interval (`sys.getswitchinterval()`): {} ms",
        m.switch_interval * 1e3
    );
    for mapped in &m.libpython {
        let _ = writeln!(md, "- libpython: {}", mapped.describe());
    }
    let _ = writeln!(md, "- Run at {}, commit {}", m.date, m.commit);
    let steal = crate::steal::steal_since(&m.cpu_times);
    if !steal.is_empty() {
        let _ = writeln!(
            md,
            "- Time the host took from the vCPUs during the run (steal, /proc/stat): {}",
            crate::steal::describe(&steal)
        );
    }
}
