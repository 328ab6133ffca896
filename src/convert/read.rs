//! Reads a numpy array (of any rank, stride and byte order) or a number in
//! place and converts its elements, checked and without loss, to Rust
//! values: the replacement for the original's unchecked cast to `long *`.
//! Also what a mismatch says, and where inside a result it was found.

use std::mem::size_of;

use crate::array::element::{kind_converts_to, read_value, Element, Value};
use crate::error::Error;
use crate::object::ArrayDesc;

/// Why a result could not be converted: what was expected, what was found,
/// and where inside the result. A [`FromResult`](crate::FromResult) impl
/// returns one ([`Reader::mismatch`](crate::Reader::mismatch), or
/// [`Mismatch::new`]); the call that read the result turns it into
/// [`Error::BadResult`], with the function's name and the position.
///
/// ```
/// let m = py_in_mem::Mismatch::new("a positive number", "-1");
/// assert_eq!(m.to_string(), "expected a positive number, found -1");
/// ```
#[derive(Debug)]
pub struct Mismatch {
    expected: String,
    found: String,
    /// Innermost first, as the error travels out of nested conversions.
    path: Vec<Step>,
}

/// One step into a result, for [`Mismatch`]'s position.
#[derive(Debug)]
pub(crate) enum Step {
    /// Element `index` of a `container` ("tuple", "list" or "1-D array").
    Element {
        container: &'static str,
        index: usize,
    },
    /// Row `index` of an array of `ndim` dimensions (2 or more): a `Vec` of
    /// the array's rows.
    Row { index: usize, ndim: usize },
    /// The value under a key of a dict (or a mapping).
    DictValue(String),
    /// The key at a position of a dict (one that is not a str).
    DictKey(usize),
    /// An attribute of an object.
    Attribute(String),
}

impl Mismatch {
    /// A mismatch: `expected` what the value should have been ("a dict with
    /// a key 'label'"), `found` what it was.
    pub fn new(expected: impl Into<String>, found: impl Into<String>) -> Mismatch {
        Mismatch {
            expected: expected.into(),
            found: found.into(),
            path: Vec::new(),
        }
    }

    /// What was expected.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What was found.
    pub fn found(&self) -> &str {
        &self.found
    }

    /// The same mismatch, seen from one level further out.
    pub(crate) fn within(mut self, step: Step) -> Mismatch {
        self.path.push(step);
        self
    }

    /// Where inside the result, innermost first, each step inside the next:
    /// "element 0 of the list in element 1 of the tuple"; empty for the
    /// result itself. A path of more than [`SHOWN_STEPS`] steps (a result
    /// nested 128 levels deep) shows its innermost and outermost steps and
    /// counts the levels between.
    fn position(&self) -> String {
        let steps: Vec<String> = self
            .path
            .iter()
            .enumerate()
            .map(|(i, step)| match step {
                Step::Element { container, index } => format!("element {index} of the {container}"),
                Step::Row { index, ndim } => format!("row {index} of the {ndim}-D array"),
                Step::DictValue(key) if i == 0 => format!("value under key '{key}'"),
                Step::DictValue(key) => format!("the value under key '{key}'"),
                Step::DictKey(position) => format!("key {position} of the dict"),
                Step::Attribute(name) => format!("attribute '{name}'"),
            })
            .collect();
        if steps.len() <= SHOWN_STEPS {
            return steps.join(" in ");
        }
        let (inner, rest) = steps.split_at(SHOWN_STEPS / 2);
        let outer = &rest[rest.len() - SHOWN_STEPS / 2..];
        format!(
            "{} in ({} levels more) in {}",
            inner.join(" in "),
            rest.len() - outer.len(),
            outer.join(" in ")
        )
    }

    /// The error for `function`'s result.
    pub(crate) fn into_error(self, function: &str) -> Error {
        Error::BadResult {
            function: function.to_owned(),
            position: self.position(),
            expected: self.expected,
            found: self.found,
        }
    }
}

