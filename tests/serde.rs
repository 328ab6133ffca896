//! serde (feature `serde`): `Deserialize` types read from Python results
//! (dicts, lists, tuples, numpy scalars and arrays, dataclasses, named
//! tuples, enums) by the crate's deserializer, with `BadResult` naming where
//! a mismatch is; `Serialize` types given as arguments, read back by
//! Python; hostile results (a list that holds itself, a huge int, a
//! property that raises) are errors, never crashes.
#![cfg(feature = "serde")]

use std::collections::{BTreeMap, HashMap};

use py_in_mem::{Error, Function, Object, Serde, Value};
use serde::{Deserialize, Serialize};

const SOURCE: &str = r#"
import collections
import dataclasses
import numpy as np

def echo(x):
    return x

def three():
    return (1, 2.0, 3.0)

def three_array():
    return np.array([1.0, 2.0, 3.0])

def one_a_three():
    return [1, 'a', 3]

def rows_of_three():
    return np.arange(6.0).reshape(2, 3)

def a_complex():
    return np.complex128(1 + 2j)

def prediction():
    return {'label': 'spam', 'score': 0.75, 'extra': [1, 2, 3]}

def nested():
    return {'name': 'run', 'inner': {'a': 1, 'b': [1.5, 2.5]}, 'pairs': [(1, 'x'), (2, 'y')]}

def optional_missing():
    return {'label': 'x'}

def optional_none():
    return {'label': 'x', 'note': None, 'count': None}

def optional_some():
    return {'label': 'x', 'note': 'hi', 'count': 3}

def array():
    return np.array([0.5, 1.5, 2.5])

def matrix():
    return np.arange(6, dtype=np.int32).reshape(2, 3)

def numpy_scalars():
    return {'label': str(np.str_('np')), 'score': np.float32(0.5), 'n': np.int16(-3), 'flag': np.bool_(True)}

@dataclasses.dataclass
class Point:
    x: float
    y: float
    name: str = 'p'

def dataclass():
    return Point(1.0, -2.0, 'origin')

Pair = collections.namedtuple('Pair', ['first', 'second'])

def named():
    return Pair(first=3, second='three')

def named_as_tuple():
    return Pair(10, 'ten')

def by_position():
    return [7, 'seven']

class Raising:
    @property
    def x(self):
        raise ValueError('no x here')
    y = 2.0

def raising():
    return Raising()

class RaisingPair(Pair):
    @property
    def first(self):
        raise ValueError('no first here')

def raising_named():
    return RaisingPair(1, 'one')

def enums():
    return ['Idle', {'Move': {'dx': 1, 'dy': -1}}, {'Say': 'hello'}, {'Pair': [1, 2]}]

def bad_enum():
    return {'Move': {'dx': 1, 'dy': 2}, 'Say': 'x'}

def wrong_type():
    return {'label': 'spam', 'score': 'high'}

def wrong_nested():
    return {'name': 'run', 'inner': {'a': 1, 'b': [1.5, 'two']}, 'pairs': []}

def self_list():
    l = [1]
    l.append(l)
    return l

def huge():
    return {'label': 'x', 'score': 1.0, 'n': 10 ** 30}

def mixed_map():
    return {'a': 1, 'b': [1.0, 'x'], 'c': {'d': None}, 'e': b'\x00\x01'}

def int_keys():
    return {1: 'one', 2: 'two'}

def check_config(c):
    assert c == {'name': 'cfg', 'threshold': 0.5, 'tags': ['a', 'b'], 'mode': 'Fast',
                 'limits': (1, 10), 'inner': {'on': True}, 'maybe': None,
                 'shape': {'Circle': {'r': 2.0}}}, c
    return c['threshold'] * 2 + len(c['tags'])

def type_names(x):
    return repr(type(x).__name__) + ' ' + repr(x)

class Model:
    def __init__(self, offset):
        self.offset = offset
    def predict_one(self, row):
        return {'label': 'big' if sum(row['values']) > self.offset else 'small',
                'score': sum(row['values']) + self.offset}
"#;

fn f(name: &str) -> Function {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        Function::from_source("pim_serde_tests", SOURCE, "echo").unwrap();
    });
    Function::load("pim_serde_tests", name).unwrap()
}

#[derive(Deserialize, Debug, PartialEq)]
struct Prediction {
    label: String,
    score: f64,
}
py_in_mem::serde_result!(Prediction);

