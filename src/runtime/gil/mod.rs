//! The GIL protocol: the three ways the crate takes the GIL, and how each
//! gives it back.
//!
//! - [`Interpreter::gil`]: for one reference or conversion.
//! - [`Interpreter::gil_for_call`]: for one call of a
//!   [`Function`](crate::Function), after this thread's turn from the
//!   [scheduler] ([`CallGil`]).
//! - [`Interpreter::hold`]: for a held-GIL scope ([`crate::hold_gil`],
//!   [`ScopeGil`]), which nests; inside one, the other two take nothing.
//!
//! Every path first asks the [life cycle](super::lifecycle) whether Python
//! may be touched at all, then makes sure this thread has a
//! [thread state](super::thread_state). The turn is always taken before the
//! GIL and given back after it, so nobody waits for the turn holding the
//! GIL.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;

use pyo3_ffi::{
    PyEval_RestoreThread, PyEval_SaveThread, PyGILState_Ensure, PyGILState_Release,
    PyGILState_STATE, PyThreadState,
};

use super::scheduler::{self, CallStats, Ticket};
use super::{host_exit, lifecycle, thread_state};
use crate::error::Unavailable;
use crate::raw;

mod pending;
pub(crate) use pending::{release_later, PlainRef, SharedRef};

thread_local! {
    /// The thread state with which this thread's innermost held-GIL scope
    /// ([`crate::hold_gil`]) holds the GIL; null outside scopes, and while a
    /// scope has given the GIL up ([`ScopeGil::released`]).
    static SCOPE_TSTATE: Cell<*mut PyThreadState> = const { Cell::new(std::ptr::null_mut()) };
}

/// Does this thread hold the GIL, now, through a held-GIL scope of its own?
///
/// Being inside a scope is not enough: Python code the scope calls, or C
/// code that Python calls (ctypes, cffi and many extensions release the
/// GIL around a foreign call), may have given the GIL up on this thread and
/// then called back into the crate. So the scope's thread state must also
/// be the thread's current one, which is true only while this thread holds
/// the GIL with it (before 3.12 the current state is the GIL holder's,
/// whichever thread that is; since, this thread's, and NULL while it is
/// detached). One thread-local read and one call into libpython.
#[inline]
fn in_held_scope() -> bool {
    let scope_tstate = SCOPE_TSTATE.get();
    // SAFETY: a scope's thread state is set only while Python runs, and
    // reading the current thread state is allowed on any thread, with or
    // without the GIL (it is only compared, never dereferenced).
    !scope_tstate.is_null() && unsafe { raw::pim_current_thread_state() } == scope_tstate
}

/// Does this thread hold the GIL right now: through a held-GIL scope, with
/// the thread state the crate keeps for it (a call of the crate's in
/// progress), or with the one PyGILState knows for it (a host's thread, an
/// extension's callback)? Thread states are only compared, so any thread
/// may ask, with or without the GIL. Not PyGILState_Check, which says yes
/// to every thread once a host has made a subinterpreter.
#[inline]
pub(crate) fn this_thread_holds_gil() -> bool {
    // SAFETY: reading the current thread state is allowed on any thread,
    // with or without the GIL; it is only compared.
    let current = unsafe { raw::pim_current_thread_state() };
    if current.is_null() {
        return false;
    }
    // Before 3.12 the current thread state is the GIL holder's, whichever
    // thread that is; since, this thread's, and NULL while it is detached.
    // Either way, it is one of this thread's own only while this thread
    // holds the GIL.
    // SAFETY: PyGILState_GetThisThreadState reads this thread's entry of
    // PyGILState's thread-local key, and may be called without the GIL.
    SCOPE_TSTATE.get() == current
        || thread_state::kept() == Some(current)
        || unsafe { pyo3_ffi::PyGILState_GetThisThreadState() } == current
}

