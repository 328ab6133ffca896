//! Interleaved rounds: every path runs one batch per round, in an order that
//! rotates each round (A B C, B C A, ...), so drift on a shared machine hits
//! all paths alike. Each path's result is checked before it is timed.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::faults::minor_faults;
use crate::paths::Path;
use crate::stats::Spread;

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub rounds: usize,
    /// The target time of one batch of calls of one path.
    pub batch: Duration,
}

/// A path to measure and the result it must return.
pub struct Entry<'a> {
    pub name: String,
    pub path: Box<dyn Path + 'a>,
    pub expected: &'a [usize],
}

/// What one entry measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Seconds per call.
    pub time: Spread,
    /// The process's minor page faults per call, median over rounds.
    pub faults: f64,
    /// Seconds per call in each round, in order: round `r` of every entry
    /// ran back to back, so two entries compare round by round.
    pub rounds: Vec<f64>,
}

/// Checks every entry, then times them in interleaved rounds. Returns one
/// measurement per entry, in order.
pub fn measure(entries: &mut [Entry<'_>], plan: Plan) -> anyhow::Result<Vec<Measured>> {
    for entry in entries.iter_mut() {
        let got = entry
            .path
            .call()
            .with_context(|| format!("{} failed", entry.name))?;
        if got != entry.expected {
            bail!(
                "{} returned {} indices {:?}..., expected {} {:?}...",
                entry.name,
                got.len(),
                &got[..got.len().min(5)],
                entry.expected.len(),
                &entry.expected[..entry.expected.len().min(5)]
            );
        }
    }
    let calls: Vec<u64> = entries
        .iter_mut()
        .map(|entry| calls_per_batch(entry.path.as_mut(), plan.batch))
        .collect::<anyhow::Result<_>>()?;
    let mut times = vec![Vec::with_capacity(plan.rounds); entries.len()];
    let mut faults = times.clone();
    for round in 0..plan.rounds {
        for k in 0..entries.len() {
            let i = (round + k) % entries.len();
            let faults_before = minor_faults();
            let took = entries[i].path.time(calls[i])?;
            let faulted = minor_faults().saturating_sub(faults_before);
            times[i].push(took.as_secs_f64() / calls[i] as f64);
            faults[i].push(faulted as f64 / calls[i] as f64);
        }
    }
    Ok(times
        .into_iter()
        .zip(faults)
        .map(|(time, faults)| Measured {
            time: Spread::of(time.clone()),
            faults: Spread::of(faults).median,
            rounds: time,
        })
        .collect())
}

/// How many calls fill one batch; running them also warms the path up.
fn calls_per_batch(path: &mut dyn Path, batch: Duration) -> anyhow::Result<u64> {
    const MAX_CALLS: u64 = 1 << 24;
    let mut calls = 1;
    loop {
        let took = path.time(calls)?;
        if took >= batch / 4 || calls >= MAX_CALLS {
            let scaled = calls as f64 * batch.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return Ok((scaled.round() as u64).clamp(1, MAX_CALLS));
        }
        calls *= 4;
    }
}
