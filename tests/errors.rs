//! Python failures become typed errors, and the process and the next call
//! go on: exceptions (SystemExit and KeyboardInterrupt too) and every kind
//! of wrong result.

mod common;

use common::{article_data, test_func};
use py_in_mem::{Error, Outliers};

const DATA: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

fn python_error(func: &str) -> Error {
    let err = test_func(func).detect(&DATA).unwrap_err();
    assert!(matches!(err, Error::Python(_)), "{func}: {err:?}");
    err
}

#[test]
fn exception_has_type_message_and_traceback() {
    let err = python_error("raise_value");
    assert_eq!(err.to_string(), "ValueError: boom");
    assert_eq!(err.py_type(), Some("ValueError"));
    assert_eq!(err.exception().unwrap().message, "boom");
    let traceback = err.traceback().expect("traceback");
    assert!(
        traceback.starts_with("Traceback (most recent call last):"),
        "{traceback}"
    );
    assert!(traceback.contains("pim_testfuncs.py"), "{traceback}");
    assert!(
        traceback.contains("raise ValueError(\"boom\")"),
        "{traceback}"
    );
    assert!(
        traceback.trim_end().ends_with("ValueError: boom"),
        "{traceback}"
    );
}

#[test]
fn next_call_on_the_same_function_works_after_an_exception() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let raising = test_func("raise_value");
    for seed in 0..3 {
        assert!(raising.detect(&DATA).is_err());
        assert_eq!(
            outliers.detect(&article_data(1000, seed)).unwrap(),
            vec![7, 113, 835]
        );
    }
    // The same object raises again: nothing was left set in between.
    assert_eq!(
        raising.detect(&DATA).unwrap_err().to_string(),
        "ValueError: boom"
    );
}

#[test]
fn custom_exception_type_is_module_qualified() {
    let err = python_error("raise_custom");
    assert_eq!(
        err.to_string(),
        "pim_testfuncs.CustomError: custom with 4 values"
    );
}

#[test]
fn exception_without_message_displays_its_type() {
    assert_eq!(
        python_error("raise_empty_message").to_string(),
        "RuntimeError"
    );
}

#[test]
fn system_exit_is_an_error_not_an_exit() {
    let err = python_error("raise_system_exit");
    assert_eq!(err.to_string(), "SystemExit: 3");
    // Still here: the process did not exit.
    assert_eq!(
        test_func("returns_int32").detect(&DATA).unwrap(),
        vec![0, 3]
    );
}

#[test]
fn keyboard_interrupt_is_an_error() {
    let err = python_error("raise_keyboard_interrupt");
    assert_eq!(err.to_string(), "KeyboardInterrupt: from python");
}

#[test]
fn exception_after_storing_input_in_own_frame_is_not_retention() {
    // The traceback holds the frame that holds the array; releasing the
    // exception releases both, so this is an error, not an abort.
    let err = python_error("raise_after_local_store");
    assert_eq!(
        err.to_string(),
        "RuntimeError: failed after storing 4 values locally"
    );
}

#[test]
fn dead_reference_cycle_is_not_retention() {
    assert_eq!(test_func("dead_cycle").detect(&DATA).unwrap(), vec![0]);
}

fn bad_result(func: &str) -> (String, String, String) {
    match test_func(func).detect(&DATA) {
        Err(Error::BadResult {
            function,
            position,
            expected,
            found,
            ..
        }) => {
            assert_eq!(position, "", "{func}: the result itself");
            (function, expected, found)
        }
        other => panic!("{func}: expected BadResult, got {other:?}"),
    }
}

#[test]
fn wrong_result_kinds_are_errors_that_say_what_was_found() {
    let cases = [
        ("returns_none", "an object of type NoneType"),
        ("returns_list", "an object of type list"),
        ("returns_scalar", "an object of type numpy.int64"),
        ("returns_input", "a numpy array of dtype float64"),
        ("returns_floats", "a numpy array of dtype float64"),
        ("returns_bools", "a numpy array of dtype bool"),
        ("returns_2d", "a 2-D numpy array of dtype int64"),
        ("returns_0d", "a 0-D numpy array of dtype int64"),
    ];
    for (func, found_expected) in cases {
        let (function, expected, found) = bad_result(func);
        assert_eq!(function, format!("pim_testfuncs.{func}"));
        assert_eq!(expected, "a 1-D numpy array of integer indices");
        assert_eq!(found, found_expected, "{func}");
    }
    let err = test_func("returns_none").detect(&DATA).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_testfuncs.returns_none returned an object of type NoneType, \
         expected a 1-D numpy array of integer indices"
    );
}

