//! Everything everyday numpy code takes and returns, one call each: numpy
//! scalars, tuples, n-D arrays, complex numbers, dicts, and plain Python
//! values, each checked for its values; and every result of the wrong kind
//! is `Error::BadResult` naming where inside the result it went wrong.
//!
//! Runs with and without the `ndarray` feature; the `ndarray` lines are in
//! `mod with_ndarray` at the bottom.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::test_func;
use py_in_mem::num_complex::{Complex32, Complex64};
use py_in_mem::{Error, Function, NdSlice, NdVec, ResultView};

fn numpy(module: &str, name: &str) -> Function {
    Function::load(module, name).unwrap()
}

fn function(name: &str) -> Function {
    test_func(name); // puts tests/python on sys.path
    Function::load("pim_testfuncs", name).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// 0.0, 1.0, ..., 99.0.
fn hundred() -> Vec<f64> {
    (0..100).map(f64::from).collect()
}

#[test]
fn mean_is_a_float() {
    let data: Vec<f64> = (0..1000).map(f64::from).collect();
    let m: f64 = Function::load("numpy", "mean")
        .unwrap()
        .call(&data)
        .unwrap();
    assert_eq!(m, 499.5);
    // The same numpy float64 read as f32 only if exact (499.5 is).
    let m32: f32 = numpy("numpy", "mean").call(&data).unwrap();
    assert_eq!(m32, 499.5);
}

#[test]
fn percentile_takes_positional_scalars_and_string_keywords() {
    let data = hundred();
    let p95: f64 = Function::load("numpy", "percentile")
        .unwrap()
        .arg(&data)
        .arg(95.0)
        .call()
        .unwrap();
    assert!(close(p95, 94.05), "{p95}");
    let lower: f64 = numpy("numpy", "percentile")
        .arg(&data)
        .arg(95)
        .kwarg("method", "lower")
        .call()
        .unwrap();
    assert_eq!(lower, 94.0);
    // Several percentiles at once: an array argument, an array result.
    let ps: Vec<f64> = numpy("numpy", "percentile")
        .arg(&data)
        .arg(&[0.0, 50.0, 100.0])
        .call()
        .unwrap();
    assert_eq!(ps, [0.0, 49.5, 99.0]);
}

#[test]
fn histogram_is_a_tuple_of_counts_and_edges() {
    let data = hundred();
    let (counts, edges): (Vec<i64>, Vec<f64>) = Function::load("numpy", "histogram")
        .unwrap()
        .arg(&data)
        .kwarg("bins", 10)
        .call()
        .unwrap();
    assert_eq!(counts, [10; 10]);
    assert_eq!(edges.len(), 11);
    for (i, edge) in edges.iter().enumerate() {
        assert!(close(*edge, i as f64 * 9.9), "edge {i}: {edge}");
    }
}

#[test]
fn inverse_of_a_matrix_is_a_matrix() {
    let a = [4.0, 7.0, 2.0, 6.0];
    let inv: NdVec<f64> = numpy("numpy.linalg", "inv")
        .call(NdSlice::new(&a, &[2, 2]).unwrap())
        .unwrap();
    assert_eq!(inv.shape(), &[2, 2]);
    let expected = [0.6, -0.7, -0.2, 0.4];
    for (got, want) in inv.as_slice().iter().zip(expected) {
        assert!(close(*got, want), "{inv:?}");
    }
    // A matrix numpy cannot invert is its LinAlgError, with its message. A
    // non-square one: numpy refuses it before LAPACK runs. (A singular one
    // depends on the BLAS: under valgrind's emulation OpenBLAS inverts
    // [[1, 2], [2, 4]], and even all zeros, to NaNs instead of raising.)
    let err = numpy("numpy.linalg", "inv")
        .call::<NdVec<f64>>(NdSlice::new(&[1.0; 6], &[2, 3]).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("square"), "{err}");
    assert_eq!(err.py_type(), Some("numpy.linalg.LinAlgError"));
}

/// The DFT of `signal`'s first n/2 + 1 frequencies, as numpy's rfft.
fn naive_rfft(signal: &[f64]) -> Vec<Complex64> {
    let n = signal.len();
    (0..=n / 2)
        .map(|k| {
            signal
                .iter()
                .enumerate()
                .map(|(t, x)| {
                    let angle = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                    Complex64::from_polar(*x, angle)
                })
                .sum()
        })
        .collect()
}

#[test]
fn rfft_is_complex() {
    let signal: Vec<f64> = (0..16).map(|t| (t as f64 * 0.7).sin() + 0.5).collect();
    let spectrum: Vec<Complex64> = Function::load("numpy.fft", "rfft")
        .unwrap()
        .call(&signal)
        .unwrap();
    let expected = naive_rfft(&signal);
    assert_eq!(spectrum.len(), 9);
    for (got, want) in spectrum.iter().zip(&expected) {
        assert!((got - want).norm() < 1e-9, "{got} vs {want}");
    }
    // complex128 never reads as a real type, and narrows to complex64 only
    // when exact.
    let err = numpy("numpy.fft", "rfft")
        .call::<Vec<f64>>(&signal)
        .unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err:?}");
    assert!(err.to_string().contains("dtype complex128"), "{err}");
}

