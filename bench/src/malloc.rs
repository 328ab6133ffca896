//! glibc malloc's thresholds, fixed for the run.
//!
//! `outliers.detect` on 1,000,000 values frees about 16 MB of numpy
//! temporaries per call. By default glibc gives memory at the top of its heap
//! back to the kernel once it exceeds a threshold that moves with the
//! process's past allocations, so in one process every call faults the pages
//! in again (~800 faults, milliseconds) and in another none does; paths
//! measured in one process can land on either side of the line by a few
//! kilobytes. Fixing the thresholds gives every path the same allocator, as
//! the `python` process happens to have. `--malloc-default` skips this.

/// Large allocations stay on the heap below this (glibc's maximum).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// The heap's free top is kept up to this much.
const TRIM_THRESHOLD: i32 = 128 << 20;

/// Fixes the thresholds; false if this C library has no `mallopt`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn fix_thresholds() -> bool {
    // SAFETY: mallopt only sets malloc tuning parameters, to valid values;
    // it is called before the bench starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn fix_thresholds() -> bool {
    false
}

/// How the run's allocator was set, for the report.
pub fn describe(fixed: bool) -> String {
    if fixed {
        format!(
            "glibc malloc thresholds fixed for the run (M_MMAP_THRESHOLD {} MiB, M_TRIM_THRESHOLD {} MiB; see bench/src/malloc.rs)",
            MMAP_THRESHOLD >> 20,
            TRIM_THRESHOLD >> 20
        )
    } else {
        "the C library's default malloc thresholds (--malloc-default)".to_owned()
    }
}