/// The most steps of a position said in full.
const SHOWN_STEPS: usize = 8;

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let position = self.position();
        if !position.is_empty() {
            write!(f, "at {position}: ")?;
        }
        write!(f, "expected {}, found {}", self.expected, self.found)
    }
}

impl std::error::Error for Mismatch {}

/// What a numeric array's dtype must be to read as `U`.
fn expected_dtype<U: Element>() -> String {
    format!(
        "{} (or of a dtype that converts to it without loss)",
        U::NUMPY_DTYPE
    )
}

/// What a `Vec<U>` is read from.
pub(crate) fn expected_vec<U: Element>() -> String {
    format!(
        "a 1-D numpy array of {}, or a list or tuple of numbers that convert to {} without loss",
        expected_dtype::<U>(),
        U::RUST_NAME
    )
}

/// What an array of `U` with `ndim` dimensions (None: any) is read from.
pub(super) fn expected_array<U: Element>(ndim: Option<usize>) -> String {
    match ndim {
        Some(ndim) => format!("a {ndim}-D numpy array of {}", expected_dtype::<U>()),
        None => format!("a numpy array of {}", expected_dtype::<U>()),
    }
}

/// What a single `U` is read from, by the rule of
/// [`kind_converts_to`](crate::array::element::kind_converts_to): a bool
/// from bools, an integer from integers (a whole float is still a float,
/// as for PyO3's `extract`), a float or complex number from any number it
/// holds exactly.
pub(super) fn expected_scalar<U: Element>() -> String {
    let name = U::RUST_NAME;
    match U::KIND {
        b'b' => "a bool (Python's or numpy's, or a 0-D numpy array of bool)".to_owned(),
        b'i' | b'u' => format!(
            "an integer that fits in {name} (a Python or numpy integer, or a 0-D numpy array of \
             one; a float is not read as an integer, even a whole one)"
        ),
        _ => format!(
            "a number that converts to {name} without loss (a Python or numpy scalar, or a 0-D \
             numpy array)"
        ),
    }
}

/// Where element `flat` (in C order) of `desc` is, for a message: "at
/// position 3" in 1-D, "at index [1, 2]" in n-D, nothing for one number.
fn place(desc: &ArrayDesc<'_>, flat: usize) -> String {
    match desc.ndim() {
        0 => "in".to_owned(),
        1 => format!("at position {flat} of"),
        _ => {
            let mut index = vec![0; desc.ndim()];
            let mut rest = flat;
            for (i, &n) in desc.shape.iter().enumerate().rev() {
                index[i] = rest % n.max(1);
                rest /= n.max(1);
            }
            format!("at index {index:?} of")
        }
    }
}

/// Calls `visit(flat, offset)` for every element of an array of `shape` and
/// byte `strides`, in C order: `flat` counts elements, `offset` is in bytes
/// from element [0, 0, ...].
fn for_each_element<E>(
    shape: &[usize],
    strides: &[isize],
    mut visit: impl FnMut(usize, isize) -> Result<(), E>,
) -> Result<(), E> {
    // Saturating: a description's product is never trusted to fit (the
    // loop ends at the first refused element anyway).
    let len = if shape.contains(&0) {
        0
    } else {
        shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    };
    if let ([n], [stride]) = (shape, strides) {
        // 1-D, the common case: no index to carry.
        for position in 0..*n {
            visit(position, position as isize * stride)?;
        }
        return Ok(());
    }
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0isize;
    for flat in 0..len {
        visit(flat, offset)?;
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis] as isize;
            index[axis] = 0;
        }
    }
    Ok(())
}