#[test]
fn complex_arrays_and_scalars_go_in_and_come_back() {
    let z = [Complex64::new(1.0, 2.0), Complex64::new(-3.5, 0.25)];
    let conj: Vec<Complex64> = numpy("numpy", "conj").call(&z).unwrap();
    assert_eq!(
        conj,
        [Complex64::new(1.0, -2.0), Complex64::new(-3.5, -0.25)]
    );
    let z32 = [Complex32::new(0.5, -1.5)];
    let back: Vec<Complex32> = function("identity").call(&z32).unwrap();
    assert_eq!(back, z32);
    // complex64 widens to complex128, float64 to complex128.
    let wide: Vec<Complex64> = function("identity").call(&z32).unwrap();
    assert_eq!(wide, [Complex64::new(0.5, -1.5)]);
    let from_real: Vec<Complex64> = function("identity").call(&[2.5]).unwrap();
    assert_eq!(from_real, [Complex64::new(2.5, 0.0)]);
    // A complex scalar argument is a Python complex.
    let scaled: Vec<Complex64> = numpy("numpy", "multiply")
        .arg(&z)
        .arg(Complex64::new(0.0, 1.0))
        .call()
        .unwrap();
    assert_eq!(
        scaled,
        [Complex64::new(-2.0, 1.0), Complex64::new(-0.25, -3.5)]
    );
    // complex128 narrows to complex64 only when each part is exact.
    let err = function("identity")
        .call::<Vec<Complex32>>(&[Complex64::new(0.1, 0.0)])
        .unwrap_err();
    match err {
        Error::BadResult { found, .. } => assert_eq!(
            found,
            "(0.1+0.0j) at position 0 of a numpy array of dtype complex128"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn eigh_is_a_tuple_of_values_and_vectors() {
    // Symmetric, eigenvalues 1, 3, 3.
    let sym = [2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 3.0];
    let (w, v): (Vec<f64>, NdVec<f64>) = numpy("numpy.linalg", "eigh")
        .call(NdSlice::new(&sym, &[3, 3]).unwrap())
        .unwrap();
    assert_eq!(w.len(), 3);
    for (got, want) in w.iter().zip([1.0, 3.0, 3.0]) {
        assert!(close(*got, want), "{w:?}");
    }
    // The vectors asked for as a Vec: the message the README shows.
    let err = numpy("numpy.linalg", "eigh")
        .call::<(Vec<f64>, Vec<f64>)>(NdSlice::new(&sym, &[3, 3]).unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "numpy.linalg.eigh returned an unexpected element 1 of the tuple: expected a 1-D numpy \
         array of float64 (or of a dtype that converts to it without loss), or a list or tuple \
         of numbers that convert to f64 without loss, found a 2-D numpy array of dtype float64"
    );
    // Each column k of v is an eigenvector: sym · v[:, k] = w[k] · v[:, k].
    for k in 0..3 {
        for i in 0..3 {
            let product: f64 = (0..3).map(|j| sym[3 * i + j] * v[[j, k]]).sum();
            assert!(close(product, w[k] * v[[i, k]]), "column {k}, row {i}");
        }
    }
}

#[test]
fn a_plain_python_function_returns_plain_values() {
    let data = [1.0, 2.0, 3.5];
    let total: f64 = function("total").call(&data).unwrap();
    assert_eq!(total, 6.5);
    let list: Vec<f64> = function("as_list").call(&data).unwrap();
    assert_eq!(list, data);
    let text: String = function("as_text").call(&data).unwrap();
    assert_eq!(text, "3 values");
    let none: Option<Vec<f64>> = function("nothing").call(&data).unwrap();
    assert_eq!(none, None);
    let () = function("nothing").call(&data).unwrap();
    let some: Option<f64> = function("total").call(&data).unwrap();
    assert_eq!(some, Some(6.5));
}

#[test]
fn outer_product_is_2d() {
    let a: Vec<f64> = (1..=3).map(f64::from).collect();
    let b = [1.0, 10.0];
    let m: NdVec<f64> = numpy("numpy", "outer").arg(&a).arg(&b).call().unwrap();
    assert_eq!(m.shape(), &[3, 2]);
    assert_eq!(m.as_slice(), &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    // In place, without a copy of the result.
    let view: ResultView<f64> = numpy("numpy", "outer").arg(&a).arg(&b).call().unwrap();
    assert_eq!(view.shape(), &[3, 2]);
    assert_eq!(&*view, m.as_slice());
}

#[test]
fn svd_is_a_3_tuple_that_rebuilds_the_matrix() {
    let a = [3.0, 1.0, 1.0, -1.0, 3.0, 1.0];
    let (u, s, vt): (NdVec<f64>, Vec<f64>, NdVec<f64>) = numpy("numpy.linalg", "svd")
        .arg(NdSlice::new(&a, &[2, 3]).unwrap())
        .kwarg("full_matrices", false)
        .call()
        .unwrap();
    assert_eq!(
        (u.shape(), s.len(), vt.shape()),
        (&[2, 2][..], 2, &[2, 3][..])
    );
    // Singular values of this matrix: sqrt(12) and sqrt(10), descending.
    assert!(
        close(s[0], 12f64.sqrt()) && close(s[1], 10f64.sqrt()),
        "{s:?}"
    );
    for i in 0..2 {
        for j in 0..3 {
            let rebuilt: f64 = (0..2).map(|k| u[[i, k]] * s[k] * vt[[k, j]]).sum();
            assert!(close(rebuilt, a[3 * i + j]), "[{i}, {j}]: {rebuilt}");
        }
    }
}

#[test]
fn unique_with_counts_is_a_tuple() {
    let data = [3i64, 1, 3, 2, 3, 1];
    let (values, counts): (Vec<i64>, Vec<usize>) = numpy("numpy", "unique")
        .arg(&data)
        .kwarg("return_counts", true)
        .call()
        .unwrap();
    assert_eq!(values, [1, 2, 3]);
    assert_eq!(counts, [2, 1, 3]);
}

#[test]
fn argmax_is_an_integer_and_any_a_bool() {
    let data = [0.5, 9.0, -1.0, 9.0];
    let i: usize = numpy("numpy", "argmax").call(&data).unwrap();
    assert_eq!(i, 1);
    let i: i64 = numpy("numpy", "argmax").call(&data).unwrap();
    assert_eq!(i, 1);
    let any: bool = numpy("numpy", "any").call(&[false, false, true]).unwrap();
    assert!(any);
    let any: bool = numpy("numpy", "any").call(&[0u8, 0]).unwrap();
    assert!(!any);
    // An index is no float, and a bool no integer.
    assert!(matches!(
        numpy("numpy", "argmax").call::<f32>(&data),
        Ok(1.0)
    ));
    assert!(matches!(
        numpy("numpy", "any").call::<i64>(&[true]),
        Err(Error::BadResult { .. })
    ));
}

#[test]
fn a_dict_is_a_map() {
    let data = [1.0, 4.0, 7.0];
    let stats: HashMap<String, f64> = function("stats").call(&data).unwrap();
    assert_eq!(stats.len(), 3);
    assert_eq!((stats["mean"], stats["min"], stats["max"]), (4.0, 1.0, 7.0));
    let sorted: BTreeMap<String, f32> = function("stats").call(&data).unwrap();
    assert_eq!(
        sorted.into_iter().collect::<Vec<_>>(),
        [
            ("max".to_owned(), 7.0),
            ("mean".to_owned(), 4.0),
            ("min".to_owned(), 1.0)
        ]
    );
}

#[test]
fn a_3d_input_reduced_over_two_axes() {
    // a[i, j, k] = 100 i + 10 j + k, shape 2 × 3 × 4.
    let mut data = Vec::new();
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                data.push(f64::from(100 * i + 10 * j + k));
            }
        }
    }
    let expected: Vec<f64> = (0..3)
        .map(|j| {
            let mut sum = 0.0;
            for i in 0..2 {
                for k in 0..4 {
                    sum += f64::from(100 * i + 10 * j + k);
                }
            }
            sum
        })
        .collect();
    let sums: Vec<f64> = numpy("numpy", "sum")
        .arg(NdSlice::new(&data, &[2, 3, 4]).unwrap())
        .kwarg("axis", (0, 2))
        .call()
        .unwrap();
    assert_eq!(sums, expected);
}

#[test]
fn numpy_and_python_scalars_of_every_kind() {
    type Scalars = (
        i64,
        u64,
        f64,
        Complex32,
        bool,
        bool,
        i8,
        f32,
        Complex64,
        f64,
        i32,
    );
    let got: Scalars = function("scalars").call(&[0.0]).unwrap();
    assert_eq!(
        got,
        (
            -5,
            u64::MAX,
            0.5,
            Complex32::new(1.5, -2.0),
            true,
            true,
            7,
            2.5,
            Complex64::new(3.0, -4.0),
            0.25,
            9
        )
    );
    // A Python int beyond 64 bits is refused by name.
    let err = function("big_int").call::<u64>(&[0.0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_testfuncs.big_int returned an int outside the ranges of int64 and uint64, \
         expected an integer that fits in u64 (a Python or numpy integer, or a 0-D numpy array of \
         one; a float is not read as an integer, even a whole one)"
    );
    // Nor is it a bool, any more than a small int is: its type is named,
    // not its range.
    for (name, found) in [("big_int", "int"), ("returns_python_int", "int")] {
        let err = function(name).call::<bool>(&[0.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "pim_testfuncs.{name} returned an object of type {found}, expected a bool \
                 (Python's or numpy's, or a 0-D numpy array of bool)"
            )
        );
    }
    // Lossless only: a Python float 2.5 is no integer, 0.1 no f32.
    let err = function("total").call::<i64>(&[2.5]).unwrap_err();
    assert!(
        err.to_string().contains("returned an object of type float"),
        "{err}"
    );
    // Nor is a whole one (3.0), as for PyO3's `extract`; the message says so.
    let err = function("total").call::<i64>(&[3.0]).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "returned an object of type float, expected an integer that fits in i64 (a Python or \
             numpy integer, or a 0-D numpy array of one; a float is not read as an integer, even \
             a whole one)"
        ),
        "{err}"
    );
    let err = function("total").call::<f32>(&[0.1]).unwrap_err();
    match err {
        Error::BadResult { found, .. } => assert_eq!(found, "0.1 in an object of type float"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn arguments_of_every_kind() {
    let text = String::from("text");
    let kinds: Vec<String> = function("kinds_of")
        .arg(&[1.0f32, 2.0])
        .arg(NdSlice::new(&[1u8, 2, 3, 4, 5, 6], &[2, 3]).unwrap())
        .arg(95.0)
        .arg(3)
        .arg(u64::MAX)
        .arg(true)
        .arg("linear")
        .arg(&text)
        .arg(text.clone())
        .arg(None::<f64>)
        .arg(Some(1.5))
        .arg(Complex32::new(1.0, 0.0))
        .kwarg("weights", &[Complex64::new(0.0, 1.0)])
        .kwarg("axis", None::<i64>)
        .call()
        .unwrap();
    assert_eq!(
        kinds,
        [
            "ndarray float32 (2,) ro",
            "ndarray uint8 (2, 3) ro",
            "float",
            "int",
            "int",
            "bool",
            "str",
            "str",
            "str",
            "NoneType",
            "float",
            "complex",
            "axis=NoneType",
            "weights=ndarray complex128 (1,) ro",
        ]
    );
    // The values arrive as given.
    let echoed: u64 = function("echo").call(u64::MAX).unwrap();
    assert_eq!(echoed, u64::MAX);
    let echoed: String = function("echo").call("linear").unwrap();
    assert_eq!(echoed, "linear");
    let echoed: Option<i32> = function("echo").call(None::<i32>).unwrap();
    assert_eq!(echoed, None);
}

/// The `position`, `expected` and `found` of the BadResult of the test
/// function `name` read as `R`.
fn mismatch<R: py_in_mem::FromResult + std::fmt::Debug>(name: &str) -> (String, String, String) {
    mismatch_of(function(name).call::<R>(&[0.0]))
}

#[test]
fn a_result_of_the_wrong_shape_says_where() {
    // (1.0, [1, 2]) as a 3-tuple: the wrong arity.
    let (position, expected, found) = mismatch::<(f64, Vec<i64>, f64)>("tiny_tuple");
    assert_eq!(
        (position.as_str(), expected.as_str(), found.as_str()),
        ("", "a tuple of 3 elements", "a tuple of 2 elements")
    );
    // A wrong element inside the tuple.
    let (position, _, found) = mismatch::<(f64, f64)>("tiny_tuple");
    assert_eq!(
        (position.as_str(), found.as_str()),
        ("element 1 of the tuple", "an object of type list")
    );
    // A wrong element inside a list inside a tuple.
    let (position, _, found) = mismatch::<(f64, Vec<bool>)>("tiny_tuple");
    assert_eq!(
        (position.as_str(), found.as_str()),
        (
            "element 0 of the list in element 1 of the tuple",
            "an object of type int"
        )
    );
    // A wrong element inside a dict inside a tuple.
    let (position, _, found) = mismatch::<(Vec<f64>, HashMap<String, Vec<i64>>)>("nested");
    assert_eq!(
        (position.as_str(), found.as_str()),
        (
            "element 1 of the list in the value under key 'b' in element 1 of the tuple",
            "an object of type str"
        )
    );
    // A key that is no str.
    let (position, expected, found) = mismatch::<HashMap<String, f64>>("dict_with_int_key");
    assert_eq!(
        (position.as_str(), expected.as_str(), found.as_str()),
        ("key 1 of the dict", "a str key", "an object of type int")
    );
    // A str UTF-8 cannot hold.
    let (_, _, found) = mismatch::<String>("lone_surrogate");
    assert_eq!(
        found,
        "a str that UTF-8 cannot hold (it has lone surrogates)"
    );
    // The whole message.
    let err = function("tiny_tuple")
        .call::<(f64, f64)>(&[0.0])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_testfuncs.tiny_tuple returned an unexpected element 1 of the tuple: expected a number \
         that converts to f64 without loss (a Python or numpy scalar, or a 0-D numpy array), found \
         an object of type list"
    );
    // A right result right after: nothing was left over.
    let right: (f64, Vec<i64>) = function("tiny_tuple").call(&[0.0]).unwrap();
    assert_eq!(right, (1.0, vec![1, 2]));
}

#[test]
fn arrays_read_where_lists_do_not_and_back() {
    // A Vec of non-numbers from an array, an array from a list: refused.
    let err = function("identity")
        .call::<Vec<String>>(&[1.0])
        .unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err:?}");
    let err = function("as_list").call::<NdVec<f64>>(&[1.0]).unwrap_err();
    assert!(
        err.to_string().contains("returned an object of type list"),
        "{err}"
    );
    // A 1-D array is no scalar, a scalar no 1-D array.
    assert!(function("identity").call::<f64>(&[1.0]).is_err());
    assert!(function("total").call::<Vec<f64>>(&[1.0]).is_err());
    // But a number is a 0-D NdVec.
    let zero_d: NdVec<f64> = function("total").call(&[1.0, 2.0]).unwrap();
    assert_eq!((zero_d.shape(), zero_d.as_slice()), (&[][..], &[3.0][..]));
}

#[cfg(feature = "ndarray")]
mod with_ndarray {
    use super::*;
    use ndarray::{array, Array1, Array2, Array3, ArrayD, Axis};

    #[test]
    fn inverse_as_array2() {
        let inv: Array2<f64> = Function::load("numpy.linalg", "inv")
            .unwrap()
            .call(&array![[4.0, 7.0], [2.0, 6.0]])
            .unwrap();
        let expected = array![[0.6, -0.7], [-0.2, 0.4]];
        assert!(
            inv.iter().zip(&expected).all(|(a, b)| close(*a, *b)),
            "{inv}"
        );
        // The wrong rank is a BadResult that says the rank.
        let err = numpy("numpy.linalg", "inv")
            .call::<Array1<f64>>(&array![[4.0, 7.0], [2.0, 6.0]])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a 1-D numpy array of float64"),
            "{err}"
        );
    }

    #[test]
    fn eigh_as_vec_and_array2() {
        let sym = array![[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]];
        let (w, v): (Vec<f64>, Array2<f64>) = Function::load("numpy.linalg", "eigh")
            .unwrap()
            .call(&sym)
            .unwrap();
        let av = sym.dot(&v);
        for (k, wk) in w.iter().enumerate() {
            for i in 0..3 {
                assert!(close(av[[i, k]], wk * v[[i, k]]));
            }
        }
    }

    #[test]
    fn a_3d_array_reduced_over_two_axes() {
        let a = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (100 * i + 10 * j + k) as f64);
        let expected = a.sum_axis(Axis(2)).sum_axis(Axis(0));
        let sums: Array1<f64> = numpy("numpy", "sum")
            .arg(&a)
            .kwarg("axis", (0, 2))
            .call()
            .unwrap();
        assert_eq!(sums, expected);
        // The same through a transposed view: no copy, other strides.
        let t = a.view().reversed_axes(); // 4 × 3 × 2
        let sums: Array1<f64> = numpy("numpy", "sum")
            .arg(t)
            .kwarg("axis", (0, 2))
            .call()
            .unwrap();
        assert_eq!(sums, expected);
    }

    #[test]
    fn outer_as_array2_and_as_a_view() {
        let m: Array2<f64> = numpy("numpy", "outer")
            .arg(&[1.0, 2.0])
            .arg(&[3.0, 4.0, 5.0])
            .call()
            .unwrap();
        assert_eq!(m, array![[3.0, 4.0, 5.0], [6.0, 8.0, 10.0]]);
        let view: ResultView<f64> = numpy("numpy", "outer")
            .arg(&[1.0, 2.0])
            .arg(&[3.0])
            .call()
            .unwrap();
        assert_eq!(view.as_array(), array![[3.0], [6.0]].into_dyn());
        let any: ArrayD<f64> = numpy("numpy", "mean").call(&[1.0, 3.0]).unwrap();
        assert_eq!(any.ndim(), 0);
        assert_eq!(any.first(), Some(&2.0));
    }
}

