//! A thread's scheduling state, as Linux shows it in `/proc`: whether it
//! runs or is ready to run (on a core, or waiting for one), as opposed to
//! asleep. Read by process exit (to let threads still computing in C code
//! finish) and by the serving threads' count of threads waiting in C code.

use std::path::Path;

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
