//! The "Serving over HTTP" section of results.md: what was measured, the
//! targets as ratios from this run, and the table.

use std::fmt::Write;

use super::services::Service;
use super::{Rep, Results};
use crate::report::{micros, thousands, times};

/// The median and the least and greatest of `f` over repetitions.
fn spread(reps: &[Rep], f: fn(&Rep) -> f64) -> Option<(f64, f64, f64)> {
    let mut values: Vec<f64> = reps.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    Some((
        crate::stats::percentile(&values, 0.5)?,
        *values.first()?,
        *values.last()?,
    ))
}

/// The median of `f` at `concurrency` for `service`.
fn median(
    results: &Results,
    service: Service,
    concurrency: usize,
    f: fn(&Rep) -> f64,
) -> Option<f64> {
    let at = results
        .plan
        .concurrency
        .iter()
        .position(|&c| c == concurrency)?;
    spread(results.get(service)?.points.get(at)?, f).map(|s| s.0)
}

pub fn section(md: &mut String, results: &Results) {
    let plan = &results.plan;
    let cores = results.cores;
    let _ = writeln!(md, "## Serving over HTTP\n");
    let _ = writeln!(
        md,
        "The same model behind the same JSON API in each service: a logistic regression on \
         16 features in numpy (`bench/python/http_model.py`, weights from a seed), `POST \
         /predict` with `{{\"rows\": [[16 floats]]}}` ({} row{} a request) answering \
         `{{\"labels\": [...], \"scores\": [...]}}`. Each service is its own process on \
         127.0.0.1, started and stopped (by PID) by the bench, one at a time; its answer to \
         one request is checked against the answer computed in Rust (to 1e-9), and a bad \
         request (3 features) must get a 422 with the model's ValueError message, before any \
         timing. Load: {} keep-alive HTTP/1.1 connections (hyper) in the bench process, each \
         sending its next request when its answer is in; {} requests per point after {} of \
         warm-up at concurrency 8; {} repetitions, the services in alternating order. \
         Figures: median over repetitions, (least–greatest) in brackets; latencies in µs. The \
         load generator runs on the same {cores} cores as the service. FastAPI runs under \
         uvicorn with uvloop and httptools (`uvicorn[standard]`); its handler is `async def` \
         (the model's call takes microseconds; a plain `def` on the thread pool measured \
         slower) with a pydantic request model; {}.\n",
        plan.rows,
        if plan.rows == 1 { "" } else { "s" },
        plan.concurrency
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
            + " (the concurrency)",
        thousands(plan.requests),
        thousands(plan.warmup),
        plan.repetitions,
        results.versions
    );
    for s in results.services.iter().filter(|s| s.missing.is_some()) {
        let _ = writeln!(
            md,
            "Not measured: {}: {}.\n",
            s.label,
            s.missing.as_deref().unwrap_or("")
        );
    }
    targets(md, results);
    let _ = writeln!(
        md,
        "| service | concurrency | requests/s | p50 (µs) | p99 (µs) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for s in results.services.iter().filter(|s| s.missing.is_none()) {
        for (at, &concurrency) in plan.concurrency.iter().enumerate() {
            let reps = &s.points[at];
            let cell = |f: fn(&Rep) -> f64, show: fn(f64) -> String| {
                spread(reps, f).map_or("n/a".to_owned(), |(m, lo, hi)| {
                    format!("{} ({}–{})", show(m), show(lo), show(hi))
                })
            };
            let _ = writeln!(
                md,
                "| {} | {concurrency} | {} | {} | {} |",
                s.label,
                cell(|r| r.per_second, |x| thousands(x.round() as usize)),
                cell(|r| r.p50, micros),
                cell(|r| r.p99, micros),
            );
        }
    }
    let _ = writeln!(
        md,
        "\nChart: `results-http.svg` (requests/s and p99 against concurrency).\n"
    );
}

