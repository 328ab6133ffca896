//! Conversions of your own, both directions: a `FromResult` impl over the
//! safe `Reader` (items, attributes, elements), an `IntoArg` impl built
//! from a `Value`; `Value` for results of unknown shape and its edges; and
//! owned inputs in any position, freed when Python lets them go.

use std::sync::Arc;

use py_in_mem::{Arg, Error, FromResult, Function, IntoArg, Mismatch, NdVec, Reader, Value};

fn module(name: &str, source: &str) -> Function {
    Function::from_source(name, source, "f").unwrap()
}

/// A prediction read from a dict, a dataclass or a `(label, score)` tuple.
#[derive(Debug, PartialEq)]
struct Prediction {
    label: String,
    score: f64,
}

impl FromResult for Prediction {
    fn expected() -> String {
        "a prediction (a dict, an object with label and score, or a pair)".into()
    }

    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        if value.is_dict() {
            Ok(Prediction {
                label: value.get_item("label")?,
                score: value.get_item("score")?,
            })
        } else if value.is_sequence() {
            Ok(Prediction {
                label: value.get_index(0)?,
                score: value.get_index(1)?,
            })
        } else if value.hasattr("label")? {
            Ok(Prediction {
                label: value.getattr("label")?,
                score: value.getattr("score")?,
            })
        } else {
            Err(value.mismatch(Self::expected()))
        }
    }
}

const PREDICTIONS: &str = "\
import dataclasses

@dataclasses.dataclass
class P:
    label: str
    score: float

class NoLabelYet:
    @property
    def label(self):
        raise ValueError('not fitted')

class Raises:
    label = 'x'
    @property
    def score(self):
        raise RuntimeError('no score yet')

def f(kind):
    if kind == 0:
        return {'label': 'spam', 'score': 0.75}
    if kind == 1:
        return P('ham', 0.25)
    if kind == 2:
        return ('eggs', 1)
    if kind == 3:
        return [{'label': 'a', 'score': 1.0}, ('b', 2.0), P('c', 3.0)]
    if kind == 4:
        return {'label': 'spam'}
    if kind == 5:
        return [{'label': 'a', 'score': 1.0}, {'label': 'b', 'score': 'high'}]
    if kind == 6:
        return Raises()
    if kind == 7:
        return ('only one',)
    if kind == 9:
        return NoLabelYet()
    return 42
";

#[test]
fn a_type_of_your_own_reads_dicts_objects_and_tuples() -> Result<(), Error> {
    let f = module("conv_predictions", PREDICTIONS);
    let p = |label: &str, score: f64| Prediction {
        label: label.into(),
        score,
    };
    assert_eq!(f.call::<Prediction>(0)?, p("spam", 0.75));
    assert_eq!(f.call::<Prediction>(1)?, p("ham", 0.25)); // a dataclass
    assert_eq!(f.call::<Prediction>(2)?, p("eggs", 1.0)); // an int reads as f64
                                                          // Inside the crate's own types, as any other result type.
    assert_eq!(
        f.call::<Vec<Prediction>>(3)?,
        [p("a", 1.0), p("b", 2.0), p("c", 3.0)]
    );
    assert_eq!(f.call::<Option<Prediction>>(0)?, Some(p("spam", 0.75)));
    Ok(())
}

/// The `BadResult` of `f(kind)` read as `R`: (position, expected, found).
fn bad<R: FromResult + std::fmt::Debug>(f: &Function, kind: i64) -> (String, String, String) {
    match f.call::<R>(kind).unwrap_err() {
        Error::BadResult {
            position,
            expected,
            found,
            ..
        } => (position, expected, found),
        other => panic!("expected BadResult, got {other:?}"),
    }
}

