//! Deadlines on calls: [`Function::timeout`], [`Function::deadline`],
//! [`Call::timeout`] and [`Call::deadline`], and what a call does with
//! one: refuse to start once it has passed, or have the runtime's watchdog
//! ([`Watch`]) stop the Python code running past it, and report either as
//! [`Error::Timeout`].

use std::time::{Duration, Instant};

use super::{Call, Function};
use crate::error::Error;
use crate::runtime::glue::Raised;
use crate::runtime::{take_stopper, Deadline, Gil, Watch};

/// A call's limit as the caller gave it: from the start of the call, or a
/// point in time.
#[derive(Clone, Copy, Debug)]
pub(super) enum Limit {
    After(Duration),
    At(Instant),
}

/// The deadline of a call starting now; `None` without a limit, or for a
/// timeout too far away for an `Instant` (which never passes).
pub(super) fn starting_now(limit: Option<Limit>) -> Option<Deadline> {
    let limit = limit?;
    let started = Instant::now();
    match limit {
        Limit::After(limit) => Some(Deadline {
            started,
            at: started.checked_add(limit)?,
            limit,
        }),
        Limit::At(at) => Some(Deadline {
            started,
            at,
            limit: at.saturating_duration_since(started),
        }),
    }
}

/// A call's deadline, from when it holds the GIL until the call's result
/// is converted, or the exception it raised is fetched.
pub(super) struct Clock<'g, 'n> {
    deadline: Option<(Deadline, Watch<'g>)>,
    function: &'n str,
}

impl<'g, 'n> Clock<'g, 'n> {
    /// Right after the call took the GIL, before anything is lent: a
    /// deadline passed already is [`Error::Timeout`] (the function is not
    /// called); else the watchdog watches the call from now.
    #[inline] // into every generic call path: most calls have no deadline
    pub(super) fn start(
        gil: &'g Gil,
        deadline: Option<Deadline>,
        function: &'n str,
    ) -> Result<Clock<'g, 'n>, Error> {
        // An async call that stops when its future is dropped is armed
        // without a deadline too (the outermost call of its job only).
        let stopper = take_stopper();
        let Some(deadline) = deadline.or_else(|| stopper.as_ref().and_then(|_| Deadline::never()))
        else {
            return Ok(Clock {
                deadline: None,
                function,
            });
        };
        let now = Instant::now();
        if now >= deadline.at {
            return Err(deadline.not_called(function, now));
        }
        Ok(Clock {
            deadline: Some((deadline, Watch::arm(gil, &deadline, stopper))),
            function,
        })
    }

    /// Right after the Python call raised: fetches its exception, still
    /// under the deadline, since formatting it runs Python code (its
    /// `__str__`, the traceback module), which may be slow or never end.
    /// The watchdog stops that code as it stops the call's; if it fires
    /// meanwhile, the call is [`Error::Timeout`], since what the formatting
    /// gave may be cut short.
    pub(super) fn fetch(&self, raised: Raised<'_>) -> Error {
        let Some((deadline, watch)) = &self.deadline else {
            return Error::Python(raised.fetch());
        };
        let raises_before = watch.raises();
        let exception = raised.fetch();
        if watch.raises() != raises_before {
            return stopped(self.function, deadline);
        }
        Error::Python(exception)
    }

    /// Right after the call's result was converted (or the Python call
    /// raised, and its exception was [fetched](Clock::fetch)), with the GIL
    /// still held: the call is finished for the watchdog. The conversion is
    /// inside the deadline, since it may run Python code too (a property
    /// or `__getitem__` that a [`FromResult`](crate::FromResult) impl
    /// reads). If the watchdog stopped the call, the `DeadlineExceeded` it
    /// raised is [`Error::Timeout`] (as [`fetch`] made an exception whose
    /// formatting it stopped), and so is a result that failed to convert
    /// meanwhile: the exception may have been raised in the reading, which
    /// turns it into a mismatch. A call that returned and converted before
    /// Python raised the exception returns as it would have.
    ///
    /// [`fetch`]: Clock::fetch
    #[inline]
    pub(super) fn stop<R>(self, outcome: Result<R, Error>) -> Result<R, Error> {
        let Some((deadline, watch)) = self.deadline else {
            return outcome;
        };
        if !watch.finish() {
            return outcome;
        }
        match outcome {
            Err(Error::Python(exception))
                if exception.is_instance_of("py_in_mem.DeadlineExceeded") =>
            {
                Err(stopped(self.function, &deadline))
            }
            Err(Error::BadResult { .. }) => Err(stopped(self.function, &deadline)),
            other => other,
        }
    }
}

/// The timeout of a call of `function` that the watchdog stopped.
fn stopped(function: &str, deadline: &Deadline) -> Error {
    Error::Timeout {
        function: function.to_owned(),
        limit: deadline.limit,
        elapsed: deadline.started.elapsed(),
        ran: true,
        still_running: false,
    }
}

impl Function {
    /// Starts a call that must finish within `limit` of being made, with no
    /// argument yet: `f.timeout(limit).call()` calls `f()`, and
    /// `f.timeout(limit).arg(x).call()` calls `f(x)`. See
    /// [`Call::timeout`] for what happens at the deadline.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let f = py_in_mem::Function::from_source("doc_fn_timeout", "def f(x=20):\n    return x + 1\n", "f")?;
    /// assert_eq!(f.timeout(Duration::from_secs(5)).call::<i64>()?, 21);
    /// assert_eq!(f.timeout(Duration::from_secs(5)).arg(1).call::<i64>()?, 2);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    ///
    /// The arguments' lifetime is free, as after [`arg`](Function::arg):
    /// `f.timeout(limit).arg_owned(v).call_async()` needs no `'static`
    /// function.
    pub fn timeout<'a>(&self, limit: Duration) -> Call<'_, 'a> {
        Call::new(self).timeout(limit)
    }

