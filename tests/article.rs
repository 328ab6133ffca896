//! The article's own tests: detect finds the planted outliers, missing
//! modules and functions are errors that name them, empty input is empty.

mod common;

use common::article_data;
use py_in_mem::{Error, Outliers};

#[test]
fn detect_finds_the_planted_outliers() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    for seed in 1..=5 {
        let data = article_data(1000, seed);
        assert_eq!(outliers.detect(&data).unwrap(), vec![7, 113, 835]);
    }
    assert_eq!(outliers.name(), "outliers.detect");
}

#[test]
fn detect_does_not_change_the_input() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = article_data(1000, 9);
    let before = data.clone();
    outliers.detect(&data).unwrap();
    assert_eq!(data, before);
}

#[test]
fn missing_module_is_an_error_that_names_it() {
    let err = Outliers::new("no_such_module_xyz", "detect").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ModuleNotFoundError: No module named 'no_such_module_xyz'"
    );
    assert_eq!(err.py_type(), Some("ModuleNotFoundError"));
    assert!(matches!(err, Error::Python(_)));
}

#[test]
fn missing_function_is_an_error_that_names_module_and_function() {
    let err = Outliers::new("outliers", "no_such_function").unwrap_err();
    assert_eq!(err.py_type(), Some("AttributeError"));
    let text = err.to_string();
    assert!(text.contains("'outliers'"), "{text}");
    assert!(text.contains("'no_such_function'"), "{text}");
}

#[test]
fn attribute_that_is_not_callable_is_an_error() {
    // numpy's `np` binding in outliers.py is a module, not a function.
    let err = Outliers::new("outliers", "np").unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));
    assert_eq!(
        err.to_string(),
        "TypeError: outliers.np is a module, which is not callable"
    );
}

#[test]
fn names_with_nul_bytes_are_errors() {
    let err = Outliers::new("out\0liers", "detect").unwrap_err();
    assert_eq!(err, Error::InvalidName("out\0liers".into()));
    let err = Outliers::new("outliers", "de\0tect").unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)));
    // In a source, not a name: where it is, not the whole source.
    let source = format!("def f():\n    return 1\n# {}\0\n", "x".repeat(1000));
    let err = py_in_mem::Function::from_source("pim_nul_source", &source, "f").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: the source of pim_nul_source holds a NUL byte (at byte 1024), \
         which Python cannot compile"
    );
}

#[test]
fn empty_input_gives_empty_output_without_calling_python() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    assert_eq!(outliers.detect(&[]).unwrap(), Vec::<usize>::new());
    // A function that would raise is not called either.
    let raising = common::test_func("raise_value");
    assert_eq!(raising.detect(&[]).unwrap(), Vec::<usize>::new());
}

#[test]
fn close_and_drop_release_the_function() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    outliers.close();
    let again = Outliers::new("outliers", "detect").unwrap();
    assert_eq!(
        again.detect(&article_data(1000, 3)).unwrap(),
        vec![7, 113, 835]
    );
}
