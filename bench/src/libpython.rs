//! Which libpython a process maps (`/proc/PID/maps`), and whether it is the
//! one py-in-mem was built against. A binary without an rpath to it loads
//! the system's libpython3.11 (another build, another speed) and would
//! measure another interpreter than the report names.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The directory of the libpython py-in-mem linked (from its build script,
/// through this crate's build.rs).
const BUILT_AGAINST_DIR: Option<&str> = option_env!("PIM_BENCH_LIBPYTHON_DIR");

/// The libpython files one process maps.
pub struct Mapped {
    /// "this bench binary", "the gRPC server (python)".
    pub who: String,
    pub pid: u32,
    /// Distinct mapped files whose name starts with `libpython`.
    pub paths: Vec<PathBuf>,
}

impl Mapped {
    /// Reads `/proc/PID/maps` (an unreadable one maps nothing).
    pub fn of(who: &str, pid: u32) -> Mapped {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mut paths: Vec<PathBuf> = Vec::new();
        for line in maps.lines() {
            // address perms offset dev inode path: the path is the 6th field.
            let Some(path) = line.split_whitespace().nth(5) else {
                continue;
            };
            let path = Path::new(path);
            let is_libpython = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libpython"));
            if is_libpython && !paths.iter().any(|p| p == path) {
                paths.push(path.to_owned());
            }
        }
        Mapped {
            who: who.to_owned(),
            pid,
            paths,
        }
    }

    /// Whether every mapped libpython is in the directory built against
    /// (None if the bench does not know that directory).
    pub fn is_built_against(&self) -> Option<bool> {
        let dir = std::fs::canonicalize(BUILT_AGAINST_DIR?).ok()?;
        Some(
            !self.paths.is_empty()
                && self.paths.iter().all(|path| {
                    std::fs::canonicalize(path)
                        .ok()
                        .and_then(|p| p.parent().map(|d| d == dir))
                        .unwrap_or(false)
                }),
        )
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        let paths = if self.paths.is_empty() {
            "no libpython (Python linked statically, or not loaded)".to_owned()
        } else {
            self.paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let verdict = match self.is_built_against() {
            Some(true) => "the one py-in-mem was built against",
            Some(false) => "**not** the one py-in-mem was built against",
            None => "built-against directory unknown",
        };
        format!("{} (pid {}) maps {paths}: {verdict}", self.who, self.pid)
    }
}

/// This process's libpython, which must be the one built against.
pub fn check_this_process() -> anyhow::Result<Mapped> {
    let mapped = Mapped::of("this bench binary", std::process::id());
    if mapped.is_built_against() == Some(false) {
        bail!(
            "{}; py-in-mem was built against {}: the binary lacks the rpath bench/build.rs \
             adds (rebuild with `make bench`)",
            mapped.describe(),
            BUILT_AGAINST_DIR.unwrap_or("?")
        );
    }
    Ok(mapped)
}
