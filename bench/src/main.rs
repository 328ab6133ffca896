//! `make bench`: py-in-mem against Python itself, pure Rust, PyO3 and gRPC,
//! on the same data and the same Python function, in one interleaved run.
//!
//! Usage: `py-in-mem-bench [--quick] [--malloc-default] [--out DIR]`. Writes `results.md` and
//! `results.svg` to DIR (default: this crate's directory, or
//! `target/bench-quick` with `--quick`) and prints the same Markdown.

mod chart;
mod data;
mod faults;
mod huge;
mod kinds;
mod machine;
mod malloc;
mod paths;
mod report;
mod runner;
mod server;
mod stats;
mod suite;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use py_in_mem::Outliers;
use pyo3::prelude::*;

use data::Case;
use runner::Plan;
use suite::{Funcs, GrpcClient};

/// This crate's directory: its Python helpers and proto live here.
const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// What one run measures.
pub struct Config {
    pub quick: bool,
    pub sizes: Vec<usize>,
    pub thread_sizes: Vec<usize>,
    pub plan: Plan,
    /// How malloc was set for the run (see `malloc`).
    pub allocator: String,
}

impl Config {
    fn new(quick: bool, allocator: String) -> Config {
        if quick {
            Config {
                quick,
                sizes: vec![10, 1_000],
                thread_sizes: vec![1_000],
                plan: Plan {
                    rounds: 9,
                    batch: Duration::from_millis(5),
                },
                allocator,
            }
        } else {
            Config {
                quick,
                sizes: vec![10, 1_000, 100_000, 1_000_000],
                thread_sizes: vec![1_000, 1_000_000],
                plan: Plan {
                    rounds: 41,
                    batch: Duration::from_millis(25),
                },
                allocator,
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut quick = false;
    let mut malloc_default = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--malloc-default" => malloc_default = true,
            "--out" => out = Some(args.next().context("--out needs a directory")?.into()),
            _ => anyhow::bail!(
                "unknown argument {arg:?}; usage: py-in-mem-bench [--quick] [--malloc-default] [--out DIR]"
            ),
        }
    }
    let out = out.unwrap_or_else(|| {
        let bench = Path::new(BENCH_DIR);
        if quick {
            bench.parent().unwrap_or(bench).join("target/bench-quick")
        } else {
            bench.to_path_buf()
        }
    });
    // First, before any allocation worth the name and before any thread.
    let fixed = !malloc_default && malloc::fix_thresholds();
    let config = Config::new(quick, malloc::describe(fixed));
    let started = Instant::now();

    // py-in-mem starts Python (from the venv, without signal handlers) and
    // PyO3 then attaches to that interpreter; the other order would start
    // Python with PyO3's defaults instead (see README, "Benchmarks").
    let bench_python = Path::new(BENCH_DIR).join("python");
    py_in_mem::add_sys_path(&bench_python)?;
    let funcs = load_funcs()?;
    let machine = machine::Machine::read()?;

    let server = server::Server::start(
        py_in_mem::BUILD_PYTHON,
        &bench_python.join("grpc_server.py"),
        &Path::new(BENCH_DIR).join("proto/outliers.proto"),
        &format!("{}:{}", bench_python.display(), py_in_mem::MODULE_DIR),
    )?;
    eprintln!(
        "bench: gRPC server pid {} on 127.0.0.1:{}",
        server.pid(),
        server.port
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = paths::grpc::connect(&rt, server.port)?;
    let grpc = GrpcClient { rt, client };

    let mut sizes = Vec::new();
    for &size in &config.sizes {
        eprintln!("bench: {size} values, {} rounds", config.plan.rounds);
        sizes.push(suite::measure_size(
            &funcs,
            &grpc,
            &Case::new(size),
            config.plan,
        )?);
    }
    drop(grpc);
    drop(server);
    let mut threads = Vec::new();
    for &size in &config.thread_sizes {
        eprintln!("bench: {size} values from 1 and 2 threads");
        threads.push(suite::measure_threads(
            &funcs,
            &Case::new(size),
            config.plan,
        )?);
    }

    eprintln!("bench: results of other kinds (a scalar, a 2-D array)");
    let kinds = kinds::measure_kinds(config.plan)?;

    let text = report::markdown(
        &config,
        &machine,
        &sizes,
        &threads,
        &kinds,
        started.elapsed(),
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("results.md"), &text)?;
    chart::draw(&out.join("results.svg"), &sizes)?;
    println!("{text}");
    eprintln!(
        "bench: wrote {0}/results.md and {0}/results.svg",
        out.display()
    );
    Ok(())
}

/// Loads the functions under test through py-in-mem and through PyO3.
fn load_funcs() -> anyhow::Result<Funcs> {
    let detect = Outliers::new("outliers", "detect")?;
    let constant = Outliers::new("bench_funcs", "const")?;
    Python::attach(|py| -> anyhow::Result<Funcs> {
        let outliers = py.import("outliers")?;
        let bench_funcs = py.import("bench_funcs")?;
        Ok(Funcs {
            detect,
            constant,
            py_detect: outliers.getattr("detect")?.unbind(),
            py_const: bench_funcs.getattr("const")?.unbind(),
            timer: bench_funcs.getattr("time_calls")?.unbind(),
        })
    })
}
