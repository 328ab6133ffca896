//! The time the host takes from this machine's vCPUs (steal), from
//! /proc/stat: on a shared host, two busy vCPUs can lose far more of it
//! than one, which a comparison of a one-thread path with a two-thread one
//! must show.

/// One CPU's line of /proc/stat: all its time and the stolen part, in ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub total: u64,
    pub steal: u64,
}

/// Every `cpuN` line of /proc/stat (empty where there is none).
pub fn cpu_times() -> Vec<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|line| {
            line.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(|line| {
            let ticks: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse().ok())
                .collect();
            CpuTimes {
                // user nice system idle iowait irq softirq steal (guest
                // time is counted in user already).
                total: ticks.iter().take(8).sum(),
                steal: ticks.get(7).copied().unwrap_or(0),
            }
        })
        .collect()
}

/// Each CPU's steal since `start`, as a share of its time.
pub fn steal_since(start: &[CpuTimes]) -> Vec<f64> {
    cpu_times()
        .iter()
        .zip(start)
        .map(|(now, then)| {
            let total = now.total.saturating_sub(then.total);
            let steal = now.steal.saturating_sub(then.steal);
            if total == 0 {
                0.0
            } else {
                steal as f64 / total as f64
            }
        })
        .collect()
}