/// Proof that Python ran in this process. Only [`crate::runtime`] makes one,
/// once Python runs and is prepared. The crate never finalizes Python; a
/// host program may, and [`Interpreter::gil`] then refuses.
#[derive(Clone, Copy)]
pub(crate) struct Interpreter {
    _private: (),
}

impl Interpreter {
    /// # Safety
    /// Python must have been initialized in this process.
    pub(crate) unsafe fn assume_started() -> Interpreter {
        Interpreter { _private: () }
    }

    /// Takes the GIL for a crate call on this thread, whichever thread it is,
    /// with the GIL held already (by a host, or by an outer call) or not.
    /// The one way the crate takes the GIL; [`Gil`] gives it back.
    ///
    /// Fails, touching nothing of Python's, once the host has finalized
    /// Python, in a child forked after start-up, and on a thread that has
    /// given its thread state back as it exits.
    ///
    /// Inside a held-GIL scope that holds the GIL right now, the GIL is this
    /// thread's already: the guard takes nothing (only a fork since start-up
    /// is checked, one load). A scope whose GIL C code has given up (a
    /// callback from ctypes, say) is no help: the GIL is taken as outside.
    pub(crate) fn gil(self) -> Result<Gil, Unavailable> {
        if in_held_scope() {
            lifecycle::check_latched()?;
            return Ok(Gil::scoped().releasing_pending());
        }
        // `enter_counted` checks that Python runs.
        let counted = enter_counted(false)?;
        Ok(Gil::ensure(counted).releasing_pending())
    }

    /// Takes the GIL for one call of a function measured by `stats`: first
    /// this thread's turn from the scheduler ([`crate::runtime::scheduler`]), then
    /// the GIL. The guard gives the GIL back, then the turn.
    pub(crate) fn gil_for_call(self, stats: &CallStats) -> Result<CallGil<'_>, Unavailable> {
        if in_held_scope() {
            lifecycle::check_latched()?;
            // The scope's GIL is counted already; a call in it is refused
            // here once the host's exit has begun ([`host_exit::enter`]
            // refuses the others).
            host_exit::check_call()?;
            return Ok(CallGil {
                gil: Gil::scoped().releasing_pending(),
                _ticket: Ticket::none(),
            });
        }
        lifecycle::check()?;
        if inside_a_scope() {
            // A callback inside a scope whose GIL C code gave up: the scope
            // holds this thread's turn already.
            let counted = enter_counted(true)?;
            return Ok(CallGil {
                gil: Gil::ensure(counted).releasing_pending(),
                _ticket: Ticket::none(),
            });
        }
        // The turn before the GIL, never the other way round: nobody waits
        // for the turn holding the GIL. The first GIL of a thread new to
        // Python (its thread state made) is taken in the turn too: outside
        // it, a thread that takes the GIL back to back (a loop of held
        // scopes) kept it from a new thread for seconds.
        thread_state::check_not_exiting()?;
        let mut ticket = scheduler::enter(stats);
        let counted = enter_counted(true)?;
        let gil = Gil::ensure(counted).releasing_pending();
        ticket.start_timing();
        Ok(CallGil {
            gil,
            _ticket: ticket,
        })
    }

    /// Holds the GIL, and the turn, until [`ScopeGil`] drops: what
    /// [`crate::hold_gil`] runs its closure in. Nests, also inside a
    /// callback from C code that gave an outer scope's GIL up.
    pub(crate) fn hold(self) -> Result<ScopeGil, Unavailable> {
        let outer = SCOPE_TSTATE.get();
        if in_held_scope() {
            lifecycle::check_latched()?;
            host_exit::check_call()?;
            return Ok(ScopeGil {
                gil: Some(Gil::scoped()),
                _ticket: Ticket::none(),
                outer,
            });
        }
        lifecycle::check()?;
        thread_state::check_not_exiting()?;
        let ticket = if outer.is_null() {
            scheduler::enter_scope()
        } else {
            Ticket::none() // the outer scope holds this thread's turn
        };
        // In the turn, as in `gil_for_call`.
        let counted = enter_counted(true)?;
        let gil = Gil::ensure(counted);
        // SAFETY: this thread holds the GIL (just taken), so the current
        // thread state is its own; only read.
        SCOPE_TSTATE.set(unsafe { raw::pim_current_thread_state() });
        pending::release_pending(&gil);
        Ok(ScopeGil {
            gil: Some(gil),
            _ticket: ticket,
            outer,
        })
    }
}