/// A dict value of the wrong kind reads as a sentence, naming the key.
#[test]
fn a_dict_value_of_the_wrong_kind_is_named_in_a_sentence() {
    let f = Function::from_source(
        "results_dict_sentence",
        "def info(_=None):\n    return {'n': 64, 'name': 'digits'}\n",
        "info",
    )
    .unwrap();
    let err = f.call::<HashMap<String, i64>>(None::<f64>).unwrap_err();
    assert_eq!(
        err.to_string(),
        "results_dict_sentence.info returned an unexpected value under key 'name': \
         expected an integer that fits in i64 (a Python or numpy integer, or a 0-D numpy array \
         of one; a float is not read as an integer, even a whole one), found an object of type \
         str"
    );
}

#[test]
fn an_array_of_two_dimensions_or_more_reads_row_by_row_as_nested_vecs() {
    let eval = evaluator("pim_results_rows");
    let rows: Vec<Vec<f64>> = eval.call("np.arange(6.0).reshape(2, 3)").unwrap();
    assert_eq!(rows, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
    // Fortran order and strided views read by index, as numpy gives them.
    let rows: Vec<Vec<i64>> = eval
        .call("np.asfortranarray(np.arange(6).reshape(3, 2)).T[:, ::2]")
        .unwrap();
    assert_eq!(rows, [[0, 4], [1, 5]]);
    let cube: Vec<Vec<Vec<u8>>> = eval
        .call("np.arange(8, dtype=np.uint8).reshape(2, 2, 2)")
        .unwrap();
    assert_eq!(cube, [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]);
    let none: Vec<Vec<f64>> = eval.call("np.zeros((0, 3))").unwrap();
    assert!(none.is_empty());
    // A mismatch says which row; a matrix is no Vec of numbers.
    match eval.call::<Vec<Vec<i8>>>("np.array([[1, 2], [3, 300]])") {
        Err(Error::BadResult { position, .. }) => assert_eq!(position, "row 1 of the 2-D array"),
        other => panic!("{other:?}"),
    }
    match eval.call::<Vec<f64>>("np.zeros((2, 2))") {
        Err(Error::BadResult { found, .. }) => assert!(found.contains("2-D"), "{found}"),
        other => panic!("{other:?}"),
    }
    // A vector is no matrix: the position names the rank (trial 19).
    let err = eval
        .call::<Vec<Vec<f64>>>("np.array([1.5, 2.5])")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("returned an unexpected element 0 of the 1-D array: expected "),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("found an object of type numpy.float64"),
        "{err}"
    );
}

