//! How busy the machine was with work other than this process: the CPU time
//! all processes used (and the hypervisor stole) minus this process's own,
//! from `/proc/stat` and `/proc/self/stat`. On a shared 2-core machine a
//! thread count's figure means little when another process held a core, so
//! the table prints this beside each point.
//!
//! Only `std`: the scheduler experiments in `src/bin/` use this file too.

use std::time::Instant;

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// A reading of the machine's and this process's CPU time.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    at: Instant,
    /// Every CPU's busy ticks, steal included.
    busy: u64,
    /// This process's user + system ticks.
    own: u64,
}

impl Reading {
    /// None where `/proc` cannot be read.
    pub fn now() -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is
        // already in user).
        let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: utime and stime are the 14th and 15th fields.
        let after = &own_stat[own_stat.rfind(')')? + 2..];
        let rest: Vec<&str> = after.split_whitespace().collect();
        let own = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
        Some(Reading {
            at: Instant::now(),
            busy,
            own,
        })
    }

    /// Cores' worth of CPU time used by others since `earlier`.
    pub fn foreign_since(&self, earlier: &Reading) -> f64 {
        let ticks = self.busy.saturating_sub(earlier.busy) as f64
            - self.own.saturating_sub(earlier.own) as f64;
        let secs = self.at.duration_since(earlier.at).as_secs_f64();
        (ticks / TICKS_PER_SEC / secs).max(0.0)
    }
}
