//! Results that Python controls beyond their values: arrays Python code can
//! still reach after the call (through the garbage collector), ndarray
//! subclasses whose meaning is more than their data (a masked array's
//! mask), results nothing has run yet (a coroutine, a generator), and sizes
//! Python chooses that no memory could hold. Each is read
//! soundly or refused with `Error::BadResult`, and the next call works.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use py_in_mem::{Error, Function, NdVec, ResultView};

const SOURCE: &str = r#"
import gc, threading, time
import numpy as np

class Tracked(np.ndarray):
    """A Python-defined subclass: its instances are tracked by the gc."""

def tracked(_=None):
    t = np.ndarray.__new__(Tracked, (3,))
    t[:] = [1.0, 2.0, 3.0]
    return t

def matrix(_=None):
    # A matrix that owns its data, referenced only by the result.
    return np.matrix([[1.0, 2.0, 3.0]]).copy()

def masked(_=None):
    return np.ma.masked_array([1.0, -999.0, 3.0], mask=[False, True, False])

def masked_in_a_tuple(_=None):
    return 1.0, [np.ones(2), masked()]

async def coroutine(_=None):
    return 1

def generator(_=None):
    yield 1

async def async_generator(_=None):
    yield 1

def generator_in_a_list(_=None):
    return [1, generator()]

def huge(_=None):
    return np.broadcast_to(np.float64(1.0), (2**20, 2**20, 2**8))

def huge_1d(_=None):
    return np.broadcast_to(np.float64(1.0), (2**58,))

def huge_list_of_tuples(_=None):
    return [(1.0, 2.0)] * 10

def huge_strings(_=None):
    # 2**40 strings of 2 characters: a list of them could not be made.
    return np.broadcast_to(np.array('ab'), (2**40,))

def invalid_text(_=None):
    # A code point past U+10FFFF: numpy cannot make its str.
    return np.array([0x110000, 0x41], dtype=np.uint32).view('U1')

class Raising(dict):
    def __getitem__(self, key):
        raise RuntimeError('lookup of ' + key)

class Props:
    @property
    def boom(self):
        return 1 / 0

class Text(str):
    # Its own hash: a dict keeps it apart from the str of the same text.
    def __hash__(self):
        return 7
    def __eq__(self, other):
        return self is other

def raising_dict(_=None):
    return Raising(a=1)

def props(_=None):
    return Props()

def twice(_=None):
    return {Text('a'): 1, 'a': 2}

STOP = threading.Event()
SCANS = [0]

def start_writer(_=None):
    """Writes a new value (7.0, 8.0, ...) into every 3-element matrix the
    garbage collector finds, at each scan."""
    STOP.clear()
    def write():
        while not STOP.is_set():
            SCANS[0] += 1
            for o in gc.get_objects():
                if type(o) is np.matrix and o.size == 3 and o.flags.writeable:
                    o[...] = 6.0 + SCANS[0]
            time.sleep(0.0005)
    threading.Thread(target=write, daemon=True).start()

def scans(_=None):
    return SCANS[0]

def stop_writer(_=None):
    STOP.set()
"#;

fn module(name: &str) -> Function {
    static LOADED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| {
        Function::from_source("pim_hostile", SOURCE, "tracked").unwrap();
    });
    Function::load("pim_hostile", name).unwrap()
}

fn bad_result_found(err: Error) -> String {
    match err {
        Error::BadResult { found, .. } => found,
        other => panic!("expected BadResult, got {other:?}"),
    }
}

#[test]
fn a_view_of_an_array_python_can_still_reach_is_a_copy() {
    // np.matrix is a Python-defined class: its instances are tracked by the
    // garbage collector, so gc.get_objects() reaches the result even though
    // the crate holds its only reference. Read in place, a Python thread
    // writing it would race the `&[f64]`.
    //
    // The writer may also run while `matrix` is still making its result
    // (the GIL can change hands between any two bytecodes there, which a
    // loaded machine makes likely), so a result may come back already
    // written: what must not happen is a change once the view is Rust's.
    let matrix = module("matrix");
    let () = module("start_writer").call(None::<f64>).unwrap();
    let views: Vec<ResultView<f64>> = (0..5).map(|_| matrix.call(None::<f64>).unwrap()).collect();
    let first: Vec<Vec<f64>> = views.iter().map(|view| view.to_vec()).collect();
    for (view, values) in views.iter().zip(&first) {
        assert_eq!(view.shape(), &[1, 3]);
        let written = values.iter().all(|&x| x >= 7.0 && x == values[0]);
        assert!(
            values == &[1.0, 2.0, 3.0] || written,
            "a result neither as made nor as written: {values:?}"
        );
    }
    // Until the writer has scanned three times more with the views alive
    // (a scan takes milliseconds, or far longer under valgrind).
    let scans = module("scans");
    let after = scans.call::<i64>(None::<f64>).unwrap() + 3;
    let start = Instant::now();
    loop {
        let done = scans.call::<i64>(None::<f64>).unwrap() >= after;
        for (view, values) in views.iter().zip(&first) {
            assert_eq!(&**view, &values[..], "Python wrote into a live view");
        }
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the writer stopped scanning"
        );
        sleep(Duration::from_millis(2));
    }
    // The crate's copies are plain ndarrays, which the collector never
    // tracks: the writer found nothing of the views' memory.
    let () = module("stop_writer").call(None::<f64>).unwrap();
}

