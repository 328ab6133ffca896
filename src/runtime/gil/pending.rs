//! References that may be dropped on any thread, at any time, without
//! waiting for the GIL: [`SharedRef`], the reference an
//! [`Object`](crate::Object) and a [`Function`](crate::Function) hold;
//! [`PlainRef`], a [`ResultView`](crate::ResultView)'s array and a
//! function's cached keyword names; and any other
//! [`StrongRef`](crate::runtime::StrongRef) dropped without the GIL.
//!
//! A drop on a thread that holds the GIL right now releases the reference
//! at once (a [`SharedRef`]'s only inside a held-GIL scope: its object's
//! `__del__` must not run inside a call). Any other drop cannot know
//! whether taking the GIL would wait (another thread may hold it for a
//! long call, or for a whole `hold_gil` scope, possibly waiting on this
//! very thread), so it puts the reference in a pending list instead, as
//! PyO3's reference pool does.
//!
//! The list is released by a thread of the crate's, `pim-release`, started
//! with the first reference: a push to an empty list wakes it, and it takes
//! the GIL and releases the list. Not by whichever call takes the GIL next
//! (as PyO3 does, and this crate did): a decref may run `__del__`, which
//! may take any time, and it would run inside an unrelated call, counted
//! against that call's deadline, or stall a serving thread and every async
//! call queued behind it. Should the thread not start, every way of taking
//! the GIL releases the list instead ([`release_pending`], from [`super`]).
//!
//! A [`PlainRef`] is a reference whose release runs no Python code (an
//! exact ndarray that owns its data, a tuple of strs): only memory is
//! freed. Those wait in a list of their own, which the next take of the
//! GIL by any of the crate's paths releases (a loop of `call_view`s frees
//! each view's array at the next call, with no other thread woken), and the
//! releasing thread [`PLAIN_DELAY`] after the first of them if no take
//! comes first, so that memory dropped last is not held for good.
//!
//! The rules: the list's lock is held only to push or to take the whole
//! list, never while waiting for the GIL or running Python (a decref may
//! run `__del__`, which may drop more references or call the crate); the
//! releasing thread's wake-up lock is never held while it waits for the
//! GIL; after a fork or a host's finalization nothing is pushed or
//! released (the references are left, as
//! [`StrongRef`](crate::runtime::StrongRef) leaves them).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use pyo3_ffi::PyObject;

use super::{in_held_scope, this_thread_holds_gil, Gil, Interpreter};
use crate::raw;
use crate::runtime::lifecycle;

/// One owned strong reference whose drop never waits (see the module's
/// docs).
pub struct SharedRef {
    ptr: NonNull<PyObject>,
}

// SAFETY: the pointer is only used with the GIL held, which serializes all
// access; a drop without the GIL only moves the pointer into the pending
// list, under its lock.
unsafe impl Send for SharedRef {}
// SAFETY: `&SharedRef` only hands out the pointer; using it needs the GIL.
unsafe impl Sync for SharedRef {}

impl SharedRef {
    /// Takes over the reference `ptr` (NULL gives None), counted as Rust's
    /// for the retention check (`pim_hold`: a model an [`Object`] holds
    /// may keep a view of a lent input, and Rust's reference ends that
    /// chain as a module's does).
    ///
    /// [`Object`]: crate::Object
    ///
    /// # Safety
    /// `ptr` is a new (owned) reference, or NULL.
    pub(crate) unsafe fn from_owned(_gil: &Gil, ptr: *mut PyObject) -> Option<SharedRef> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: the GIL is held (`_gil`); the object is live (we own a
        // reference to it).
        unsafe { raw::pim_hold(ptr.as_ptr()) };
        start_releaser();
        Some(SharedRef { ptr })
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ptr.as_ptr()
    }
}

impl Drop for SharedRef {
    fn drop(&mut self) {
        // A forked child or a finalized Python: the object is not ours to
        // touch any more (and the list's lock may be held by a thread that
        // does not exist in a child).
        if lifecycle::check_latched().is_err() {
            return;
        }
        // Only inside a scope: on a thread that holds the GIL for a call,
        // the object's `__del__` would run inside that call.
        if in_held_scope() {
            // SAFETY: this thread holds the GIL through its scope, right now,
            // and we own the reference.
            unsafe { release(Pending::held(self.ptr)) };
            return;
        }
        defer(Pending::held(self.ptr));
    }
}

/// Releases `strong`, a [`StrongRef`](crate::runtime::StrongRef)'s
/// reference dropped on a thread that does not hold the GIL: through the
/// releasing thread, as a [`SharedRef`]'s (its object may run Python code
/// as it goes). Nothing is done in a forked child or once Python is
/// finalized.
pub(crate) fn release_later(strong: NonNull<PyObject>) {
    if lifecycle::check_latched().is_ok() {
        start_releaser();
        defer(Pending {
            ptr: strong,
            held: false,
        });
    }
}