#[test]
fn a_struct_reads_from_a_dict_with_its_values() {
    let p: Prediction = f("prediction").call0().unwrap();
    assert_eq!(
        p,
        Prediction {
            label: "spam".into(),
            score: 0.75
        }
    );
    // The same through the newtype.
    let Serde(p): Serde<Prediction> = f("prediction").call0().unwrap();
    assert_eq!(p.score, 0.75);
}

#[derive(Deserialize, Debug, PartialEq)]
struct Inner {
    a: i64,
    b: Vec<f64>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Outer {
    name: String,
    inner: Inner,
    pairs: Vec<(u8, String)>,
}

#[test]
fn nested_structs_vecs_and_tuples_read() {
    let Serde(o): Serde<Outer> = f("nested").call0().unwrap();
    assert_eq!(
        o,
        Outer {
            name: "run".into(),
            inner: Inner {
                a: 1,
                b: vec![1.5, 2.5]
            },
            pairs: vec![(1, "x".into()), (2, "y".into())],
        }
    );
}

#[derive(Deserialize, Debug, PartialEq)]
struct WithOptions {
    label: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    count: Option<u32>,
}

#[test]
fn option_fields_read_missing_none_and_some() {
    let expect = |note: Option<&str>, count| WithOptions {
        label: "x".into(),
        note: note.map(Into::into),
        count,
    };
    let Serde(a): Serde<WithOptions> = f("optional_missing").call0().unwrap();
    assert_eq!(a, expect(None, None));
    let Serde(b): Serde<WithOptions> = f("optional_none").call0().unwrap();
    assert_eq!(b, expect(None, None));
    let Serde(c): Serde<WithOptions> = f("optional_some").call0().unwrap();
    assert_eq!(c, expect(Some("hi"), Some(3)));
}

#[test]
fn vecs_read_from_numpy_arrays_lists_and_nested_per_dimension() {
    let Serde(v): Serde<Vec<f64>> = f("array").call0().unwrap();
    assert_eq!(v, [0.5, 1.5, 2.5]);
    let Serde(v): Serde<Vec<f64>> = f("echo").call(Value::list([1.0, 2.0])).unwrap();
    assert_eq!(v, [1.0, 2.0]);
    let Serde(m): Serde<Vec<Vec<i64>>> = f("matrix").call0().unwrap();
    assert_eq!(m, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    let Serde(m): Serde<Vec<[u8; 3]>> = f("matrix").call0().unwrap();
    assert_eq!(m, vec![[0, 1, 2], [3, 4, 5]]);
    // A float array is no integers.
    let err = f("array").call0::<Serde<Vec<i64>>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.array returned an unexpected element 0 of the 1-D array: expected an int \
         that fits i64, found the float 0.5, an element of a numpy array of dtype float64"
    );
}

#[derive(Deserialize, Debug, PartialEq)]
struct Scalars {
    label: String,
    score: f64,
    n: i8,
    flag: bool,
}

#[test]
fn numpy_scalars_read_as_numbers() {
    let Serde(s): Serde<Scalars> = f("numpy_scalars").call0().unwrap();
    assert_eq!(
        s,
        Scalars {
            label: "np".into(),
            score: 0.5,
            n: -3,
            flag: true
        }
    );
}

#[derive(Deserialize, Debug, PartialEq)]
struct Point {
    x: f64,
    y: f64,
    name: String,
}

#[derive(Deserialize, Debug, PartialEq)]
struct PairStruct {
    first: u32,
    second: String,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Renamed {
    one: u32,
    two: String,
}

#[test]
fn structs_read_from_dataclasses_and_named_tuples() {
    let Serde(p): Serde<Point> = f("dataclass").call0().unwrap();
    assert_eq!(
        p,
        Point {
            x: 1.0,
            y: -2.0,
            name: "origin".into()
        }
    );
    // A named tuple with the struct's fields: by name.
    let Serde(p): Serde<PairStruct> = f("named").call0().unwrap();
    assert_eq!(
        p,
        PairStruct {
            first: 3,
            second: "three".into()
        }
    );
    // One without them: by position, as a tuple.
    let Serde(r): Serde<Renamed> = f("named_as_tuple").call0().unwrap();
    assert_eq!(
        r,
        Renamed {
            one: 10,
            two: "ten".into()
        }
    );
    // And as a plain tuple.
    let Serde(t): Serde<(u32, String)> = f("named").call0().unwrap();
    assert_eq!(t, (3, "three".into()));
    // A plain list by position.
    let Serde(r): Serde<Renamed> = f("by_position").call0().unwrap();
    assert_eq!(r.one, 7);
}

#[test]
fn an_object_missing_a_field_or_raising_says_which() {
    let err = f("dataclass").call0::<Serde<Renamed>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.dataclass returned an object of type Point that has no 'one', \
         expected a value for the field 'one'"
    );
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Xy {
        x: f64,
        y: f64,
    }
    // Says which attribute raised, and what.
    let says_raised = |err: Error, field: &str, message: &str| {
        let text = err.to_string();
        assert!(
            text.contains(&format!("expected an attribute '{field}' that reads"))
                && text.contains(&format!("whose attribute raised ValueError: {message}")),
            "{text}"
        );
    };
    says_raised(
        f("raising").call0::<Serde<Xy>>().unwrap_err(),
        "x",
        "no x here",
    );
    // A named tuple whose field raises: that exception, not a read by
    // position that would have found `first` to be 1 (`hasattr` in C
    // swallowed the exception).
    says_raised(
        f("raising_named").call0::<Serde<PairStruct>>().unwrap_err(),
        "first",
        "no first here",
    );
    // The next call works.
    let Serde(p): Serde<Point> = f("dataclass").call0().unwrap();
    assert_eq!(p.x, 1.0);
}

#[derive(Deserialize, Debug, PartialEq)]
enum Command {
    Idle,
    Move { dx: i32, dy: i32 },
    Say(String),
    Pair(u8, u8),
}

#[test]
fn enums_read_externally_tagged() {
    let Serde(c): Serde<Vec<Command>> = f("enums").call0().unwrap();
    assert_eq!(
        c,
        [
            Command::Idle,
            Command::Move { dx: 1, dy: -1 },
            Command::Say("hello".into()),
            Command::Pair(1, 2)
        ]
    );
    let err = f("bad_enum").call0::<Serde<Command>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.bad_enum returned a dict of 2 keys, expected a str or a dict of one key \
         for enum Command"
    );
    // A wrong value inside a variant: where, from the variant down.
    let moved = Value::dict([(
        "Move",
        Value::dict([("dx", Value::Int(1)), ("dy", Value::from("up"))]),
    )]);
    let err = f("echo").call::<Serde<Command>>(moved).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.echo returned an unexpected value under key 'dy' in the value under \
         key 'Move': expected an int that fits i32, found an object of type str"
    );
    let err = f("echo").call::<Serde<Command>>("Run").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.echo returned the variant 'Run', expected one of the variants 'Idle', \
         'Move', 'Say', 'Pair'"
    );
}

