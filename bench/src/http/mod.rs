//! "Serving over HTTP": the same model (`bench/python/http_model.py`) behind
//! the same JSON API, served by axum + py-in-mem (spawn_blocking, and
//! `call_async` when built), FastAPI + uvicorn (1 worker, one per core) and
//! axum + PyO3, each its own process on 127.0.0.1, run one at a time under
//! the same keep-alive load at several concurrencies.
//!
//! Each service's answers are checked first (one request against the answer
//! computed here from the same weights, to 1e-9; one bad request against
//! the model's ValueError message with a 422), then it is warmed up and
//! timed. Services run in alternating order (forward, then backward) over
//! the repetitions; the report gives the median and range of repetitions.

mod chart;
mod loadgen;
mod model;
mod report;
mod services;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;

use crate::libpython::Mapped;
use crate::machine::Machine;
use model::D;
pub use report::section;
use services::{Running, Service};

pub use chart::draw as chart;

/// What the section measures.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Requests per point (timed).
    pub requests: usize,
    /// Requests before a service's first point, at concurrency 8.
    pub warmup: usize,
    pub repetitions: usize,
    pub concurrency: Vec<usize>,
    /// Rows per request.
    pub rows: usize,
}

impl Plan {
    pub fn new(quick: bool, requests: Option<usize>) -> Plan {
        Plan {
            requests: requests.unwrap_or(if quick { 2_000 } else { 20_000 }),
            warmup: if quick { 500 } else { 1_000 },
            repetitions: 3,
            concurrency: vec![1, 8, 64],
            rows: 1,
        }
    }
}

/// One repetition of one point.
#[derive(Clone, Copy, Debug)]
pub struct Rep {
    pub per_second: f64,
    /// Seconds.
    pub p50: f64,
    pub p99: f64,
}

pub struct ServiceResult {
    pub service: Service,
    pub label: String,
    /// Why it was not measured.
    pub missing: Option<String>,
    /// Per concurrency (the plan's order), its repetitions.
    pub points: Vec<Vec<Rep>>,
}

pub struct Results {
    pub plan: Plan,
    pub cores: usize,
    pub services: Vec<ServiceResult>,
    /// fastapi, uvicorn, uvloop, httptools and pydantic versions.
    pub versions: String,
    pub took: Duration,
}

impl Results {
    pub fn get(&self, service: Service) -> Option<&ServiceResult> {
        self.services
            .iter()
            .find(|s| s.service == service && s.missing.is_none())
    }
}

/// The section's measurement; the services' libpython goes into
/// `machine.libpython`.
pub fn measure(plan: &Plan, machine: &mut Machine) -> anyhow::Result<Results> {
    let started = Instant::now();
    let bench_dir = Path::new(crate::BENCH_DIR);
    services::build(bench_dir.parent().unwrap_or(bench_dir))?;
    let cores = machine.cores;
    let model = model::Model::new();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        model::requests(64, plan.rows, 1_919)
            .iter()
            .map(|rows| Bytes::from(model::body(rows)))
            .collect(),
    );
    let mut results: Vec<ServiceResult> = Service::ALL
        .iter()
        .map(|&service| ServiceResult {
            service,
            label: service.label(cores),
            missing: service.command(bench_dir, cores).err(),
            points: vec![Vec::new(); plan.concurrency.len()],
        })
        .collect();
    for r in results.iter().filter(|r| r.missing.is_some()) {
        eprintln!(
            "bench: HTTP: skipping {}: {}",
            r.label,
            r.missing.as_deref().unwrap_or("")
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(1))
        .enable_all()
        .build()?;
    for rep in 0..plan.repetitions {
        let mut order: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].missing.is_none())
            .collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let result = &mut results[i];
            let command = result
                .service
                .command(bench_dir, cores)
                .map_err(anyhow::Error::msg)?;
            let running = Running::start(command, &result.label)?;
            eprintln!(
                "bench: HTTP {}/{}: {} (pid {}, 127.0.0.1:{})",
                rep + 1,
                plan.repetitions,
                result.label,
                running.pid(),
                running.port
            );
            runtime
                .block_on(check(running.port, &model))
                .with_context(|| format!("checking {}", result.label))?;
            check_libpython(&running, &result.label, rep == 0, machine)?;
            runtime.block_on(loadgen::run(
                running.port,
                Arc::clone(&bodies),
                8,
                plan.warmup,
            ))?;
            for (at, &concurrency) in plan.concurrency.iter().enumerate() {
                let point = runtime
                    .block_on(loadgen::run(
                        running.port,
                        Arc::clone(&bodies),
                        concurrency,
                        plan.requests,
                    ))
                    .with_context(|| format!("{} at concurrency {concurrency}", result.label))?;
                let at_q = |q: f64| {
                    crate::stats::percentile(&point.latencies, q)
                        .unwrap_or_default()
                        .as_secs_f64()
                };
                result.points[at].push(Rep {
                    per_second: point.requests as f64 / point.elapsed.as_secs_f64(),
                    p50: at_q(0.5),
                    p99: at_q(0.99),
                });
            }
            drop(running);
        }
    }
    Ok(Results {
        plan: plan.clone(),
        cores,
        services: results,
        versions: versions(),
        took: started.elapsed(),
    })
}

