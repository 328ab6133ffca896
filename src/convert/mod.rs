//! The conversions, one trait per direction: [`IntoArg`] (Rust to Python,
//! arguments) and [`FromResult`] (Python to Rust, results), with the
//! checked, lossless reading of numpy values both rest on ([`read`]), the
//! zero-copy result ([`ResultView`]), the `ndarray` feature's impls and
//! the `serde` feature's deserializer and serializer.

pub(crate) mod from_result;
pub(crate) mod into_arg;
pub(crate) mod read;
#[cfg(feature = "serde")]
pub(crate) mod serde;
pub(crate) mod value;
pub(crate) mod view;
#[cfg(feature = "ndarray")]
mod with_ndarray;

#[cfg(feature = "serde")]
pub use self::serde::Serde;
pub use from_result::FromResult;
pub use from_result::Reader;
pub use into_arg::{Arg, IntoArg, Matrix, Scalar};
pub use read::Mismatch;
pub use value::{ArrayValue, Value};
pub use view::ResultView;