#[test]
fn maps_read_with_values_of_any_kind_and_keys_of_any_kind() {
    let Serde(m): Serde<HashMap<String, Value>> = f("mixed_map").call0().unwrap();
    assert_eq!(m["a"], Value::Int(1));
    assert_eq!(m["b"], Value::list([Value::Float(1.0), Value::from("x")]));
    assert_eq!(m["c"], Value::dict([("d", Value::None)]));
    assert_eq!(m["e"], Value::Bytes(vec![0, 1]));
    let Serde(m): Serde<BTreeMap<i64, String>> = f("int_keys").call0().unwrap();
    assert_eq!(m, BTreeMap::from([(1, "one".into()), (2, "two".into())]));
    // A str key asked for, an int found: the key's position.
    let err = f("int_keys")
        .call0::<Serde<HashMap<String, String>>>()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.int_keys returned an unexpected key 0 of the dict: expected a str, \
         found an object of type int"
    );
}

#[test]
fn a_wrong_field_type_is_bad_result_with_its_position_as_a_sentence() {
    let err = f("wrong_type").call0::<Prediction>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.wrong_type returned an unexpected value under key 'score': expected a \
         float, found an object of type str"
    );
    match err {
        Error::BadResult {
            function,
            position,
            expected,
            found,
            ..
        } => {
            assert_eq!(function, "pim_serde_tests.wrong_type");
            assert_eq!(position, "value under key 'score'");
            assert_eq!(expected, "a float");
            assert_eq!(found, "an object of type str");
        }
        other => panic!("{other:?}"),
    }
    let err = f("wrong_nested").call0::<Serde<Outer>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.wrong_nested returned an unexpected element 1 of the list in the value \
         under key 'b' in the value under key 'inner': expected a float, found an object of type str"
    );
}

