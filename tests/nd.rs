//! n-D inputs: round trips through an identity function for every dtype,
//! complex included, in 1-D, 2-D and 3-D, with shapes and strides from
//! proptest (C order, Fortran order, negative and stepped strides). numpy
//! must see exactly the elements the Rust side describes, in the Rust
//! memory itself (no copy), read-only.
//!
//! With the `ndarray` feature the same round trips go through ndarray's
//! arrays and views.

mod common;

use common::test_func;
use proptest::prelude::*;
use py_in_mem::num_complex::{Complex32, Complex64};
use py_in_mem::{Element, Error, Function, NdSlice, NdVec, ResultView};

fn function(name: &str) -> Function {
    test_func(name); // puts tests/python on sys.path
    Function::load("pim_testfuncs", name).unwrap()
}

/// An element type with arbitrary values, compared bit for bit (NaN too).
trait Sample: Element + PartialEq {
    fn strategy() -> BoxedStrategy<Self>;
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

macro_rules! plain_samples {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn strategy() -> BoxedStrategy<Self> {
                any::<$t>().boxed()
            }
        }
    )*};
}
plain_samples!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool);

impl Sample for f32 {
    fn strategy() -> BoxedStrategy<Self> {
        any::<f32>().boxed()
    }
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl Sample for f64 {
    fn strategy() -> BoxedStrategy<Self> {
        any::<f64>().boxed()
    }
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl Sample for Complex32 {
    fn strategy() -> BoxedStrategy<Self> {
        (any::<f32>(), any::<f32>())
            .prop_map(|(re, im)| Complex32::new(re, im))
            .boxed()
    }
    fn same(&self, other: &Self) -> bool {
        self.re.same(&other.re) && self.im.same(&other.im)
    }
}

impl Sample for Complex64 {
    fn strategy() -> BoxedStrategy<Self> {
        (any::<f64>(), any::<f64>())
            .prop_map(|(re, im)| Complex64::new(re, im))
            .boxed()
    }
    fn same(&self, other: &Self) -> bool {
        self.re.same(&other.re) && self.im.same(&other.im)
    }
}

/// A strided view of a backing array: the backing's shape and order, and
/// a step per axis (negative: the axis runs backwards).
#[derive(Debug, Clone)]
struct Layout {
    full: Vec<usize>,
    fortran: bool,
    steps: Vec<isize>,
}

impl Layout {
    fn strategy() -> impl Strategy<Value = Layout> {
        (1usize..=3)
            .prop_flat_map(|ndim| {
                (
                    prop::collection::vec(0usize..=4, ndim),
                    any::<bool>(),
                    prop::collection::vec(prop::sample::select(vec![1isize, 2, -1, -2]), ndim),
                )
            })
            .prop_map(|(full, fortran, steps)| Layout {
                full,
                fortran,
                steps,
            })
    }

    fn len(&self) -> usize {
        self.full.iter().product()
    }

    /// The backing's strides, in elements.
    fn backing_strides(&self) -> Vec<isize> {
        let mut strides = vec![0isize; self.full.len()];
        let mut step = 1isize;
        let axes: Vec<usize> = if self.fortran {
            (0..self.full.len()).collect()
        } else {
            (0..self.full.len()).rev().collect()
        };
        for axis in axes {
            strides[axis] = step;
            step *= self.full[axis] as isize;
        }
        strides
    }

    /// The view's shape, strides and the index of its element [0, ...].
    fn view(&self) -> (Vec<usize>, Vec<isize>, usize) {
        let backing = self.backing_strides();
        let mut shape = Vec::new();
        let mut strides = Vec::new();
        let mut offset = 0isize;
        for ((&n, &stride), &step) in self.full.iter().zip(&backing).zip(&self.steps) {
            let count = n.div_ceil(step.unsigned_abs());
            shape.push(count);
            strides.push(stride * step);
            if step < 0 && n > 0 {
                offset += stride * (n as isize - 1);
            }
        }
        if shape.contains(&0) {
            offset = 0;
        }
        (shape, strides, offset as usize)
    }

    /// The view's elements in C order, read the plain way.
    fn expected<T: Copy>(&self, data: &[T]) -> Vec<T> {
        let (shape, strides, offset) = self.view();
        let total: usize = shape.iter().product();
        let mut out = Vec::with_capacity(total);
        for flat in 0..total {
            let mut rest = flat;
            let mut at = offset as isize;
            for (&n, &stride) in shape.iter().zip(&strides).rev() {
                at += (rest % n) as isize * stride;
                rest /= n;
            }
            out.push(data[at as usize]);
        }
        out
    }
}

fn same_all<T: Sample>(got: &[T], want: &[T]) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a.same(b))
}

