//! The stack of the crate's threads that run Python code: the serving
//! threads, the deadline watchdog, the reaper of dead threads' states, and
//! Python's main thread when the crate starts Python on a thread of its
//! own.
//!
//! # Why
//!
//! `std::thread` gives a thread 2 MiB of stack; Python's own threads get
//! the platform's default for a new thread (with glibc, `ulimit -s`: 8 MiB
//! on most systems). Code that Python runs may need more than 2 MiB:
//! numpy's OpenBLAS puts work arrays on the stack at each level of its LU
//! factorization's recursion. On a 2 MiB thread, `np.linalg.solve` of a
//! 300 × 300 matrix crashed the process, and of a 1000 × 1000 one returned
//! wrong numbers without an error. So the crate's threads that run Python
//! get the stack Python's threads get, and never less than [`MIN_STACK`].
//!
//! Threads of the caller's are the caller's to size: see the "Thread
//! stacks" section of `docs/threads.md`.

use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::thread::Builder;

/// The least stack a thread of the crate's that runs Python gets: the
/// usual default of Python's threads on Linux.
pub(crate) const MIN_STACK: usize = 8 << 20;

/// A builder for a thread of the crate's named `name` that will run Python
/// code, with the stack [`python_stack_size`] says.
pub(crate) fn python_thread(name: impl Into<String>) -> Builder {
    Builder::new()
        .name(name.into())
        .stack_size(python_stack_size())
}

/// The stack a new Python thread would get here (the platform's default
/// for a new thread), and at least [`MIN_STACK`]. Read once.
pub(crate) fn python_stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| platform_default().map_or(MIN_STACK, |size| size.max(MIN_STACK)))
}

/// The stack size of a thread made with default attributes, as Python's
/// `threading` makes them (it sets none unless `threading.stack_size()`
/// was called).
fn platform_default() -> Option<usize> {
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is initialized by pthread_attr_init before it is read,
    // read only while initialized, and destroyed once.
    unsafe {
        if libc::pthread_attr_init(attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut size = 0;
        let read = libc::pthread_attr_getstacksize(attr.as_ptr(), &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (read == 0 && size > 0).then_some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::{platform_default, python_stack_size, python_thread, MIN_STACK};

    #[test]
    fn python_threads_get_at_least_the_platforms_default_stack_and_8_mib() {
        let size = python_stack_size();
        assert!(size >= MIN_STACK, "{size}");
        if let Some(default) = platform_default() {
            assert!(size >= default, "{size} < {default}");
        }
        // The thread really has it: a 3 MiB array on its stack, which a
        // 2 MiB thread could not hold (it would abort the test process).
        let used = python_thread("pim-stack-test")
            .spawn(|| {
                let mut big = [1u8; 3 << 20];
                std::hint::black_box(&mut big);
                big.iter().map(|&b| usize::from(b)).sum::<usize>()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(used, 3 << 20);
    }
}