#[derive(Deserialize, Debug, PartialEq)]
struct TupleStruct(i64, String);

#[derive(Deserialize, Debug, PartialEq)]
struct XY {
    x: f64,
    y: f64,
}

/// Serde's readers of a fixed length (tuples, arrays, tuple structs, a
/// struct read by position) take a sequence of exactly that length: one of
/// more elements is refused, as the crate's own tuples refuse it, not read
/// with the rest dropped. Before, each of these read the first elements.
#[test]
fn a_sequence_longer_than_a_fixed_length_reader_is_refused_not_cut() {
    let found = |err: Error| match err {
        Error::BadResult {
            position,
            expected,
            found,
            ..
        } => (position, expected, found),
        other => panic!("{other:?}"),
    };
    let err = f("three").call0::<Serde<(i64, f64)>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.three returned an object of type tuple of 3 elements, expected a tuple \
         or list of 2 elements"
    );
    let err = f("three").call0::<Serde<[f64; 2]>>().unwrap_err();
    assert_eq!(
        found(err),
        (
            String::new(),
            "a list, tuple or numpy array of 2 elements".into(),
            "an object of type tuple of 3 elements".into()
        )
    );
    let err = f("three_array").call0::<Serde<[f64; 2]>>().unwrap_err();
    assert_eq!(found(err).2, "a numpy array of dtype float64 of 3 elements");
    let err = f("one_a_three").call0::<Serde<TupleStruct>>().unwrap_err();
    assert_eq!(
        found(err),
        (
            String::new(),
            "a tuple or list for tuple struct TupleStruct".into(),
            "an object of type list of 3 elements".into()
        )
    );
    let err = f("three").call0::<Serde<XY>>().unwrap_err();
    assert_eq!(found(err).2, "an object of type tuple of 3 elements");
    // A row of a 2-D array, and the two parts of a complex number.
    let err = f("rows_of_three")
        .call0::<Serde<Vec<[f64; 2]>>>()
        .unwrap_err();
    assert_eq!(
        found(err),
        (
            "row 0 of the 2-D array".into(),
            "a list, tuple or numpy array of 2 elements".into(),
            "a row of a numpy array of 3 elements".into()
        )
    );
    let err = f("a_complex").call0::<Serde<(f64,)>>().unwrap_err();
    assert_eq!(
        found(err),
        (
            String::new(),
            "a tuple or list of 1 element".into(),
            "an object of type numpy.complex128 of 2 elements".into()
        )
    );
    // The exact lengths still read, with their values.
    let Serde(pair): Serde<(i64, f64, f64)> = f("three").call0().unwrap();
    assert_eq!(pair, (1, 2.0, 3.0));
    let Serde(array): Serde<[f64; 3]> = f("three_array").call0().unwrap();
    assert_eq!(array, [1.0, 2.0, 3.0]);
    let Serde(rows): Serde<Vec<[f64; 3]>> = f("rows_of_three").call0().unwrap();
    assert_eq!(rows, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
    let Serde(tuple): Serde<(i64, String, i64)> = f("one_a_three").call0().unwrap();
    assert_eq!(tuple, (1, "a".into(), 3));
    let Serde(z): Serde<(f64, f64)> = f("a_complex").call0().unwrap();
    assert_eq!(z, (1.0, 2.0));
}

#[test]
fn a_missing_field_says_which() {
    let err = f("optional_missing").call0::<Prediction>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.optional_missing returned an object of type dict that has no 'score', \
         expected a value for the field 'score'"
    );
}

#[test]
fn a_list_that_holds_itself_is_an_error_not_a_crash() {
    let err = f("self_list").call0::<Serde<Value>>().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("expected a value nested at most 128 levels deep"),
        "{text}"
    );
    // Into a finite type: just the wrong type at the second element.
    let err = f("self_list").call0::<Serde<Vec<i64>>>().unwrap_err();
    assert!(
        matches!(err, Error::BadResult { ref position, .. } if position == "element 1 of the list")
    );
    // Ignored, it is fine.
    #[derive(Deserialize)]
    struct Nothing {}
    let _: Serde<Vec<serde::de::IgnoredAny>> = f("self_list").call0().unwrap();
    let _ = Nothing {};
}