/// Reads the element `offset` bytes from `desc`'s element [0, 0, ...]
/// (element `flat` in C order) and converts it with `convert`, which names
/// what it expected when it refuses the value.
///
/// # Safety
/// `offset` addresses a whole element of `desc`.
unsafe fn read_at<T>(
    desc: &ArrayDesc<'_>,
    offset: isize,
    flat: usize,
    convert: &mut impl FnMut(Value) -> Result<T, String>,
) -> Result<T, Mismatch> {
    // SAFETY: the element is inside the array (caller), which the object
    // behind `desc` keeps alive (for a number, the one element is in `desc`
    // itself); the GIL held by the caller keeps Python from changing it.
    let value = unsafe {
        read_value(
            desc.origin().offset(offset),
            desc.kind,
            desc.itemsize,
            desc.byteswapped,
        )
    };
    let Some(value) = value else {
        return Err(Mismatch::new(
            "a numpy array of bool, integer, float32/float64 or complex64/complex128 values",
            desc.what(),
        ));
    };
    convert(value).map_err(|expected| {
        Mismatch::new(
            expected,
            format!("{value} {} {}", place(desc, flat), desc.what()),
        )
    })
}

/// Reads every element of `desc` in C order, converting each with
/// `convert`, which names what it expected when it refuses one.
pub(super) fn read_elements<T>(
    desc: &ArrayDesc<'_>,
    mut convert: impl FnMut(Value) -> Result<T, String>,
) -> Result<Vec<T>, Mismatch> {
    let mut out = vec_for(desc)?;
    for_each_element(desc.shape, desc.strides, |flat, offset| {
        // SAFETY: numpy guarantees that data + Σ index·stride, for every
        // index inside the shape, addresses a whole element of the array.
        out.push(unsafe { read_at(desc, offset, flat, &mut convert) }?);
        Ok(())
    })?;
    Ok(out)
}

/// Converts one value to `U`, or says what `U` takes.
fn exact<U: Element>(value: Value) -> Result<U, String> {
    U::from_value(value).ok_or_else(|| format!("values that {} holds exactly", U::RUST_NAME))
}

/// Every element of `desc`, in C order, as `U`, if the dtype converts and
/// every value does so without loss; `expected` says what the caller takes.
pub(super) fn to_elements<U: Element>(
    desc: &ArrayDesc<'_>,
    expected: impl FnOnce() -> String,
) -> Result<Vec<U>, Mismatch> {
    if !kind_converts_to::<U>(desc.kind) {
        return Err(Mismatch::new(expected(), desc.what()));
    }
    if is_exact::<U>(desc) {
        return copy_exact(desc);
    }
    read_elements(desc, exact::<U>)
}

/// The one value of a number or 0-D array `desc`, as `U`.
pub(super) fn to_scalar<U: Element>(desc: &ArrayDesc<'_>) -> Result<U, Mismatch> {
    if desc.ndim() != 0 || !kind_converts_to::<U>(desc.kind) {
        return Err(Mismatch::new(expected_scalar::<U>(), desc.what()));
    }
    if is_exact::<U>(desc) {
        // SAFETY: the one element, of U's size and bit layout (is_exact),
        // possibly unaligned; no float, int or complex bit pattern is
        // invalid, and bool never takes this path.
        return Ok(unsafe { desc.origin().cast::<U>().read_unaligned() });
    }
    // SAFETY: a 0-D array or a number has its one element at offset 0.
    unsafe { read_at(desc, 0, 0, &mut exact::<U>) }
}

/// Same dtype and same byte order: the elements' bits are `U`'s.
pub(super) fn same_layout<U: Element>(desc: &ArrayDesc<'_>) -> bool {
    desc.kind == U::KIND && desc.itemsize == size_of::<U>() && !desc.byteswapped
}

/// [`same_layout`], and not bool (whose bytes need checking).
pub(super) fn is_exact<U: Element>(desc: &ArrayDesc<'_>) -> bool {
    same_layout::<U>(desc) && U::KIND != b'b'
}

/// An empty `Vec` with room for every element of `desc`, or a mismatch
/// saying the result is too large: Python chooses the shape (a broadcast
/// array of 2⁴⁸ elements takes no memory in numpy), so the allocation is
/// fallible and its failure an error, never the allocator's abort.
#[inline]
pub(crate) fn vec_for<T>(desc: &ArrayDesc<'_>) -> Result<Vec<T>, Mismatch> {
    let len = desc.len();
    // A small result (any that a call-only call returns) is allocated as
    // any Rust value is: the fallible path is on no common call's way.
    if len.saturating_mul(size_of::<T>()) <= 1 << 20 {
        return Ok(Vec::with_capacity(len));
    }
    vec_for_large(desc, len)
}