/// What scikit-learn's classifiers with string labels return: arrays of
/// strings (`<U`), of bytes (`S`) and of objects, read item by item, as
/// lists are.
#[test]
fn arrays_of_strings_bytes_and_objects_read_item_by_item() {
    let f = Function::from_source(
        "pim_results_string_arrays",
        "import numpy as np\n\
         VALUES = {\n\
         \x20   'labels': np.array(['cat', 'dog', 'émeu']),\n\
         \x20   'objects': np.array(['x', None, 'z'], dtype=object),\n\
         \x20   'floats': np.array([1.5, 2, np.float32(0.25)], dtype=object),\n\
         \x20   'mixed': np.array([1.5, 'k'], dtype=object),\n\
         \x20   'bytes': np.array([[b'ab', b'c'], [b'd', b'']]),\n\
         \x20   'grid': np.array([['a', 'b'], ['c', 'd'], ['e', 'f']]),\n\
         \x20   'empty': np.array([], dtype='<U1'),\n\
         \x20   'one': np.array('cat'),\n\
         \x20   'one number': np.array(2.5),\n\
         \x20   'proba': (np.array(['no', 'yes']), np.array([[0.25, 0.75]])),\n\
         }\n\
         def f(name):\n    return VALUES[name]\n",
        "f",
    )
    .unwrap();
    assert_eq!(
        f.call::<Vec<String>>("labels").unwrap(),
        ["cat", "dog", "émeu"]
    );
    assert_eq!(
        f.call::<Vec<Option<String>>>("objects").unwrap(),
        [Some("x".to_owned()), None, Some("z".to_owned())]
    );
    assert_eq!(f.call::<Vec<f64>>("floats").unwrap(), [1.5, 2.0, 0.25]);
    assert_eq!(
        f.call::<Vec<Vec<Vec<u8>>>>("bytes").unwrap(),
        [
            vec![b"ab".to_vec(), b"c".to_vec()],
            vec![b"d".to_vec(), vec![]]
        ]
    );
    assert_eq!(
        f.call::<Vec<Vec<String>>>("grid").unwrap(),
        [["a", "b"], ["c", "d"], ["e", "f"]]
    );
    assert!(f.call::<Vec<String>>("empty").unwrap().is_empty());
    // One string in a 0-D array (`np.array('cat')`), as numbers in one are.
    assert_eq!(f.call::<String>("one").unwrap(), "cat");
    let (_, _, found) = mismatch_of(f.call::<String>("one number"));
    assert_eq!(found, "a 0-D numpy array of dtype float64");
    let (classes, proba): (Vec<String>, Vec<Vec<f64>>) = f.call("proba").unwrap();
    assert_eq!(
        (classes, proba),
        (vec!["no".into(), "yes".into()], vec![vec![0.25, 0.75]])
    );
    // As a Value: lists (of lists), as tolist() gives.
    use py_in_mem::Value;
    assert_eq!(
        f.call::<Value>("objects").unwrap(),
        Value::list([Value::from("x"), Value::None, Value::from("z")])
    );
    assert_eq!(
        f.call::<Value>("bytes").unwrap(),
        Value::list([
            Value::list([Value::Bytes(b"ab".to_vec()), Value::Bytes(b"c".to_vec())]),
            Value::list([Value::Bytes(b"d".to_vec()), Value::Bytes(vec![])]),
        ])
    );
    // A mismatch names the element, as in a list.
    let (position, expected, found) = mismatch_of(f.call::<Vec<String>>("objects"));
    assert_eq!(
        (position.as_str(), expected.as_str(), found.as_str()),
        (
            "element 1 of the 1-D array",
            "a str",
            "an object of type NoneType"
        )
    );
    let (position, _, found) = mismatch_of(f.call::<Vec<f64>>("mixed"));
    assert_eq!(
        (position.as_str(), found.as_str()),
        ("element 1 of the 1-D array", "an object of type str")
    );
    let (position, _, found) = mismatch_of(f.call::<Vec<Vec<String>>>("bytes"));
    assert_eq!(
        (position.as_str(), found.as_str()),
        (
            "element 0 of the 1-D array in row 0 of the 2-D array",
            "an object of type numpy.bytes_"
        )
    );
    // Numbers from an array of strings: the array is the mismatch, since no
    // str is a number.
    let (position, _, found) = mismatch_of(f.call::<Vec<f64>>("labels"));
    assert_eq!(
        (position.as_str(), found.as_str()),
        ("", "a numpy array of dtype <U4")
    );
}

