//! A function's name for messages, `module.function` or `Type.method`,
//! kept inside the function's own allocation when it is short: an
//! object's method looked up per call (`model.method("predict")?.call(x)`)
//! makes a [`Function`](super::Function) each time, and a second
//! allocation for its name would be a tenth of what the lookup costs.

use std::fmt;
use std::ops::Deref;

/// Names up to this many bytes are kept inline.
const INLINE: usize = 62;

/// `first.second`, inline when it fits in [`INLINE`] bytes.
pub(super) enum DottedName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl DottedName {
    pub(super) fn new(first: &str, second: &str) -> DottedName {
        let len = first.len() + 1 + second.len();
        if len > INLINE {
            let mut dotted = String::with_capacity(len);
            dotted.push_str(first);
            dotted.push('.');
            dotted.push_str(second);
            return DottedName::Heap(dotted.into_boxed_str());
        }
        let mut bytes = [0; INLINE];
        bytes[..first.len()].copy_from_slice(first.as_bytes());
        bytes[first.len()] = b'.';
        bytes[first.len() + 1..len].copy_from_slice(second.as_bytes());
        DottedName::Inline {
            len: len as u8,
            bytes,
        }
    }
}

impl Deref for DottedName {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        match self {
            DottedName::Inline { len, bytes } => {
                // Read at every step of every call: not validated again.
                // SAFETY: `new` copied two whole strs and an ASCII dot into
                // the first `len` bytes, which are so UTF-8.
                unsafe { std::str::from_utf8_unchecked(&bytes[..usize::from(*len)]) }
            }
            DottedName::Heap(name) => name,
        }
    }
}

impl fmt::Debug for DottedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for DottedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::DottedName;

    #[test]
    fn short_and_long_names_read_back_whole() {
        assert_eq!(&*DottedName::new("outliers", "detect"), "outliers.detect");
        assert!(matches!(
            DottedName::new("a", "b"),
            DottedName::Inline { .. }
        ));
        let long = "m".repeat(61);
        assert_eq!(
            &*DottedName::new(&long[..60], "f"),
            format!("{}.f", &long[..60])
        );
        assert!(matches!(
            DottedName::new(&long[..60], "f"),
            DottedName::Inline { .. }
        ));
        let name = DottedName::new(&long, "é");
        assert!(matches!(name, DottedName::Heap(_)));
        assert_eq!(&*name, format!("{long}.é"));
        assert_eq!(&*DottedName::new("ünï", "cödé"), "ünï.cödé");
    }
}
