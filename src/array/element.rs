//! The Rust element types that cross to numpy and back, and the lossless
//! conversions between numpy dtypes and them.

use std::fmt;

use num_complex::{Complex32, Complex64};

/// A numpy value read from an array, before it is converted to a Rust type.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// numpy `bool`.
    Bool(bool),
    /// Any numpy integer, signed or not.
    Int(i128),
    /// numpy `float32` or `float64`.
    Float(f64),
    /// numpy `complex64` or `complex128`: real and imaginary parts.
    Complex(f64, f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => write!(f, "{}", if *v { "True" } else { "False" }),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            // As Python writes it: (1.5-2.0j).
            Value::Complex(re, im) => {
                let sign = if im.is_sign_negative() { '-' } else { '+' };
                write!(f, "({re:?}{sign}{:?}j)", im.abs())
            }
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An element type that numpy shares with Rust as is: `f32`, `f64`, `i8` to
/// `i64`, `u8` to `u64`, `bool`, and [`Complex32`]/[`Complex64`]
/// (`complex64`/`complex128`), each the numpy dtype of the same name
/// (`bool` is numpy's `bool`); `isize` and `usize` are numpy's `intp` and
/// `uintp` (`int64` and `uint64` on 64-bit targets).
///
/// Input arrays take their dtype from the element type. Results convert to it
/// only without loss: an `int32` result reads as `i64`, a `float32` as `f64`,
/// a `float64` as `Complex64`, and an integer as a float only when the float
/// holds it exactly; floats never read as integers, complex numbers never as
/// real ones, and a value out of range (negative for unsigned) is an error.
///
/// ```
/// use py_in_mem::Element;
/// use py_in_mem::num_complex::Complex64;
/// fn dtype<T: Element>() -> &'static str { T::NUMPY_DTYPE }
/// assert_eq!(dtype::<f64>(), "float64");
/// assert_eq!(dtype::<u8>(), "uint8");
/// assert_eq!(dtype::<Complex64>(), "complex128");
/// ```
pub trait Element: sealed::Sealed + Copy + Send + Sync + fmt::Debug + 'static {
    /// The numpy dtype name (`"float64"`, `"int32"`, `"bool"`, ...).
    const NUMPY_DTYPE: &'static str;
    /// The Rust type name, for messages.
    #[doc(hidden)]
    const RUST_NAME: &'static str;
    /// numpy's dtype kind: `b'f'`, `b'i'`, `b'u'`, `b'b'` or `b'c'`.
    #[doc(hidden)]
    const KIND: u8;
    /// `value` as this type, if that loses nothing.
    #[doc(hidden)]
    fn from_value(value: Value) -> Option<Self>;
}

macro_rules! int_element {
    ($($t:ty => $kind:literal, $dtype:literal;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const NUMPY_DTYPE: &'static str = $dtype;
            const RUST_NAME: &'static str = stringify!($t);
            const KIND: u8 = $kind;
            fn from_value(value: Value) -> Option<Self> {
                match value {
                    Value::Int(v) => <$t>::try_from(v).ok(),
                    Value::Bool(_) | Value::Float(_) | Value::Complex(..) => None,
                }
            }
        }
    )*};
}

int_element! {
    i8 => b'i', "int8";
    i16 => b'i', "int16";
    i32 => b'i', "int32";
    i64 => b'i', "int64";
    u8 => b'u', "uint8";
    u16 => b'u', "uint16";
    u32 => b'u', "uint32";
    u64 => b'u', "uint64";
}

#[cfg(target_pointer_width = "64")]
int_element! {
    isize => b'i', "int64";
    usize => b'u', "uint64";
}

#[cfg(target_pointer_width = "32")]
int_element! {
    isize => b'i', "int32";
    usize => b'u', "uint32";
}

impl sealed::Sealed for f64 {}
impl Element for f64 {
    const NUMPY_DTYPE: &'static str = "float64";
    const RUST_NAME: &'static str = "f64";
    const KIND: u8 = b'f';
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Float(v) => Some(v),
            // Exact when it round-trips (every integer up to 2^53 does).
            Value::Int(v) => Some(v as f64).filter(|f| *f as i128 == v && f.is_finite()),
            Value::Bool(_) | Value::Complex(..) => None,
        }
    }
}

impl sealed::Sealed for f32 {}
impl Element for f32 {
    const NUMPY_DTYPE: &'static str = "float32";
    const RUST_NAME: &'static str = "f32";
    const KIND: u8 = b'f';
    fn from_value(value: Value) -> Option<Self> {
        match value {
            // NaN stays NaN; any other value must survive the narrowing.
            Value::Float(v) if v.is_nan() => Some(f32::NAN),
            Value::Float(v) => Some(v as f32).filter(|f| f64::from(*f) == v),
            Value::Int(v) => Some(v as f32).filter(|f| *f as i128 == v && f.is_finite()),
            Value::Bool(_) | Value::Complex(..) => None,
        }
    }
}

impl sealed::Sealed for Complex64 {}
impl Element for Complex64 {
    const NUMPY_DTYPE: &'static str = "complex128";
    const RUST_NAME: &'static str = "Complex64";
    const KIND: u8 = b'c';
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Complex(re, im) => Some(Complex64::new(re, im)),
            Value::Float(_) | Value::Int(_) => {
                f64::from_value(value).map(|re| Complex64::new(re, 0.0))
            }
            Value::Bool(_) => None,
        }
    }
}