#[test]
fn a_huge_int_is_an_error() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct WithN {
        n: i64,
    }
    let err = f("huge").call0::<Serde<WithN>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_tests.huge returned an unexpected value under key 'n': expected an int that \
         fits i64, found the int 1000000000000000000000000000000"
    );
    // An i128 or u128 field takes it (and any int in its range).
    #[derive(Deserialize, Debug, PartialEq)]
    struct Wide {
        n: i128,
    }
    let Serde(wide) = f("huge").call0::<Serde<Wide>>().unwrap();
    assert_eq!(wide, Wide { n: 10i128.pow(30) });
    #[derive(Deserialize, Debug, PartialEq)]
    struct Negative {
        n: i128,
        m: u128,
        small: i128,
    }
    let wide = Function::from_source(
        "pim_serde_wide",
        "def f():\n    return {'n': -2**127, 'm': 2**128 - 1, 'small': -3}\n",
        "f",
    )
    .unwrap();
    let Serde(read) = wide.call0::<Serde<Negative>>().unwrap();
    assert_eq!(
        read,
        Negative {
            n: i128::MIN,
            m: u128::MAX,
            small: -3
        }
    );
    let negative = Function::from_source(
        "pim_serde_wide_negative",
        "def f():\n    return -2**100\n",
        "f",
    )
    .unwrap();
    let err = negative.call0::<Serde<u128>>().unwrap_err();
    assert!(
        err.to_string()
            .ends_with("the int -1267650600228229401496703205376, expected an int that fits u128"),
        "{err}"
    );
}

#[derive(Serialize)]
enum Mode {
    Fast,
}

#[derive(Serialize)]
enum Shape {
    Circle { r: f64 },
}

#[derive(Serialize)]
struct Switch {
    on: bool,
}

#[derive(Serialize)]
struct Config {
    name: String,
    threshold: f64,
    tags: Vec<&'static str>,
    mode: Mode,
    limits: (u8, u16),
    inner: Switch,
    maybe: Option<i32>,
    shape: Shape,
}
py_in_mem::serde_arg!(Config);

#[test]
fn a_serialize_struct_is_an_argument_python_reads() {
    let config = Config {
        name: "cfg".into(),
        threshold: 0.5,
        tags: vec!["a", "b"],
        mode: Mode::Fast,
        limits: (1, 10),
        inner: Switch { on: true },
        maybe: None,
        shape: Shape::Circle { r: 2.0 },
    };
    let got: f64 = f("check_config").call(&config).unwrap();
    assert_eq!(got, 3.0);
    let got: f64 = f("check_config").call(Serde(&config)).unwrap();
    assert_eq!(got, 3.0);
    let got: f64 = f("check_config").arg(config).call().unwrap();
    assert_eq!(got, 3.0);
    // Kinds as Python sees them.
    let seen: String = f("type_names")
        .call(Serde((1u64 << 63, b"ab".as_slice(), 'c', ())))
        .unwrap();
    assert_eq!(seen, "'tuple' (9223372036854775808, [97, 98], 'c', None)");
    let seen: String = f("type_names")
        .call(Serde(serde_bytes_like(b"ab")))
        .unwrap();
    assert_eq!(seen, "'bytes' b'ab'");
}

/// A value serde serializes as bytes (as `serde_bytes` does).
fn serde_bytes_like(b: &'static [u8]) -> impl Serialize {
    struct B(&'static [u8]);
    impl Serialize for B {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    B(b)
}

/// A `Serialize` impl that fails, as one checking an invariant does.
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("the row is empty"))
    }
}

#[test]
fn a_serialization_error_is_a_clear_error_and_the_next_call_works() {
    let err = f("echo").call::<Value>(Serde(Refuses)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid argument: serde::Refuses could not be made into a Python value: \
         the row is empty"
    );
    // Among several arguments, too.
    let err = f("echo")
        .arg(1.0)
        .kwarg("x", Serde(vec![Refuses]))
        .call::<Value>()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let v: Value = f("echo").call(Serde(i128::from(i64::MIN))).unwrap();
    assert_eq!(v, Value::Int(i64::MIN));
}