/// [`vec_for`] past a MiB: fallible.
#[cold]
fn vec_for_large<T>(desc: &ArrayDesc<'_>, len: usize) -> Result<Vec<T>, Mismatch> {
    try_vec(len, || {
        format!(
            "{} of {len} elements ({} bytes)",
            desc.what(),
            len.saturating_mul(size_of::<T>())
        )
    })
}

/// Room for `len` values read from a result, reserved fallibly: a result
/// can be far larger than memory (a broadcast array), or its items far
/// smaller in Python than as Rust values. `what` names the result for the
/// message. Out of line, so that the common reads stay small enough to
/// inline.
#[inline(never)]
pub(crate) fn try_vec<T>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>, Mismatch> {
    let mut out = Vec::new();
    match out.try_reserve_exact(len) {
        Ok(()) => Ok(out),
        Err(_) => Err(Mismatch::new(
            "a result small enough to read into memory",
            format!("{}, more than could be allocated", what()),
        )),
    }
}

/// The fast path: the bits are already `U`'s.
fn copy_exact<U: Element>(desc: &ArrayDesc<'_>) -> Result<Vec<U>, Mismatch> {
    let len = desc.len();
    let origin = desc.origin();
    if desc.is_c_contiguous() {
        let mut out = vec_for::<U>(desc)?;
        // SAFETY: the array holds `len` contiguous elements of U's size and
        // bit layout (is_exact) in C order at origin, possibly unaligned, so
        // a byte copy into the Vec's aligned buffer is right; no float, int
        // or complex bit pattern is invalid, and bool never takes this path.
        unsafe {
            std::ptr::copy_nonoverlapping(
                origin,
                out.as_mut_ptr().cast::<u8>(),
                len * size_of::<U>(),
            );
            out.set_len(len);
        }
        return Ok(out);
    }
    let mut out = vec_for(desc)?;
    let _ = for_each_element::<()>(desc.shape, desc.strides, |_, offset| {
        // SAFETY: as in read_elements; read_unaligned since strides may be odd.
        out.push(unsafe { origin.offset(offset).cast::<U>().read_unaligned() });
        Ok(())
    });
    Ok(out)
}

/// What [`to_indices`] takes.
pub(super) fn expected_indices() -> String {
    "a 1-D numpy array of integer indices".into()
}

/// `desc` as indices into an input of `bound` values (the `Outliers` rule:
/// any integer dtype, every value in `0..bound`).
pub(super) fn to_indices(desc: &ArrayDesc<'_>, bound: usize) -> Result<Vec<usize>, Mismatch> {
    if desc.ndim() != 1 || !matches!(desc.kind, b'i' | b'u') {
        return Err(Mismatch::new(expected_indices(), desc.what()));
    }
    // What numpy's integer index functions return (np.flatnonzero, ...):
    // native int64, read straight; the general path below says what is
    // wrong with a value it refuses.
    if is_exact::<i64>(desc) {
        let (len, stride) = (desc.shape[0], desc.strides[0]);
        let mut out = vec_for(desc)?;
        for k in 0..len {
            // SAFETY: numpy guarantees data + k·stride, k < len, addresses a
            // whole int64 element of the array (possibly unaligned).
            let v = unsafe {
                desc.origin()
                    .offset(k as isize * stride)
                    .cast::<i64>()
                    .read_unaligned()
            };
            match usize::try_from(v) {
                Ok(index) if index < bound => out.push(index),
                _ => break,
            }
        }
        if out.len() == len {
            return Ok(out);
        }
    }
    read_elements(desc, |value| match value {
        Value::Int(v) => usize::try_from(v)
            .ok()
            .filter(|index| *index < bound)
            .ok_or_else(|| format!("indices into the input, below its length {bound}")),
        _ => Err("integer indices".into()),
    })
}