#[test]
fn a_mismatch_in_a_type_of_your_own_says_where_and_what() {
    let f = module("conv_prediction_errors", PREDICTIONS);

    // A missing key names the key and what the dict was.
    let (position, expected, found) = bad::<Prediction>(&f, 4);
    assert_eq!(position, "");
    assert!(expected.contains("under key 'score'"), "{expected}");
    assert_eq!(found, "an object of type dict with no such key");

    // A wrong value inside a list of them: both steps, innermost first.
    let (position, expected, found) = bad::<Vec<Prediction>>(&f, 5);
    assert_eq!(position, "value under key 'score' in element 1 of the list");
    assert!(
        expected.starts_with("a number that converts to f64"),
        "{expected}"
    );
    assert_eq!(found, "an object of type str");
    let message = f.call::<Vec<Prediction>>(5).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "conv_prediction_errors.f returned an unexpected value under key 'score' in \
             element 1 of the list: expected {expected}, found an object of type str"
        )
    );

    // A property that raises: the exception is named, nothing is left set.
    let (_, expected, found) = bad::<Prediction>(&f, 6);
    assert!(expected.contains("as attribute 'score'"), "{expected}");
    assert_eq!(
        found,
        "an object of type Raises whose attribute raised RuntimeError: no score yet"
    );

    // One whose `hasattr` raises (not AttributeError): named too, where
    // the C API's `PyObject_HasAttr` said "no attribute", and the impl went
    // on to its own expectation.
    let (_, expected, found) = bad::<Prediction>(&f, 9);
    assert_eq!(
        (expected.as_str(), found.as_str()),
        (
            "an attribute 'label' that reads",
            "an object of type NoLabelYet whose attribute raised ValueError: not fitted"
        )
    );

    // A tuple too short.
    let (_, expected, found) = bad::<Prediction>(&f, 7);
    assert_eq!(
        (expected.as_str(), found.as_str()),
        ("a tuple with an element 1", "a tuple of 1 elements")
    );

    // Nothing it can read: the impl's own expectation.
    let (_, expected, found) = bad::<Prediction>(&f, 8);
    assert_eq!(
        (expected.as_str(), found.as_str()),
        (
            "a prediction (a dict, an object with label and score, or a pair)",
            "an object of type int"
        )
    );

    // The interpreter is fine afterwards.
    assert_eq!(f.call::<Prediction>(0).unwrap().label, "spam");
}

/// A request of your own, passed as a dict.
struct Request<'a> {
    id: u32,
    features: &'a [f64],
    tags: Vec<&'a str>,
}

impl<'a> IntoArg<'a> for &Request<'a> {
    fn into_arg(self) -> Arg<'a> {
        Value::dict([
            ("id", Value::from(self.id)),
            (
                "features",
                Value::from(NdVec::new(self.features.to_vec(), vec![self.features.len()]).unwrap()),
            ),
            ("tags", Value::list(self.tags.iter().copied())),
        ])
        .into_arg()
    }
}

#[test]
fn a_type_of_your_own_is_an_argument_through_value() -> Result<(), Error> {
    let f = module(
        "conv_request",
        "import numpy as np\n\
         def f(req, scale=1.0):\n\
         \x20   assert isinstance(req['features'], np.ndarray), type(req['features'])\n\
         \x20   return req['id'], float(req['features'].sum()) * scale, '+'.join(req['tags'])\n",
    );
    let features = [1.0, 2.0, 3.5];
    let request = Request {
        id: 7,
        features: &features,
        tags: vec!["a", "b"],
    };
    let (id, total, tags): (u32, f64, String) = f.arg(&request).kwarg("scale", 2.0).call()?;
    assert_eq!((id, total, tags.as_str()), (7, 13.0, "a+b"));
    // And through call() with one argument, and Arg::new.
    let (id, ..): (u32, f64, String) = f.call(Arg::new(&request))?;
    assert_eq!(id, 7);
    Ok(())
}

/// `1` inside `levels` lists, built without recursion.
fn nested(levels: usize) -> Value {
    let mut value = Value::Int(1);
    for _ in 0..levels {
        value = Value::List(vec![value]);
    }
    value
}

#[test]
fn a_value_argument_nested_too_deep_is_invalid_not_a_stack_overflow() -> Result<(), Error> {
    let echo = module("conv_echo_deep", "def f(x):\n    return x\n");
    // As deep as a result may be: there and back.
    let deepest = nested(Value::MAX_DEPTH - 1);
    assert_eq!(echo.call::<Value>(deepest.clone())?, deepest);
    // One deeper, and far deeper (its object was made recursively, and the
    // stack overflowed): refused before Python is called, sync and async.
    for levels in [Value::MAX_DEPTH, 5_000] {
        let err = echo.call::<Value>(nested(levels)).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidArgument(
                "a Value nested more than 128 levels deep cannot be an argument".into()
            ),
            "{levels}"
        );
        let err = pollster::block_on(echo.call_async::<Value>(nested(levels))).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
    // Inside a call of several arguments too; the next call works.
    let pair = module("conv_pair_deep", "def f(a, b):\n    return b\n");
    let err = pair.arg(1).arg(nested(5_000)).call::<i64>().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(pair.arg(1).arg(2).call::<i64>()?, 2);
    Ok(())
}

