//! Rust memory lent to Python as a read-only numpy array, for one call: 1-D
//! slices, and n-D arrays of any strides.
//!
//! This is the Rust form of the article's `runtime.KeepAlive(data)`: the
//! lifetime `'a` ties the array to the slice's borrow, so the slice cannot be
//! freed or changed while the array exists. What the lifetime cannot see is
//! Python keeping the array after the call; [`BorrowedArray::release`] finds
//! out (see `csrc/retention.c` for the rules), moves a kept array onto a
//! private copy where that is safe, and stops the process where it is not.

use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use libc::c_int;
use pyo3_ffi::{PyObject, Py_ssize_t};

use crate::array::element::Element;
use crate::error::{Error, PyException, Unavailable};
use crate::raw;
use crate::runtime::glue::{last_error, npy_typenum};
use crate::runtime::{Gil, Interpreter};

/// A Rust array as numpy will see it: address, shape, strides and element
/// type, with the borrow it came from.
#[derive(Clone)]
pub struct RustArray<'a> {
    /// Element [0, 0, ...].
    data: *const u8,
    typenum: c_int,
    layout: Layout,
    _borrow: PhantomData<&'a [u8]>,
}

#[derive(Clone)]
enum Layout {
    /// 1-D and contiguous, of this length: the common case, allocation-free.
    Vector(Py_ssize_t),
    /// `ndim` dimensions, then `ndim` strides in bytes.
    Strided(Vec<Py_ssize_t>),
}

impl<'a> RustArray<'a> {
    /// A 1-D array over `data`.
    pub(crate) fn vector<T: Element>(data: &'a [T]) -> Self {
        // Rust allocations never exceed isize::MAX bytes, so the length fits.
        Self::new(data.as_ptr(), Layout::Vector(data.len() as Py_ssize_t))
    }

    /// A C-ordered array of `shape` over `data`, whose length the caller has
    /// checked is the product of `shape`.
    pub(crate) fn c_order<T: Element>(data: &'a [T], shape: &[usize]) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        // The layout strided() makes from nd::contiguous_strides(), built in
        // place: one allocation a call, not two.
        let ndim = shape.len();
        let mut layout: Vec<Py_ssize_t> = Vec::with_capacity(2 * ndim);
        layout.extend(shape.iter().map(|&n| n as Py_ssize_t));
        layout.resize(2 * ndim, 0);
        let mut step = std::mem::size_of::<T>() as Py_ssize_t;
        for axis in (0..ndim).rev() {
            // As in strided(): a dimension of length 0 or 1 never steps.
            if shape[axis] > 1 {
                layout[ndim + axis] = step;
            }
            // Saturating, as contiguous_strides(): a shape with a 0 in it
            // may have other dimensions of any length.
            step = step.saturating_mul(shape[axis] as Py_ssize_t);
        }
        Self::new(data.as_ptr(), Layout::Strided(layout))
    }