/// Puts `pending` in the list the releasing thread releases, waking it if
/// the list was empty.
fn defer(pending: Pending) {
    PENDING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pending);
    if !ANY_PENDING.swap(true, Ordering::AcqRel) {
        // The first since the list was taken: wake the releaser. Under its
        // lock, so that it is either waiting or yet to look at the flag.
        let _awake = WAKE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        WAKE.notify_one();
    }
}

/// One owned strong reference to an object whose release runs no Python
/// code (an exact ndarray that owns its data, a tuple of strs: only memory
/// is freed), whose drop never waits (see the module's docs).
pub(crate) struct PlainRef {
    ptr: NonNull<PyObject>,
}

// SAFETY: as for SharedRef: used only with the GIL held; a drop without it
// only moves the pointer into a list, under its lock.
unsafe impl Send for PlainRef {}
// SAFETY: `&PlainRef` only hands out the pointer; using it needs the GIL.
unsafe impl Sync for PlainRef {}

impl PlainRef {
    /// Takes over `strong`'s reference.
    ///
    /// # Safety
    /// Releasing the object runs no Python code: an exact ndarray that
    /// owns its data (and holds no object), a tuple of strs.
    pub(crate) unsafe fn from_strong(strong: crate::runtime::StrongRef) -> PlainRef {
        let ptr = NonNull::new(strong.into_raw()).expect("a StrongRef is not NULL");
        start_releaser();
        PlainRef { ptr }
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.ptr.as_ptr()
    }
}

impl Drop for PlainRef {
    fn drop(&mut self) {
        if lifecycle::check_latched().is_err() {
            return; // as for SharedRef
        }
        if this_thread_holds_gil() {
            // SAFETY: this thread holds the GIL, right now, and we own the
            // reference.
            unsafe { raw::pim_decref(self.ptr.as_ptr()) };
            return;
        }
        PLAIN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Plain(self.ptr));
        // Store, then load, both SeqCst, against the releaser's store of
        // RELEASER_IDLE then load of ANY_PLAIN: one of the two sees the
        // other's, so the releaser never sleeps untimed with this one
        // pending (and a loop of drops wakes it at most once a PLAIN_DELAY).
        ANY_PLAIN.store(true, Ordering::SeqCst);
        if RELEASER_IDLE.load(Ordering::SeqCst) {
            let _awake = WAKE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            WAKE.notify_one();
        }
    }
}

/// A reference waiting for the GIL to be released: a [`SharedRef`]'s
/// (`held`: counted as Rust's by `pim_hold`) or a `StrongRef`'s.
struct Pending {
    ptr: NonNull<PyObject>,
    held: bool,
}

impl Pending {
    fn held(ptr: NonNull<PyObject>) -> Pending {
        Pending { ptr, held: true }
    }
}

/// A [`PlainRef`]'s reference waiting for the GIL.
struct Plain(NonNull<PyObject>);

// SAFETY: a plain reference is only decref'd, with the GIL held.
unsafe impl Send for Plain {}

static PLAIN: Mutex<Vec<Plain>> = Mutex::new(Vec::new());

/// Set after a push to [`PLAIN`], cleared before the list is taken.
static ANY_PLAIN: AtomicBool = AtomicBool::new(false);

/// The releaser sleeps without a time limit (nothing pending): a
/// [`PlainRef`] dropped then wakes it.
static RELEASER_IDLE: AtomicBool = AtomicBool::new(false);

/// How long references dropped as [`PlainRef`]s wait for a take of the GIL
/// to release them before the releasing thread takes it to.
const PLAIN_DELAY: Duration = Duration::from_millis(20);

// SAFETY: a pending reference is only released, with the GIL held.
unsafe impl Send for Pending {}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// Set after a push, cleared before the list is taken: one load on every
/// path that takes the GIL.
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// The system refused the releasing thread: the GIL's takers release the
/// list.
static RELEASER_REFUSED: AtomicBool = AtomicBool::new(false);
static RELEASER_START: Once = Once::new();
/// The releaser sleeps on [`WAKE`] while [`ANY_PENDING`] is false, looking
/// at it under this lock.
static WAKE_LOCK: Mutex<()> = Mutex::new(());
static WAKE: Condvar = Condvar::new();

/// Starts `pim-release` once: by the first [`SharedRef`] or [`PlainRef`]
/// made (with the GIL held), or a `StrongRef` released later: Python runs.
fn start_releaser() {
    RELEASER_START.call_once(|| {
        // SAFETY: a reference to a Python object exists: Python runs.
        let python = unsafe { Interpreter::assume_started() };
        let started = crate::runtime::thread_stack::python_thread("pim-release")
            .spawn(move || release_for_ever(python));
        RELEASER_REFUSED.store(started.is_err(), Ordering::Release);
    });
}