/// The `position`, `expected` and `found` of a BadResult.
fn mismatch_of<R: std::fmt::Debug>(result: Result<R, Error>) -> (String, String, String) {
    match result {
        Err(Error::BadResult {
            position,
            expected,
            found,
            ..
        }) => (position, expected, found),
        other => panic!("expected BadResult, got {other:?}"),
    }
}

#[test]
fn an_int_past_64_bits_reads_as_a_float_that_holds_it_exactly() {
    let f = Function::from_source(
        "pim_results_big_ints",
        "def f(shift, plus):\n    return 2**int(shift) + int(plus)\n",
        "f",
    )
    .unwrap();
    let big = |shift: i64, plus: i64| f.arg(shift).arg(plus);
    assert_eq!(big(70, 0).call::<f64>().unwrap(), 2f64.powi(70));
    assert_eq!(big(70, 0).call::<f32>().unwrap(), 2f32.powi(70));
    assert_eq!(
        big(70, 0).call::<Complex64>().unwrap(),
        Complex64::new(2f64.powi(70), 0.0)
    );
    // 2**70 + 1 is no float; 2**1100 is past them all; no integer type
    // holds 2**70.
    let err = big(70, 1).call::<f64>().unwrap_err();
    assert!(
        err.to_string().ends_with(
            "returned an int outside the ranges of int64 and uint64 that f64 does not hold \
             exactly, expected a number that converts to f64 without loss (a Python or numpy \
             scalar, or a 0-D numpy array)"
        ),
        "{err}"
    );
    assert!(big(1100, 0).call::<f64>().is_err());
    assert!(big(70, 0).call::<u64>().is_err());
    // 2**64 + 2**12 is an f64 but no f32.
    let (_, _, found) = mismatch_of(big(64, 4096).call::<f32>());
    assert_eq!(
        found,
        "an int outside the ranges of int64 and uint64 that f32 does not hold exactly"
    );
    assert_eq!(big(64, 4096).call::<f64>().unwrap(), 2f64.powi(64) + 4096.0);
}