#[test]
fn values_go_to_python_and_back_unchanged() -> Result<(), Error> {
    let echo = module("conv_echo", "def f(x):\n    return x\n");
    let sent = Value::dict([
        (
            Value::from("list"),
            Value::list([Value::Int(1), Value::Float(2.5), Value::None]),
        ),
        (Value::Int(3), Value::tuple([Value::from("three")])), // a key of another kind
        (Value::from("bytes"), Value::Bytes(b"\x00\xff".to_vec())),
        (Value::from("big"), Value::UInt(u64::MAX)),
        (Value::from("neg"), Value::Int(i64::MIN)),
        (
            Value::from("complex"),
            Value::Complex(py_in_mem::num_complex::Complex64::new(1.0, -2.0)),
        ),
        (
            Value::from("array"),
            Value::from(NdVec::new(vec![1i32, 2, 3, 4], vec![2, 2])?),
        ),
        (Value::from("empty"), Value::list(Vec::<Value>::new())),
    ]);
    let back: Value = echo.call(sent.clone())?;
    assert_eq!(back, sent);
    assert_eq!(back.get("big"), Some(&Value::UInt(u64::MAX)));
    assert_eq!(
        back.get("array")
            .and_then(|a| a.as_array::<i32>())
            .map(|a| a.shape().to_vec()),
        Some(vec![2, 2])
    );
    Ok(())
}

#[test]
fn value_reads_numpy_scalars_and_arrays_by_their_dtype() -> Result<(), Error> {
    let f = module(
        "conv_numpy_values",
        "import numpy as np\n\
         def f(kind):\n\
         \x20   return [np.float32(1.5), np.int16(-3), np.uint64(2**64 - 1), np.bool_(True),\n\
         \x20           np.complex64(1 + 2j), np.arange(3, dtype=np.uint8), np.zeros((2, 0)),\n\
         \x20           np.array(2.5), np.float16([0.5, 1.0])][kind]\n",
    );
    assert_eq!(f.call::<Value>(0)?, Value::Float(1.5));
    assert_eq!(f.call::<Value>(1)?, Value::Int(-3));
    assert_eq!(f.call::<Value>(2)?, Value::UInt(u64::MAX));
    assert_eq!(f.call::<Value>(3)?, Value::Bool(true));
    assert_eq!(
        f.call::<Value>(4)?,
        Value::Complex(py_in_mem::num_complex::Complex64::new(1.0, 2.0))
    );
    let bytes = f.call::<Value>(5)?;
    assert_eq!(
        bytes.as_array::<u8>().map(NdVec::as_slice),
        Some(&[0u8, 1, 2][..])
    );
    let empty = f.call::<Value>(6)?;
    assert_eq!(
        empty.as_array::<f64>().map(NdVec::shape),
        Some(&[2usize, 0][..])
    );
    let zero_d = f.call::<Value>(7)?;
    assert_eq!(
        zero_d.as_array::<f64>().map(NdVec::as_slice),
        Some(&[2.5][..])
    );
    // float16 has no Rust element type: the float32 array of its values.
    let halves = f.call::<Value>(8)?;
    assert_eq!(
        halves.as_array::<f32>().map(NdVec::as_slice),
        Some(&[0.5f32, 1.0][..])
    );
    Ok(())
}

