//! `Function`: every dtype pair through an identity function, every bad
//! output kind as the right error, several arrays, keyword arguments, 2-D
//! input, source compiled into the binary, and zero-copy results.

mod common;

use common::test_func;
use py_in_mem::{Element, Error, Function, Matrix};

fn function(name: &str) -> Function {
    test_func(name); // puts tests/python on sys.path
    Function::load("pim_testfuncs", name).unwrap()
}

/// What numpy's value `v` of `T` should read as in `U`: the crate's rule,
/// written out independently of the crate: bool only to bool, integers to
/// integers and floats, floats to floats; each value only if exact.
fn expected<T: Element, U: Element>(
    values: &[f64],
    from_f64: fn(f64) -> Option<U>,
) -> Option<Vec<U>> {
    let kinds_ok = match (T::NUMPY_DTYPE, U::NUMPY_DTYPE) {
        ("bool", "bool") => true,
        ("bool", _) | (_, "bool") => false,
        (t, u) if t.starts_with("float") => u.starts_with("float"),
        _ => true,
    };
    if !kinds_ok {
        return None;
    }
    values.iter().map(|v| from_f64(*v)).collect()
}

macro_rules! dtype_pairs {
    ($values:expr; $($t:ty),*) => {{
        let mut checked = 0;
        $( checked += dtype_pairs!(@from $t; $values); )*
        checked
    }};
    (@from $t:ty; $values:expr) => {{
        let values: Vec<$t> = $values.iter().map(|v: &u8| *v as $t).collect();
        let identity = function("identity");
        let mut checked = 0;
        dtype_pairs!(@pair $t, f64, values, identity, checked, |x: f64| Some(x));
        dtype_pairs!(@pair $t, f32, values, identity, checked, |x: f64| Some(x as f32).filter(|f| f64::from(*f) == x));
        dtype_pairs!(@pair $t, i8, values, identity, checked, |x: f64| Some(x as i8).filter(|i| f64::from(*i) == x));
        dtype_pairs!(@pair $t, i16, values, identity, checked, |x: f64| Some(x as i16).filter(|i| f64::from(*i) == x));
        dtype_pairs!(@pair $t, i32, values, identity, checked, |x: f64| Some(x as i32).filter(|i| f64::from(*i) == x));
        dtype_pairs!(@pair $t, i64, values, identity, checked, |x: f64| Some(x as i64).filter(|i| *i as f64 == x));
        dtype_pairs!(@pair $t, u8, values, identity, checked, |x: f64| Some(x as u8).filter(|i| f64::from(*i) == x));
        dtype_pairs!(@pair $t, u16, values, identity, checked, |x: f64| Some(x as u16).filter(|i| f64::from(*i) == x));
        dtype_pairs!(@pair $t, u32, values, identity, checked, |x: f64| Some(x as u32).filter(|i| f64::from(*i) == x));
        dtype_pairs!(@pair $t, u64, values, identity, checked, |x: f64| Some(x as u64).filter(|i| *i as f64 == x));
        dtype_pairs!(@pair $t, bool, values, identity, checked, |x: f64| Some(x != 0.0));
        checked
    }};
    (@pair $t:ty, $u:ty, $values:ident, $identity:ident, $checked:ident, $conv:expr) => {{
        let got = $identity.call::<Vec<$u>>(&$values);
        let as_f64: Vec<f64> = $values.iter().map(|v| *v as f64).collect();
        match expected::<$t, $u>(&as_f64, $conv) {
            Some(want) => assert_eq!(got.unwrap(), want, "{} -> {}", stringify!($t), stringify!($u)),
            None => match got {
                Err(Error::BadResult { expected, found, .. }) => {
                    assert!(expected.contains(<$u>::NUMPY_DTYPE), "{expected}");
                    assert!(found.contains(<$t>::NUMPY_DTYPE), "{found}");
                }
                other => panic!("{} -> {}: expected BadResult, got {other:?}", stringify!($t), stringify!($u)),
            },
        }
        $checked += 1;
    }};
}