/// The releaser's loop: sleeps until a reference is pending, then takes the
/// GIL (without the scheduler's turn, as the deadline watchdog does) and
/// releases the list. Ends once Python cannot be called any more (a host
/// finalized it), when nothing is released ever again.
fn release_for_ever(python: Interpreter) {
    loop {
        let mut awake = WAKE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        // When the first plain reference was seen pending, this wait.
        let mut plain_since: Option<Instant> = None;
        while !ANY_PENDING.load(Ordering::Acquire) {
            if ANY_PLAIN.load(Ordering::SeqCst) {
                let since = *plain_since.get_or_insert_with(Instant::now);
                let left = PLAIN_DELAY.saturating_sub(since.elapsed());
                if left.is_zero() {
                    break;
                }
                awake = WAKE
                    .wait_timeout(awake, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            plain_since = None;
            RELEASER_IDLE.store(true, Ordering::SeqCst);
            if !ANY_PLAIN.load(Ordering::SeqCst) {
                awake = WAKE.wait(awake).unwrap_or_else(PoisonError::into_inner);
            }
            RELEASER_IDLE.store(false, Ordering::SeqCst);
        }
        // Never wait for the GIL holding a lock.
        drop(awake);
        match python.gil() {
            // Taking it released the plain references (release_pending).
            Ok(gil) => release_all(&gil),
            Err(_) => return,
        }
    }
}

/// Releases the plain references dropped without the GIL, if any, and
/// the others too when the releasing thread could not start. Called with
/// the GIL held, each time the crate takes it.
#[inline]
pub(super) fn release_pending(gil: &Gil) {
    if ANY_PLAIN.load(Ordering::Acquire) {
        release_plain(gil);
    }
    if ANY_PENDING.load(Ordering::Acquire) && RELEASER_REFUSED.load(Ordering::Acquire) {
        release_all(gil);
    }
}

#[cold]
fn release_plain(_gil: &Gil) {
    ANY_PLAIN.store(false, Ordering::Release);
    // Taken out whole: nothing else waits on the lock while they are freed.
    let taken = std::mem::take(&mut *PLAIN.lock().unwrap_or_else(PoisonError::into_inner));
    for Plain(ptr) in taken {
        // SAFETY: the GIL is held (`_gil`); each reference was owned by a
        // dropped PlainRef, which handed it to the list. Its release runs
        // no Python code (PlainRef::from_strong's contract).
        unsafe { raw::pim_decref(ptr.as_ptr()) };
    }
}

#[cold]
fn release_all(_gil: &Gil) {
    ANY_PENDING.store(false, Ordering::Release);
    // Taken out whole, so the lock is not held while Python runs.
    let taken = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    for pending in taken {
        // SAFETY: the GIL is held (`_gil`), and each reference was owned by a
        // dropped SharedRef or StrongRef, which handed it to the list.
        unsafe { release(pending) };
    }
}

/// Releases a dropped reference: a [`SharedRef`]'s is no longer counted as
/// Rust's.
///
/// # Safety
/// The GIL is held; the reference was owned by what handed it over, and is
/// released once.
unsafe fn release(pending: Pending) {
    // SAFETY: as the caller guarantees.
    unsafe {
        if pending.held {
            raw::pim_unhold(pending.ptr.as_ptr());
        }
        raw::pim_decref(pending.ptr.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::raw;

    /// The count `pim_hold` keeps (csrc/holds.c: open addressing, deletion by
    /// backward shift) against a map, over a long random run of holds and
    /// releases of many objects, with the table growing and slots emptied
    /// and reused: a count one off would make the retention check fatal.
    #[test]
    fn the_count_of_rust_holds_stays_exact_through_growth_and_reuse() {
        let python = crate::runtime::python().unwrap();
        // Under the GIL: the table's every use is.
        let _gil = python.gil().unwrap();
        // Addresses no object has (the count only compares them), 16 apart
        // as objects are.
        let fake = |k: usize| (0x7ead_0000_0000usize + 16 * k) as *mut pyo3_ffi::PyObject;
        let mut expected: HashMap<usize, isize> = HashMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..200_000 {
            let k = (next() % 3000) as usize;
            let held = expected.entry(k).or_insert(0);
            if next() % 2 == 0 && *held > 0 {
                // SAFETY: the GIL is held; the address is only compared.
                unsafe { raw::pim_unhold(fake(k)) };
                *held -= 1;
            } else {
                // SAFETY: as above.
                unsafe { raw::pim_hold(fake(k)) };
                *held += 1;
            }
            if step % 10_000 == 0 {
                for (&k, &count) in &expected {
                    // SAFETY: as above.
                    let counted = unsafe { raw::pim_hold_count(fake(k)) };
                    assert_eq!(counted, count, "step {step}");
                }
            }
        }
        for (&k, &count) in &expected {
            for _ in 0..count {
                // SAFETY: as above.
                unsafe { raw::pim_unhold(fake(k)) };
            }
            // SAFETY: as above.
            let counted = unsafe { raw::pim_hold_count(fake(k)) };
            assert_eq!(counted, 0);
        }
    }
}