/// A Python int outside 64 bits reads as `Value::Int128` or
/// `Value::UInt128` (it was a BadResult), the same variant `Value::from`
/// gives the Rust integer, and goes back to Python as the same int.
#[test]
fn ints_outside_64_bits_are_values_of_128_bits() {
    let source = "VALUES = {'2**70': 2**70, '-2**70': -2**70, 'i128 min': -2**127,\n\
                  \x20         'u128 max': 2**128 - 1, 'i128 max + 1': 2**127,\n\
                  \x20         'u64 max + 1': 2**64, 'in a list': [1, 2**100]}\n\
                  def f(kind):\n\
                  \x20   return VALUES[kind]\n\
                  def same(kind, x):\n\
                  \x20   return x == VALUES[kind] and type(x) is type(VALUES[kind])\n";
    let read = Function::from_source("conv_wide_values", source, "f").unwrap();
    let same = Function::from_source("conv_wide_values", source, "same").unwrap();
    let cases: [(&str, Value); 7] = [
        ("2**70", Value::Int128(1 << 70)),
        ("-2**70", Value::Int128(-(1 << 70))),
        ("i128 min", Value::Int128(i128::MIN)),
        ("u128 max", Value::UInt128(u128::MAX)),
        ("i128 max + 1", Value::UInt128(1 << 127)),
        ("u64 max + 1", Value::Int128(1 << 64)),
        (
            "in a list",
            Value::list([Value::Int(1), Value::Int128(1 << 100)]),
        ),
    ];
    for (kind, expected) in cases {
        let value: Value = read.call(kind).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(value, expected, "{kind}");
        // Value::from of the Rust integer gives the same variant.
        match expected {
            Value::Int128(n) => assert_eq!(Value::from(n), expected),
            Value::UInt128(n) => assert_eq!(Value::from(n), expected),
            _ => {}
        }
        // Back in Python, the same int.
        assert!(same.arg(kind).arg(value).call::<bool>().unwrap(), "{kind}");
    }
    // The smallest variant that holds it, from any Rust integer type.
    assert_eq!(Value::from(5i128), Value::Int(5));
    assert_eq!(Value::from(u128::from(u64::MAX)), Value::UInt(u64::MAX));
    assert_eq!(Value::from(1u128 << 100), Value::Int128(1 << 100));
    assert_eq!(Value::from(u64::MAX).as_u128(), Some(u64::MAX.into()));
    assert_eq!(Value::Int128(-1).as_u128(), None);
}

