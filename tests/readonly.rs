//! The input is shared read-only: a Python write raises, numpy will not make
//! the array writable again, and the Rust slice is never changed.

mod common;

use common::test_func;
use py_in_mem::Function;

#[test]
fn python_writes_to_the_input_fail_and_change_nothing() {
    let cases = [
        (
            "write_input",
            "ValueError: assignment destination is read-only",
        ),
        (
            "write_view",
            "ValueError: assignment destination is read-only",
        ),
        (
            "write_through_copyto",
            "ValueError: assignment destination is read-only",
        ),
    ];
    for (func, message) in cases {
        let data = vec![1.0, 2.0, 3.0];
        let err = test_func(func).detect(&data).unwrap_err();
        assert_eq!(err.to_string(), message, "{func}");
        assert_eq!(data, [1.0, 2.0, 3.0], "{func} changed the Rust data");
    }
}

#[test]
fn numpy_refuses_to_make_the_input_writeable() {
    let data = vec![1.0, 2.0, 3.0];
    let err = test_func("set_writeable").detect(&data).unwrap_err();
    assert_eq!(err.py_type(), Some("ValueError"));
    assert!(
        err.to_string()
            .contains("cannot set WRITEABLE flag to True"),
        "{err}"
    );
    assert_eq!(data, [1.0, 2.0, 3.0]);
}

#[test]
fn numpy_refuses_to_make_an_unchecked_input_writeable() {
    // The untracked array of call_unchecked had no base before, and numpy
    // 1.x lets a base-less array be made writeable (with a
    // DeprecationWarning): Python then wrote into a `&[f64]`.
    test_func("set_writeable"); // puts tests/python on sys.path
    let set_writeable = Function::load("pim_testfuncs", "set_writeable").unwrap();
    let data = vec![1.0, 2.0, 3.0];
    // SAFETY: set_writeable keeps nothing of its input.
    let outcome = unsafe { set_writeable.call_unchecked::<Vec<i64>>(&data) };
    assert_eq!(data, [1.0, 2.0, 3.0], "Python wrote into the slice");
    let err = outcome.unwrap_err();
    assert_eq!(err.py_type(), Some("ValueError"), "{err}");
}
