//! The CPU time of this process's threads, from Linux's
//! /proc/.../schedstat: the time each thread ran, as the scheduler accounts
//! it. On a guest with paravirtual steal accounting (this machine's kernel
//! has `CONFIG_PARAVIRT_TIME_ACCOUNTING`), time the host took from a vCPU
//! is left out, so a path's CPU time per call tells its own cost apart
//! from the host's.

use std::path::Path;

/// Nanoseconds the calling thread has run; None where there is no
/// schedstat.
pub fn this_thread() -> Option<u64> {
    run_ns(Path::new("/proc/thread-self/schedstat"))
}

/// Nanoseconds run by this process's threads whose name starts with
/// `prefix` (Linux keeps the first 15 bytes of a name), summed; None where
/// there is no schedstat.
pub fn named(prefix: &str) -> Option<u64> {
    let mut sum = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if name.starts_with(prefix) {
            // A thread that ended meanwhile counts nothing.
            if let Some(ns) = run_ns(&dir.join("schedstat")) {
                *sum.get_or_insert(0) += ns;
            }
        }
    }
    sum
}

/// How many of this process's threads have a name starting with `prefix`.
pub fn count(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .count()
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