/// A 1-D array of numbers asked for as a `Vec` of other than numbers
/// (`Option<f64>`, `Value`, `Object`) is read item by item, as a list of
/// the same numbers is; before, it was refused ("expected a list or
/// tuple"), though a list or an object array of them read.
#[test]
fn arrays_of_numbers_read_item_by_item_into_vecs_of_other_types() {
    let eval = evaluator("pim_results_numbers_by_item");
    let floats: Vec<Option<f64>> = eval.call("np.array([1.5, -2.0])").unwrap();
    assert_eq!(floats, [Some(1.5), Some(-2.0)]);
    let ints: Vec<Option<i64>> = eval.call("np.arange(3, dtype=np.int32)").unwrap();
    assert_eq!(ints, [Some(0), Some(1), Some(2)]);
    let values: Vec<py_in_mem::Value> = eval.call("np.array([True, False])").unwrap();
    assert_eq!(
        values,
        [py_in_mem::Value::Bool(true), py_in_mem::Value::Bool(false)]
    );
    let objects: Vec<py_in_mem::Object> = eval.call("np.array([7, 8], dtype=np.uint8)").unwrap();
    assert_eq!(objects.len(), 2);
    assert!(objects[1].is_instance_of("numpy.uint8").unwrap());
    assert_eq!(objects[1].getattr::<u8>("real").unwrap(), 8);
    let none: Vec<Option<f64>> = eval.call("np.array([])").unwrap();
    assert!(none.is_empty());
    // Numbers as Options are read whole, as a Vec of numbers is: a
    // mismatch is the array's.
    match eval.call::<Vec<Option<i64>>>("np.array([1.0, 2.5])") {
        Err(Error::BadResult {
            position, found, ..
        }) => assert_eq!(
            (position.as_str(), found.as_str()),
            ("", "a numpy array of dtype float64")
        ),
        other => panic!("{other:?}"),
    }
    let big: Vec<Option<u8>> = eval.call("np.arange(250, 256, dtype=np.int64)").unwrap();
    assert_eq!(big, (250..=255).map(Some).collect::<Vec<_>>());
    match eval.call::<Vec<Option<u8>>>("np.arange(254, 257, dtype=np.int64)") {
        Err(Error::BadResult { found, .. }) => assert!(found.contains("256"), "{found}"),
        other => panic!("{other:?}"),
    }
    let whole: Vec<f64> = eval.call("np.array([0.5, 1.0])").unwrap();
    assert_eq!(whole, [0.5, 1.0]);
    let rows: Vec<Vec<Option<f64>>> = eval.call("np.eye(2)").unwrap();
    assert_eq!(rows, [[Some(1.0), Some(0.0)], [Some(0.0), Some(1.0)]]);
}

/// float16 reads as the float it is, everywhere a float32 does (every
/// float16 is exactly an f32): a scalar, an array, a `Value` (an array as
/// float32). A view in place still needs the dtype exactly. Before, it was
/// refused by every type.
#[test]
fn float16_reads_as_the_float_it_is() {
    let eval = evaluator("pim_results_float16");
    let halves = "np.array([0.1, -2.5, 65504, 6e-8, np.inf], dtype=np.float16)";
    // What Python itself makes of each, as float64.
    let python: Vec<f64> = eval.call(format!("[float(x) for x in {halves}]")).unwrap();
    assert_eq!(python[0], 0.0999755859375);
    let read: Vec<f64> = eval.call(halves).unwrap();
    assert_eq!(read, python);
    let read32: Vec<f32> = eval.call(halves).unwrap();
    assert_eq!(
        read32.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
        python
    );
    assert_eq!(eval.call::<f64>("np.float16(1.5)").unwrap(), 1.5);
    assert_eq!(eval.call::<f32>("np.float16(-0.25)").unwrap(), -0.25);
    let grid: Vec<Vec<f64>> = eval.call("np.ones((2, 2), dtype=np.float16)").unwrap();
    assert_eq!(grid, [[1.0, 1.0], [1.0, 1.0]]);
    let value: py_in_mem::Value = eval.call("np.float16(0.5)").unwrap();
    assert_eq!(value, py_in_mem::Value::Float(0.5));
    // As a Value, the float32 array that holds each value exactly.
    let value: py_in_mem::Value = eval.call(halves).unwrap();
    let py_in_mem::Value::Array(py_in_mem::ArrayValue::Float32(array)) = value else {
        panic!("{value:?}");
    };
    assert_eq!(
        array
            .as_slice()
            .iter()
            .map(|&x| f64::from(x))
            .collect::<Vec<_>>(),
        python
    );
    // Not an integer, and no view of another dtype.
    assert!(matches!(
        eval.call::<i64>("np.float16(2.0)"),
        Err(Error::BadResult { .. })
    ));
    assert!(matches!(
        eval.call::<ResultView<f32>>(halves),
        Err(Error::BadResult { .. })
    ));
}