    /// An array of `shape` whose element [0, 0, ...] is at `origin`, with
    /// `strides` counted in elements (any sign).
    ///
    /// # Safety
    /// Every element the shape and strides reach from `origin` lies in
    /// memory of initialized `T`s that stays valid and unchanged for `'a`.
    pub(crate) unsafe fn strided<T: Element>(
        origin: *const T,
        shape: &[usize],
        strides: &[isize],
    ) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        let size = std::mem::size_of::<T>() as isize;
        let mut layout: Vec<Py_ssize_t> = shape.iter().map(|&n| n as Py_ssize_t).collect();
        // A dimension of length 0 or 1 never steps, and no dimension of an
        // array without elements does, so their strides do not matter (numpy
        // ignores them too) and may be anything the caller gave: they are 0
        // here. The others step inside one allocation (the caller's
        // promise), so stride × size fits in an isize.
        let empty = shape.contains(&0);
        layout.extend(shape.iter().zip(strides).map(|(&n, &stride)| {
            if n > 1 && !empty {
                stride * size
            } else {
                0
            }
        }));
        Self::new(origin, Layout::Strided(layout))
    }

    fn new<T: Element>(origin: *const T, layout: Layout) -> Self {
        let typenum = npy_typenum(T::KIND, std::mem::size_of::<T>())
            .expect("every Element has a numpy type number");
        RustArray {
            data: origin.cast(),
            typenum,
            layout,
            _borrow: PhantomData,
        }
    }

    /// The same array, its borrow's lifetime erased, for a held-GIL scope
    /// that keeps it past the borrow checker's sight.
    ///
    /// # Safety
    /// The caller gives back every numpy array made over it before the
    /// borrow `'a` ends.
    pub(crate) unsafe fn erase_lifetime(self) -> RustArray<'static> {
        RustArray {
            data: self.data,
            typenum: self.typenum,
            layout: self.layout,
            _borrow: PhantomData,
        }
    }

    /// Calls `f` with this array as the glue takes it: address of element
    /// [0, 0, ...], number of dimensions, dimensions, strides in bytes (NULL
    /// for a 1-D contiguous one) and numpy type number.
    fn with_glue_args<R>(
        &self,
        f: impl FnOnce(*const c_void, c_int, *const Py_ssize_t, *const Py_ssize_t, c_int) -> R,
    ) -> R {
        match &self.layout {
            Layout::Vector(len) => f(self.data.cast(), 1, len, std::ptr::null(), self.typenum),
            Layout::Strided(layout) => {
                let ndim = layout.len() / 2;
                f(
                    self.data.cast(),
                    ndim as c_int,
                    layout.as_ptr(),
                    layout[ndim..].as_ptr(),
                    self.typenum,
                )
            }
        }
    }

    /// Makes the numpy array over this memory with `make` (`pim_borrow_array` or
    /// `pim_borrow_array_untracked`, which share a signature).
    ///
    /// # Safety
    /// The GIL is held, and the memory stays valid and unchanged for as long
    /// as Python may read it (what that takes is up to the caller).
    unsafe fn to_numpy(&self, make: MakeArray) -> *mut PyObject {
        self.with_glue_args(|data, ndim, dims, strides, typenum| {
            // SAFETY: data, the dimensions and the strides describe live
            // memory of the element type `typenum` names; the rest is the
            // caller's promise.
            unsafe { make(data, ndim, dims, strides, typenum) }
        })
    }

    /// Whether `array`, lent over this memory and held by the caller, still
    /// shows it as lent: Python may change an array's shape, strides or dtype
    /// in place (`a.shape = (-1, 1)`), and an array lent across several calls
    /// must not carry that to the next one.
    pub(crate) fn is_shown_by(&self, _gil: &Gil, array: &BorrowedArray<'_>) -> bool {
        let arr = array.as_ptr();
        !arr.is_null()
            && self.with_glue_args(|data, ndim, dims, strides, typenum| {
                // SAFETY: `_gil` proves the GIL is held; `arr` is live (the
                // caller holds it) and came from pim_borrow_array over this
                // memory; the C function only reads them all.
                unsafe { raw::pim_borrow_is_as_lent(arr, data, ndim, dims, strides, typenum) != 0 }
            })
    }
}

/// The shape of `raw::pim_borrow_array` and `raw::pim_borrow_array_untracked`.
type MakeArray = unsafe extern "C" fn(
    *const c_void,
    c_int,
    *const Py_ssize_t,
    *const Py_ssize_t,
    c_int,
) -> *mut PyObject;

/// What [`BorrowedArray::release`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Nothing in Python points into the Rust memory.
    Free,
    /// Python kept the array object; it now reads a private copy.
    Moved,
}