/// 128-bit integers go to Python as the ints they are, and come back as
/// the same `Value` (they were an InvalidArgument beyond 64 bits).
#[test]
fn integers_of_128_bits_go_to_python_and_back() {
    let cases: [(Value, &str); 5] = [
        (Value::from(1i128 << 100), "1267650600228229401496703205376"),
        (
            Value::from(i128::MIN),
            "-170141183460469231731687303715884105728",
        ),
        (
            Value::from(u128::MAX),
            "340282366920938463463374607431768211455",
        ),
        (
            Value::from(u128::from(u64::MAX) + 1),
            "18446744073709551616",
        ),
        (
            Value::from(i128::from(i64::MIN) - 1),
            "-9223372036854775809",
        ),
    ];
    for (value, text) in cases {
        assert!(
            matches!(value, Value::Int128(_) | Value::UInt128(_)),
            "{value:?}"
        );
        let seen: String = f("type_names").call(Serde(value.clone())).unwrap();
        assert_eq!(seen, format!("'int' {text}"), "{value:?}");
        let back: Value = f("echo").call(value.clone()).unwrap();
        assert_eq!(back, value);
        assert_eq!(back.to_string(), text);
    }
    let sent = (1u128 << 127, -(1i128 << 90));
    let back: (u128, i128) = f("echo")
        .call(Serde(sent))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, sent);
    assert_eq!(
        py_in_mem::serde::to_value(&sent).unwrap(),
        Value::tuple([Value::UInt128(1 << 127), Value::Int128(-(1 << 90))])
    );
}

#[test]
fn a_serialize_value_nested_too_deep_is_invalid_not_a_stack_overflow() {
    // serde_json's Value 5,000 lists deep: its Serialize recurses into the
    // crate's serializer, which stops it (it overflowed the stack).
    let mut deep = serde_json::json!(1);
    for _ in 0..5_000 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    let err = f("echo").call::<Value>(Serde(&deep)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: &serde_json::value::Value could not be made into a Python value: \
         it is nested more than 128 levels deep"
    );
    let err = pollster::block_on(f("echo").call_async::<Value>(Serde(deep))).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // Within the limit it goes, and reads back.
    let mut ok = serde_json::json!("leaf");
    for _ in 0..100 {
        ok = serde_json::json!({ "in": ok });
    }
    let back: Serde<serde_json::Value> = f("echo").call(Serde(&ok)).unwrap();
    assert_eq!(back.0, ok);
}

#[derive(Serialize)]
struct Row {
    values: Vec<f64>,
}
py_in_mem::serde_arg!(Row);

fn predict(model: &Object, row: &Row) -> Result<Prediction, Error> {
    let p: Prediction = model.method("predict_one")?.call(row)?;
    Ok(p)
}

#[test]
fn the_exact_spelling_on_an_object_method() -> Result<(), Error> {
    let model: Object = f("Model").call(1.0)?;
    let row = Row {
        values: vec![1.0, 2.0],
    };
    let p: Prediction = model.method("predict_one")?.call(&row)?;
    assert_eq!(
        p,
        Prediction {
            label: "big".into(),
            score: 4.0
        }
    );
    let small = predict(&model, &Row { values: vec![0.25] })?;
    assert_eq!((small.label.as_str(), small.score), ("small", 1.25));
    Ok(())
}

#[test]
fn values_round_trip_through_serde() {
    let v = Value::dict([
        ("a", Value::list([1, 2])),
        ("t", Value::tuple([Value::from("x"), Value::None])),
        ("f", Value::Float(0.5)),
    ]);
    let back = py_in_mem::serde::to_value(&v).unwrap();
    assert_eq!(back, v);
    // An array serializes as nested lists.
    let arr: Value = f("matrix").call0().unwrap();
    let as_lists = py_in_mem::serde::to_value(&arr).unwrap();
    assert_eq!(
        as_lists,
        Value::list([Value::list([0, 1, 2]), Value::list([3, 4, 5])])
    );
}

/// A function of the module `name` that returns what its source
/// evaluates to (with numpy as `np`).
fn evaluator(name: &str) -> Function {
    let source = "import numpy as np\ndef f(source):\n    return eval(source)\n";
    Function::from_source(name, source, "f").unwrap()
}

#[derive(Deserialize, Debug)]
struct Narrow {
    a: f32,
}

