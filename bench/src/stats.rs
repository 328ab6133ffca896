//! Median and spread of per-call times over rounds.

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
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Spread {
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
        }
    }
}