/// Lends the view described by `layout` over `data` to `identity` and
/// checks what comes back, converted and in place.
fn round_trip<T: Sample>(layout: &Layout, data: &[T]) -> Result<(), TestCaseError> {
    let (shape, strides, offset) = layout.view();
    let lent = NdSlice::with_strides(data, &shape, &strides, offset).unwrap();
    let want = layout.expected(data);
    let back: NdVec<T> = function("identity").call(&lent).unwrap();
    prop_assert_eq!(back.shape(), &shape[..]);
    prop_assert!(same_all(back.as_slice(), &want), "{:?} vs {:?}", back, want);
    // In place: a copy in Python memory (the input itself is Rust's).
    let view: ResultView<T> = function("identity").call(lent).unwrap();
    prop_assert_eq!(view.shape(), &shape[..]);
    prop_assert!(same_all(&view, &want));
    let range = data.as_ptr_range();
    prop_assert!(view.is_empty() || !range.contains(&view.as_ptr()));
    Ok(())
}

/// One proptest per element type: `$check::<T>(&layout, &data)` on
/// layouts and values drawn for `T`.
macro_rules! round_trips {
    ($check:ident, $cases:expr; $($name:ident: $t:ty),*) => {$(
        proptest! {
            #![proptest_config(ProptestConfig::with_cases($cases))]
            #[test]
            fn $name(
                (layout, data) in Layout::strategy().prop_flat_map(|layout| {
                    let len = layout.len();
                    (Just(layout), prop::collection::vec(<$t>::strategy(), len))
                })
            ) {
                $check::<$t>(&layout, &data)?;
            }
        }
    )*};
}

round_trips!(
    round_trip, 48;
    round_trip_f64: f64, round_trip_f32: f32,
    round_trip_i8: i8, round_trip_i16: i16, round_trip_i32: i32, round_trip_i64: i64,
    round_trip_u8: u8, round_trip_u16: u16, round_trip_u32: u32, round_trip_u64: u64,
    round_trip_isize: isize, round_trip_usize: usize, round_trip_bool: bool,
    round_trip_complex64: Complex32, round_trip_complex128: Complex64
);

/// What numpy says of an input: its element [0, ...]'s address, its byte
/// strides, writeable, C- and F-contiguous.
type Seen = (usize, Vec<isize>, bool, bool, bool);

#[test]
fn numpy_sees_the_rust_memory_itself_read_only() {
    let data: Vec<i32> = (0..24).collect();
    let base = data.as_ptr() as usize;
    let seen =
        |lent: NdSlice<'_, i32>| -> Seen { function("address_and_strides").call(lent).unwrap() };
    assert_eq!(
        seen(NdSlice::new(&data, &[2, 3, 4]).unwrap()),
        (base, vec![48, 16, 4], false, true, false)
    );
    assert_eq!(
        seen(NdSlice::fortran(&data, &[2, 3, 4]).unwrap()),
        (base, vec![4, 8, 24], false, false, true)
    );
    // Rows backwards, every other column: element [0, 0] is data[20].
    assert_eq!(
        seen(NdSlice::with_strides(&data, &[6, 2], &[-4, 2], 20).unwrap()),
        (base + 20 * 4, vec![-16, 8], false, false, false)
    );
    // 0-D: one value.
    assert_eq!(
        seen(NdSlice::new(&data[5..6], &[]).unwrap()),
        (base + 5 * 4, vec![], false, true, true)
    );
    // A 1-D slice is C- and F-contiguous, as numpy's own 1-D arrays are.
    let seen_1d: Seen = function("address_and_strides").call(&data).unwrap();
    assert_eq!(seen_1d, (base, vec![4], false, true, true));
}