#[test]
fn a_plain_data_subclass_reads_as_its_data() {
    let m: NdVec<f64> = module("matrix").call(None::<f64>).unwrap();
    assert_eq!(
        (m.shape(), m.as_slice()),
        (&[1, 3][..], &[1.0, 2.0, 3.0][..])
    );
}

#[test]
fn a_python_defined_ndarray_subclass_is_refused_and_says_what_to_return() {
    let tracked = module("tracked");
    for found in [
        bad_result_found(tracked.call::<Vec<f64>>(None::<f64>).unwrap_err()),
        bad_result_found(tracked.call::<ResultView<f64>>(None::<f64>).unwrap_err()),
        bad_result_found(tracked.call::<NdVec<f64>>(None::<f64>).unwrap_err()),
    ] {
        assert_eq!(
            found,
            "a Tracked of dtype float64, an ndarray subclass whose meaning may be more than its \
             data (return numpy.asarray() of it for the data alone)"
        );
    }
}

#[test]
fn a_masked_array_is_refused_naming_its_mask() {
    let masked = module("masked");
    let err = masked.call::<Vec<f64>>(None::<f64>).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_hostile.masked returned a masked array (numpy.ma.MaskedArray) of dtype float64, \
         whose mask would be lost (return its .filled(value), or its .data and .mask apart), \
         expected a 1-D numpy array of float64 (or of a dtype that converts to it without loss), \
         or a list or tuple of numbers that convert to f64 without loss"
    );
    assert!(
        bad_result_found(masked.call::<ResultView<f64>>(None::<f64>).unwrap_err())
            .starts_with("a masked array (numpy.ma.MaskedArray)")
    );
    assert!(
        bad_result_found(masked.call::<f64>(None::<f64>).unwrap_err())
            .starts_with("a masked array (numpy.ma.MaskedArray)")
    );
    // Inside a result, the position says where.
    let err = module("masked_in_a_tuple")
        .call::<(f64, Vec<Vec<f64>>)>(None::<f64>)
        .unwrap_err();
    match err {
        Error::BadResult {
            position, found, ..
        } => {
            assert_eq!(position, "element 1 of the list in element 1 of the tuple");
            assert!(found.contains("mask would be lost"), "{found}");
        }
        other => panic!("expected BadResult, got {other:?}"),
    }
}

#[test]
fn a_coroutine_or_generator_result_says_what_the_function_is_and_what_to_return() {
    let coroutine = module("coroutine");
    let err = coroutine.call::<i64>(None::<f64>).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_hostile.coroutine returned a coroutine (the function is `async def`, and nothing \
         runs it: py-in-mem does not run an event loop; call a plain function that returns \
         asyncio.run() of it), expected an integer that fits in i64 (a Python or numpy integer, \
         or a 0-D numpy array of one; a float is not read as an integer, even a whole one)"
    );
    let async_err = pollster::block_on(coroutine.arg(None::<f64>).call_async::<i64>()).unwrap_err();
    assert_eq!(async_err, err);
    assert!(bad_result_found(
        module("generator")
            .call::<Vec<i64>>(None::<f64>)
            .unwrap_err()
    )
    .starts_with(
        "a generator (the function yields its values; call a plain function that \
                      returns list() of it)"
    ));
    assert!(bad_result_found(
        module("async_generator")
            .call::<Vec<i64>>(None::<f64>)
            .unwrap_err()
    )
    .starts_with("an async generator (the function is `async def` with `yield`"));
    match module("generator_in_a_list")
        .call::<Vec<i64>>(None::<f64>)
        .unwrap_err()
    {
        Error::BadResult {
            position, found, ..
        } => {
            assert_eq!(position, "element 1 of the list");
            assert!(found.starts_with("a generator"), "{found}");
        }
        other => panic!("expected BadResult, got {other:?}"),
    }
}

