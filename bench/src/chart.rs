//! `results.svg`: time per call against size, log–log, one line per path;
//! call-only lines dashed in the same colour (one legend entry per path).

use std::path::Path;

use plotters::prelude::*;

use crate::suite::{Key, SizeResult};

fn color(key: Key) -> RGBColor {
    match key {
        Key::InMem => RGBColor(214, 39, 40),
        Key::InMemHuge => RGBColor(240, 128, 128),
        Key::InMemHeldGil => RGBColor(140, 20, 20),
        Key::InMemHeldLent => RGBColor(200, 80, 40),
        Key::Python => RGBColor(31, 119, 180),
        Key::Native => RGBColor(127, 127, 127),
        Key::Pyo3Copy => RGBColor(255, 127, 14),
        Key::Pyo3Borrowed => RGBColor(44, 160, 44),
        Key::Grpc => RGBColor(148, 103, 189),
    }
}

pub fn draw(file: &Path, sizes: &[SizeResult]) -> anyhow::Result<()> {
    let points = |key: Key, call_only: bool| -> Vec<(f64, f64)> {
        sizes
            .iter()
            .filter_map(|r| Some((r.size as f64, r.get(key, call_only)?.median * 1e6)))
            .collect()
    };
    let all: Vec<(f64, f64)> = Key::ALL
        .iter()
        .flat_map(|&key| [points(key, false), points(key, true)])
        .flatten()
        .collect();
    let (x_min, x_max) = bounds(all.iter().map(|p| p.0));
    let (y_min, y_max) = bounds(all.iter().map(|p| p.1));

    let root = SVGBackend::new(file, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "py-in-mem benchmark: time per call (dashed: call only)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (x_min / 2.0..x_max * 2.0).log_scale(),
            // Room below the lowest line for the legend.
            (y_min / 1000.0..y_max * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("values per call")
        .y_desc("µs per call (median)")
        .x_label_formatter(&|x| crate::report::thousands(x.round() as usize))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    for key in Key::ALL {
        let style = ShapeStyle::from(color(key)).stroke_width(2);
        let solid = points(key, false);
        if !solid.is_empty() {
            chart
                .draw_series(LineSeries::new(solid.clone(), style))?
                .label(key.label())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart.draw_series(solid.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
        }
        let dashed = points(key, true);
        if !dashed.is_empty() {
            chart.draw_series(DashedLineSeries::new(dashed.clone(), 6, 4, style))?;
            chart.draw_series(
                dashed
                    .iter()
                    .map(|&p| TriangleMarker::new(p, 4, style.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The least and greatest of positive values (1 and 10 if there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| *v > 0.0)
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .unwrap_or((1.0, 10.0))
}
