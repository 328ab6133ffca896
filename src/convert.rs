//! Reads a numpy result in place and converts it, checked, to Rust values:
//! the replacement for the original's unchecked cast to `long *`.

use std::mem::size_of;

use crate::element::{kind_converts_to, read_value, Element, Value};
use crate::glue::ArrayDesc;

/// Why a result could not be converted: what was expected, what was found.
pub(crate) struct Mismatch {
    pub(crate) expected: String,
    pub(crate) found: String,
}

/// Reads the 1-D array `desc`, converting each value with `convert`, which
/// names what it expected when it refuses one.
pub(crate) fn read_1d<T>(
    desc: &ArrayDesc<'_>,
    mut convert: impl FnMut(Value) -> Result<T, String>,
) -> Result<Vec<T>, Mismatch> {
    let len = desc.shape[0];
    let mut out = Vec::with_capacity(len);
    for position in 0..len {
        // SAFETY: numpy guarantees data + k*stride, k < len, addresses a
        // whole element of `itemsize` bytes inside the array, which the
        // StrongRef behind `desc` keeps alive; the GIL held by the caller keeps
        // Python from changing it meanwhile.
        let value = unsafe {
            let element = desc.data.offset(position as isize * desc.strides[0]);
            read_value(element, desc.kind, desc.itemsize, desc.byteswapped)
        };
        let Some(value) = value else {
            return Err(Mismatch {
                expected: "a numpy array of bool, integer or float32/float64 values".into(),
                found: desc.what(),
            });
        };
        match convert(value) {
            Ok(converted) => out.push(converted),
            Err(expected) => {
                return Err(Mismatch {
                    expected,
                    found: format!("{value} at position {position} of {}", desc.what()),
                })
            }
        }
    }
    Ok(out)
}

/// What [`to_vec`] takes.
pub(crate) fn expected_vec<U: Element>() -> String {
    format!(
        "a 1-D numpy array of {} (or of a dtype that converts to it without loss)",
        U::NUMPY_DTYPE
    )
}

/// `desc` as a `Vec<U>`, if it is 1-D and every value converts losslessly.
pub(crate) fn to_vec<U: Element>(desc: &ArrayDesc<'_>) -> Result<Vec<U>, Mismatch> {
    if desc.ndim != 1 || !kind_converts_to::<U>(desc.kind) {
        return Err(Mismatch {
            expected: expected_vec::<U>(),
            found: desc.what(),
        });
    }
    if is_exact::<U>(desc) {
        return Ok(copy_exact(desc));
    }
    read_1d(desc, |value| {
        U::from_value(value).ok_or_else(|| format!("values that {} holds exactly", U::RUST_NAME))
    })
}

/// Same dtype, same byte order, and not bool (whose bytes need checking).
pub(crate) fn is_exact<U: Element>(desc: &ArrayDesc<'_>) -> bool {
    desc.kind == U::KIND && desc.itemsize == size_of::<U>() && !desc.byteswapped && U::KIND != b'b'
}

/// The fast path: the bits are already `U`'s.
fn copy_exact<U: Element>(desc: &ArrayDesc<'_>) -> Vec<U> {
    let len = desc.shape[0];
    let stride = desc.strides[0];
    if stride == size_of::<U>() as isize {
        let mut out = Vec::<U>::with_capacity(len);
        // SAFETY: the array holds `len` contiguous elements of U's size and
        // bit layout (is_exact) at data, possibly unaligned, so a byte copy
        // into the Vec's aligned buffer is right; no float or int bit
        // pattern is invalid, and bool never takes this path.
        unsafe {
            std::ptr::copy_nonoverlapping(
                desc.data,
                out.as_mut_ptr().cast::<u8>(),
                len * size_of::<U>(),
            );
            out.set_len(len);
        }
        return out;
    }
    (0..len)
        .map(|position| {
            // SAFETY: as in read_1d; read_unaligned since strides may be odd.
            unsafe {
                desc.data
                    .offset(position as isize * stride)
                    .cast::<U>()
                    .read_unaligned()
            }
        })
        .collect()
}

/// What [`to_indices`] takes.
pub(crate) fn expected_indices() -> String {
    "a 1-D numpy array of integer indices".into()
}

/// `desc` as indices into an input of `bound` values (the `Outliers` rule:
/// any integer dtype, every value in `0..bound`).
pub(crate) fn to_indices(desc: &ArrayDesc<'_>, bound: usize) -> Result<Vec<usize>, Mismatch> {
    if desc.ndim != 1 || !matches!(desc.kind, b'i' | b'u') {
        return Err(Mismatch {
            expected: expected_indices(),
            found: desc.what(),
        });
    }
    read_1d(desc, |value| match value {
        Value::Int(v) => usize::try_from(v)
            .ok()
            .filter(|index| *index < bound)
            .ok_or_else(|| format!("indices into the input, below its length {bound}")),
        _ => Err("integer indices".into()),
    })
}
