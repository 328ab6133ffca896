//! Page faults of the whole process, counted around each batch: when two
//! paths run the same Python code at different speeds, this shows whether
//! memory (malloc giving pages back to the kernel and faulting them in
//! again) is why.

/// Minor page faults of this process so far.
pub fn minor_faults() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given,
    // which points at one of the right size; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded, so it initialized the struct (and zeroed
    // memory is a valid rusage anyway).
    let usage = unsafe { usage.assume_init() };
    u64::try_from(usage.ru_minflt).unwrap_or(0)
}