    /// Starts a call that must finish by `deadline`, with no argument yet:
    /// as [`timeout`](Function::timeout), with a point in time
    /// ([`Call::deadline`]).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let f = py_in_mem::Function::from_source("doc_fn_deadline", "def f():\n    return 'on time'\n", "f")?;
    /// let by = Instant::now() + Duration::from_secs(5);
    /// assert_eq!(f.deadline(by).call::<String>()?, "on time");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn deadline<'a>(&self, deadline: Instant) -> Call<'_, 'a> {
        Call::new(self).deadline(deadline)
    }
}

impl Call<'_, '_> {
    /// Gives the call `limit` from when it is made ([`call`](Call::call)):
    /// past it, the call returns [`Error::Timeout`].
    ///
    /// - A call still waiting for its turn or the GIL when its deadline
    ///   passes is not made at all (`ran: false`). A synchronous call
    ///   waits for the GIL on its own thread, which CPython cannot cut
    ///   short: with the GIL held elsewhere, it returns only once it gets
    ///   the GIL. An async call ([`call_async`](Call::call_async)) resolves
    ///   at its deadline whatever holds the GIL.
    /// - Python code running past its deadline is stopped: the crate's
    ///   watchdog thread (`pim-deadline`, started by the first call
    ///   with a deadline) raises `py_in_mem.DeadlineExceeded` in it, which
    ///   Python raises at its next bytecode (`ran: true`). The watchdog
    ///   needs the GIL for that, which running Python code hands over one
    ///   switch interval (`sys.getswitchinterval()`, 5 ms) after it is asked
    ///   for, so the watchdog asks that much early: a busy call ends within
    ///   about a millisecond of its deadline when nothing else contends for
    ///   the GIL. Code in C is not interrupted: a long loop (numpy's) or a
    ///   wait (`time.sleep`, a lock, `Thread.join`) finishes first, and the
    ///   exception comes at the next bytecode after it. An async call's
    ///   future resolves to `Error::Timeout` one switch interval after the
    ///   deadline even so, while the call runs on in its serving thread.
    /// - The exception lands in whatever Python code is running, as
    ///   `KeyboardInterrupt` does: code not written for that may be left
    ///   half done (a library's cleanup, the handlers `os.fork` runs). Give
    ///   deadlines to computations, not to calls that fork or manage
    ///   processes (`docs/calls.md`, "Deadlines").
    /// - The formatting of an exception the function raised (its
    ///   `__str__`, the traceback) is stopped the same way, and the call is
    ///   then `Error::Timeout` too.
    /// - So is the conversion of the result, which may run Python code (a
    ///   [`FromResult`](crate::FromResult) impl reading a property): a
    ///   result that fails to convert once the deadline has passed is
    ///   `Error::Timeout` too.
    ///
    /// `DeadlineExceeded` derives from `BaseException`, as
    /// `KeyboardInterrupt` does, so `except Exception:` in the function
    /// does not swallow it (a bare `except:` or `except BaseException:`
    /// does; the call then returns what the function returns). A call still
    /// running after the exception was raised has swallowed it (so, too,
    /// when it lands in a `__del__` or a weakref callback, which Python
    /// reports as "Exception ignored in ..." and goes on from): the
    /// watchdog raises it again after as long as the limit (at least 100
    /// ms, at most 1 s), and at that interval until the call returns. A call that
    /// returns by itself before Python raises the exception (it was in C
    /// code) returns its result. Deadlines work the same inside
    /// [`hold_gil`](crate::hold_gil).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let spin = py_in_mem::Function::from_source(
    ///     "doc_call_timeout",
    ///     "def spin(n):\n    while n > 0:\n        pass\n    return n\n",
    ///     "spin",
    /// )?;
    /// let err = spin.arg(1).timeout(Duration::from_millis(20)).call::<i64>().unwrap_err();
    /// assert!(err.to_string().starts_with("doc_call_timeout.spin ran past its deadline of 20 ms (stopped after "));
    /// assert_eq!(spin.arg(0).timeout(Duration::from_millis(20)).call::<i64>()?, 0);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    ///
    /// # Panics
    /// The first call with a deadline starts the watchdog thread, and panics
    /// if the operating system cannot start it (as `std::thread::spawn`
    /// does).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.limit = Some(Limit::After(limit));
        self
    }

    /// Gives the call until `deadline`: as [`timeout`](Call::timeout), with
    /// a point in time, for calls sharing one deadline. A deadline already
    /// passed when the call is made refuses it (`ran: false`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let f = py_in_mem::Function::from_source("doc_call_deadline", "def f(a, b):\n    return a * b\n", "f")?;
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// assert_eq!(f.arg(6).arg(7).deadline(deadline).call::<i64>()?, 42);
    ///
    /// let passed = Instant::now();
    /// let err = f.arg(6).arg(7).deadline(passed).call::<i64>().unwrap_err();
    /// assert!(matches!(err, py_in_mem::Error::Timeout { ran: false, .. }));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.limit = Some(Limit::At(deadline));
        self
    }
}
