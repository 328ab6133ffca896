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