#[test]
fn values_value_cannot_hold_are_errors_that_say_where() {
    let f = module(
        "conv_bad_values",
        "import numpy as np\n\
         def f(kind):\n\
         \x20   if kind == 0:\n\
         \x20       a = []\n\
         \x20       a.append(a)\n\
         \x20       return a\n\
         \x20   if kind == 1:\n\
         \x20       return {'n': 2**128}\n\
         \x20   if kind == 2:\n\
         \x20       return [1, {2, 3}]\n\
         \x20   if kind == 3:\n\
         \x20       return np.array(['2020-01-01'], dtype='datetime64[D]')\n\
         \x20   if kind == 4:\n\
         \x20       deep = None\n\
         \x20       for _ in range(1000):\n\
         \x20           deep = [deep]\n\
         \x20       return deep\n\
         \x20   if kind == 6:\n\
         \x20       deep = None\n\
         \x20       for _ in range(1000):\n\
         \x20           deep = {'a': deep}\n\
         \x20       return deep\n\
         \x20   return {(1, 2): 'tuple key', 'ok': [1.0]}\n",
    );
    // A list holding itself: an error, not a stack overflow.
    let err = f.call::<Value>(0).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a value nested at most 128 levels deep"),
        "{err}"
    );
    let err = f.call::<Value>(4).unwrap_err();
    assert!(err.to_string().contains("nested at most 128"), "{err}");
    // Its position counts the levels between the innermost and outermost
    // steps, rather than saying each of 128 (3 KB of text).
    let Error::BadResult { position, .. } = err else {
        panic!("{err:?}")
    };
    let step = "element 0 of the list";
    assert_eq!(
        position,
        format!("{step} in {step} in {step} in {step} in (120 levels more) in {step} in {step} in {step} in {step}")
    );
    // Of dicts: the value too deep, not its key, a str (trial 23).
    let Error::BadResult { position, .. } = f.call::<Value>(6).unwrap_err() else {
        panic!("a BadResult")
    };
    let step = "the value under key 'a'";
    assert_eq!(
        position,
        format!("value under key 'a' in {step} in {step} in {step} in (120 levels more) in {step} in {step} in {step} in {step}")
    );
    match f.call::<Value>(1).unwrap_err() {
        Error::BadResult {
            position, found, ..
        } => assert_eq!(
            (position.as_str(), found.as_str()),
            ("value under key 'n'", "an int outside 128 bits")
        ),
        other => panic!("{other:?}"),
    }
    match f.call::<Value>(2).unwrap_err() {
        Error::BadResult {
            position, found, ..
        } => assert_eq!(
            (position.as_str(), found.as_str()),
            ("element 1 of the list", "an object of type set")
        ),
        other => panic!("{other:?}"),
    }
    match f.call::<Value>(3).unwrap_err() {
        Error::BadResult {
            expected, found, ..
        } => {
            assert_eq!(expected, "a numpy array of a numeric or bool dtype");
            assert!(found.contains("datetime64"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    // A tuple key is a Value too.
    let v = f.call::<Value>(5).unwrap();
    let Value::Dict(entries) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(entries[0].0, Value::tuple([1, 2]));
    assert_eq!(v.get("ok"), Some(&Value::list([1.0])));
}

#[test]
fn owned_inputs_go_in_any_position_and_are_freed_when_python_lets_go() -> Result<(), Error> {
    let f = module(
        "conv_owned_positions",
        "KEPT = []\n\
         def f(a, b, c, *, d, keep=False):\n\
         \x20   if keep:\n\
         \x20       KEPT.extend([b, c, d])  # a is lent: only owned inputs are kept\n\
         \x20   return float(a.sum() + b.sum() + c.sum() + d.sum()), a.flags.writeable, b.flags.writeable\n\
         def release():\n\
         \x20   KEPT.clear()\n",
    );
    let release = Function::load("conv_owned_positions", "release")?;
    let shared: Arc<[f64]> = Arc::from(vec![1.0, 2.0]);
    let lent = [10.0, 20.0];
    let (sum, a_writable, b_writable): (f64, bool, bool) = f
        .arg(&lent)
        .arg_owned(Arc::clone(&shared))
        .arg_owned(NdVec::new(vec![100.0; 4], vec![2, 2])?)
        .kwarg_owned("d", vec![1000.0])
        .kwarg("keep", true)
        .call()?;
    assert_eq!(sum, 30.0 + 3.0 + 400.0 + 1000.0);
    // A lent array is read-only; a shared Arc too (Rust may still read it).
    assert!(!a_writable && !b_writable);
    // Python keeps the Arc: one more strong count until it lets it go.
    assert_eq!(Arc::strong_count(&shared), 2);
    release.call0::<()>()?;
    assert_eq!(Arc::strong_count(&shared), 1);

    // Given but not kept: freed with the call.
    let (sum, ..): (f64, bool, bool) = f
        .arg_owned(vec![1.0])
        .arg_owned(Arc::clone(&shared))
        .arg(&lent)
        .kwarg_owned("d", NdVec::new(vec![0.5], vec![1])?)
        .call()?;
    assert_eq!(sum, 1.0 + 3.0 + 30.0 + 0.5);
    assert_eq!(Arc::strong_count(&shared), 1);

    // A call that fails before Python sees them frees them too.
    let err = f
        .arg_owned(Arc::clone(&shared))
        .kwarg("d", 1)
        .kwarg("d", 2)
        .call::<(f64, bool, bool)>()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(Arc::strong_count(&shared), 1);
    // And one whose Python raises.
    let err = f
        .arg_owned(Arc::clone(&shared))
        .call::<(f64, bool, bool)>()
        .unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));
    assert_eq!(Arc::strong_count(&shared), 1);
    Ok(())
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_arrays_are_owned_inputs_in_any_layout() -> Result<(), Error> {
    use ndarray::{array, s};
    let f = module(
        "conv_owned_ndarray",
        "KEPT = []\n\
         def f(x):\n\
         \x20   KEPT.append(x)\n\
         \x20   return x.tolist(), x.flags.c_contiguous, x.flags.writeable\n",
    );
    let (rows, c, w): (Vec<Vec<i64>>, bool, bool) =
        f.arg_owned(array![[1i64, 2, 3], [4, 5, 6]]).call()?;
    assert_eq!(
        (rows, c, w),
        (vec![vec![1, 2, 3], vec![4, 5, 6]], true, true)
    );
    // Transposed: copied once into C order, the values as Rust sees them.
    let (rows, ..): (Vec<Vec<i64>>, bool, bool) = f
        .arg_owned(array![[1i64, 2, 3], [4, 5, 6]].reversed_axes())
        .call()?;
    assert_eq!(rows, vec![vec![1, 4], vec![2, 5], vec![3, 6]]);
    // A sliced array with an offset into its buffer.
    let sliced = array![[1i64, 2, 3], [4, 5, 6]].slice_move(s![1.., 1..]);
    let (rows, ..): (Vec<Vec<i64>>, bool, bool) = f.arg_owned(sliced).call()?;
    assert_eq!(rows, vec![vec![5, 6]]);
    Ok(())
}

/// The plain Python scalars a result holds most often (float, int, bool,
/// str of exactly those types) are read without asking numpy; subclasses,
/// numpy scalars and ints beyond int64 go the general way. Both ways give
/// the same values and refuse the same things.
#[test]
fn plain_scalars_and_their_edges_read_the_same_either_way() {
    let f = Function::from_source(
        "conv_exact_scalars",
        "import numpy as np\n\
         class F(float): pass\n\
         class I(int): pass\n\
         class S(str): pass\n\
         VALUES = {\n\
         \x20   'float': 1.5, 'subfloat': F(2.5), 'npfloat': np.float64(3.25),\n\
         \x20   'int': -7, 'subint': I(8), 'npint': np.int64(-9), 'min': -2**63,\n\
         \x20   'big': 2**63, 'huge': 2**70, 'true': True, 'false': False,\n\
         \x20   'str': 'caf\\u00e9', 'substr': S('s'), 'surrogate': '\\ud800',\n\
         }\n\
         def f(key):\n\
         \x20   return VALUES[key]\n",
        "f",
    )
    .unwrap();
    assert_eq!(f.call::<f64>("float").unwrap(), 1.5);
    assert_eq!(f.call::<f64>("subfloat").unwrap(), 2.5);
    assert_eq!(f.call::<f64>("npfloat").unwrap(), 3.25);
    assert_eq!(f.call::<i64>("int").unwrap(), -7);
    assert_eq!(f.call::<i64>("subint").unwrap(), 8);
    assert_eq!(f.call::<i64>("npint").unwrap(), -9);
    assert_eq!(f.call::<i64>("min").unwrap(), i64::MIN);
    assert_eq!(f.call::<u64>("big").unwrap(), 1 << 63);
    assert!(f.call::<bool>("true").unwrap());
    assert!(!f.call::<bool>("false").unwrap());
    assert_eq!(f.call::<String>("str").unwrap(), "café");
    assert_eq!(f.call::<String>("substr").unwrap(), "s");
    // Refused alike: an int beyond int64 as i64, a float as an int, a str
    // as a number, a number as a str, a lone surrogate.
    for (key, message) in [
        ("big", "that i64 holds exactly"),
        ("huge", "an int outside"),
        ("float", "float"),
        ("str", "str"),
    ] {
        let err = f.call::<i64>(key).unwrap_err();
        assert!(
            matches!(err, Error::BadResult { .. }) && err.to_string().contains(message),
            "{key}: {err}"
        );
    }
    let err = f.call::<String>("int").unwrap_err();
    assert!(err.to_string().contains("expected a str"), "{err}");
    let err = f.call::<String>("surrogate").unwrap_err();
    assert!(err.to_string().contains("lone surrogates"), "{err}");
    // And the next call works.
    assert_eq!(f.call::<f64>("float").unwrap(), 1.5);
}

/// Reads an int, and panics on 13 (after a read that failed, whose
/// mismatch it ignores).
struct PanicsOn13(i64);

impl FromResult for PanicsOn13 {
    fn from_result(value: Reader<'_>) -> Result<Self, Mismatch> {
        let _ignored = value.getattr::<String>("no_such_attribute");
        let n: i64 = value.read()?;
        assert_ne!(n, 13, "a panic in a result type of your own");
        Ok(PanicsOn13(n))
    }
}

#[test]
fn a_panic_in_a_result_type_of_your_own_unwinds_to_the_caller_and_the_next_call_works() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let f = module("pim_conv_panics", "def f(x):\n    return int(x.sum())\n");
    let data = vec![6.0, 7.0];
    for _ in 0..3 {
        let panicked = catch_unwind(AssertUnwindSafe(|| f.call::<PanicsOn13>(&data[..])));
        assert!(panicked.is_err(), "the panic reaches the caller");
        assert_eq!(f.call::<PanicsOn13>(&[1.0, 2.0][..]).unwrap().0, 3);
    }
    // In a hold_gil scope, with the input lent by the scope.
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        py_in_mem::hold_gil(|scope| {
            let lent = scope.lend(&data)?;
            f.call::<PanicsOn13>(lent).map(|p| p.0)
        })
    }));
    assert!(panicked.is_err());
    let sum = py_in_mem::hold_gil(|scope| f.call::<i64>(scope.lend(&data)?)).unwrap();
    assert_eq!(sum, 13);
    // Another thread gets the GIL: nothing was left held.
    let g = f.clone();
    let other = std::thread::spawn(move || g.call::<i64>(&[4.0, 5.0][..]).unwrap());
    assert_eq!(other.join().unwrap(), 9);
}