/// Dates and durations are not read; the message says what to return.
#[test]
fn dates_are_refused_with_what_to_return_instead() {
    let eval = evaluator("pim_results_dates");
    for source in [
        "np.array(['2024-01-01', '2024-01-02'], dtype='datetime64[D]')",
        "np.array([1, 2], dtype='timedelta64[s]')",
        "np.datetime64('2024-01-01')",
        "np.timedelta64(3, 'h')",
    ] {
        match eval.call::<Vec<i64>>(source) {
            Err(Error::BadResult { found, .. }) => {
                assert!(found.contains(".astype('int64')"), "{source}: {found}")
            }
            other => panic!("{source}: {other:?}"),
        }
    }
    // What the message says to do works.
    let days: Vec<i64> = eval
        .call("np.array(['1970-01-03'], dtype='datetime64[D]').astype('int64')")
        .unwrap();
    assert_eq!(days, [2]);
}

/// A function of `module` that returns Python's `eval` of its argument,
/// with numpy as `np`.
fn evaluator(module: &str) -> Function {
    Function::from_source(
        module,
        "import numpy as np\ndef f(source):\n    return eval(source)\n",
        "f",
    )
    .unwrap()
}

/// A `numpy.matrix` (whose rows are 1 × n matrices) reads row by row as a
/// plain 2-D array does. Before, each row was a 2-D matrix, refused as a
/// `Vec<f64>` ("found a 2-D numpy array") and read as one array by `Value`.
#[test]
fn a_numpy_matrix_reads_row_by_row_as_an_array_does() {
    let eval = evaluator("pim_results_matrix");
    let source = "np.matrix([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])";
    let rows: Vec<Vec<f64>> = eval.call(source).unwrap();
    assert_eq!(rows, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    let values: Vec<Vec<py_in_mem::Value>> = eval.call(source).unwrap();
    assert_eq!(
        values[2],
        [py_in_mem::Value::Float(5.0), py_in_mem::Value::Float(6.0)]
    );
    let whole: NdVec<f64> = eval.call(source).unwrap();
    assert_eq!(whole.shape(), [3, 2]);
    // A memmap, another subclass read as an array, row by row too.
    let dir = std::env::temp_dir().join(format!("pim_matrix_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("m.dat");
    let source = format!(
        "np.memmap({:?}, dtype=np.int32, mode='w+', shape=(2, 2))",
        file.display().to_string()
    );
    let mapped: Vec<Vec<i32>> = eval.call(source.as_str()).unwrap();
    assert_eq!(mapped, [[0, 0], [0, 0]]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `i128` and `u128` read any Python int in their ranges (beyond 64 bits
/// too), numpy's integers and 0-D arrays of them; out of range, a bool or a
/// float is a `BadResult` saying what it found.
#[test]
fn ints_beyond_64_bits_read_as_i128_and_u128() {
    let eval = evaluator("pim_results_wide");
    let wide = |source: &str| eval.call::<i128>(source);
    assert_eq!(wide("2**100").unwrap(), 1 << 100);
    assert_eq!(wide("-2**100 - 7").unwrap(), -(1 << 100) - 7);
    assert_eq!(wide("-2**127").unwrap(), i128::MIN);
    assert_eq!(wide("2**127 - 1").unwrap(), i128::MAX);
    assert_eq!(wide("-5").unwrap(), -5);
    assert_eq!(wide("2**64").unwrap(), 1 << 64);
    assert_eq!(wide("-2**64 + 3").unwrap(), -(1 << 64) + 3);
    assert_eq!(wide("np.int64(-9)").unwrap(), -9);
    assert_eq!(wide("np.uint64(2**64 - 1)").unwrap(), u64::MAX.into());
    assert_eq!(wide("np.array(-3, dtype=np.int8)").unwrap(), -3);
    let unsigned = |source: &str| eval.call::<u128>(source);
    assert_eq!(unsigned("2**128 - 1").unwrap(), u128::MAX);
    assert_eq!(unsigned("2**127").unwrap(), 1 << 127);
    assert_eq!(unsigned("3 * 2**70 + 11").unwrap(), 3 * (1 << 70) + 11);
    assert_eq!(unsigned("np.uint8(200)").unwrap(), 200);
    let lists: Vec<i128> = eval.call("[1, -2**90, np.int32(4)]").unwrap();
    assert_eq!(lists, [1, -(1 << 90), 4]);
    let items: Vec<u128> = eval.call("np.array([7, 8], dtype=np.uint16)").unwrap();
    assert_eq!(items, [7, 8]);

    let found = |result: Result<i128, Error>| match result {
        Err(Error::BadResult {
            expected, found, ..
        }) => {
            assert!(
                expected.starts_with("an integer that fits in i128"),
                "{expected}"
            );
            found
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        found(wide("2**127")),
        "170141183460469231731687303715884105728 in an object of type int"
    );
    assert_eq!(found(wide("-2**200")), "an int outside the range of int128");
    assert_eq!(found(wide("True")), "an object of type bool");
    assert_eq!(found(wide("3.0")), "an object of type float");
    // An array is found as what `i64` finds it.
    let Err(Error::BadResult { found: as_i64, .. }) = eval.call::<i64>("np.array([1, 2])") else {
        panic!("an array read as i64")
    };
    assert_eq!(found(wide("np.array([1, 2])")), as_i64);
    match unsigned("-1") {
        Err(Error::BadResult { found, .. }) => assert_eq!(found, "-1 in an object of type int"),
        other => panic!("{other:?}"),
    }
    match unsigned("2**128") {
        Err(Error::BadResult { found, .. }) => {
            assert_eq!(found, "an int outside the range of uint128")
        }
        other => panic!("{other:?}"),
    }
}

/// `i128` and `u128` arguments arrive as the Python ints of their values.
#[test]
fn i128_and_u128_arguments_arrive_as_python_ints() {
    let show = Function::from_source(
        "pim_args_wide",
        "def f(x):\n    return type(x).__name__ + ' ' + str(x)\n",
        "f",
    )
    .unwrap();
    for value in [
        0,
        -1,
        i128::from(i64::MIN),
        i128::from(u64::MAX),
        -(1 << 64),
        -(1 << 64) - 1,
        (1 << 100) + 12345,
        i128::MIN,
        i128::MAX,
    ] {
        let shown: String = show.call(value).unwrap();
        assert_eq!(shown, format!("int {value}"));
        let back: i128 = function("echo").call(value).unwrap();
        assert_eq!(back, value);
    }
    for value in [0, u128::from(u64::MAX) + 1, 1 << 127, u128::MAX] {
        let shown: String = show.call(value).unwrap();
        assert_eq!(shown, format!("int {value}"));
        let back: u128 = function("echo").call(value).unwrap();
        assert_eq!(back, value);
    }
    assert_eq!(py_in_mem::Scalar::from(7i128), py_in_mem::Scalar::Int(7));
    assert_eq!(
        py_in_mem::Scalar::from(u128::from(u64::MAX)),
        py_in_mem::Scalar::UInt(u64::MAX)
    );
    assert_eq!(
        py_in_mem::Scalar::from(u128::MAX),
        py_in_mem::Scalar::UInt128(u128::MAX)
    );
}

/// A structured view of the input (`numpy.void` items, which point into the
/// array) is not read item by item: a `Vec` of other than numbers of it is
/// a mismatch, as it was before 1-D arrays were listed. Listed, its items
/// held the lent input, and the crate's own reading was found keeping it:
/// the process aborted (trial 19: 3 of 3 runs).
#[test]
fn a_structured_view_of_the_input_is_a_mismatch_not_listed() {
    let view = Function::from_source(
        "pim_results_structured",
        "def f(x):\n    return x.view([('a', 'f8')])\n",
        "f",
    )
    .unwrap();
    let data = vec![1.0, 2.0, 3.0];
    match view.call::<Vec<py_in_mem::Object>>(&data) {
        Err(Error::BadResult { found, .. }) => {
            assert!(found.contains("[('a', '<f8')]"), "{found}")
        }
        other => panic!("{:?}", other.map(|items| items.len())),
    }
    assert!(matches!(
        view.call::<Vec<py_in_mem::Value>>(&data),
        Err(Error::BadResult { .. })
    ));
    // The same call goes on working, and numbers still list.
    let listed: Vec<Option<f64>> = evaluator("pim_results_listed")
        .call("np.array([1.5, 2.5])")
        .unwrap();
    assert_eq!(listed, [Some(1.5), Some(2.5)]);
}

/// An item read by a reader of your own that runs Python code (a
/// property) which changes the list or dict being read: the read is a
/// mismatch saying so, not a shorter list or a longer dict read as if
/// nothing happened (trial 19: 5 items read as 2; 3 entries as 13).
#[test]
fn a_container_changed_while_it_is_read_is_a_mismatch() {
    struct Weight(f64);
    impl py_in_mem::FromResult for Weight {
        fn from_result(value: py_in_mem::Reader<'_>) -> Result<Self, py_in_mem::Mismatch> {
            Ok(Weight(value.getattr::<f64>("v")?))
        }
    }
    let changing = Function::from_source(
        "pim_results_changing",
        "class P:
    def __init__(self, into, i, change):
        self.into, self.i, self.change = into, i, change
    @property
    def v(self):
        if self.i == 0:
            self.change(self.into)
        return float(self.i)

def shrink(lst):
    del lst[2:]

def grow(lst):
    lst.append(P(lst, 9, None))

def grow_dict(d):
    for k in range(100, 110):
        d[str(k)] = P(d, k, None)

def listed(change):
    out = []
    out.extend(P(out, i, globals()[change]) for i in range(5))
    return out

def keyed(_):
    d = {}
    for i in range(3):
        d[str(i)] = P(d, i, grow_dict)
    return d
",
        "listed",
    )
    .unwrap();
    for (change, found) in [
        (
            "shrink",
            "a list that changed length while it was read (5 items, then 2)",
        ),
        (
            "grow",
            "a list that changed length while it was read (5 items, then 6)",
        ),
    ] {
        match changing.call::<Vec<Weight>>(change) {
            Err(Error::BadResult { found: got, .. }) => assert_eq!(got, found),
            other => panic!("{change}: {:?}", other.map(|read| read.len())),
        }
    }
    let keyed = Function::load("pim_results_changing", "keyed").unwrap();
    match keyed.call::<HashMap<String, Weight>>(0) {
        Err(Error::BadResult { found, .. }) => assert_eq!(
            found,
            "a dict that changed size while it was read (3 entries, then 13)"
        ),
        other => panic!("{:?}", other.map(|read| read.len())),
    }
    // A list nobody changes reads whole.
    let fixed = Function::from_source(
        "pim_results_unchanged",
        "class P:\n    def __init__(self, i):\n        self.v = float(i)\ndef f(_):\n    return [P(i) for i in range(5)]\n",
        "f",
    )
    .unwrap();
    let read: Vec<Weight> = fixed.call(0).unwrap();
    assert_eq!(
        read.iter().map(|w| w.0).collect::<Vec<_>>(),
        [0.0, 1.0, 2.0, 3.0, 4.0]
    );
}

/// An object that converts to an array (`__array__`: a pandas `Series` or
/// `DataFrame`, an xarray or torch array) is not read as one, since the
/// conversion may drop what it holds besides its values; the message says
/// what to return. A numpy scalar (which has `__array__` too) is not
/// described so.
#[test]
fn an_object_that_converts_to_an_array_is_refused_with_what_to_return() {
    let eval = Function::from_source(
        "pim_results_array_like",
        "import numpy as np
class Series:
    def __init__(self, values):
        self.values = np.asarray(values)
    def __array__(self, dtype=None, copy=None):
        return self.values
    def to_numpy(self):
        return self.values
def f(source):
    return eval(source)
",
        "f",
    )
    .unwrap();
    match eval.call::<Vec<f64>>("Series([1.0, 2.0])") {
        Err(Error::BadResult { found, .. }) => assert_eq!(
            found,
            "an object of type Series (it converts to a numpy array, which may drop what it \
             holds besides its values: return numpy.asarray() of it, or its .to_numpy(), to \
             read its values as an array)"
        ),
        other => panic!("{other:?}"),
    }
    // What the message says to do works.
    let values: Vec<f64> = eval.call("Series([1.0, 2.0]).to_numpy()").unwrap();
    assert_eq!(values, [1.0, 2.0]);
    match eval.call::<String>("np.float64(2.5)") {
        Err(Error::BadResult { found, .. }) => {
            assert!(!found.contains("converts to a numpy array"), "{found}")
        }
        other => panic!("{other:?}"),
    }
}