fn targets(md: &mut String, results: &Results) {
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let fastapi = Service::FastApiPerCore.label(results.cores);
    let _ = writeln!(md, "Targets, from this run:\n");
    let async_missing = results.get(Service::InMemAsync).is_none();
    for concurrency in [8, 64] {
        if async_missing {
            let _ = writeln!(
                md,
                "- At concurrency {concurrency}: py-in-mem async ÷ {fastapi}: not measured \
                 (the async service is not built)."
            );
        } else {
            let ratio = |f: fn(&Rep) -> f64| {
                Some(
                    median(results, Service::InMemAsync, concurrency, f)?
                        / median(results, Service::FastApiPerCore, concurrency, f)?,
                )
            };
            let rps = ratio(|r| r.per_second).map_or("n/a".to_owned(), |x| {
                format!("{} ({})", times(x), verdict(x >= 1.0))
            });
            let p99 = ratio(|r| r.p99).map_or("n/a".to_owned(), |x| {
                format!("{} ({})", times(x), verdict(x <= 0.6))
            });
            let _ = writeln!(
                md,
                "- At concurrency {concurrency}, py-in-mem async ÷ {fastapi}: requests/s {rps}, \
                 target ≥ 1; p99 {p99}, target ≤ 0.6."
            );
        }
    }
    if async_missing {
        let _ = writeln!(
            md,
            "- At concurrency 1, py-in-mem async p50 ÷ spawn_blocking p50: not measured (the \
             async service is not built)."
        );
    } else {
        let ratio = median(results, Service::InMemAsync, 1, |r| r.p50)
            .zip(median(results, Service::InMemBlocking, 1, |r| r.p50))
            .map(|(a, b)| a / b);
        let _ = writeln!(
            md,
            "- At concurrency 1, py-in-mem async p50 ÷ spawn_blocking p50: {}, target ≤ 1.",
            ratio.map_or("n/a".to_owned(), |x| format!(
                "{} ({})",
                times(x),
                verdict(x <= 1.0)
            ))
        );
    }
    // For reference, not a target: the synchronous call against FastAPI.
    let reference: Vec<String> = [8, 64]
        .iter()
        .filter_map(|&c| {
            let rps = median(results, Service::InMemBlocking, c, |r| r.per_second)?
                / median(results, Service::FastApiPerCore, c, |r| r.per_second)?;
            let p99 = median(results, Service::InMemBlocking, c, |r| r.p99)?
                / median(results, Service::FastApiPerCore, c, |r| r.p99)?;
            Some(format!(
                "at concurrency {c}, requests/s {} and p99 {}",
                times(rps),
                times(p99)
            ))
        })
        .collect();
    if !reference.is_empty() {
        let _ = writeln!(
            md,
            "- For reference (no target): py-in-mem spawn_blocking ÷ {fastapi}: {}.",
            reference.join("; ")
        );
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::super::{Plan, Rep, Results, ServiceResult};
    use super::*;

    fn reps(per_second: f64, p50: f64, p99: f64) -> Vec<Rep> {
        vec![
            Rep {
                per_second,
                p50,
                p99
            };
            3
        ]
    }

    #[test]
    fn the_targets_are_ratios_of_the_async_service_to_fastapi_and_spawn_blocking() {
        let plan = Plan::new(true, None);
        let services = Service::ALL
            .iter()
            .map(|&service| {
                let (rps, p50, p99) = match service {
                    Service::InMemAsync => (6_000.0, 90e-6, 300e-6),
                    Service::InMemBlocking => (5_000.0, 100e-6, 400e-6),
                    _ => (3_000.0, 400e-6, 1_000e-6),
                };
                ServiceResult {
                    service,
                    label: service.label(2),
                    missing: None,
                    points: plan
                        .concurrency
                        .iter()
                        .map(|_| reps(rps, p50, p99))
                        .collect(),
                }
            })
            .collect();
        let results = Results {
            plan,
            cores: 2,
            services,
            versions: String::new(),
            took: std::time::Duration::ZERO,
        };
        let mut md = String::new();
        section(&mut md, &results);
        assert!(md.contains(
            "- At concurrency 8, py-in-mem async ÷ FastAPI + uvicorn, 2 workers: requests/s \
             2.00× (met), target ≥ 1; p99 0.30× (met), target ≤ 0.6."
        ));
        assert!(md.contains(
            "- At concurrency 1, py-in-mem async p50 ÷ spawn_blocking p50: 0.90× (met), target ≤ 1."
        ));
        assert!(!md.contains("not measured"));
    }
}
