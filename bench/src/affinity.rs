//! Pinning the measuring thread to CPUs, and putting its affinity back:
//! this machine's vCPUs can differ in speed, so paths compared on one
//! thread are compared on one CPU.

/// A thread's CPU affinity, to put back.
pub struct Affinity(libc::cpu_set_t);

impl Affinity {
    pub fn current() -> anyhow::Result<Affinity> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set, which
        // sched_getaffinity fills in for the calling thread (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let failed =
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0;
            anyhow::ensure!(
                !failed,
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            );
            Ok(Affinity(set))
        }
    }

    pub fn set(&self) -> anyhow::Result<()> {
        // SAFETY: a set sched_getaffinity filled in, for the calling thread.
        let failed =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) }
                != 0;
        anyhow::ensure!(
            !failed,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
        Ok(())
    }
}

/// Pins the calling thread to the CPUs in `cpus`.
pub fn pin(cpus: std::ops::Range<usize>) -> anyhow::Result<()> {
    set_of(cpus)?.set()
}

/// Pins every thread of this process whose name `matches` (as /proc has
/// it) to the CPUs in `cpus`. For threads of the crate's, which inherit
/// the pin of whichever thread started them: a serving thread started by
/// the timer thread, itself started from one of tokio's workers, would
/// serve on the workers' CPU.
pub fn pin_named(
    matches: impl Fn(&str) -> bool,
    cpus: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let set = set_of(cpus)?;
    for (dir, name) in crate::thread_time::threads(matches)? {
        let tid: libc::pid_t = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .parse()?;
        // SAFETY: a set built by `set_of`, for a thread of this process
        // (one that ended meanwhile fails with ESRCH, and is skipped).
        let failed =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set.0) }
                != 0;
        if failed {
            let error = std::io::Error::last_os_error();
            anyhow::ensure!(
                error.raw_os_error() == Some(libc::ESRCH),
                "sched_setaffinity({tid}, {name}): {error}"
            );
        }
    }
    Ok(())
}

/// The set of the CPUs in `cpus`.
fn set_of(cpus: std::ops::Range<usize>) -> anyhow::Result<Affinity> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in cpus {
        anyhow::ensure!(cpu < libc::CPU_SETSIZE as usize, "CPU {cpu} out of range");
        // SAFETY: CPU_SET writes inside the set for an index below
        // CPU_SETSIZE (checked).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(Affinity(set))
}