#[test]
fn an_f32_reads_only_numbers_it_holds_exactly() {
    let eval = evaluator("pim_serde_f32");
    let read = |source: &str| -> Result<Serde<Narrow>, Error> { eval.call(source) };
    for (source, want) in [
        ("{'a': 0.5}", 0.5f32),
        ("{'a': 3}", 3.0),
        ("{'a': -16777216}", -16_777_216.0),
        ("{'a': float('inf')}", f32::INFINITY),
        ("{'a': np.float32(0.1)}", 0.1f32),
    ] {
        assert_eq!(read(source).unwrap().0.a, want, "{source}");
    }
    assert!(read("{'a': float('nan')}").unwrap().0.a.is_nan());
    // serde's own f32 casts: 1e300 became inf, 0.1 a nearby f32, silently.
    for (source, found) in [
        ("{'a': 1e300}", "the float 1e300"),
        ("{'a': 0.1}", "the float 0.1"),
        ("{'a': 16777217}", "the int 16777217"),
    ] {
        refused_inexact(
            read(source).unwrap_err(),
            "f32",
            "value under key 'a'",
            found,
        );
    }
    // Elements of numpy arrays alike.
    let floats = |source: &str| -> Result<Serde<Vec<f32>>, Error> { eval.call(source) };
    let read = floats("np.array([0.1, 2.5], dtype=np.float32)").unwrap().0;
    assert_eq!(read, [0.1f32, 2.5]);
    assert_eq!(floats("np.array([0.5, 2.5])").unwrap().0, [0.5f32, 2.5]);
    assert!(matches!(
        floats("np.array([0.5, 0.1])"),
        Err(Error::BadResult { .. })
    ));
}

#[derive(Deserialize, Debug)]
struct Wide {
    a: f64,
}

/// `err` is the `BadResult` of a number the float type does not hold
/// exactly: at `position`, found as `found`.
fn refused_inexact(err: Error, float: &str, position: &str, found: &str) {
    match err {
        Error::BadResult {
            position: at,
            expected,
            found: got,
            ..
        } => {
            assert_eq!(at, position, "{found}");
            assert!(
                expected.contains(&format!("{float} holds exactly")),
                "{found}: {expected}"
            );
            assert!(got.contains(found), "{found}: {got}");
        }
        other => panic!("{found}: {other:?}"),
    }
}

#[test]
fn an_f64_reads_only_ints_it_holds_exactly() {
    let eval = evaluator("pim_serde_f64");
    let read = |source: &str| -> Result<Serde<Wide>, Error> { eval.call(source) };
    for (source, want) in [
        ("{'a': 0.1}", 0.1),
        ("{'a': 2**53}", 9_007_199_254_740_992.0),
        ("{'a': -2**63}", -9_223_372_036_854_775_808.0),
        ("{'a': 2**100}", 2f64.powi(100)),
        ("{'a': -2**127}", -(2f64.powi(127))),
        ("{'a': 2**127}", 2f64.powi(127)),
        ("{'a': np.uint64(2**63)}", 2f64.powi(63)),
    ] {
        assert_eq!(read(source).unwrap().0.a, want, "{source}");
    }
    // serde's own f64 casts ints: each became the nearest float, silently.
    for (source, found) in [
        ("{'a': 2**53 + 1}", "the int 9007199254740993"),
        ("{'a': 2**60 + 1}", "the int 1152921504606846977"),
        ("{'a': 2**63 - 1}", "the int 9223372036854775807"),
        (
            "{'a': np.uint64(2**64 - 1)}",
            "the int 18446744073709551615",
        ),
        (
            "{'a': 2**100 + 1}",
            "the int 1267650600228229401496703205377",
        ),
        (
            "{'a': 2**127 - 1}",
            "the int 170141183460469231731687303715884105727",
        ),
        (
            "{'a': 2**128 - 1}",
            "the int 340282366920938463463374607431768211455",
        ),
    ] {
        refused_inexact(
            read(source).unwrap_err(),
            "f64",
            "value under key 'a'",
            found,
        );
    }
    // Elements of numpy arrays, and plain values, alike.
    let floats = |source: &str| -> Result<Serde<Vec<f64>>, Error> { eval.call(source) };
    assert_eq!(
        floats("np.array([1, 2**60])").unwrap().0,
        [1.0, 2f64.powi(60)]
    );
    refused_inexact(
        floats("np.array([1, 2**60 + 1])").unwrap_err(),
        "f64",
        "element 1 of the 1-D array",
        "the int 1152921504606846977",
    );
    let one = eval.call::<Serde<f64>>("2**53 + 1").unwrap_err();
    refused_inexact(one, "f64", "", "the int 9007199254740993");
    // The next call works.
    assert_eq!(read("{'a': 2.5}").unwrap().0.a, 2.5);
}

