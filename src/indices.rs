//! Reads a checked integer numpy array as indices into the input: the checked
//! replacement for the original's unchecked cast to `long *`.

use crate::glue::IntArrayView;

/// Copies `view` into a `Vec<usize>`, every value in `0..bound`; otherwise
/// describes the first value that is not.
pub(crate) fn to_indices(view: &IntArrayView, bound: usize) -> Result<Vec<usize>, String> {
    let mut indices = Vec::with_capacity(view.len);
    for position in 0..view.len {
        // SAFETY: numpy guarantees data + k*stride, k < len, addresses a whole
        // element of `itemsize` bytes inside the array, which view.obj keeps
        // alive; the GIL held by our caller keeps Python from changing it.
        // Elements may be unaligned (a view with odd strides), hence the
        // unaligned reads in read_int.
        let value = unsafe {
            let element = view.data.offset(position as isize * view.stride);
            read_int(element, view.itemsize, view.is_signed, view.byteswapped)
        };
        match usize::try_from(value) {
            Ok(index) if index < bound => indices.push(index),
            _ => {
                return Err(format!(
                    "index {value} at position {position} (the input has {bound} values)"
                ))
            }
        }
    }
    Ok(indices)
}

/// One integer of `itemsize` bytes (1, 2, 4 or 8) at `element`.
///
/// # Safety
/// `element` is valid for reading `itemsize` bytes.
unsafe fn read_int(element: *const u8, itemsize: usize, signed: bool, swapped: bool) -> i128 {
    macro_rules! read {
        ($t:ty) => {{
            // SAFETY: the caller guarantees `itemsize` == size_of::<$t>()
            // readable bytes at `element`.
            let value = unsafe { element.cast::<$t>().read_unaligned() };
            i128::from(if swapped { value.swap_bytes() } else { value })
        }};
    }
    match (itemsize, signed) {
        (1, true) => read!(i8),
        (1, false) => read!(u8),
        (2, true) => read!(i16),
        (2, false) => read!(u16),
        (4, true) => read!(i32),
        (4, false) => read!(u32),
        (8, true) => read!(i64),
        (8, false) => read!(u64),
        // detect() admits only these sizes; anything else is a glue bug.
        _ => unreachable!("integer item size {itemsize} passed detect's check"),
    }
}