/// Counts the GIL about to be taken for a host's exit ([`host_exit::enter`],
/// `call` as there), checks that Python still runs, then makes sure this
/// thread has a Python thread state
/// ([`thread_state::enter`], which takes the GIL once to make one): so that
/// no take of the GIL, that one included, slips past the host's drain into
/// its finalization, where Python would end the thread as it took it.
fn enter_counted(call: bool) -> Result<bool, Unavailable> {
    let counted = host_exit::enter(call)?;
    // Looked at again once counted (and after the turn, which may have
    // waited long): a finalization begun or over meanwhile is refused here,
    // not met in a take of the GIL, or in a thread state made for a dead
    // interpreter.
    if let Err(why) = lifecycle::check().and_then(|()| thread_state::enter()) {
        host_exit::gave(counted);
        return Err(why);
    }
    Ok(counted)
}

/// Is this thread inside a held-GIL scope, whether or not it holds the GIL
/// right now?
#[inline]
fn inside_a_scope() -> bool {
    !SCOPE_TSTATE.get().is_null()
}

/// The GIL, held by this thread until the guard drops. Not `Send`: it must be
/// released on the thread that took it.
pub struct Gil {
    taken: Taken,
    /// Counted by [`host_exit`], which the drop uncounts.
    counted: bool,
    _not_send: PhantomData<*mut ()>,
}

/// How a [`Gil`] took the GIL, so it gives it back the same way.
#[derive(Clone, Copy)]
enum Taken {
    /// PyGILState_Ensure (which nests).
    Ensured(PyGILState_STATE),
    /// With the thread state the crate keeps for this thread, which did not
    /// hold the GIL: PyEval_RestoreThread, given back with SaveThread.
    Restored,
    /// Nothing: the thread's held-GIL scope holds it, and gives it back.
    Scoped,
}

impl Gil {
    /// Takes the GIL (or nests, if this thread holds it already); `counted`
    /// says whether [`host_exit::enter`] counted it.
    fn ensure(counted: bool) -> Gil {
        if let Some(tstate) = thread_state::kept() {
            // SAFETY: Python runs (our callers checked); the current thread
            // state is only read. Before 3.12 it is the GIL holder's,
            // whichever thread that is; since, this thread's: either way it
            // is ours only if this thread holds the GIL.
            if unsafe { raw::pim_current_thread_state() } != tstate {
                // SAFETY: tstate is this thread's own, kept by the crate, and
                // this thread does not hold the GIL: what Ensure would do
                // after finding it.
                unsafe { PyEval_RestoreThread(tstate) };
                return Gil::taken(Taken::Restored, counted);
            }
        }
        // SAFETY: our callers checked that Python runs; this thread has a
        // thread state PyGILState knows, or Ensure makes one for the call;
        // Ensure may be called from any thread, and nests.
        let state = unsafe { PyGILState_Ensure() };
        Gil::taken(Taken::Ensured(state), counted)
    }

    /// The guard of a GIL just taken, counted for a host's exit
    /// ([`host_exit`]) or not.
    #[inline]
    fn taken(taken: Taken, counted: bool) -> Gil {
        Gil {
            taken,
            counted,
            _not_send: PhantomData,
        }
    }

    /// Releases the references dropped without the GIL
    /// ([`pending`]), now that it is held.
    #[inline]
    fn releasing_pending(self) -> Gil {
        pending::release_pending(&self);
        self
    }

