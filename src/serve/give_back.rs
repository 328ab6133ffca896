//! Owned inputs that Python lets go of during a served call go back to the
//! call's future, to be freed on the thread that polls it, not on the
//! serving thread.
//!
//! # Why
//!
//! An async call's owned array was allocated by the caller, on an
//! executor's thread; Python lets it go on the serving thread, while that
//! thread holds the GIL for the queue. With glibc's allocator, freeing a
//! block of another thread's arena takes that arena's lock, and a thread
//! that finds the lock taken sleeps in the kernel at once (no spinning): the
//! executor allocating the next request's buffer at that moment put the
//! serving thread, and the whole queue behind it, to sleep for the time a
//! vCPU takes to wake. Under `perf record -e sched:sched_switch` most of the
//! serving thread's sleeps in `make bench`'s async section were there, in
//! the free of a 1,000-value input. The caller's thread frees it in its own
//! arena instead (or in a sibling's, where contention costs an executor's
//! thread, not the GIL's holder).
//!
//! # How
//!
//! A serving thread runs each job inside [`collect`]; an owned array's
//! owner released meanwhile on that thread (by the capsule numpy holds,
//! through [`release`]) is kept, and goes with the result into the future's
//! slot; the future drops it when it resolves. A job whose future was
//! dropped drops it at once, on the serving thread. Everywhere else
//! (synchronous calls, an owner Python keeps past its call) [`release`]
//! drops the owner where it is.

use std::any::Any;
use std::cell::RefCell;

/// Owners kept during one job: the first inline (a call usually gives one
/// array), the others in a `Vec`.
#[derive(Default)]
pub(crate) struct Kept {
    first: Option<Box<dyn Any + Send>>,
    rest: Vec<Box<dyn Any + Send>>,
}

impl Kept {
    fn push(&mut self, owner: Box<dyn Any + Send>) {
        match self.first {
            None => self.first = Some(owner),
            Some(_) => self.rest.push(owner),
        }
    }

    /// How many owners are kept (for the tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

thread_local! {
    /// Set while a serving thread runs a job.
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Drops `owner` now, or, on a serving thread running a job, keeps it for
/// the job's future to drop.
pub(crate) fn release<B: Send + 'static>(owner: Box<B>) {
    let mut owner = Some(owner);
    // Fails only while the thread's locals are torn down: drop it now.
    let _ = KEPT.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut() {
            if let (Some(kept), Some(owner)) = (kept.as_mut(), owner.take()) {
                kept.push(owner);
            }
        }
    });
    drop(owner);
}

/// Puts back what was kept before a job when the job ends, even by a panic.
struct Restore(Option<Option<Kept>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(before) = self.0.take() {
            let _ = KEPT.try_with(|kept| kept.replace(before));
        }
    }
}

/// Runs `job`, keeping the owners [`release`]d on this thread meanwhile;
/// returns them with its result.
pub(super) fn collect<T>(job: impl FnOnce() -> T) -> (T, Kept) {
    let before = KEPT.with(|kept| kept.replace(Some(Kept::default())));
    let mut restore = Restore(Some(before));
    let out = job();
    let before = restore.0.take().expect("put back once");
    let kept = KEPT.with(|kept| kept.replace(before)).unwrap_or_default();
    (out, kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn owners_released_in_a_job_are_kept_until_its_result_goes() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let (out, kept) = collect(|| {
            for _ in 0..3 {
                release(Box::new(Counted(Arc::clone(&dropped))));
            }
            7
        });
        assert_eq!((out, kept.len()), (7, 3));
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "kept, not dropped");
        // Dropped on another thread, as a future polled elsewhere does.
        std::thread::spawn(move || drop(kept)).join().unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
        // Outside a job: dropped at once.
        release(Box::new(Counted(Arc::clone(&dropped))));
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_job_that_panics_leaves_the_thread_dropping_at_once() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let panicked = std::panic::catch_unwind(|| {
            collect(|| {
                release(Box::new(Counted(Arc::clone(&dropped))));
                panic!("the job");
            })
        });
        assert!(panicked.is_err());
        // The one kept during the job went with the unwinding.
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        release(Box::new(Counted(Arc::clone(&dropped))));
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }
}