impl sealed::Sealed for Complex32 {}
impl Element for Complex32 {
    const NUMPY_DTYPE: &'static str = "complex64";
    const RUST_NAME: &'static str = "Complex32";
    const KIND: u8 = b'c';
    fn from_value(value: Value) -> Option<Self> {
        match value {
            // Each part narrows as a float does: exactly, or not at all.
            Value::Complex(re, im) => Some(Complex32::new(
                f32::from_value(Value::Float(re))?,
                f32::from_value(Value::Float(im))?,
            )),
            Value::Float(_) | Value::Int(_) => {
                f32::from_value(value).map(|re| Complex32::new(re, 0.0))
            }
            Value::Bool(_) => None,
        }
    }
}

impl sealed::Sealed for bool {}
impl Element for bool {
    const NUMPY_DTYPE: &'static str = "bool";
    const RUST_NAME: &'static str = "bool";
    const KIND: u8 = b'b';
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Bool(v) => Some(v),
            Value::Int(_) | Value::Float(_) | Value::Complex(..) => None,
        }
    }
}

/// Reads one element of numpy `kind` and `itemsize` at `element`, or `None`
/// for a dtype this crate does not read (longdouble, object, ...). A
/// float16 reads as the float it is (every float16 is exactly an `f32`).
///
/// # Safety
/// `element` is valid for reading `itemsize` bytes.
pub(crate) unsafe fn read_value(
    element: *const u8,
    kind: u8,
    itemsize: usize,
    swapped: bool,
) -> Option<Value> {
    // `read!(t, at)`: the part `at` bytes in (a complex element's imaginary
    // part; each part is byte-swapped on its own).
    macro_rules! read {
        ($t:ty) => {
            read!($t, 0)
        };
        ($t:ty, $at:expr) => {{
            // SAFETY: the caller guarantees `itemsize` readable bytes, and
            // `$at + size_of::<$t>()` <= `itemsize` (== size_of::<$t>() for
            // a number, 2 × for a complex); elements of a strided view may be
            // unaligned.
            let bits = unsafe { element.add($at).cast::<$t>().read_unaligned() };
            if swapped {
                bits.swap_bytes()
            } else {
                bits
            }
        }};
    }
    Some(match (kind, itemsize) {
        // numpy stores True as 1, but a view may hold any byte: nonzero is True.
        (b'b', 1) => Value::Bool(read!(u8) != 0),
        (b'i', 1) => Value::Int(read!(i8).into()),
        (b'i', 2) => Value::Int(read!(i16).into()),
        (b'i', 4) => Value::Int(read!(i32).into()),
        (b'i', 8) => Value::Int(read!(i64).into()),
        (b'u', 1) => Value::Int(read!(u8).into()),
        (b'u', 2) => Value::Int(read!(u16).into()),
        (b'u', 4) => Value::Int(read!(u32).into()),
        (b'u', 8) => Value::Int(read!(u64).into()),
        (b'f', 2) => Value::Float(half_to_f64(read!(u16))),
        (b'f', 4) => Value::Float(f32::from_bits(read!(u32)).into()),
        (b'f', 8) => Value::Float(f64::from_bits(read!(u64))),
        (b'c', 8) => {
            let (re, im) = (read!(u32), read!(u32, 4));
            Value::Complex(f32::from_bits(re).into(), f32::from_bits(im).into())
        }
        (b'c', 16) => {
            let (re, im) = (read!(u64), read!(u64, 8));
            Value::Complex(f64::from_bits(re), f64::from_bits(im))
        }
        _ => return None,
    })
}

/// An IEEE 754 half-precision float (numpy's float16), given as its bits,
/// exactly as an `f64` (a NaN keeps neither its sign nor its payload).
pub(crate) fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24), // zero and subnormals
        0x1f if fraction == 0.0 => sign * f64::INFINITY,
        0x1f => f64::NAN,
        _ => sign * (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// Can a whole array of `kind` convert to `U`, values permitting?
pub(crate) fn kind_converts_to<U: Element>(kind: u8) -> bool {
    matches!(
        (kind, U::KIND),
        (b'b', b'b')
            | (b'i' | b'u', b'i' | b'u' | b'f' | b'c')
            | (b'f', b'f' | b'c')
            | (b'c', b'c')
    )
}

#[cfg(test)]
mod tests {
    use super::half_to_f64;

    #[test]
    fn halves_read_exactly() {
        let cases = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_953_125),
            (0x7bff, 65504.0),
            (0x0400, 2f64.powi(-14)),
            (0x0001, 2f64.powi(-24)),
            (0x03ff, 1023.0 * 2f64.powi(-24)),
            (0x0000, 0.0),
            (0x7c00, f64::INFINITY),
            (0xfc00, f64::NEG_INFINITY),
        ];
        for (bits, value) in cases {
            assert_eq!(half_to_f64(bits), value, "{bits:#06x}");
        }
        assert!(half_to_f64(0x8000) == 0.0 && half_to_f64(0x8000).is_sign_negative());
        assert!(half_to_f64(0x7e00).is_nan() && half_to_f64(0xfe01).is_nan());
    }
}
