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

/// Nanoseconds run by this process's threads whose name `matches` (as
/// /proc has it: Linux keeps the first 15 bytes of a name), summed; None
/// where there is no schedstat.
pub fn named(matches: impl Fn(&str) -> bool) -> Option<u64> {
    let mut sum = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = task.path();
        if matches(&name_of(&dir)) {
            // A thread that ended meanwhile counts nothing.
            if let Some(ns) = run_ns(&dir.join("schedstat")) {
                *sum.get_or_insert(0) += ns;
            }
        }
    }
    sum
}

/// How many of this process's threads have a name that `matches`.
pub fn count(matches: impl Fn(&str) -> bool) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| matches(&name_of(&task.path())))
        .count()
}

/// A thread's name, from its /proc/self/task directory ("" once it ended).
pub fn name_of(task: &Path) -> String {
    let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
    name.trim_end_matches('\n').to_owned()
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
