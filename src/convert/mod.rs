//! The conversions, one trait per direction: [`IntoArg`] (Rust to Python,
//! arguments) and [`FromResult`] (Python to Rust, results), with the
//! checked, lossless reading of numpy values both rest on ([`read`]), the
//! zero-copy result ([`ResultView`]) and the `ndarray` feature's impls.

pub(crate) mod from_result;
pub(crate) mod into_arg;
pub(crate) mod read;
pub(crate) mod value;
pub(crate) mod view;
#[cfg(feature = "ndarray")]
mod with_ndarray;

pub use from_result::FromResult;
pub use from_result::Reader;
pub use into_arg::{Arg, IntoArg, Matrix, Scalar};
pub use read::Mismatch;
pub use value::{ArrayValue, Value};
pub use view::ResultView;
