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

/// Steal and all time, per CPU, summed over one or more intervals.
#[derive(Debug, Default)]
pub struct Steal(Vec<CpuTimes>);

impl Steal {
    /// Adds each CPU's time from `start` to `end`.
    pub fn add(&mut self, start: &[CpuTimes], end: &[CpuTimes]) {
        self.0.resize(end.len(), CpuTimes::default());
        for ((sum, then), now) in self.0.iter_mut().zip(start).zip(end) {
            sum.total += now.total.saturating_sub(then.total);
            sum.steal += now.steal.saturating_sub(then.steal);
        }
    }

    /// Each CPU's steal as a share of its time.
    pub fn shares(&self) -> Vec<f64> {
        self.0
            .iter()
            .map(|cpu| {
                if cpu.total == 0 {
                    0.0
                } else {
                    cpu.steal as f64 / cpu.total as f64
                }
            })
            .collect()
    }
}

/// Each CPU's steal since `start`, as a share of its time.
pub fn steal_since(start: &[CpuTimes]) -> Vec<f64> {
    let mut steal = Steal::default();
    steal.add(start, &cpu_times());
    steal.shares()
}

/// "cpu0 1.2%, cpu1 0.4%".
pub fn describe(shares: &[f64]) -> String {
    let shares: Vec<String> = shares
        .iter()
        .enumerate()
        .map(|(cpu, share)| format!("cpu{cpu} {:.1}%", share * 100.0))
        .collect();
    shares.join(", ")
}
