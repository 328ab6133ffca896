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
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in cpus {
        anyhow::ensure!(cpu < libc::CPU_SETSIZE as usize, "CPU {cpu} out of range");
        // SAFETY: CPU_SET writes inside the set for an index below
        // CPU_SETSIZE (checked).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Affinity(set).set()
}
