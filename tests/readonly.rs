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

/// The values the refusals below leave: a `static`, in read-only memory,
/// where a write would crash the process.
static STATIC_DATA: [f64; 3] = [1.0, 2.0, 3.0];

#[test]
fn ufunc_at_and_accumulate_are_refused_on_the_input_though_numpy_forgets_to() {
    // numpy's ufunc.at does not check that its operand is writeable
    // (numpy 1.26 to 2.4): it wrote into a `&[f64]`, and crashed on a
    // static (trial 28). The glue's guard refuses it as numpy refuses
    // every other write.
    // So does accumulate into `out` on its 1-D path (numpy 1.26 to 2.2;
    // trial 30), which np.cumsum takes too.
    for func in [
        "add_at",
        "add_at_view",
        "add_at_unbound",
        "cumsum_out",
        "accumulate_out",
        "accumulate_out_tuple",
    ] {
        let data = vec![1.0, 2.0, 3.0];
        for input in [&data[..], &STATIC_DATA[..]] {
            let err = test_func(func).detect(input).unwrap_err();
            assert_eq!(err.py_type(), Some("ValueError"), "{func}: {err}");
            assert!(err.to_string().contains("read-only"), "{func}: {err}");
        }
        assert_eq!(data, [1.0, 2.0, 3.0], "{func} changed the Rust data");
    }
    assert_eq!(STATIC_DATA, [1.0, 2.0, 3.0]);
}

#[test]
fn ufunc_at_still_works_on_writeable_arrays_and_says_what_it_did_say() {
    let source = "\
import numpy as np
def at_works():
    a = np.zeros(3)
    np.add.at(a, [0, 0, 2], 1.0)
    np.ufunc.at(np.multiply, a, [2], 5.0)
    return a
def at_doc():
    return np.add.at.__doc__ or ''
def at_signature():
    import inspect
    # numpy before 2.3 gives its ufunc methods no signature at all.
    if np.add.at.__text_signature__ is None:
        return 'none'
    return str(inspect.signature(np.add.at)) + str(inspect.signature(np.add.accumulate))
def numpy_s_own_methods_listed():
    import gc
    ours = [np.ufunc.__dict__['at'], np.ufunc.__dict__['accumulate']]
    return sum(
        1
        for d in gc.get_objects()
        if type(d) is type(ours[0])
        and getattr(d, '__objclass__', None) is np.ufunc
        and d.__name__ in ('at', 'accumulate')
        and not any(d is o for o in ours)
    )
def accumulate_works():
    a = np.zeros(3)
    np.cumsum(np.full(3, 7.0), out=a)
    return a
def at_wrong_operand():
    np.add.at([1.0], [0], 1.0)
";
    let works = Function::from_source("pim_ufunc_at", source, "at_works").unwrap();
    assert_eq!(works.call0::<Vec<f64>>().unwrap(), [2.0, 0.0, 5.0]);
    let doc = Function::from_source("pim_ufunc_at", source, "at_doc").unwrap();
    assert!(doc.call0::<String>().unwrap().contains("in place"));
    let signature = Function::from_source("pim_ufunc_at", source, "at_signature").unwrap();
    let signature = signature.call0::<String>().unwrap();
    // numpy's own signature, where numpy gives one (this checkout's numpy
    // does): the guard's doc keeps the header inspect reads (trial 30).
    assert!(
        signature == "none"
            || signature.starts_with("(a, indices, b=None, /)") && signature.contains("out=None"),
        "{signature}"
    );
    let accumulate = Function::from_source("pim_ufunc_at", source, "accumulate_works").unwrap();
    assert_eq!(accumulate.call0::<Vec<f64>>().unwrap(), [7.0, 14.0, 21.0]);
    // numpy's own descriptors, kept by the guard, are not handed back by
    // gc.get_objects() (trial 30 called one that way, past the guard).
    let listed = Function::from_source("pim_ufunc_at", source, "numpy_s_own_methods_listed");
    assert_eq!(listed.unwrap().call0::<i64>().unwrap(), 0);
    let wrong = Function::from_source("pim_ufunc_at", source, "at_wrong_operand").unwrap();
    // numpy's own error, from numpy's own method.
    assert!(wrong.call0::<()>().is_err());
}
