//! py-in-mem against a pure-Rust reference of the same rule, on random
//! inputs: lengths 1 to 100,000, constant arrays, NaN, ±inf, huge and tiny
//! magnitudes, subnormals. The results must be equal, index for index.
//!
//! The rule (`python/outliers.py`): `i` is an outlier when
//! `|x[i] - mean| > 2 * std`, with numpy's `data.mean()` and `data.std()`
//! (population std, `ddof = 0`), computed in float64.
//!
//! To be equal and not merely close, the reference computes what numpy
//! computes, operation for operation:
//! - `mean = sum(x) / n`, where `sum` is numpy's pairwise summation
//!   (`pairwise_sum_DOUBLE`: plain loop below 8 values, 8 accumulators up
//!   to 128, halves above). numpy before 2.3 feeds the reduction in blocks
//!   of its buffer size (8,192 values) and adds the blocks' sums in order;
//!   numpy 2.3 and later sum the whole (contiguous) array at once. The
//!   running numpy's version is asked through the crate.
//! - `std = sqrt(sum((x - mean)**2) / n)`, the squares summed the same way.
//! - `|x - mean| > 2 * std` in float64; every step is one IEEE operation.
//!
//! numpy's semantics for the special values, which the reference follows by
//! doing the same float64 operations, and which `special_value_semantics`
//! states outright:
//! - NaN anywhere: the mean is NaN, every comparison with NaN is false, so
//!   there are no outliers.
//! - +inf or -inf anywhere: the mean is ±inf or NaN, and `inf - inf` is NaN
//!   in the variance, so the std is NaN: no outliers.
//! - Finite values whose squared deviations overflow (|x - mean| above about
//!   1.3e154): the variance is +inf, nothing is greater than inf: no
//!   outliers.
//! - Constant arrays: every deviation is equal to the std (0 when the mean
//!   is exact), so nothing is strictly greater: no outliers.
//! - Tiny and subnormal values: the squares underflow (to 0 below about
//!   1e-162), so the std can be 0 or too small while the deviations are
//!   not: then every value that differs from the mean is an outlier. numpy
//!   does this, so the reference does too.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::rng::Rng;
use proptest::prelude::*;
use py_in_mem::Outliers;

