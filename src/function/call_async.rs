//! Async calls: the same calls as [`super::call`]'s, made by a serving
//! thread ([`crate::serve`]) while the caller's executor goes on. The job
//! owns everything it needs (a clone of the function, the arguments), so
//! the future can be dropped at any time.

use super::args::Args;
use super::{Call, Function};
use crate::convert::from_result::FromResult;
use crate::convert::into_arg::{Arg, ArgKind, IntoArg};
use crate::error::Error;
use crate::runtime::Deadline;
use crate::serve::CallFuture;

/// An async call's arguments, in its job: read by the serving thread,
/// and freed with the job by the thread that polls the future, since a
/// free of the caller's memory on the serving thread would be a free into
/// another thread's arena, under its lock, with the GIL held. The
/// positional ones as a [`Call`] keeps them (the first inline), so that a
/// call of one argument allocates nothing here.
struct Owned {
    args: Args<'static>,
    kwargs: Vec<(&'static str, Arg<'static>)>,
}

// SAFETY: variant by variant, what an `Arg<'static>` holds, once `Owned::new`
// has refused `ArgKind::Lent`:
// - Array: a pointer into memory borrowed for 'static as `&'static [T]` of
//   an `Element` (plain numbers, Sync), only read; sending the pointer is
//   sending a `&'static [T]`.
// - Value, Tuple: `Scalar<'static>`s, numbers and `&'static str`: Send.
// - Object: `&'static SharedRef`, and SharedRef is Sync.
// - Given: a `Box<dyn Give>`, and `Give: Send`, in a Cell, which is Send.
// - Lent (a held-GIL scope's slot, with Cells, tied to its thread): never
//   here; a scope's lifetime is never 'static anyway.
// The keyword names are `&'static str`.
unsafe impl Send for Owned {}

impl Owned {
    fn new(args: Args<'static>, kwargs: Vec<(&'static str, Arg<'static>)>) -> Result<Owned, Error> {
        let lent = args
            .as_slice()
            .iter()
            .chain(kwargs.iter().map(|(_, arg)| arg))
            .any(|arg| matches!(arg.0, ArgKind::Lent(_)));
        if lent {
            return Err(Error::InvalidArgument(
                "an array lent for a held-GIL scope cannot be passed to an async call".into(),
            ));
        }
        Ok(Owned { args, kwargs })
    }
}

impl Function {
    /// Calls the function with one argument on a serving thread of the
    /// crate's ([`crate::serve`]), and resolves to what
    /// [`call`](Self::call) would return. The future is `Send + 'static`
    /// and never blocks the thread that polls it; the argument is owned
    /// (`'static`): an owned array ([`Arg::owned`]), a
    /// [`Value`](crate::Value), a scalar, an [`Object`](crate::Object) by
    /// value, `&'static` data.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return out; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// use py_in_mem::{Arg, Function};
    ///
    /// let f = Function::from_source("doc_call_async", "def f(x):\n    return x * 2\n", "f")?;
    /// let doubled: Vec<f64> = block_on(f.call_async(Arg::owned(vec![1.0, 2.5])))?;
    /// assert_eq!(doubled, [2.0, 5.0]);
    /// assert_eq!(block_on(f.call_async::<i64>(21))?, 42);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_async<R>(&self, input: impl IntoArg<'static>) -> CallFuture<R>
    where
        R: FromResult + Send + 'static,
    {
        self.spawn_call(Args::One(input.into_arg()), Vec::new(), None, false)
    }

    /// Calls the function with no argument on a serving thread, as
    /// [`call_async`](Self::call_async) does; resolves to what
    /// [`call0`](Self::call0) would return.
    pub fn call0_async<R>(&self) -> CallFuture<R>
    where
        R: FromResult + Send + 'static,
    {
        self.spawn_call(Args::None, Vec::new(), None, false)
    }