#[test]
fn indices_outside_the_input_are_errors() {
    let cases = [
        (
            "returns_len",
            "4 at position 0 of a numpy array of dtype int64",
        ),
        (
            "returns_negative",
            "-1 at position 1 of a numpy array of dtype int64",
        ),
        (
            "returns_huge_unsigned",
            "18446744073709551615 at position 0 of a numpy array of dtype uint64",
        ),
    ];
    for (func, found_expected) in cases {
        let (_, expected, found) = bad_result(func);
        assert_eq!(expected, "indices into the input, below its length 4");
        assert_eq!(found, found_expected, "{func}");
    }
}

#[test]
fn every_integer_dtype_order_and_stride_is_read() {
    let cases: [(&str, Vec<usize>); 7] = [
        ("returns_int32", vec![0, 3]),
        ("returns_uint8", vec![1, 0]),
        ("returns_big_endian", vec![2, 1]),
        ("returns_reversed_stride", vec![3, 1]),
        ("returns_zero_stride", vec![1, 1, 1]),
        ("returns_unaligned", vec![2, 0, 1]),
        ("returns_empty", vec![]),
    ];
    for (func, expected) in cases {
        assert_eq!(test_func(func).detect(&DATA).unwrap(), expected, "{func}");
    }
}

#[test]
fn errors_are_send_sync_and_std_errors() {
    fn assert_traits<T: std::error::Error + Send + Sync + Clone + 'static>() {}
    assert_traits::<Error>();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(python_error("raise_value"));
    assert_eq!(boxed.to_string(), "ValueError: boom");
}

// ---- Errors by class: is_instance_of along the exception's MRO ----

use py_in_mem::Function;

/// Calls `f` of a module made from `source` with one value; its error.
fn error_from(module: &str, source: &str) -> Error {
    let f = Function::from_source(module, source, "f").expect("load f");
    f.call::<f64>(&DATA).unwrap_err()
}

#[test]
fn a_subclass_of_value_error_is_a_value_error() {
    let err = error_from(
        "pim_cls_sub",
        "class MyError(ValueError):\n    pass\n\ndef f(x):\n    raise MyError('bad')\n",
    );
    assert_eq!(err.py_type(), Some("pim_cls_sub.MyError"));
    assert!(err.is_instance_of("MyError"));
    assert!(err.is_instance_of("ValueError"));
    assert!(err.is_instance_of("Exception"));
    assert!(err.is_instance_of("BaseException"));
    assert!(err.is_instance_of("object"));
    let exception = err.exception().unwrap();
    assert!(exception.is_instance_of("ValueError"));
    assert_eq!(
        exception.classes().collect::<Vec<_>>(),
        [
            "pim_cls_sub.MyError",
            "builtins.ValueError",
            "builtins.Exception",
            "builtins.BaseException",
            "builtins.object"
        ]
    );
}

#[test]
fn an_unrelated_class_does_not_match() {
    let err = error_from(
        "pim_cls_unrelated",
        "class MyError(ValueError):\n    pass\n\ndef f(x):\n    raise MyError('bad')\n",
    );
    for class in [
        "TypeError",
        "KeyError",
        "ArithmeticError",
        "Warning",
        "myerror",
        "",
    ] {
        assert!(!err.is_instance_of(class), "{class}");
    }
    // A superclass is not an instance of its subclass.
    let err = error_from("pim_cls_plain", "def f(x):\n    raise ValueError('v')\n");
    assert!(err.is_instance_of("ValueError"));
    assert!(!err.is_instance_of("UnicodeError"));
}

#[test]
fn multiple_inheritance_matches_every_base() {
    // As scikit-learn's NotFittedError(ValueError, AttributeError).
    let err = error_from(
        "pim_cls_multi",
        "class NotFittedError(ValueError, AttributeError):\n    pass\n\n\
         def f(x):\n    raise NotFittedError('call fit first')\n",
    );
    assert!(err.is_instance_of("NotFittedError"));
    assert!(err.is_instance_of("ValueError"));
    assert!(err.is_instance_of("AttributeError"));
    assert!(err.is_instance_of("builtins.AttributeError"));
    assert!(!err.is_instance_of("LookupError"));
    assert_eq!(
        err.exception().unwrap().classes().collect::<Vec<_>>(),
        [
            "pim_cls_multi.NotFittedError",
            "builtins.ValueError",
            "builtins.AttributeError",
            "builtins.Exception",
            "builtins.BaseException",
            "builtins.object"
        ]
    );
}