#[test]
fn writes_to_an_nd_input_fail_and_change_nothing() {
    let data = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    for lent in [
        NdSlice::new(&data, &[2, 3]).unwrap(),
        NdSlice::fortran(&data, &[3, 2]).unwrap(),
        NdSlice::with_strides(&data, &[3], &[-2], 5).unwrap(),
    ] {
        for func in ["write_input", "set_writeable", "write_through_copyto"] {
            let err = function(func).call::<Vec<i64>>(&lent).unwrap_err();
            assert_eq!(err.py_type(), Some("ValueError"), "{func}: {err}");
        }
    }
    assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn shapes_that_do_not_fit_their_slice_are_refused() {
    let data = [0u8; 6];
    let cases: [(Result<NdSlice<'_, u8>, Error>, &str); 7] = [
        (NdSlice::new(&data, &[4, 2]), "a 4 × 2 array needs 8 values, the slice has 6"),
        (NdSlice::fortran(&data, &[usize::MAX, 2]), "a 18446744073709551615 × 2 array needs more than usize::MAX values, the slice has 6"),
        (NdSlice::with_strides(&data, &[2, 3], &[3], 0), "2 dimensions but 1 strides"),
        (NdSlice::with_strides(&data, &[2, 3], &[-3, 1], 2), "a 2 × 3 array with strides [-3, 1] from element 2 reaches element -1 of a slice of 6"),
        (NdSlice::with_strides(&data, &[0, 3], &[1, 1], 7), "a 0 × 3 array with strides [1, 1] from element 7 reaches past element 6 of a slice of 6"),
        (NdSlice::new(&data, &[7]), "a 7-element array needs 7 values, the slice has 6"),
        (NdSlice::with_strides(&data, &[4], &[2], 0), "a 4-element array with strides [2] from element 0 reaches element 6 of a slice of 6"),
    ];
    for (result, message) in cases {
        match result {
            Err(Error::InvalidArgument(why)) => assert_eq!(why, message),
            other => panic!("{message}: {other:?}"),
        }
    }
    // Edges that fit: an empty array anywhere in the slice, a stride of 0.
    assert!(NdSlice::with_strides(&data, &[0, 3], &[1, 1], 6).is_ok());
    let repeated = NdSlice::with_strides(&data[..1], &[3, 2], &[0, 0], 0).unwrap();
    let back: NdVec<u8> = function("identity").call(repeated).unwrap();
    assert_eq!(back.as_slice(), &[0; 6]);
}

#[cfg(feature = "ndarray")]
mod with_ndarray {
    use super::*;
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder, Slice};

    /// The same round trip through ndarray: a view of a C- or F-ordered
    /// array with the layout's steps.
    fn round_trip_ndarray<T: Sample>(layout: &Layout, data: &[T]) -> Result<(), TestCaseError> {
        let shape = IxDyn(&layout.full);
        let backing: ArrayD<T> = if layout.fortran {
            Array::from_shape_vec(shape.f(), data.to_vec()).unwrap()
        } else {
            Array::from_shape_vec(shape, data.to_vec()).unwrap()
        };
        let view =
            backing.slice_each_axis(|axis| Slice::new(0, None, layout.steps[axis.axis.index()]));
        let want: Vec<T> = view.iter().copied().collect();
        let back: ArrayD<T> = function("identity").call(view.view()).unwrap();
        prop_assert_eq!(back.shape(), view.shape());
        let got: Vec<T> = back.iter().copied().collect();
        prop_assert!(same_all(&got, &want));
        let back: ArrayD<T> = function("identity").call(&view).unwrap();
        let got: Vec<T> = back.iter().copied().collect();
        prop_assert!(same_all(&got, &want));
        Ok(())
    }

    round_trips!(
        round_trip_ndarray, 32;
        ndarray_f64: f64, ndarray_f32: f32, ndarray_i8: i8, ndarray_i64: i64,
        ndarray_u16: u16, ndarray_u64: u64, ndarray_bool: bool,
        ndarray_complex64: Complex32, ndarray_complex128: Complex64
    );

    #[test]
    fn numpy_sees_an_ndarray_view_in_place() {
        let a = Array::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as i64);
        let t = a.t();
        let seen: Seen = function("address_and_strides").call(t).unwrap();
        assert_eq!(seen, (a.as_ptr() as usize, vec![8, 32], false, false, true));
        let back: ndarray::Array2<i64> = function("identity").call(t).unwrap();
        assert_eq!(back, t);
    }
}