#[derive(Deserialize, Debug, PartialEq)]
struct Blob {
    data: Vec<u8>,
    text: String,
}

#[test]
fn bytes_read_as_a_vec_of_u8_plain_and_through_serde() {
    let eval = Function::from_source(
        "pim_serde_bytes",
        "def f(source):\n    return eval(source)\n",
        "f",
    )
    .unwrap();
    assert_eq!(
        eval.call::<Vec<u8>>("b'\\x00\\xffab'").unwrap(),
        [0, 255, 97, 98]
    );
    assert_eq!(eval.call::<Vec<u8>>("bytearray(b'xy')").unwrap(), b"xy");
    assert_eq!(eval.call::<Vec<u8>>("b''").unwrap(), b"");
    // As numbers they were, into no other element type.
    assert!(matches!(
        eval.call::<Vec<u16>>("b'ab'"),
        Err(Error::BadResult { .. })
    ));
    let Serde(blob): Serde<Blob> = eval.call("{'data': b'\\x01\\x02', 'text': b'hi'}").unwrap();
    assert_eq!(
        blob,
        Blob {
            data: vec![1, 2],
            text: "hi".into()
        }
    );
    let Serde(lists): Serde<Vec<Vec<u8>>> = eval.call("[b'a', [98, 99]]").unwrap();
    assert_eq!(lists, [b"a".to_vec(), b"bc".to_vec()]);
}

/// A classifier's answer with string labels: `classes_` and `predict` are
/// arrays of strings (`<U`) or objects, read item by item as lists are.
#[test]
fn arrays_of_strings_and_objects_read_as_sequences() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Answer {
        classes: Vec<String>,
        labels: Vec<Option<String>>,
        proba: Vec<Vec<f64>>,
    }
    let answer = Function::from_source(
        "pim_serde_string_arrays",
        "import numpy as np\n\
         def answer():\n\
         \x20   return {'classes': np.array(['ham', 'spam']),\n\
         \x20           'labels': np.array(['spam', None], dtype=object),\n\
         \x20           'proba': np.array([[0.25, 0.75], [0.5, 0.5]])}\n\
         def bad():\n\
         \x20   return np.array(['a', 3], dtype=object)\n",
        "answer",
    )
    .unwrap();
    let Serde(read): Serde<Answer> = answer.call0().unwrap();
    assert_eq!(
        read,
        Answer {
            classes: vec!["ham".into(), "spam".into()],
            labels: vec![Some("spam".into()), None],
            proba: vec![vec![0.25, 0.75], vec![0.5, 0.5]],
        }
    );
    let bad = Function::load("pim_serde_string_arrays", "bad").unwrap();
    let err = bad.call0::<Serde<Vec<String>>>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "pim_serde_string_arrays.bad returned an unexpected element 1 of the 1-D array: expected a \
         str, found an object of type int"
    );
}

/// A field read as an attribute runs Python code (a property) that changes
/// the list or dict being read: a mismatch saying so, not what was left.
#[test]
fn a_container_changed_while_it_is_deserialized_is_a_mismatch() {
    #[derive(Deserialize, Debug)]
    struct Row {
        #[allow(dead_code)] // read, to run the property
        v: f64,
    }
    let changing = Function::from_source(
        "pim_serde_changing",
        "class P:
    def __init__(self, into, i):
        self.into, self.i = into, i
    @property
    def v(self):
        if self.i == 0:
            if isinstance(self.into, list):
                del self.into[1:]
            else:
                self.into['late'] = P(self.into, 7)
        return float(self.i)

def listed(_):
    out = []
    out.extend(P(out, i) for i in range(4))
    return out

def keyed(_):
    d = {}
    for i in range(2):
        d[str(i)] = P(d, i)
    return d
",
        "listed",
    )
    .unwrap();
    match changing.call::<Serde<Vec<Row>>>(0) {
        Err(Error::BadResult { found, .. }) => assert_eq!(
            found,
            "a list that changed length while it was read (4 items, then 1)"
        ),
        other => panic!("{other:?}"),
    }
    let keyed = Function::load("pim_serde_changing", "keyed").unwrap();
    match keyed.call::<Serde<HashMap<String, Row>>>(0) {
        Err(Error::BadResult { found, .. }) => assert_eq!(
            found,
            "a dict that changed size while it was read (2 entries, then 3)"
        ),
        other => panic!("{other:?}"),
    }
}
