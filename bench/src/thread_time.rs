//! The CPU time of this process's threads, from Linux's
//! /proc/.../schedstat: the time each thread ran, as the scheduler accounts
//! it. On a guest with paravirtual steal accounting (this machine's kernel
//! has `CONFIG_PARAVIRT_TIME_ACCOUNTING`), time the host took from a vCPU
//! is left out, so a path's CPU time per call tells its own cost apart
//! from the host's.

use std::path::{Path, PathBuf};

/// Nanoseconds the calling thread has run; None where there is no
/// schedstat.
pub fn this_thread() -> Option<u64> {
    run_ns(Path::new("/proc/thread-self/schedstat"))
}

/// Nanoseconds run by this process's threads whose name `matches` (as
/// /proc has it: Linux keeps the first 15 bytes of a name), summed; None
/// where there is no schedstat.
pub fn named(matches: impl Fn(&str) -> bool) -> Option<u64> {
    let mut sum = None;
    for (dir, _) in threads(matches).ok()? {
        // A thread that ended meanwhile counts nothing.
        if let Some(ns) = run_ns(&dir.join("schedstat")) {
            *sum.get_or_insert(0) += ns;
        }
    }
    sum
}

/// How many of this process's threads have a name that `matches`.
pub fn count(matches: impl Fn(&str) -> bool) -> usize {
    threads(matches).map_or(0, |threads| threads.len())
}

/// This process's threads whose name `matches` (as /proc has it): each
/// one's /proc/self/task directory, and its name.
pub fn threads(matches: impl Fn(&str) -> bool) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")?.flatten() {
        let dir = task.path();
        // "" for a thread that ended meanwhile.
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let name = name.trim_end_matches('\n');
        if matches(name) {
            found.push((dir, name.to_owned()));
        }
    }
    Ok(found)
}

/// The first field of a schedstat file: time run, in nanoseconds.
fn run_ns(schedstat: &Path) -> Option<u64> {
    std::fs::read_to_string(schedstat)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
