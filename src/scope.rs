//! The held-GIL scope: several calls, of one function or many, under one
//! hold of the GIL ([`hold_gil`]), and arrays lent once for all of them
//! ([`GilScope::lend`]).

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::array::borrow::{retained_error, Release, RustArray};
use crate::array::lent::{LentSlot, IN_A_SCOPE};
use crate::convert::into_arg::{Arg, ArgKind, IntoArg};
use crate::error::Error;
use crate::runtime;
use crate::runtime::ScopeGil;

/// Runs `f` holding the GIL (and the scheduler's turn) for its whole length,
/// so that the calls it makes take neither: a loop or a batch of calls of one
/// function or many pays for the GIL once. `f` gets a [`GilScope`], which
/// lends arrays for as many calls as it likes ([`GilScope::lend`]) and can
/// give the GIL back for Rust work ([`GilScope::without_gil`]).
///
/// ```
/// use py_in_mem::{hold_gil, Function};
///
/// let mean = Function::load("numpy", "mean")?;
/// let std = Function::load("numpy", "std")?;
/// let rows: Vec<Vec<f64>> = vec![vec![1.0, 2.0, 3.0], vec![2.0, 4.0, 6.0]];
/// let stats: Vec<(f64, f64)> = hold_gil(|scope| {
///     let mut stats = Vec::new();
///     for row in &rows {
///         let row = scope.lend(row)?; // one numpy array for both calls
///         stats.push((mean.call(row)?, std.call(row)?));
///     }
///     Ok(stats)
/// })?;
/// assert_eq!(stats[1].0, 4.0);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// Calls inside the scope are the ordinary ones ([`Function::call`],
/// [`Function::arg`]); they see that this thread holds the GIL. Every
/// argument is lent, checked and released as outside a scope, call by call
/// ([the retention rule](crate::Function#the-retention-rule)): an array lent
/// with [`GilScope::lend`] is checked after each call it was passed to, and
/// given back when the scope ends.
///
/// Python code that runs in the scope's calls may still give the GIL to
/// Python's other threads now and then (CPython's own switching), but the
/// Rust code between the calls holds it throughout: keep long Rust work
/// inside [`GilScope::without_gil`], and keep scopes to a loop or a batch.
///
/// Python code may also give the GIL up on this very thread and call back
/// into Rust: ctypes, cffi and many C extensions release it around a
/// foreign call. A crate call, a scope, a lend or a drop in such a callback
/// takes the GIL as it would outside any scope. The rule that guarantees
/// it: the crate skips taking the GIL only while the scope's Python thread
/// state is the thread's current one, which is true only while this thread
/// holds the GIL with it (checked on every call, a few nanoseconds).
///
/// Nothing that needs the GIL can leave the scope: the [`GilScope`] and the
/// [`Lent`] arrays are tied to it, and neither can cross to another thread.
/// These do not compile:
///
/// ```compile_fail
/// // The scope itself cannot be returned.
/// let scope = py_in_mem::hold_gil(|scope| Ok(scope))?;
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// ```compile_fail
/// // Nor an array lent in it.
/// let data = vec![1.0, 2.0];
/// let lent = py_in_mem::hold_gil(|scope| scope.lend(&data))?;
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// ```compile_fail
/// // Data lent in a scope must outlive the scope: a slice made inside it
/// // cannot be lent for the whole scope (pass it to a call instead, which
/// // lends it for that call only).
/// py_in_mem::hold_gil(|scope| {
///     let local = vec![1.0, 2.0];
///     let lent = scope.lend(&local)?;
///     Ok(())
/// })?;
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// ```compile_fail
/// // The scope cannot be used from another thread.
/// let data = vec![1.0, 2.0];
/// py_in_mem::hold_gil(|scope| {
///     std::thread::scope(|threads| {
///         threads.spawn(|| scope.lend(&data));
///     });
///     Ok(())
/// })?;
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// ```compile_fail
/// // A lent array cannot be moved to another thread either.
/// let data = vec![1.0, 2.0];
/// py_in_mem::hold_gil(|scope| {
///     let lent = scope.lend(&data)?;
///     std::thread::scope(|threads| {
///         threads.spawn(move || drop(lent));
///     });
///     Ok(())
/// })?;
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// ```compile_fail
/// // Work without the GIL cannot use the scope.
/// let data = vec![1.0, 2.0];
/// py_in_mem::hold_gil(|scope| {
///     scope.without_gil(|| scope.lend(&data).map(drop))
/// })?;
/// # Ok::<(), py_in_mem::Error>(())
/// ```
///
/// # Errors
///
/// What `f` returns; [`Error::Init`] if Python cannot start;
/// [`Error::Unavailable`] where no call can be made; and
/// [`Error::InputRetained`] if Python kept an array lent with
/// [`GilScope::lend`] between calls of the scope (see
/// [`GilScope::lend`]).
///
/// [`Function::call`]: crate::Function::call
/// [`Function::arg`]: crate::Function::arg
pub fn hold_gil<'env, F, R>(f: F) -> Result<R, Error>
where
    F: for<'scope> FnOnce(&'scope GilScope<'scope, 'env>) -> Result<R, Error>,
{
    let held = runtime::python()?.hold()?;
    let scope = GilScope {
        state: ScopeState {
            held: RefCell::new(held),
            lent: RefCell::new(Vec::new()),
        },
        _scope: PhantomData,
        _env: PhantomData,
    };
    let outcome = f(&scope);
    // Every lent array is given back, with the retention rule, before the
    // GIL (and before the data, which outlives this call, can go); the GIL
    // and the turn go as `scope` drops, on return.
    let kept = scope.state.release_lent();
    if !kept.is_empty() {
        return Err(retained_error(IN_A_SCOPE, kept, outcome));
    }
    outcome
}