/// Lists of strings as arguments, in every common Rust shape: a Python
/// `list` of `str` each time, with the strings intact.
#[test]
fn strings_in_a_vec_slice_or_array_are_a_list_of_str() -> Result<(), Error> {
    let f = Function::from_source(
        "pim_conv_str_lists",
        "def show(names):\n    return type(names).__name__ + ':' + '|'.join(names)\n",
        "show",
    )?;
    let owned = vec!["é".to_owned(), String::new(), "c d".to_owned()];
    assert_eq!(f.call::<String>(&owned)?, "list:é||c d");
    assert_eq!(f.call::<String>(&owned[..])?, "list:é||c d");
    assert_eq!(f.call::<String>(owned.clone())?, "list:é||c d");
    assert_eq!(f.call::<String>(vec!["a", "b"])?, "list:a|b");
    assert_eq!(f.call::<String>(&vec!["a", "b"])?, "list:a|b");
    assert_eq!(f.call::<String>(&["x"][..])?, "list:x");
    assert_eq!(f.call::<String>(["p", "q", "r"])?, "list:p|q|r");
    assert_eq!(f.call::<String>(Vec::<String>::new())?, "list:");
    // Owned, so an async call takes them too.
    let sent = pollster::block_on(f.call_async::<String>(vec!["s".to_owned()]))?;
    assert_eq!(sent, "list:s");
    Ok(())
}