    /// The future of a call of a clone of this function with `args` and
    /// `kwargs`, made by a serving thread through the ordinary path.
    fn spawn_call<R>(
        &self,
        args: Args<'static>,
        kwargs: Vec<(&'static str, Arg<'static>)>,
        deadline: Option<Deadline>,
        stop_on_drop: bool,
    ) -> CallFuture<R>
    where
        R: FromResult + Send + 'static,
    {
        let owned = match Owned::new(args, kwargs) {
            Ok(owned) => owned,
            Err(error) => return CallFuture::ready(Err(error)),
        };
        // The arguments stay in the job, and go back with it to the future:
        // what the caller's thread allocated for them is freed there, not
        // on the serving thread.
        CallFuture::new(
            self.clone(),
            owned,
            deadline,
            stop_on_drop,
            move |function, owned: &Owned| {
                function.invoke_until(
                    deadline,
                    owned.args.as_slice(),
                    &owned.kwargs,
                    |gil, result| function.convert(gil, result),
                )
            },
        )
    }
}

impl Call<'_, 'static> {
    /// Makes the call on a serving thread ([`crate::serve`]), and resolves
    /// to what [`call`](Self::call) would return. Every argument must be
    /// owned (`'static`, see [`Function::call_async`]).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return out; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// use py_in_mem::{Function, NdVec};
    ///
    /// let f = Function::from_source("doc_call_async_b", "def f(m, k=1):\n    return (m.sum(axis=1) * k).tolist()\n", "f")?;
    /// let sums: Vec<i64> = block_on(
    ///     f.arg_owned(NdVec::new(vec![1i64, 2, 3, 4], vec![2, 2])?).kwarg("k", 10).call_async(),
    /// )?;
    /// assert_eq!(sums, [30, 70]);
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn call_async<R>(self) -> CallFuture<R>
    where
        R: FromResult + Send + 'static,
    {
        let (function, args, kwargs, deadline, stop_on_drop) = self.into_parts();
        function.spawn_call(args, kwargs, deadline, stop_on_drop)
    }
}

impl Function {
    /// Starts an async call that is stopped if its future is dropped while
    /// it runs: see [`Call::stop_on_drop`].
    pub fn stop_on_drop<'a>(&self) -> Call<'_, 'a> {
        Call::new(self).stop_on_drop()
    }
}

impl Call<'_, '_> {
    /// Has an async call ([`call_async`](Self::call_async)) stopped if its
    /// future is dropped while the call runs: a client that disconnects, a
    /// `tokio::time::timeout` or a `select!` that gives up on it. Without
    /// it, the call runs on to its end in its serving thread, however long
    /// that is, and only its result is dropped.
    ///
    /// The call is stopped as a deadline stops it ([`timeout`](Self::timeout),
    /// whose rules hold): the crate's watchdog takes the GIL, a switch
    /// interval (5 ms) later if Python code is running, and raises
    /// `py_in_mem.DeadlineExceeded` in the serving thread, which Python
    /// raises at the call's next bytecode; C code (a numpy loop, a
    /// `time.sleep`) finishes first. The exception may land anywhere in
    /// the call's Python code, and code not written for it may be left half
    /// done (docs/calls.md, "Deadlines"): ask for it for calls that compute,
    /// not for calls that fork or manage processes. A future dropped before
    /// its call starts never runs, with or without it; a synchronous call
    /// cannot be dropped while it runs, and ignores it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use py_in_mem::{Function, Object};
    ///
    /// let spin = Function::from_source(
    ///     "doc_stop_on_drop",
    ///     "stopped_by = None\n\
    ///      def spin():\n\
    ///      \x20   global stopped_by\n\
    ///      \x20   try:\n\
    ///      \x20       while True:\n\
    ///      \x20           pass\n\
    ///      \x20   except BaseException as e:\n\
    ///      \x20       stopped_by = type(e).__name__\n\
    ///      \x20       raise\n",
    ///     "spin",
    /// )?;
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// // The request gives up after 50 ms: the future is dropped.
    /// let gave_up = runtime.block_on(async {
    ///     let call = spin.stop_on_drop().call_async::<()>();
    ///     tokio::time::timeout(Duration::from_millis(50), call).await
    /// });
    /// assert!(gave_up.is_err());
    /// // The Python loop was stopped, and the serving thread is free.
    /// let module = Object::import("doc_stop_on_drop")?;
    /// let stopped_by = (0..500).find_map(|_| {
    ///     std::thread::sleep(Duration::from_millis(10));
    ///     module.getattr::<Option<String>>("stopped_by").unwrap()
    /// });
    /// assert_eq!(stopped_by.as_deref(), Some("DeadlineExceeded"));
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn stop_on_drop(mut self) -> Self {
        self.stop_on_drop = true;
        self
    }
}