/// numpy's pairwise summation of float64 (numpy/_core/src/umath/loops_utils.h.src).
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        // `res = 0.; for (...) res += a[i];` (so -0.0 sums to 0.0, as numpy)
        a.iter().fold(0.0, |sum, &v| sum + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.add.reduce(a)` for a contiguous 1-D float64 array.
fn numpy_sum(a: &[f64], blocked: bool) -> f64 {
    if blocked {
        // The reduction's output starts at 0 and each buffer's sum is added.
        a.chunks(8192)
            .fold(0.0, |sum, block| sum + pairwise_sum(block))
    } else {
        0.0 + pairwise_sum(a)
    }
}

/// The outlier rule, computed as numpy computes it.
fn reference(x: &[f64], blocked: bool) -> Vec<usize> {
    let n = x.len() as f64;
    let mean = numpy_sum(x, blocked) / n;
    let deviations: Vec<f64> = x.iter().map(|&v| v - mean).collect();
    let squares: Vec<f64> = deviations.iter().map(|&d| d * d).collect();
    let std = (numpy_sum(&squares, blocked) / n).sqrt();
    let threshold = 2.0 * std;
    deviations
        .iter()
        .enumerate()
        .filter(|(_, d)| d.abs() > threshold)
        .map(|(i, _)| i)
        .collect()
}

/// Whether the running numpy sums in blocks of 8,192 (before 2.3).
fn numpy_sums_in_blocks() -> bool {
    static BLOCKED: OnceLock<bool> = OnceLock::new();
    *BLOCKED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
        py_in_mem::add_sys_path(&dir).unwrap();
        let version = Outliers::new("pim_verify", "numpy_version")
            .unwrap()
            .detect(&[0.0; 101])
            .unwrap();
        (version[0], version[1]) < (2, 3)
    })
}

fn outliers() -> &'static Outliers {
    static OUTLIERS: OnceLock<Outliers> = OnceLock::new();
    OUTLIERS.get_or_init(|| Outliers::new("outliers", "detect").unwrap())
}

/// What the values look like.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Uniform in [0, 1) with a few large outliers.
    Uniform,
    /// Normal-ish values around an offset, magnitude 1e-3 to 1e6.
    Scaled,
    /// One value repeated.
    Constant,
    /// Magnitudes spread over the whole float64 range, 1e-320 to 1e308.
    AnyMagnitude,
    /// Around 1e150 to 1e300: squares overflow.
    Huge,
    /// Around 1e-160 to 1e-300 and subnormals: squares underflow.
    Tiny,
    /// Only subnormal values.
    Subnormal,
    /// Random bit patterns: every float64 there is, NaN and inf included.
    Bits,
    /// Two values, one fifth of them `b`: in exact arithmetic each `b` is
    /// exactly 2 std from the mean, so float64 rounding alone decides, and
    /// only the same operations in the same order give the same answer.
    Tie,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Uniform),
        Just(Kind::Scaled),
        Just(Kind::Constant),
        Just(Kind::AnyMagnitude),
        Just(Kind::Huge),
        Just(Kind::Tiny),
        Just(Kind::Subnormal),
        Just(Kind::Bits),
        Just(Kind::Tie),
    ]
}

/// Values NaN, +inf, -inf, or nothing, put at random places.
#[derive(Debug, Clone, Copy)]
enum Special {
    None,
    Nan,
    PosInf,
    NegInf,
    BothInf,
}

fn special() -> impl Strategy<Value = Special> {
    prop_oneof![
        6 => Just(Special::None),
        1 => Just(Special::Nan),
        1 => Just(Special::PosInf),
        1 => Just(Special::NegInf),
        1 => Just(Special::BothInf),
    ]
}

fn length() -> impl Strategy<Value = usize> {
    prop_oneof![1..=16usize, 17..=2_000usize, 2_001..=100_000usize]
}

prop_compose! {
    /// The inputs are made from a seed, so proptest shrinks the seed and the
    /// length instead of 100,000 values.
    fn input()(len in length(), kind in kind(), special in special(), seed in any::<u64>())
        -> (usize, Kind, Special, u64) {
        (len, kind, special, seed)
    }
}

fn make(len: usize, kind: Kind, special: Special, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let sign = |rng: &mut Rng| if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
    let mut data: Vec<f64> = match kind {
        Kind::Uniform => (0..len).map(|_| rng.unit()).collect(),
        Kind::Scaled => {
            let scale = 10f64.powf(rng.unit() * 9.0 - 3.0);
            let offset = (rng.unit() - 0.5) * scale * 100.0;
            (0..len)
                .map(|_| offset + (rng.unit() + rng.unit() + rng.unit() - 1.5) * scale)
                .collect()
        }
        Kind::Constant => {
            let value = match rng.below(4) {
                0 => rng.unit(),
                1 => 0.1,
                2 => 1e300 * sign(&mut rng),
                _ => 5e-324,
            };
            vec![value; len]
        }
        Kind::AnyMagnitude => (0..len)
            .map(|_| sign(&mut rng) * 10f64.powf(rng.unit() * 628.0 - 320.0))
            .collect(),
        Kind::Huge => (0..len)
            .map(|_| sign(&mut rng) * 10f64.powf(150.0 + rng.unit() * 150.0))
            .collect(),
        Kind::Tiny => (0..len)
            .map(|_| sign(&mut rng) * 10f64.powf(-320.0 + rng.unit() * 160.0))
            .collect(),
        Kind::Subnormal => (0..len)
            .map(|_| f64::from_bits(rng.next() % (1u64 << 52)) * sign(&mut rng))
            .collect(),
        Kind::Bits => (0..len).map(|_| f64::from_bits(rng.next())).collect(),
        Kind::Tie => {
            let (a, b) = (rng.unit() * 100.0, rng.unit() * 100.0);
            let fifth = len / 5;
            let mut data = vec![a; len];
            // The first 5 * fifth values hold exactly `fifth` b's, spread
            // at random; any remainder stays a (and breaks the tie a little).
            for block in 0..fifth {
                data[block * 5 + rng.below(5)] = b;
            }
            data
        }
    };
    // A few outliers, so most inputs have some.
    if !matches!(kind, Kind::Constant | Kind::Tie) {
        for _ in 0..rng.below(4) {
            let at = rng.below(len);
            data[at] = data[at] * 1e3 + 97.0 * sign(&mut rng);
        }
    }
    let specials: &[f64] = match special {
        Special::None => &[],
        Special::Nan => &[f64::NAN],
        Special::PosInf => &[f64::INFINITY],
        Special::NegInf => &[f64::NEG_INFINITY],
        Special::BothInf => &[f64::INFINITY, f64::NEG_INFINITY],
    };
    for &value in specials {
        let at = rng.below(len);
        data[at] = value;
    }
    data
}

proptest! {
    // PROPTEST_CASES lowers the count under valgrind (`make memcheck`).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn py_in_mem_equals_the_reference((len, kind, special, seed) in input()) {
        let data = make(len, kind, special, seed);
        let got = outliers().detect(&data).unwrap();
        let expected = reference(&data, numpy_sums_in_blocks());
        prop_assert_eq!(got, expected, "len {} {:?} {:?} seed {}", len, kind, special, seed);
    }

    #[test]
    fn special_value_semantics((len, kind, special, seed) in input()) {
        let data = make(len, kind, special, seed);
        let got = outliers().detect(&data).unwrap();
        // NaN or ±inf anywhere: no outliers.
        if data.iter().any(|v| !v.is_finite()) {
            prop_assert!(got.is_empty(), "{:?}", got);
        }
        // A constant array has no outliers.
        if data.iter().all(|&v| v == data[0]) {
            prop_assert!(got.is_empty(), "{:?}", got);
        }
    }
}

#[test]
fn the_reference_matches_the_articles_example() {
    let data = common::article_data(1000, 11);
    assert_eq!(reference(&data, true), [7, 113, 835]);
    assert_eq!(reference(&data, false), [7, 113, 835]);
    assert_eq!(outliers().detect(&data).unwrap(), [7, 113, 835]);
}

#[test]
fn where_numpy_versions_disagree_the_running_one_is_matched() {
    // numpy before 2.3 (blocks of 8,192) and numpy 2.3+ (whole array) give
    // different outliers on some tied inputs longer than a block: there the
    // crate must agree with the reference for the numpy that is running.
    let blocked = numpy_sums_in_blocks();
    let mut disagreeing = 0;
    for seed in 1..=200u64 {
        let data = make(20_000, Kind::Tie, Special::None, seed);
        let (in_blocks, whole) = (reference(&data, true), reference(&data, false));
        if in_blocks != whole {
            disagreeing += 1;
            let expected = if blocked { in_blocks } else { whole };
            assert_eq!(outliers().detect(&data).unwrap(), expected, "seed {seed}");
        }
    }
    assert!(
        disagreeing > 0,
        "no input where the two summations disagree"
    );
    eprintln!("{disagreeing} of 200 tied inputs tell the two numpy summations apart");
}

#[test]
fn underflowing_squares_make_every_differing_value_an_outlier() {
    // The std of these values is about 1e-170 in exact arithmetic, but every
    // square underflows to 0 in float64, so numpy's std is 0.
    let data = [1e-170, 2e-170, 3e-170, 4e-170];
    assert_eq!(reference(&data, false), [0, 1, 2, 3]);
    assert_eq!(outliers().detect(&data).unwrap(), [0, 1, 2, 3]);
}
