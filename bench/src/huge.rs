//! A copy of the input in transparent huge pages, where numpy keeps its own
//! arrays of 4 MB and more (it asks for them with `madvise`). At 1,000,000
//! values the function reads its 8 MB input four times; from 4 KiB pages
//! that costs TLB misses that Python's own array does not have. Measuring
//! py-in-mem on both shows how much of a gap is the caller's memory, not the
//! call.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;

/// The size of a huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Inputs smaller than this stay on plain pages: not worth a huge page.
pub const MIN_BYTES: usize = 4 << 20;

/// `data` copied into memory aligned to, and advised for, huge pages.
pub struct HugeCopy {
    ptr: NonNull<f64>,
    len: usize,
    layout: Layout,
}

impl HugeCopy {
    pub fn new(data: &[f64]) -> anyhow::Result<HugeCopy> {
        let bytes = std::mem::size_of_val(data).div_ceil(HUGE_PAGE).max(1) * HUGE_PAGE;
        let layout = Layout::from_size_align(bytes, HUGE_PAGE)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc(layout) }.cast::<f64>())
            .ok_or_else(|| anyhow::anyhow!("could not allocate {bytes} bytes"))?;
        // SAFETY: ptr..ptr+bytes is our allocation, huge-page aligned; the
        // advice is a hint that changes no contents (ignored if unsupported).
        unsafe { libc::madvise(ptr.as_ptr().cast(), bytes, libc::MADV_HUGEPAGE) };
        // SAFETY: the allocation holds at least data.len() f64s, is aligned
        // for f64, and does not overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        Ok(HugeCopy {
            ptr,
            len: data.len(),
            layout,
        })
    }

    pub fn as_slice(&self) -> &[f64] {
        // SAFETY: the first `len` f64s were initialized in `new`, and the
        // memory lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeCopy {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}