/// Strides and dimensions no numpy array can have are refused when the
/// slice is made, empty dimensions included (whose bounds check reads no
/// element, but whose strides still go to numpy in bytes).
#[test]
fn strides_and_dimensions_that_overflow_are_refused_even_when_empty() {
    let data: [f64; 0] = [];
    let err = NdSlice::with_strides(&data, &[0, 3], &[0, isize::MAX / 2], 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: stride 4611686018427387903 of dimension 1 is more than an isize of bytes for 8-byte elements"
    );
    let err = NdSlice::with_strides(&data, &[3, 0], &[isize::MIN / 4, 1], 0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let err = NdSlice::new(&data, &[0, usize::MAX]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid argument: dimension 1 of a 0 × {} array is longer than isize::MAX",
            usize::MAX
        )
    );
    assert!(NdSlice::with_strides(&data, &[usize::MAX, 0], &[1, 1], 0).is_err());
    assert!(NdVec::new(Vec::<f64>::new(), vec![0, usize::MAX]).is_err());
    assert!(py_in_mem::Matrix::new(&data, 0, usize::MAX).is_err());

    // An empty array with any representable strides is lent as numpy's
    // empty array of that shape.
    let shape: (Vec<usize>, f64) = Function::from_source(
        "nd_empty_strides",
        "def f(a):\n    return list(a.shape), float(a.sum())\n",
        "f",
    )
    .unwrap()
    .call(NdSlice::with_strides(&data, &[0, 3], &[isize::MAX / 8, -(isize::MAX / 8)], 0).unwrap())
    .unwrap();
    assert_eq!(shape, (vec![0, 3], 0.0));
}

/// Owned arrays of every rank reach Python with their shape: 0-D, the most
/// dimensions kept on the stack (8), one past them (9, copied to the heap)
/// and 20; Python writes through them and keeps them.
#[test]
fn owned_arrays_of_any_rank_keep_their_shape() -> Result<(), Error> {
    let f = Function::from_source(
        "pim_nd_owned_rank",
        "KEPT = []\n\
         def f(a):\n\
         \x20   KEPT.append(a)\n\
         \x20   a[...] = a + 1\n\
         \x20   return list(a.shape), int(a.sum()), a.flags.writeable\n",
        "f",
    )?;
    for rank in [0usize, 1, 8, 9, 20] {
        let shape: Vec<usize> = (0..rank).map(|axis| 1 + axis % 3).collect();
        let len: usize = shape.iter().product();
        let values: Vec<i64> = (0..len as i64).collect();
        let expected = values.iter().sum::<i64>() + len as i64;
        let (seen, sum, writeable): (Vec<usize>, i64, bool) =
            f.arg_owned(NdVec::new(values, shape.clone())?).call()?;
        assert_eq!(seen, shape, "rank {rank}");
        assert_eq!(sum, expected, "rank {rank}");
        assert!(writeable, "rank {rank}");
    }
    Ok(())
}