    /// The GIL this thread's held-GIL scope holds.
    fn scoped() -> Gil {
        Gil {
            taken: Taken::Scoped,
            counted: false,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Gil {
    fn drop(&mut self) {
        match self.taken {
            // SAFETY: `state` came from PyGILState_Ensure on this thread (Gil
            // is not Send), and guards drop in reverse order of creation.
            Taken::Ensured(state) => unsafe { PyGILState_Release(state) },
            Taken::Restored => {
                // SAFETY: this thread took the GIL with RestoreThread (in
                // `ensure`, on this thread) and holds it with its own state.
                unsafe { PyEval_SaveThread() };
            }
            Taken::Scoped => {}
        }
        host_exit::gave(self.counted);
    }
}

/// The GIL for one call, and the call's place in the schedule: gives the
/// GIL back first, then the turn (fields drop in order).
pub(crate) struct CallGil<'s> {
    gil: Gil,
    _ticket: Ticket<'s>,
}

impl Deref for CallGil<'_> {
    type Target = Gil;
    fn deref(&self) -> &Gil {
        &self.gil
    }
}

/// The GIL and the turn held for a held-GIL scope.
pub(crate) struct ScopeGil {
    /// Taken out (and put back) by [`ScopeGil::released`].
    gil: Option<Gil>,
    _ticket: Ticket<'static>,
    /// The enclosing scope's thread state (null if none), put back when
    /// this scope ends: scopes end in the reverse order of their start.
    outer: *mut PyThreadState,
}

impl ScopeGil {
    /// The GIL this scope holds.
    pub(crate) fn gil(&self) -> &Gil {
        self.gil.as_ref().expect("a held-GIL scope holds the GIL")
    }

    /// Runs `f` with the GIL (and the turn) given back, so other threads,
    /// Python's own included, run meanwhile; takes them again after. Calls
    /// inside `f` take the GIL as calls outside any scope do.
    pub(crate) fn released<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let scope_tstate = SCOPE_TSTATE.replace(std::ptr::null_mut());
        // SAFETY: this thread holds the GIL (the scope's), with its thread
        // state current; SaveThread releases it and returns that state, which
        // RestoreThread below takes back on this same thread.
        let tstate = unsafe { PyEval_SaveThread() };
        let ticket = std::mem::replace(&mut self._ticket, Ticket::none());
        drop(ticket);
        // Put back even if f panics: the scope's guard still needs them.
        struct Restore<'g> {
            tstate: *mut pyo3_ffi::PyThreadState,
            scope_tstate: *mut pyo3_ffi::PyThreadState,
            scope: &'g mut ScopeGil,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                end_if_forked_in_scope();
                if self.scope.outer.is_null() {
                    self.scope._ticket = scheduler::enter_scope();
                }
                // SAFETY: tstate is this thread's, saved above.
                unsafe { PyEval_RestoreThread(self.tstate) };
                SCOPE_TSTATE.set(self.scope_tstate);
            }
        }
        let _restore = Restore {
            tstate,
            scope_tstate,
            scope: self,
        };
        f()
    }
}

/// In a child forked (by the caller's Rust code) inside
/// [`released`](ScopeGil::released), ends the process, with a line on
/// stderr saying why, instead of taking the scope's GIL back.
///
/// The scope cannot go on in the child: the GIL (and the turn's lock) may
/// have been held at the fork by a thread that does not exist there, so
/// taking them back would wait for ever (trial 26: 3 of 3 children hung),
/// and without them the scope can neither call Python nor give back what
/// it lent. A child that does not `exec` ends here, as one that a served
/// call's Python code forked does (status 0).
fn end_if_forked_in_scope() {
    lifecycle::end_if_forked_child(
        "py-in-mem: a process forked inside GilScope::without_gil returned into the held-GIL \
         scope, which cannot take the GIL back in the child: the child ends here (exec or _exit \
         in the child instead)\n",
    );
}

impl Drop for ScopeGil {
    fn drop(&mut self) {
        SCOPE_TSTATE.set(self.outer);
        // The GIL goes before the turn (fields would drop the other way).
        drop(self.gil.take());
    }
}