#[test]
fn every_dtype_pair_round_trips_through_identity() {
    // 0 and 1 fit every type; all 11 × 11 pairs are checked.
    let checked = dtype_pairs!([0u8, 1, 1, 0]; f64, f32, i8, i16, i32, i64, u8, u16, u32, u64);
    assert_eq!(checked, 10 * 11);
    let bools = [true, false, true];
    let identity = function("identity");
    assert_eq!(identity.call::<Vec<bool>>(&bools).unwrap(), bools);
    for err in [
        identity.call::<Vec<i64>>(&bools).unwrap_err(),
        identity.call::<Vec<f64>>(&bools).unwrap_err(),
    ] {
        assert!(matches!(err, Error::BadResult { .. }), "{err:?}");
    }
}

#[test]
fn values_convert_only_without_loss() {
    let identity = function("identity");
    // Widening is always fine.
    assert_eq!(
        identity.call::<Vec<i64>>(&[i32::MIN, i32::MAX]).unwrap(),
        [i32::MIN as i64, i32::MAX as i64]
    );
    assert_eq!(
        identity.call::<Vec<f64>>(&[0.1f32]).unwrap(),
        [f64::from(0.1f32)]
    );
    assert_eq!(identity.call::<Vec<i8>>(&[5u64]).unwrap(), [5]);
    // Each lossy value is an error that names it.
    let cases: [(Error, &str); 6] = [
        (
            identity.call::<Vec<u8>>(&[1i64, -1]).unwrap_err(),
            "-1 at position 1 of a numpy array of dtype int64",
        ),
        (
            identity.call::<Vec<i8>>(&[300i64]).unwrap_err(),
            "300 at position 0 of a numpy array of dtype int64",
        ),
        (
            identity.call::<Vec<f64>>(&[(1i64 << 53) + 1]).unwrap_err(),
            "9007199254740993 at position 0",
        ),
        (
            identity.call::<Vec<f32>>(&[0.1]).unwrap_err(),
            "0.1 at position 0 of a numpy array of dtype float64",
        ),
        (
            identity.call::<Vec<i64>>(&[1.0]).unwrap_err(),
            "a numpy array of dtype float64",
        ),
        (
            identity.call::<Vec<i64>>(&[u64::MAX]).unwrap_err(),
            "18446744073709551615 at position 0",
        ),
    ];
    for (err, found_start) in cases {
        match err {
            Error::BadResult {
                function, found, ..
            } => {
                assert_eq!(function, "pim_testfuncs.identity");
                assert!(found.starts_with(found_start), "{found}");
            }
            other => panic!("{other:?}"),
        }
    }
    // NaN and infinities are floats like any other.
    let specials = function("returns_nan").call::<Vec<f64>>(&[0.0]).unwrap();
    assert!(
        specials[0].is_nan() && specials[1] == f64::INFINITY && specials[2] == f64::NEG_INFINITY
    );
    let narrowed = function("returns_nan").call::<Vec<f32>>(&[0.0]).unwrap();
    assert!(narrowed[0].is_nan() && narrowed[1] == f32::INFINITY);
}

#[test]
fn each_bad_output_kind_is_the_right_error() {
    let cases = [
        ("returns_none", "an object of type NoneType"),
        ("returns_2d", "a 2-D numpy array of dtype int64"),
        ("returns_0d", "a 0-D numpy array of dtype int64"),
        ("returns_floats", "a numpy array of dtype float64"),
        ("returns_complex", "a numpy array of dtype complex128"),
        ("returns_strings", "a numpy array of dtype <U1"),
    ];
    for (func, found_expected) in cases {
        match function(func).call::<Vec<i64>>(&[1.0]) {
            Err(Error::BadResult {
                expected, found, ..
            }) => {
                assert_eq!(found, found_expected, "{func}");
                assert!(
                    expected.starts_with("a 1-D numpy array of int64"),
                    "{expected}"
                );
            }
            other => panic!("{func}: {other:?}"),
        }
    }
    // An array of objects is read item by item, as a list: the mismatch is
    // its element 1, a str.
    match function("returns_objects").call::<Vec<i64>>(&[1.0]) {
        Err(Error::BadResult {
            position, found, ..
        }) => assert_eq!(
            (position.as_str(), found.as_str()),
            ("element 1 of the 1-D array", "an object of type str")
        ),
        other => panic!("{other:?}"),
    }
    // A Python list of ints is a Vec<i64> too (a list of anything else is
    // not: see tests/results.rs).
    assert_eq!(
        function("returns_list").call::<Vec<i64>>(&[1.0]).unwrap(),
        [0]
    );
    // float16 reads as the floats it holds (tests/results.rs has more).
    assert_eq!(
        function("returns_float16")
            .call::<Vec<f64>>(&[1.0])
            .unwrap(),
        [1.0]
    );
}

