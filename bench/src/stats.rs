//! Median and spread of per-call times over rounds, and percentiles.

/// Seconds per call: the median and the 10th and 90th percentiles of rounds.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
}

impl Spread {
    /// Nearest-rank percentiles of `samples` (at least one).
    pub fn of(mut samples: Vec<f64>) -> Spread {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| percentile(&samples, q).expect("not empty");
        Spread {
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
        }
    }
}

/// The nearest-rank `q` quantile (0 to 1) of `sorted`, None if it is empty.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[(last as f64 * q).round() as usize])
}