/// A read-only numpy array over `'a` Rust memory, owned by the crate.
pub(crate) struct BorrowedArray<'a> {
    arr: Option<NonNull<PyObject>>,
    /// Who the array was lent to, for the retention message.
    lent_to: &'a str,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> BorrowedArray<'a> {
    /// Lends `array` to Python, without a copy, until released.
    pub(crate) fn new(
        gil: &Gil,
        array: &RustArray<'a>,
        lent_to: &'a str,
    ) -> Result<Self, PyException> {
        // SAFETY: the GIL is held; data is valid for 'a, which outlives the
        // numpy array because BorrowedArray<'a> releases it (and stops the
        // process if Python pins it) before 'a ends.
        let arr = unsafe { array.to_numpy(raw::pim_borrow_array) };
        match NonNull::new(arr) {
            Some(arr) => Ok(BorrowedArray {
                arr: Some(arr),
                lent_to,
                _data: PhantomData,
            }),
            None => Err(last_error(gil)),
        }
    }

    /// The array, for passing to a call.
    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.arr.map_or(std::ptr::null_mut(), NonNull::as_ptr)
    }

    /// Whether anything in Python may still hold the array (a count is off):
    /// the fast test of [`release`](Self::release), for an array lent to
    /// several calls, which must be released, to be judged, when it says so.
    pub(super) fn is_kept(&self, _gil: &Gil) -> bool {
        match self.arr {
            // SAFETY: `_gil` proves the GIL is held; the array is live (we
            // hold it) and came from pim_borrow_array.
            Some(arr) => unsafe { raw::pim_borrow_is_kept(arr.as_ptr()) != 0 },
            None => false,
        }
    }

    /// [`release`](Self::release), naming `lent_to` if the process must be
    /// stopped.
    pub(crate) fn release_to(mut self, _gil: &Gil, lent_to: &str) -> Release {
        let arr = self.arr.take();
        // SAFETY: `_gil` proves the GIL is held.
        unsafe { release_held(arr, lent_to) }
    }

    /// Gives back the crate's reference and checks that Python kept nothing
    /// pointing into the Rust memory. Call it after the result and any
    /// exception are released, since they may refer to the array.
    ///
    /// # Aborts
    /// If Python still points into the memory in a way that cannot be moved
    /// (a view, an exported buffer, an unknown holder).
    pub(crate) fn release(self, gil: &Gil) -> Release {
        let lent_to = self.lent_to;
        self.release_to(gil, lent_to)
    }
}

/// Gives back `arr` (if not yet given back) and applies the retention rule.
///
/// # Safety
/// The GIL is held.
unsafe fn release_held(arr: Option<NonNull<PyObject>>, lent_to: &str) -> Release {
    let Some(arr) = arr else {
        return Release::Free;
    };
    // SAFETY: the GIL is held (caller) and we give up our own reference.
    match unsafe { raw::pim_borrow_release(arr.as_ptr()) } {
        raw::pim_borrow_verdict::PIM_BORROW_FREE => Release::Free,
        raw::pim_borrow_verdict::PIM_BORROW_MOVED => Release::Moved,
        raw::pim_borrow_verdict::PIM_BORROW_PINNED => {
            // SAFETY: the GIL is still held, since that release: the string
            // is the glue's, static and NUL-terminated, unchanged until the
            // next release.
            let why = unsafe { CStr::from_ptr(raw::pim_borrow_pinned_why()) };
            retention_abort(lent_to, &why.to_string_lossy())
        }
    }
}

impl Drop for BorrowedArray<'_> {
    /// The fallback when a call did not release explicitly (a panic): the
    /// memory must still never be left to Python.
    fn drop(&mut self) {
        if self.arr.is_some() {
            // SAFETY: a BorrowedArray exists only once Python is initialized.
            let python = unsafe { Interpreter::assume_started() };
            match python.gil() {
                Ok(gil) => {
                    // SAFETY: the GIL is held just above.
                    unsafe { release_held(self.arr.take(), self.lent_to) };
                    drop(gil);
                }
                // Python no longer runs in this process (finalized by the
                // host, or a forked child): nothing can read the memory.
                Err(Unavailable::Finalized | Unavailable::Forked) => {}
                // Not reachable (a lent array lives inside a call, and a
                // thread gives its state back only once its calls are over),
                // but Python still runs elsewhere: it must not keep reading.
                Err(why) => {
                    eprintln!(
                        "py-in-mem: fatal: memory lent to {} cannot be taken back ({why}); \
                         the process is aborted rather than let Python read it after Rust \
                         frees it",
                        self.lent_to
                    );
                    std::process::abort();
                }
            }
        }
    }
}

