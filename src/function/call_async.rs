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
        self.spawn_call(Args::One(input.into_arg()), Vec::new(), None)
    }

    /// Calls the function with no argument on a serving thread, as
    /// [`call_async`](Self::call_async) does; resolves to what
    /// [`call0`](Self::call0) would return.
    pub fn call0_async<R>(&self) -> CallFuture<R>
    where
        R: FromResult + Send + 'static,
    {
        self.spawn_call(Args::None, Vec::new(), None)
    }

    /// The future of a call of a clone of this function with `args` and
    /// `kwargs`, made by a serving thread through the ordinary path.
    fn spawn_call<R>(
        &self,
        args: Args<'static>,
        kwargs: Vec<(&'static str, Arg<'static>)>,
        deadline: Option<Deadline>,
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
        let (function, args, kwargs, deadline) = self.into_parts();
        function.spawn_call(args, kwargs, deadline)
    }
}
