//! A [`Call`](super::Call)'s positional arguments: the first kept inline,
//! since most built calls have one (`model.method("count")?.arg_owned(x)`),
//! and a heap `Vec` only from the second on. A builder call then costs no
//! allocation of its own, as a direct [`Function::call`](super::Function::call)
//! does not, nor an async call of one argument
//! ([`Call::call_async`](super::Call::call_async)).

use std::mem;

use crate::convert::into_arg::Arg;

/// Positional arguments, in order.
pub(super) enum Args<'a> {
    None,
    One(Arg<'a>),
    Many(Vec<Arg<'a>>),
}

impl<'a> Args<'a> {
    pub(super) fn push(&mut self, arg: Arg<'a>) {
        *self = match mem::replace(self, Args::None) {
            Args::None => Args::One(arg),
            Args::One(first) => {
                // Room for a few more, so that adding them does not move
                // the Vec.
                let mut many = Vec::with_capacity(4);
                many.push(first);
                many.push(arg);
                Args::Many(many)
            }
            Args::Many(mut many) => {
                many.push(arg);
                Args::Many(many)
            }
        };
    }

    pub(super) fn as_slice(&self) -> &[Arg<'a>] {
        match self {
            Args::None => &[],
            Args::One(arg) => std::slice::from_ref(arg),
            Args::Many(many) => many,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Args;
    use crate::convert::into_arg::{Arg, ArgKind, IntoArg, Scalar};

    fn ints(args: &[Arg<'_>]) -> Vec<i64> {
        args.iter()
            .map(|arg| match arg.0 {
                ArgKind::Value(Scalar::Int(n)) => n,
                _ => panic!("not an int"),
            })
            .collect()
    }

    #[test]
    fn keeps_the_order_from_none_to_many() {
        let mut args = Args::None;
        assert!(args.as_slice().is_empty());
        for n in 1..=6i64 {
            args.push(n.into_arg());
            assert_eq!(ints(args.as_slice()), (1..=n).collect::<Vec<_>>());
        }
        assert!(matches!(args, Args::Many(_)));
        let mut one = Args::None;
        one.push(7i64.into_arg());
        assert!(matches!(one, Args::One(_)));
        assert_eq!(ints(one.as_slice()), [7]);
    }
}
