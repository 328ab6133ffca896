//! `make bench`: py-in-mem against Python itself, pure Rust, PyO3 and gRPC,
//! on the same data and the same Python function, in one interleaved run.
//!
//! Usage: `py-in-mem-bench [--quick] [--malloc-default] [--contention-only]
//! [--serving-only] [--contention-secs S] [--contention-own-data] [--out DIR]`.
//! Writes `results.md` and `results.svg` to DIR (default: this crate's
//! directory, or `target/bench-quick` with `--quick`) and prints the same
//! Markdown. `--contention-only` measures the contention table alone (into
//! `target/bench-contention` by default); `--serving-only` the "Serving a
//! model" table alone (into `target/bench-serving` by default);
//! `--contention-secs` sets the time each of its rows calls at each point
//! (1.5 s; 0.4 s with `--quick`); `--contention-own-data` gives each of its
//! threads a copy of the input instead of one shared slice.
//! `--http-only` measures the "Serving over HTTP" section alone (into
//! `target/bench-http` by default); `--http-requests N` sets its requests per
//! point (20,000; 2,000 with `--quick`).

mod affinity;
mod chart;
mod contention;
mod cpu_model;
mod data;
mod faults;
mod http;
mod huge;
mod kinds;
mod libpython;
mod machine;
mod malloc;
mod paths;
mod readonly;
mod report;
mod runner;
mod serve_async;
mod server;
mod serving;
mod stats;
mod steal;
mod suite;
mod thread_time;

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
    /// Sizes of the per-size tables; empty with `--contention-only`.
    pub sizes: Vec<usize>,
    pub plan: Plan,
    pub contention: contention::Plan,
    /// How malloc was set for the run (see `malloc`).
    pub allocator: String,
}