#[test]
fn byte_order_and_strides_are_read() {
    assert_eq!(
        function("returns_big_endian_floats")
            .call::<Vec<f64>>(&[0.0])
            .unwrap(),
        [1.5, 2.5]
    );
    assert_eq!(
        function("returns_reversed_stride")
            .call::<Vec<i64>>(&[0.0; 5])
            .unwrap(),
        [4, 2, 0]
    );
    assert_eq!(
        function("returns_unaligned")
            .call::<Vec<u8>>(&[0.0])
            .unwrap(),
        [2, 0, 1]
    );
    // A bool view of bytes other than 0 and 1 reads as numpy's truth.
    assert_eq!(
        function("returns_bool_bytes")
            .call::<Vec<bool>>(&[0.0])
            .unwrap(),
        [false, true, true]
    );
}

#[test]
fn several_arrays_and_scalar_keywords() {
    let add = function("add");
    assert_eq!(
        add.arg(&[1i32, 2])
            .arg(&vec![10i32, 20])
            .call::<Vec<i64>>()
            .unwrap(),
        [11, 22]
    );
    // Mixed dtypes promote in numpy as usual.
    assert_eq!(
        add.arg(&[1u8, 2])
            .arg(&[0.5f64, 0.5])
            .call::<Vec<f64>>()
            .unwrap(),
        [1.5, 2.5]
    );
    let kinds = function("kwarg_kinds")
        .arg(&[1.0, 2.0, 3.0])
        .kwarg("flag", true)
        .kwarg("n", 7)
        .kwarg("x", 2.5)
        .kwarg("s", "hi")
        .call::<Vec<bool>>()
        .unwrap();
    assert_eq!(kinds, [true; 5]);
    assert_eq!(
        function("no_args")
            .kwarg("n", 4)
            .call::<Vec<i64>>()
            .unwrap(),
        [0, 1, 2, 3]
    );
    let err = add
        .arg(&[1.0])
        .kwarg("nope", 1)
        .call::<Vec<f64>>()
        .unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));
    assert!(err.to_string().contains("'nope'"), "{err}");
}