/// A held-GIL scope: see [`hold_gil`]. Tied to the scope (`'scope`) and to
/// its thread.
pub struct GilScope<'scope, 'env: 'scope> {
    state: ScopeState,
    // Invariant in both, as std::thread::Scope: nothing of the scope can be
    // made to look shorter- or longer-lived than it is.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// What a scope holds, without lifetimes so that dropping it needs none: the
/// GIL and the turn, and the arrays lent in it.
struct ScopeState {
    held: RefCell<ScopeGil>,
    /// Boxed, so a [`Lent`] handle's address stays put as the list grows;
    /// never removed before the scope ends.
    #[allow(clippy::vec_box)]
    lent: RefCell<Vec<Box<LentSlot>>>,
}

impl ScopeState {
    /// Gives back every lent array, with the retention rule. Those Python
    /// kept (moved onto a copy): "array N lent to the scope", in the order
    /// they were lent.
    fn release_lent(&self) -> Vec<String> {
        let held = self.held.borrow();
        let gil = held.gil();
        let mut kept = Vec::new();
        for (i, slot) in self.lent.borrow().iter().enumerate() {
            if let Some(array) = slot.array.take() {
                if array.release_to(gil, IN_A_SCOPE) == Release::Moved {
                    kept.push(format!("array {i} lent to the scope"));
                }
            }
        }
        kept
    }
}

impl Drop for ScopeState {
    /// After a panic in the scope: the lent arrays still go back, under the
    /// GIL, before the GIL does.
    fn drop(&mut self) {
        self.release_lent();
    }
}

/// An array lent to Python for the rest of a held-GIL scope, made by
/// [`GilScope::lend`]: pass it to any number of calls (it is `Copy`), as any
/// other argument. Tied to the scope.
#[derive(Clone, Copy)]
pub struct Lent<'scope> {
    slot: &'scope LentSlot,
    _scope: PhantomData<&'scope mut &'scope ()>,
}

impl std::fmt::Debug for Lent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lent { .. }")
    }
}

impl<'scope> IntoArg<'scope> for Lent<'scope> {
    fn into_arg(self) -> Arg<'scope> {
        Arg(ArgKind::Lent(self.slot))
    }
}

