//! `results-http.svg`: requests/s (left) and p99 latency (right) against
//! concurrency, one line per service (medians; the bars span repetitions).

use std::path::Path;

use plotters::prelude::*;

use super::services::Service;
use super::{Rep, Results};

fn color(service: Service) -> RGBColor {
    match service {
        Service::InMemBlocking => RGBColor(214, 39, 40),
        Service::InMemAsync => RGBColor(140, 20, 20),
        Service::FastApi1 => RGBColor(31, 119, 180),
        Service::FastApiPerCore => RGBColor(23, 190, 207),
        Service::Pyo3 => RGBColor(44, 160, 44),
    }
}

/// (concurrency, median, least, greatest) of `f` for each point.
fn points(results: &Results, service: Service, f: fn(&Rep) -> f64) -> Vec<(f64, f64, f64, f64)> {
    let Some(s) = results.get(service) else {
        return Vec::new();
    };
    results
        .plan
        .concurrency
        .iter()
        .zip(&s.points)
        .filter_map(|(&c, reps)| {
            let mut v: Vec<f64> = reps.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            Some((
                c as f64,
                crate::stats::percentile(&v, 0.5)?,
                *v.first()?,
                *v.last()?,
            ))
        })
        .collect()
}

pub fn draw(file: &Path, results: &Results) -> anyhow::Result<()> {
    let root = SVGBackend::new(file, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "py-in-mem benchmark: serving over HTTP (medians; bars: range over repetitions)",
        ("sans-serif", 20),
    )?;
    let (left, right) = root.split_horizontally(600);
    let c_max = results.plan.concurrency.iter().copied().max().unwrap_or(64) as f64;
    let x_range = || (0.7..c_max * 1.4).log_scale();

    let all = |f: fn(&Rep) -> f64| -> Vec<f64> {
        Service::ALL
            .iter()
            .flat_map(|&s| points(results, s, f))
            .flat_map(|p| [p.2, p.3])
            .collect()
    };
    let rps_max = all(|r| r.per_second).into_iter().fold(1.0, f64::max);
    let p99 = all(|r| r.p99);
    let p99_min = p99.iter().copied().fold(f64::INFINITY, f64::min);
    let p99_min = if p99_min.is_finite() {
        p99_min * 1e6
    } else {
        100.0
    };
    let p99_max = p99.iter().copied().fold(1e-6, f64::max) * 1e6;

    let mut rps_chart = ChartBuilder::on(&left)
        .caption("requests/s", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range(), 0.0..rps_max * 1.1)?;
    rps_chart
        .configure_mesh()
        .x_desc("concurrency (connections)")
        .y_desc("requests/s (median)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| crate::report::thousands(y.round() as usize))
        .draw()?;
    let mut p99_chart = ChartBuilder::on(&right)
        .caption("p99 latency", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range(), (p99_min / 2.0..p99_max * 2.0).log_scale())?;
    p99_chart
        .configure_mesh()
        .x_desc("concurrency (connections)")
        .y_desc("p99, µs (median)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;

    for service in Service::ALL {
        let Some(s) = results.get(service) else {
            continue;
        };
        let style = ShapeStyle::from(color(service)).stroke_width(2);
        let rps = points(results, service, |r| r.per_second);
        rps_chart
            .draw_series(LineSeries::new(rps.iter().map(|p| (p.0, p.1)), style))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        rps_chart.draw_series(
            rps.iter()
                .map(|p| Circle::new((p.0, p.1), 3, style.filled())),
        )?;
        rps_chart.draw_series(
            rps.iter()
                .map(|p| PathElement::new([(p.0, p.2), (p.0, p.3)], style)),
        )?;
        let lat: Vec<(f64, f64, f64, f64)> = points(results, service, |r| r.p99)
            .into_iter()
            .map(|p| (p.0, p.1 * 1e6, p.2 * 1e6, p.3 * 1e6))
            .collect();
        p99_chart.draw_series(LineSeries::new(lat.iter().map(|p| (p.0, p.1)), style))?;
        p99_chart.draw_series(
            lat.iter()
                .map(|p| Circle::new((p.0, p.1), 3, style.filled())),
        )?;
        p99_chart.draw_series(
            lat.iter()
                .map(|p| PathElement::new([(p.0, p.2), (p.0, p.3)], style)),
        )?;
    }
    rps_chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