/// A grid of values of a type of your own: its shape may not fit its
/// values, which its `IntoArg` passes on as an invalid argument.
struct Grid {
    values: Vec<f64>,
    shape: Vec<usize>,
}

impl<'a> py_in_mem::IntoArg<'a> for &'a Grid {
    fn into_arg(self) -> py_in_mem::Arg<'a> {
        py_in_mem::Arg::new(py_in_mem::NdSlice::new(&self.values, &self.shape))
    }
}

/// An argument of your own that cannot be made is the call's
/// `InvalidArgument`, and Python is not called; one that can is lent as
/// any other. Before, an `IntoArg` impl had no way to fail but to panic.
#[test]
fn an_argument_of_your_own_that_cannot_be_made_is_an_invalid_argument() -> Result<(), Error> {
    let f = Function::from_source(
        "pim_conv_invalid_arg",
        "CALLS = [0]\ndef total(x):\n    CALLS[0] += 1\n    return float(x.sum())\n\
         def calls():\n    return CALLS[0]\n",
        "total",
    )?;
    let calls = Function::load("pim_conv_invalid_arg", "calls")?;
    let fits = Grid {
        values: vec![1.0, 2.0, 3.0, 4.0],
        shape: vec![2, 2],
    };
    assert_eq!(f.call::<f64>(&fits)?, 10.0);
    let bad = Grid {
        values: vec![1.0, 2.0, 3.0],
        shape: vec![2, 2],
    };
    assert_eq!(
        f.call::<f64>(&bad).unwrap_err(),
        Error::InvalidArgument("a 2 × 2 array needs 4 values, the slice has 3".into())
    );
    assert_eq!(
        f.arg(&fits)
            .arg(py_in_mem::Arg::invalid("no"))
            .call::<f64>()
            .unwrap_err(),
        Error::InvalidArgument("no".into())
    );
    assert_eq!(
        calls.call0::<i64>()?,
        1,
        "Python was called for the valid grid only"
    );
    Ok(())
}