impl<'scope> GilScope<'scope, '_> {
    /// Lends an array to Python for the rest of the scope: one numpy array
    /// over the same memory (no copy, read-only) for every call it is passed
    /// to, instead of one per call. `array` is anything a call takes as an
    /// array ([`IntoArg`]: slices, [`NdSlice`](crate::NdSlice), `ndarray`'s
    /// arrays with the feature), borrowed for the whole scope.
    ///
    /// After every call it was passed to, the array is checked as any lent
    /// array is ([the retention rule](crate::Function#the-retention-rule)):
    /// if the function kept it, that call returns [`Error::InputRetained`]
    /// (or the process stops, for a kept view), and the next call lends the
    /// memory anew.
    ///
    /// ```
    /// let data: Vec<f64> = (1..=100).map(f64::from).collect();
    /// let percentile = py_in_mem::Function::load("numpy", "percentile")?;
    /// let quartiles: Vec<f64> = py_in_mem::hold_gil(|scope| {
    ///     let data = scope.lend(&data)?;
    ///     [25.0, 50.0, 75.0].iter().map(|q| percentile.arg(data).arg(*q).call()).collect()
    /// })?;
    /// assert_eq!(quartiles, [25.75, 50.5, 75.25]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    ///
    /// A value that is not an array (a number, a string) is
    /// [`Error::InvalidArgument`]: pass it to the calls directly.
    pub fn lend(&'scope self, array: impl IntoArg<'scope>) -> Result<Lent<'scope>, Error> {
        let source =
            match array.into_arg().0 {
                ArgKind::Array(source) => source,
                ArgKind::Lent(slot) => {
                    return Ok(Lent {
                        slot,
                        _scope: PhantomData,
                    })
                }
                // An argument that could not be made says why.
                ArgKind::Invalid(why) => return Err(Error::InvalidArgument(why)),
                _ => return Err(Error::InvalidArgument(
                    "GilScope::lend takes arrays; pass numbers, strings and objects to the calls directly"
                        .into(),
                )),
            };
        // SAFETY: (the lifetime's erasure) the memory is borrowed for
        // 'scope, and 'scope outlives every use of the slot: the slot's
        // array is given back by release_lent, which hold_gil runs (or the
        // scope's drop, on a panic) before it returns, while the borrow,
        // which outlives 'env's whole call of hold_gil, is still live.
        let source: RustArray<'static> = unsafe { source.erase_lifetime() };
        let slot = Box::new(LentSlot::new(source));
        let held = self.state.held.borrow();
        slot.array(held.gil()).map_err(Error::Python)?;
        let ptr: *const LentSlot = &*slot;
        self.state.lent.borrow_mut().push(slot);
        // SAFETY: the box is kept in `lent` until the scope state drops, which
        // is after 'scope, and a box's contents never move.
        let slot: &'scope LentSlot = unsafe { &*ptr };
        Ok(Lent {
            slot,
            _scope: PhantomData,
        })
    }

    /// Runs `f` with the GIL (and the scheduler's turn) given back, so other
    /// threads, Python's own included, run while this thread does Rust work;
    /// takes them again after. `f` cannot use the scope (it is `Send`); the
    /// crate's calls inside it take the GIL as calls outside any scope do.
    /// A child process that `f` forks must `exec` or `_exit`: one that
    /// returns from `f` is ended there (status 0), since the scope cannot
    /// take the GIL back in it (docs/lifecycle.md, "fork").
    ///
    /// ```
    /// let sum = py_in_mem::Function::load("numpy", "sum")?;
    /// let data = vec![1.0; 1000];
    /// let total: f64 = py_in_mem::hold_gil(|scope| {
    ///     let first: f64 = sum.call(&data)?;
    ///     let more = scope.without_gil(|| data.iter().sum::<f64>());
    ///     Ok(first + more)
    /// })?;
    /// assert_eq!(total, 2000.0);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn without_gil<T>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.state.held.borrow_mut().released(f)
    }
}