#[test]
fn a_result_too_large_to_allocate_is_an_error_not_an_abort() {
    // 2^48 float64 values (2 PiB), which numpy's broadcast holds in 8 bytes.
    let huge = module("huge");
    let found = bad_result_found(huge.call::<NdVec<f64>>(None::<f64>).unwrap_err());
    assert_eq!(
        found,
        "a 3-D numpy array of dtype float64 of 281474976710656 elements (2251799813685248 bytes), \
         more than could be allocated"
    );
    // The in-place view copies in numpy first, which raises MemoryError.
    let found = bad_result_found(huge.call::<ResultView<f64>>(None::<f64>).unwrap_err());
    assert!(found.contains("MemoryError"), "{found}");
    let huge_1d = module("huge_1d");
    for found in [
        // The exact-dtype copy, and the converting read.
        bad_result_found(huge_1d.call::<Vec<f64>>(None::<f64>).unwrap_err()),
        bad_result_found(huge_1d.call::<Vec<f32>>(None::<f64>).unwrap_err()),
    ] {
        assert!(
            found.starts_with("a numpy array of dtype float64 of 288230376151711744 elements")
                && found.ends_with("more than could be allocated"),
            "{found}"
        );
    }
    // Nothing was lost: the next calls work.
    let pairs: Vec<(f64, f64)> = module("huge_list_of_tuples").call(None::<f64>).unwrap();
    assert_eq!(pairs, vec![(1.0, 2.0); 10]);
}

#[cfg(feature = "ndarray")]
#[test]
fn a_result_too_large_to_allocate_is_an_error_as_an_ndarray_too() {
    let err = module("huge")
        .call::<ndarray::Array3<f64>>(None::<f64>)
        .unwrap_err();
    assert!(bad_result_found(err).ends_with("more than could be allocated"));
}

#[test]
fn an_array_numpy_cannot_list_says_what_numpy_raised() {
    for (name, raised) in [
        ("huge_strings", "MemoryError"),
        ("invalid_text", "SystemError"),
    ] {
        let f = module(name);
        for found in [
            bad_result_found(f.call::<Vec<String>>(None::<f64>).unwrap_err()),
            bad_result_found(f.call::<py_in_mem::Value>(None::<f64>).unwrap_err()),
        ] {
            assert!(
                found.starts_with("a numpy array of dtype <U")
                    && found.contains(" whose items could not be listed (")
                    && found.contains(raised),
                "{name}: {found}"
            );
        }
    }
    let pairs: Vec<(f64, f64)> = module("huge_list_of_tuples").call(None::<f64>).unwrap();
    assert_eq!(pairs, vec![(1.0, 2.0); 10]);
}

/// Reads the key 'a' (or the attribute `boom`) as an i64.
#[derive(Debug)]
struct Looked<const ATTRIBUTE: bool>;

impl<const ATTRIBUTE: bool> py_in_mem::FromResult for Looked<ATTRIBUTE> {
    fn from_result(value: py_in_mem::Reader<'_>) -> Result<Self, py_in_mem::Mismatch> {
        let _: i64 = match ATTRIBUTE {
            true => value.getattr("boom")?,
            false => value.get_item("a")?,
        };
        Ok(Looked)
    }
}

#[test]
fn an_exception_a_lookup_raises_is_named_not_taken_for_a_missing_key() {
    for (err, found) in [
        (
            module("raising_dict")
                .call::<Looked<false>>(None::<f64>)
                .map(drop),
            "an object of type Raising whose lookup of the key raised RuntimeError: lookup of a",
        ),
        (
            module("props").call::<Looked<true>>(None::<f64>).map(drop),
            "an object of type Props whose attribute raised ZeroDivisionError: division by zero",
        ),
    ] {
        assert_eq!(bad_result_found(err.unwrap_err()), found);
    }
}

#[test]
fn two_keys_of_one_text_are_a_mismatch_not_a_value_lost() {
    use std::collections::{BTreeMap, HashMap};
    let twice = module("twice");
    for err in [
        twice.call::<HashMap<String, i64>>(None::<f64>).unwrap_err(),
        twice
            .call::<BTreeMap<String, i64>>(None::<f64>)
            .unwrap_err(),
    ] {
        match err {
            Error::BadResult {
                position, found, ..
            } => assert_eq!(
                (position.as_str(), found.as_str()),
                (
                    "key 1 of the dict",
                    "an object of type str, a second key 'a'"
                )
            ),
            other => panic!("{other:?}"),
        }
    }
    // A Value keeps both.
    let value: py_in_mem::Value = twice.call(None::<f64>).unwrap();
    assert_eq!(value.to_string(), r#"{"a": 1, "a": 2}"#);
}