/// The service's answers before any timing: one request against the answer
/// computed here, one with rows of 3 features against the model's message.
/// Retries the first while the service is still starting (uvicorn's workers
/// listen after the port is printed).
async fn check(port: u16, model: &model::Model) -> anyhow::Result<()> {
    let rows = &model::requests(1, 2, 7)[0];
    let expected = model.predict(rows);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, answer) = loop {
        let attempt = async {
            let mut sender = loadgen::connect(port).await?;
            loadgen::post(&mut sender, port, Bytes::from(model::body(rows))).await
        };
        match attempt.await {
            Ok(answered) => break answered,
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("no answer within 60 s"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    if status != 200 {
        bail!(
            "answered {status} to a good request: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    model::check_answer(&answer, &expected).map_err(anyhow::Error::msg)?;

    let mut sender = loadgen::connect(port).await?;
    let (status, answer) = loadgen::post(
        &mut sender,
        port,
        Bytes::from(r#"{"rows": [[1.0, 2.0, 3.0]]}"#),
    )
    .await?;
    let detail: Option<String> = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v.get("detail")?.as_str().map(str::to_owned));
    let want = format!("expected rows of {D} features, got an array of shape (1, 3)");
    if status != 422 || detail.as_deref() != Some(want.as_str()) {
        bail!(
            "answered {status} {:?} to rows of 3 features; expected 422 with detail {want:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(())
}

/// Every process of the service must map the libpython py-in-mem was built
/// against; the first time, they go into the report.
fn check_libpython(
    running: &Running,
    label: &str,
    record: bool,
    machine: &mut Machine,
) -> anyhow::Result<()> {
    for (i, pid) in running.pids().into_iter().enumerate() {
        let who = if i == 0 {
            format!("HTTP service \"{label}\"")
        } else {
            format!("HTTP service \"{label}\", child process")
        };
        let mapped = Mapped::of(&who, pid);
        if mapped.is_built_against() == Some(false) {
            bail!(
                "{}: it would measure another interpreter",
                mapped.describe()
            );
        }
        if record {
            machine.libpython.push(mapped);
        }
    }
    Ok(())
}

/// `fastapi X, uvicorn Y, ...` as the venv has them.
fn versions() -> String {
    let version = |name: &str| -> String {
        py_in_mem::Function::load("importlib.metadata", "version")
            .and_then(|f| f.call::<String>(name))
            .unwrap_or_else(|_| "not installed".to_owned())
    };
    ["fastapi", "uvicorn", "uvloop", "httptools", "pydantic"]
        .iter()
        .map(|name| format!("{name} {}", version(name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--http-only`: this section alone, into `out/results.md` and
/// `out/results-http.svg`.
pub fn run_only(plan: &Plan, mut machine: Machine, out: &Path) -> anyhow::Result<()> {
    let results = measure(plan, &mut machine)?;
    let mut md = String::new();
    md.push_str("# py-in-mem benchmark: serving over HTTP\n\n");
    md.push_str(&format!(
        "From one run of this section alone (`--http-only`; {:.0} s).\n\n",
        results.took.as_secs_f64()
    ));
    section(&mut md, &results);
    crate::report::machine_section(&mut md, &machine);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("results.md"), &md)?;
    chart(&out.join("results-http.svg"), &results)?;
    println!("{md}");
    eprintln!(
        "bench: wrote {0}/results.md and {0}/results-http.svg",
        out.display()
    );
    Ok(())
}