#[test]
fn qualified_names_match_the_module_and_qualname_exactly() {
    let err = error_from(
        "pim_cls_qual",
        "class Outer:\n    class Inner(KeyError):\n        pass\n\n\
         def f(x):\n    raise Outer.Inner('k')\n",
    );
    assert!(err.is_instance_of("pim_cls_qual.Outer.Inner"));
    assert!(err.is_instance_of("Outer.Inner"));
    assert!(err.is_instance_of("builtins.KeyError"));
    assert!(err.is_instance_of("builtins.LookupError"));
    assert!(err.is_instance_of("KeyError"));
    // Only the whole qualname, or module.qualname: no other part.
    for class in [
        "Inner",
        "qual.Outer.Inner",
        "other.Outer.Inner",
        "pim_cls_qual.Inner",
        "pim_cls_qual",
        "builtins",
        "mymodule.KeyError",
        "builtins.Outer.Inner",
    ] {
        assert!(!err.is_instance_of(class), "{class}");
    }
}

#[test]
fn an_exception_raised_in_a_nested_call_is_matched_by_its_own_class() {
    // json.JSONDecodeError, raised three calls deep inside another module,
    // is a ValueError.
    let err = error_from(
        "pim_cls_nested",
        "import json\n\ndef parse(text):\n    return json.loads(text)\n\n\
         def g(x):\n    return parse('{not json')\n\ndef f(x):\n    return g(x)\n",
    );
    assert!(matches!(err, Error::Python(_)), "{err:?}");
    assert_eq!(err.py_type(), Some("json.decoder.JSONDecodeError"));
    assert!(err.is_instance_of("JSONDecodeError"));
    assert!(err.is_instance_of("json.decoder.JSONDecodeError"));
    assert!(!err.is_instance_of("json.JSONDecodeError")); // where it is defined, not re-exported
    assert!(err.is_instance_of("ValueError"));
    assert!(!err.is_instance_of("TypeError"));
    // And one raised by a C function (numpy's), caught nowhere.
    let err = error_from(
        "pim_cls_numpy",
        "import numpy as np\n\ndef f(x):\n    return float(np.reshape(x, (3, 5)).sum())\n",
    );
    assert!(err.is_instance_of("ValueError"), "{err:?}");
}

#[test]
fn import_errors_match_what_the_module_raised() {
    let err = Function::from_source(
        "pim_cls_import",
        "class ConfigError(RuntimeError):\n    pass\n\nraise ConfigError('no config')\n",
        "f",
    )
    .unwrap_err();
    assert!(matches!(err, Error::Import { .. }), "{err:?}");
    assert!(err.is_instance_of("pim_cls_import.ConfigError"));
    assert!(err.is_instance_of("RuntimeError"));
    assert!(!err.is_instance_of("ImportError"));
    // A module that is missing is Error::Python, a ModuleNotFoundError,
    // which is an ImportError.
    let err = Outliers::new("pim_no_such_module", "f").unwrap_err();
    assert!(matches!(err, Error::Python(_)), "{err:?}");
    assert!(err.is_instance_of("ModuleNotFoundError"));
    assert!(err.is_instance_of("ImportError"));
    // A function missing from a module is an AttributeError.
    let err = Outliers::new("outliers", "missing").unwrap_err();
    assert!(err.is_instance_of("builtins.AttributeError"));
}

#[test]
fn errors_that_are_not_python_exceptions_match_nothing() {
    let f = Function::from_source("pim_cls_bad", "def f(x):\n    return 'text'\n", "f").unwrap();
    let err = f.call::<f64>(&DATA).unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err:?}");
    assert!(err.exception().is_none());
    for class in ["Exception", "BaseException", "object", "TypeError"] {
        assert!(!err.is_instance_of(class), "{class}");
    }
    let others = [
        Error::InvalidArgument("shape".into()),
        Error::InvalidName("a\0b".into()),
        Error::Unavailable(py_in_mem::Unavailable::Forked),
        retained_input(),
    ];
    for err in others {
        assert!(!err.is_instance_of("Exception"), "{err:?}");
        assert!(!err.is_instance_of("object"), "{err:?}");
    }
}

/// An `Error::InputRetained` of a real call (the variant is not built by
/// hand outside the crate).
fn retained_input() -> Error {
    let keep = Function::from_source(
        "pim_cls_keep",
        "kept = []\ndef f(x):\n    kept.append(x)\n    return 1.0\n",
        "f",
    )
    .unwrap();
    let err = keep.call::<f64>(&DATA).unwrap_err();
    assert!(
        matches!(&err, Error::InputRetained { function, error: None, .. } if function == "pim_cls_keep.f"),
        "{err:?}"
    );
    err
}

#[test]
fn error_stays_small_enough_for_result_large_err() {
    // clippy's result_large_err warns, in every caller's code, from 128 bytes.
    assert!(
        std::mem::size_of::<Error>() < 128,
        "{}",
        std::mem::size_of::<Error>()
    );
}