#[test]
fn matrices_are_lent_in_c_order() {
    let data: Vec<f64> = (0..6).map(f64::from).collect();
    let matrix = Matrix::new(&data, 2, 3).unwrap();
    assert_eq!(
        function("shape_of").arg(matrix).call::<Vec<i64>>().unwrap(),
        [2, 3]
    );
    assert_eq!(
        function("row_sums").arg(matrix).call::<Vec<f64>>().unwrap(),
        [3.0, 12.0]
    );
    assert_eq!(
        function("first_row")
            .arg(matrix)
            .call::<Vec<f64>>()
            .unwrap(),
        [0.0, 1.0, 2.0]
    );
    let ints = [1i16, 2, 3, 4];
    assert_eq!(
        function("row_sums")
            .arg(Matrix::new(&ints, 2, 2).unwrap())
            .call::<Vec<i64>>()
            .unwrap(),
        [3, 7]
    );
    assert!(matches!(
        Matrix::new(&data, 4, 2),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Matrix::new(&data, usize::MAX, 2),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn source_compiled_into_the_binary() {
    let source = "import numpy as np\n\ndef spread(x):\n    return np.array([x.max() - x.min()])\n\ndef fail(x):\n    raise KeyError('k')\n";
    let spread = Function::from_source("pim_embedded", source, "spread").unwrap();
    assert_eq!(spread.name(), "pim_embedded.spread");
    assert_eq!(spread.call::<Vec<f64>>(&[1.0, 5.0, 3.0]).unwrap(), [4.0]);
    // Tracebacks show the embedded source's lines.
    let fail = Function::from_source("pim_embedded", source, "fail").unwrap();
    let err = fail.call::<Vec<f64>>(&[1.0]).unwrap_err();
    assert_eq!(err.to_string(), "KeyError: 'k'");
    let traceback = err.traceback().unwrap();
    assert!(
        traceback.contains("File \"<py-in-mem:pim_embedded>\", line 7"),
        "{traceback}"
    );
    assert!(traceback.contains("raise KeyError('k')"), "{traceback}");
    // Errors in the source name the module and line.
    let err = Function::from_source("pim_broken", "x = 1\ndef f(:\n", "f").unwrap_err();
    assert_eq!(err.py_type(), Some("SyntaxError"));
    assert!(
        err.to_string().contains("<py-in-mem:pim_broken>, line 2"),
        "{err}"
    );
    let err =
        Function::from_source("pim_raises", "raise ImportError('at import')\n", "f").unwrap_err();
    assert!(matches!(err, Error::Import { .. }), "{err:?}");
    assert_eq!(
        err.exception().unwrap().to_string(),
        "ImportError: at import"
    );
    let err = Function::from_source("pim_embedded", source, "np").unwrap_err();
    assert_eq!(
        err.to_string(),
        "TypeError: pim_embedded.np is a module, which is not callable"
    );
}

#[test]
fn zero_copy_results_read_numpy_memory() {
    let scale = Function::from_source("pim_view", "def f(x):\n    return x * 2\n", "f").unwrap();
    let view = scale.call_view::<f64>(&[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(&*view, &[2.0, 4.0, 6.0]);
    let bools = function("identity")
        .call_view::<bool>(&[true, false])
        .unwrap();
    assert_eq!(&*bools, &[true, false]);
    // Exact dtype only; strided and foreign results are copied once in numpy.
    let err = scale.call_view::<f32>(&[1.0]).unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err:?}");
    let strided = function("returns_reversed_stride")
        .call_view::<i16>(&[0.0; 5])
        .unwrap();
    assert_eq!(&*strided, &[4, 2, 0]);
    let err = function("returns_bool_bytes")
        .call_view::<bool>(&[0.0])
        .unwrap_err();
    match err {
        Error::BadResult { found, .. } => assert!(found.contains("other than 0 and 1"), "{found}"),
        other => panic!("{other:?}"),
    }
    let empty = function("returns_empty").call_view::<i64>(&[0.0]).unwrap();
    assert!(empty.is_empty());
    // Dropped on another thread.
    std::thread::spawn(move || drop(view)).join().unwrap();
}

#[test]
fn a_zero_copy_result_python_can_still_reach_is_copied_first() {
    // The function keeps a weak reference to its result; through it, Python
    // could write the array while Rust reads it, so the view is of a copy.
    let view = function("result_with_weakref")
        .call_view::<f64>(&[1.0, 2.0])
        .unwrap();
    let original_gone = function("write_through_weakref")
        .call::<Vec<bool>>(&[0.0])
        .unwrap();
    assert_eq!(
        &*view,
        &[2.0, 4.0],
        "Python wrote the memory the view reads"
    );
    assert_eq!(original_gone, [true], "the view kept Python's own array");
}

/// What a call sees of the array lent for `data`, as Python describes it.
fn describe_lent<T: Element>(data: &[T]) -> String {
    function("describe_lent").call::<String>(data).unwrap()
}

/// What a new lent array over `data` must look like to Python.
fn expected_lent<T: Element + std::fmt::Display>(data: &[T], itemsize: usize) -> String {
    let items: Vec<String> = data.iter().map(|v| v.to_string()).collect();
    let shape = format!("({},)", data.len());
    format!(
        "({shape}, ({itemsize},), '{}', {}, True, True, False, True, False, 'PyCapsule', [{}])",
        T::NUMPY_DTYPE,
        data.as_ptr() as usize,
        items.join(", ")
    )
}

#[test]
fn a_lent_array_reused_for_the_next_call_is_what_a_new_one_is() {
    // Lends of several lengths, dtypes and addresses, one after another: the
    // array object of one call may be re-pointed for the next, and every
    // call must see exactly what a new array shows.
    let a = vec![1.5, 2.5, 3.5, 4.5, 5.5];
    let b = vec![7i32, 8, 9];
    let c = vec![0.25f64];
    for _ in 0..3 {
        assert_eq!(describe_lent(&a), expected_lent(&a, 8));
        assert_eq!(describe_lent(&b), expected_lent(&b, 4));
        assert_eq!(describe_lent(&c), expected_lent(&c, 8));
        assert_eq!(describe_lent(&a[1..3]), expected_lent(&a[1..3], 8));
    }
    // The same for the unchecked lend, which keeps an array object of its
    // own for the next call.
    let unchecked = |data: &[f64]| -> String {
        // SAFETY: describe_lent keeps nothing of its argument.
        unsafe { function("describe_lent").call_unchecked::<String>(data) }.unwrap()
    };
    for _ in 0..3 {
        assert_eq!(unchecked(&a), expected_lent(&a, 8));
        assert_eq!(unchecked(&a[2..]), expected_lent(&a[2..], 8));
        assert_eq!(unchecked(&c), expected_lent(&c, 8));
    }
    // A call that changes the lent array's shape or dtype in place: the
    // next calls still see a new-looking 1-D array of their own dtype.
    for changer in ["reshape_in_place", "retype_in_place"] {
        assert_eq!(function(changer).call::<i64>(&a).unwrap(), 0);
        assert_eq!(describe_lent(&a), expected_lent(&a, 8), "after {changer}");
        assert_eq!(describe_lent(&b), expected_lent(&b, 4), "after {changer}");
    }
}

#[test]
fn keyword_names_kept_between_calls_follow_each_call_s_own() {
    // The names of the last call with keywords are kept, as the tuple Python
    // takes them in; every call must still pass exactly its own.
    let f = function("keywords_seen");
    let x = [0.0];
    for _ in 0..3 {
        let seen: String = f.arg(&x).kwarg("a", 1).call().unwrap();
        assert_eq!(seen, "[('a', 1)]");
        let seen: String = f.arg(&x).kwarg("a", 2).call().unwrap();
        assert_eq!(seen, "[('a', 2)]");
        let seen: String = f.arg(&x).kwarg("b", 3).kwarg("a", 4).call().unwrap();
        assert_eq!(seen, "[('a', 4), ('b', 3)]");
        let seen: String = f.arg(&x).kwarg("b", 5).call().unwrap();
        assert_eq!(seen, "[('b', 5)]");
        let seen: String = f.arg(&x).kwarg("ab", 6).call().unwrap();
        assert_eq!(seen, "[('ab', 6)]");
        let seen: String = f.call(&x).unwrap();
        assert_eq!(seen, "[]");
    }
}

/// Python refuses f(a=1, a=2), and CPython's vectorcall requires unique
/// keyword names: a repeated name is an error before the call.
#[test]
fn a_keyword_given_twice_is_an_error_before_the_call() {
    let f = Function::from_source(
        "fn_repeated_kw",
        "CALLS = []\ndef f(*args, **kw):\n    CALLS.append(kw)\n    return len(kw)\ndef calls(_=None):\n    return len(CALLS)\n",
        "f",
    )
    .unwrap();
    let err = f.kwarg("a", 1).kwarg("a", 2).call::<i64>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: keyword argument 'a' given more than once in a call of fn_repeated_kw.f"
    );
    let err = f
        .arg(&[1.0, 2.0])
        .kwarg("a", 1)
        .kwarg("b", 2)
        .kwarg("a", 3)
        .call::<i64>()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let calls = Function::load("fn_repeated_kw", "calls").unwrap();
    assert_eq!(calls.call::<i64>(None::<f64>).unwrap(), 0, "f ran");
    // Distinct names still go through.
    assert_eq!(f.kwarg("a", 1).kwarg("b", 2).call::<i64>().unwrap(), 2);
}

/// `Call::call0`: the builder's keyword arguments and deadline, no
/// positional argument; one given is an invalid argument, Python not
/// called.
#[test]
fn call0_on_a_builder_takes_its_keywords_and_deadline_and_no_positional_argument() {
    let f = Function::from_source(
        "pim_function_call0",
        "CALLS = [0]\ndef f(scale=1):\n    CALLS[0] += 1\n    return 2 * scale\n\
         def calls():\n    return CALLS[0]\n",
        "f",
    )
    .unwrap();
    let calls = Function::load("pim_function_call0", "calls").unwrap();
    assert_eq!(
        f.timeout(std::time::Duration::from_secs(5))
            .call0::<i64>()
            .unwrap(),
        2
    );
    assert_eq!(f.kwarg("scale", 7).call0::<i64>().unwrap(), 14);
    assert!(matches!(
        f.arg(3).call0::<i64>(),
        Err(Error::InvalidArgument(why)) if why.contains("use call")
    ));
    assert_eq!(calls.call0::<i64>().unwrap(), 2);
}
