//! Rust memory as numpy sees it: the element types that cross, Rust memory
//! lent to numpy for a call ([`borrow`]), Rust buffers given to numpy for
//! good ([`owned`]), and the crate's own n-D types ([`nd`]).
//!
//! Nothing here knows about calls: a lent array is made before a call and
//! given back after it, with the retention rule, by the layers above.

pub(crate) mod borrow;
#[cfg(feature = "bytes")]
mod bytes;
pub(crate) mod element;
pub(crate) mod lent;
pub(crate) mod nd;
pub(crate) mod owned;

#[cfg(feature = "bytes")]
#[cfg_attr(docsrs, doc(cfg(feature = "bytes")))]
pub use self::bytes::BytesArray;
pub use element::Element;
pub use nd::{NdSlice, NdVec};
pub use owned::OwnedArray;