/// Python kept a pointer into memory Rust is about to reuse. Going on would
/// let Python read freed memory; stopping the process is the safe choice.
/// `why`: what the check found (the glue's words), so that the user knows
/// what to change.
#[cold]
fn retention_abort(lent_to: &str, why: &str) -> ! {
    eprintln!(
        "py-in-mem: fatal: the Python function {lent_to} kept a pointer into its borrowed \
         input that cannot be moved to a copy: {why}. The array points into Rust memory that \
         is valid only during the call, so the process is aborted rather than let Python \
         read freed memory. A function must not keep its borrowed input; keep data.copy() \
         instead, or give the input owned (arg_owned, call_owned): a fit that keeps its \
         data, as scikit-learn's neighbors estimators do, needs one. docs/calls.md (The \
         retention rule) lists what can be kept."
    );
    std::process::abort();
}

/// The outcome of a call whose function kept its input arrays (now
/// copies), `arguments` ("argument 0", "keyword 'w'"):
/// [`Error::InputRetained`], with the call's own error if it failed too.
pub(crate) fn retained_error<R>(
    function: &str,
    arguments: Vec<String>,
    outcome: Result<R, Error>,
) -> Error {
    Error::InputRetained {
        function: function.to_owned(),
        arguments,
        error: outcome.err().map(Box::new),
    }
}

/// A Rust array lent without retention checks. See `Function::call_unchecked`.
pub(crate) struct UntrackedArray<'a> {
    arr: Option<NonNull<PyObject>>,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> UntrackedArray<'a> {
    /// # Safety
    /// Python must not keep the array, or anything pointing into it, once the
    /// call it is passed to returns.
    pub(crate) unsafe fn new(gil: &Gil, array: &RustArray<'a>) -> Result<Self, PyException> {
        // SAFETY: the GIL is held; data is valid for 'a; the caller promises
        // Python drops the array before 'a ends.
        let arr = unsafe { array.to_numpy(raw::pim_borrow_array_untracked) };
        match NonNull::new(arr) {
            Some(arr) => Ok(UntrackedArray {
                arr: Some(arr),
                _data: PhantomData,
            }),
            None => Err(last_error(gil)),
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut PyObject {
        self.arr.map_or(std::ptr::null_mut(), NonNull::as_ptr)
    }

    /// Gives the array back (kept for the next untracked lend if nothing
    /// holds it).
    pub(crate) fn release(mut self, _gil: &Gil) {
        if let Some(arr) = self.arr.take() {
            // SAFETY: `_gil` proves the GIL is held; we give up our own
            // reference to an array from pim_borrow_array_untracked.
            unsafe { raw::pim_release_untracked(arr.as_ptr()) };
        }
    }
}

impl Drop for UntrackedArray<'_> {
    /// The fallback when a call did not release explicitly (a panic).
    fn drop(&mut self) {
        if let Some(arr) = self.arr.take() {
            // SAFETY: an UntrackedArray exists only once Python is
            // initialized.
            let python = unsafe { Interpreter::assume_started() };
            // Without the GIL (Python finalized, a forked child) the
            // reference is left: nothing runs Python any more.
            if let Ok(gil) = python.gil() {
                // SAFETY: the GIL is held; we give up our own reference.
                unsafe { raw::pim_release_untracked(arr.as_ptr()) };
                drop(gil);
            }
        }
    }
}