impl Config {
    fn new(quick: bool, allocator: String) -> Config {
        let threads = vec![1, 2, 4, 8];
        if quick {
            Config {
                quick,
                sizes: vec![10, 1_000],
                plan: Plan {
                    rounds: 9,
                    batch: Duration::from_millis(5),
                },
                contention: contention::Plan {
                    sizes: vec![1_000],
                    threads,
                    point: Duration::from_millis(400),
                    rounds: 2,
                    input: contention::Input::Shared,
                    max_load: 0.3,
                    retries: 1,
                },
                allocator,
            }
        } else {
            Config {
                quick,
                sizes: vec![10, 1_000, 100_000, 1_000_000],
                plan: Plan {
                    rounds: 41,
                    batch: Duration::from_millis(25),
                },
                contention: contention::Plan {
                    sizes: vec![1_000, 1_000_000],
                    threads,
                    point: Duration::from_millis(1_500),
                    rounds: 3,
                    input: contention::Input::Shared,
                    max_load: 0.3,
                    retries: 2,
                },
                allocator,
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut quick = false;
    let mut malloc_default = false;
    let mut contention_only = false;
    let mut serving_only = false;
    let mut own_data = false;
    let mut contention_secs: Option<f64> = None;
    let mut out: Option<PathBuf> = None;
    let mut http_only = false;
    let mut http_requests: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--malloc-default" => malloc_default = true,
            "--contention-only" => contention_only = true,
            "--serving-only" => serving_only = true,
            "--contention-own-data" => own_data = true,
            "--contention-secs" => {
                let secs = args.next().context("--contention-secs needs seconds")?;
                let secs: f64 = secs
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .with_context(|| {
                        format!("--contention-secs {secs:?}: not a positive number")
                    })?;
                contention_secs = Some(secs);
            }
            "--http-only" => http_only = true,
            "--http-requests" => {
                let n = args.next().context("--http-requests needs a count")?;
                http_requests = Some(
                    n.parse()
                        .ok()
                        .filter(|&n: &usize| n > 0)
                        .with_context(|| format!("--http-requests {n:?}: not a positive count"))?,
                );
            }
            "--out" => out = Some(args.next().context("--out needs a directory")?.into()),
            _ => anyhow::bail!(
                "unknown argument {arg:?}; usage: py-in-mem-bench [--quick] [--malloc-default] \
                 [--contention-only] [--serving-only] [--contention-secs S] \
                 [--contention-own-data] [--http-only] [--http-requests N] [--out DIR]"
            ),
        }
    }
    let out = out.unwrap_or_else(|| {
        let bench = Path::new(BENCH_DIR);
        let target = bench.parent().unwrap_or(bench).join("target");
        if http_only {
            target.join("bench-http")
        } else if quick {
            target.join("bench-quick")
        } else if contention_only {
            target.join("bench-contention")
        } else if serving_only {
            target.join("bench-serving")
        } else {
            bench.to_path_buf()
        }
    });
    // First, before any allocation worth the name and before any thread.
    let fixed = !malloc_default && malloc::fix_thresholds();
    let mut config = Config::new(quick, malloc::describe(fixed));
    anyhow::ensure!(
        !(contention_only && serving_only),
        "--contention-only and --serving-only exclude each other"
    );
    if contention_only || serving_only {
        config.sizes.clear();
    }
    if own_data {
        config.contention.input = contention::Input::PerThread;
    }
    if let Some(secs) = contention_secs {
        config.contention.point = Duration::from_secs_f64(secs);
    }
    let started = Instant::now();

    // py-in-mem starts Python (from the venv, without signal handlers) and
    // PyO3 then attaches to that interpreter; the other order would start
    // Python with PyO3's defaults instead (see README, "Benchmarks").
    let bench_python = Path::new(BENCH_DIR).join("python");
    py_in_mem::add_sys_path(&bench_python)?;
    let funcs = load_funcs()?;
    let mut machine = machine::Machine::read()?;
    // A bench on another libpython than the one built against measures
    // another interpreter than it names: refuse to run.
    machine.libpython.push(libpython::check_this_process()?);
    let http_plan = http::Plan::new(quick, http_requests);
    if http_only {
        return http::run_only(&http_plan, machine, &out);
    }

    let mut sizes = Vec::new();
    if !config.sizes.is_empty() {
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
        machine.libpython.push(libpython::Mapped::of(
            "the gRPC server (python)",
            server.pid(),
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = paths::grpc::connect(&rt, server.port)?;
        let grpc = GrpcClient { rt, client };
        for &size in &config.sizes {
            eprintln!("bench: {size} values, {} rounds", config.plan.rounds);
            sizes.push(suite::measure_size(
                &funcs,
                &grpc,
                &Case::new(size),
                config.plan,
            )?);
        }
    }
    let contention = if serving_only {
        Vec::new()
    } else {
        let rows = suite::contention_rows(&funcs);
        eprintln!(
            "bench: contention table, {} rows, about {:.0} s (up to {}× that while other \
             processes load the machine)",
            rows.len(),
            config.contention.total(rows.len()).as_secs_f64(),
            config.contention.retries + 1
        );
        contention::measure(&rows, &config.contention)?
    };

    let kinds = if sizes.is_empty() {
        Vec::new()
    } else {
        eprintln!("bench: results of other kinds (a scalar, a 2-D array)");
        kinds::measure_kinds(config.plan)?
    };
    let serving = if contention_only {
        Vec::new()
    } else {
        eprintln!("bench: serving a model (a held object's methods)");
        serving::measure_serving(config.plan)?
    };

    let async_calls = if sizes.is_empty() {
        None
    } else {
        eprintln!("bench: async calls from {} tasks", serve_async::TASKS);
        let case = Case::new(1_000);
        // Short rounds, many of them: the vCPUs' speed drifts within seconds.
        let (calls, rounds) = if config.quick {
            (2_000, 5)
        } else {
            (5_000, 41)
        };
        Some(serve_async::measure(
            &case.data,
            case.expected.len(),
            calls,
            rounds,
        )?)
    };

    let served = if contention_only || serving_only {
        None
    } else {
        eprintln!("bench: serving over HTTP");
        Some(http::measure(&http_plan, &mut machine)?)
    };

    let text = report::markdown(
        &config,
        &machine,
        &sizes,
        &contention,
        &kinds,
        &serving,
        async_calls.as_ref(),
        served.as_ref(),
        started.elapsed(),
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("results.md"), &text)?;
    if let Some(served) = &served {
        http::chart(&out.join("results-http.svg"), served)?;
    }
    println!("{text}");
    if sizes.is_empty() {
        eprintln!("bench: wrote {}/results.md", out.display());
    } else {
        chart::draw(&out.join("results.svg"), &sizes)?;
        eprintln!(
            "bench: wrote {0}/results.md and {0}/results.svg",
            out.display()
        );
    }
    Ok(())
}

/// Loads the functions under test through py-in-mem and through PyO3.
fn load_funcs() -> anyhow::Result<Funcs> {
    let detect = Outliers::new("outliers", "detect")?;
    let constant = Outliers::new("bench_funcs", "const")?;
    let detect_fn = py_in_mem::Function::load("outliers", "detect")?;
    let constant_fn = py_in_mem::Function::load("bench_funcs", "const")?;
    Python::attach(|py| -> anyhow::Result<Funcs> {
        let outliers = py.import("outliers")?;
        let bench_funcs = py.import("bench_funcs")?;
        Ok(Funcs {
            detect,
            constant,
            detect_fn,
            constant_fn,
            py_detect: outliers.getattr("detect")?.unbind(),
            py_const: bench_funcs.getattr("const")?.unbind(),
            timer: bench_funcs.getattr("time_calls")?.unbind(),
            contend: bench_funcs.getattr("contend")?.unbind(),
        })
    })
}
