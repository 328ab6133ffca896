//! A thread's scheduling state, as Linux shows it in `/proc`: whether it
//! runs or is ready to run (on a core, or waiting for one), as opposed to
//! asleep, and how long it has run or waited to. Read by process exit (to
//! let threads still computing in C code finish) and by the serving
//! threads' count of threads waiting in C code.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// This thread's folder in `/proc`: `/proc/self/task/<tid>`.
pub(crate) fn this_thread() -> PathBuf {
    // SAFETY: gettid(2) takes nothing and cannot fail.
    let tid = unsafe { libc::gettid() };
    PathBuf::from(format!("/proc/self/task/{tid}"))
}

/// Whether the thread whose `/proc` folder is `task` (`/proc/self/task/<tid>`)
/// is running or ready to run: state `R` in its `stat`, found after its name
/// in parentheses, which may hold any character, so from the last `)`.
/// False where that cannot be read.
pub(crate) fn is_ready(task: &Path) -> bool {
    std::fs::read_to_string(task.join("stat")).is_ok_and(|text| {
        text.rfind(')')
            .and_then(|end| text.get(end + 1..))
            .and_then(|rest| rest.split_ascii_whitespace().next())
            == Some("R")
    })
}

/// A thread's scheduler statistics (its `schedstat`: "run ns, waited ns,
/// slices", Linux's `sched_info`, which adds a wait on the run queue when
/// the wait ends).
pub(crate) struct Schedstat {
    /// The time it has wanted a core: run, or waited on the run queue.
    pub(crate) wanted: Duration,
    /// The slices of a core it has been given: 0 for a running thread
    /// means the kernel keeps no statistics (it writes "0 0 0").
    pub(crate) slices: u64,
}

/// The scheduler statistics of the thread whose `/proc` folder is `task`;
/// None where they cannot be read.
pub(crate) fn schedstat(task: &Path) -> Option<Schedstat> {
    let text = std::fs::read_to_string(task.join("schedstat")).ok()?;
    let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
    let ran = fields.next()?.ok()?;
    let waited = fields.next()?.ok()?;
    let slices = fields.next()?.ok()?;
    Some(Schedstat {
        wanted: Duration::from_nanos(ran.saturating_add(waited)),
        slices,
    })
}
