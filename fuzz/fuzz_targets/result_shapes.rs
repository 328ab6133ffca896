//! Fuzz target: bytes become what the Python function returns, and the call
//! goes through the crate. Every outcome must be the correct result or the
//! right `Error`; a crash, an abort or a sanitizer report is a bug.
//!
//! The high nibble of the first byte picks the Rust type asked for:
//!
//! - 0: `Outliers::detect`, whose result (`fuzz/pim_fuzz.py`'s `build`) is a
//!   numpy array of any dtype, byte order, dimensions, strides, alignment
//!   and values, a view of the input, a non-array object, or an exception.
//! - 1 to 15: one of fifteen `FromResult` types (numbers, complex, `Vec`,
//!   `NdVec`, `ResultView`, tuples, `Option`, `HashMap`, `String`, nested),
//!   whose result (`build_nested`) is built of Python and numpy scalars of
//!   every kind, strings, `None`, n-D arrays, views of the input, and lists,
//!   tuples and dicts of those, mostly shaped like the type asked for.
//!
//! The oracles, `pim_fuzz.expect` and `pim_fuzz.expect_nested`, judge the
//! same object with numpy's and Python's high-level API, independently of
//! the glue's C-level checks and of the crate's reads; the nested one says
//! the value as a canonical string (written the same way here), or where in
//! the result `Error::BadResult` must point.
#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use py_in_mem::num_complex::{Complex32, Complex64};
use py_in_mem::{Error, FromResult, Function, NdVec, Outliers, ResultView};

struct Functions {
    build: Outliers,
    expect: Outliers,
    build_nested: Function,
    expect_nested: Function,
}

fn functions() -> &'static Functions {
    static FUNCTIONS: OnceLock<Functions> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        py_in_mem::add_sys_path(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        Functions {
            build: Outliers::new("pim_fuzz", "build").unwrap(),
            expect: Outliers::new("pim_fuzz", "expect").unwrap(),
            build_nested: Function::load("pim_fuzz", "build_nested").unwrap(),
            expect_nested: Function::load("pim_fuzz", "expect_nested").unwrap(),
        }
    })
}

/// A value written as `pim_fuzz.expect_nested` writes it.
trait Canon {
    fn canon(&self) -> String;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A float as the bytes of its bits (`d` for f64, `s` for f32); any NaN
/// as one name, since NaN payloads need not survive numpy's casts.
macro_rules! canon_float {
    ($($t:ty => $tag:literal),*) => {$(
        impl Canon for $t {
            fn canon(&self) -> String {
                if self.is_nan() {
                    concat!($tag, "nan").into()
                } else {
                    format!(concat!($tag, "{}"), hex(&self.to_le_bytes()))
                }
            }
        }
    )*};
}
canon_float!(f64 => "d", f32 => "s");

macro_rules! canon_int {
    ($($t:ty),*) => {$(
        impl Canon for $t {
            fn canon(&self) -> String {
                format!("i{self}")
            }
        }
    )*};
}
canon_int!(i64, i32, u8);

impl Canon for bool {
    fn canon(&self) -> String {
        if *self { "b1" } else { "b0" }.into()
    }
}

impl Canon for Complex64 {
    fn canon(&self) -> String {
        format!("c({},{})", self.re.canon(), self.im.canon())
    }
}

impl Canon for Complex32 {
    fn canon(&self) -> String {
        format!("c({},{})", self.re.canon(), self.im.canon())
    }
}

impl Canon for String {
    fn canon(&self) -> String {
        format!("t{}", hex(self.as_bytes()))
    }
}

fn list<T: Canon>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(Canon::canon).collect();
    items.join(",")
}

fn shaped<T: Canon>(shape: &[usize], items: &[T]) -> String {
    let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("n{}[{}]", shape.join(","), list(items))
}

impl<T: Canon> Canon for Vec<T> {
    fn canon(&self) -> String {
        format!("[{}]", list(self))
    }
}

impl<T: Canon> Canon for NdVec<T> {
    fn canon(&self) -> String {
        shaped(self.shape(), self.as_slice())
    }
}

impl Canon for ResultView<f64> {
    fn canon(&self) -> String {
        shaped(self.shape(), self.as_slice())
    }
}

impl<T: Canon> Canon for Option<T> {
    fn canon(&self) -> String {
        self.as_ref().map_or_else(|| "none".into(), Canon::canon)
    }
}

impl<T: Canon> Canon for HashMap<String, T> {
    fn canon(&self) -> String {
        let mut entries: Vec<(&String, &T)> = self.iter().collect();
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let entries: Vec<String> = entries
            .into_iter()
            .map(|(key, value)| format!("{}:{}", hex(key.as_bytes()), value.canon()))
            .collect();
        format!("{{{}}}", entries.join(","))
    }
}

macro_rules! canon_tuple {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Canon),+> Canon for ($($name,)+) {
            fn canon(&self) -> String {
                let parts = [$(self.$index.canon()),+];
                format!("({})", parts.join(","))
            }
        }
    };
}
canon_tuple!(A 0, B 1);
canon_tuple!(A 0, B 1, C 2);

/// The crate's verdict on `data` asked for as `R`, written as the oracle
/// writes its own.
fn verdict<R: FromResult + Canon>(build: &Function, data: &[f64]) -> String {
    match build.call::<R>(data) {
        Ok(value) => value.canon(),
        Err(Error::BadResult {
            position, found, ..
        }) => {
            // Every mismatch says what it found.
            assert!(!found.is_empty());
            format!("BadResult@{position}")
        }
        Err(Error::Python(_)) => "Python".into(),
        Err(other) => format!("unexpected error {other:?}"),
    }
}

fuzz_target!(|bytes: &[u8]| {
    // One value per byte, at least 8 (the spec's header) and at most 4,096.
    let mut data: Vec<f64> = bytes.iter().take(4096).map(|&b| f64::from(b)).collect();
    data.resize(data.len().max(8), 0.0);
    let functions = functions();
    let target = bytes.first().map_or(0, |b| b >> 4);
    if target == 0 {
        let got = functions.build.detect(&data);
        let verdict = functions.expect.detect(&data).expect("the oracle itself failed");
        match verdict[0] {
            0 => assert_eq!(got.as_deref(), Ok(&verdict[1..]), "{bytes:?}"),
            1 => assert!(
                matches!(&got, Err(Error::BadResult { found, .. }) if !found.is_empty()),
                "expected BadResult, got {got:?} for {bytes:?}"
            ),
            2 => assert!(
                matches!(&got, Err(Error::Python(e)) if e.type_name == "ValueError"),
                "expected ValueError, got {got:?} for {bytes:?}"
            ),
            other => panic!("oracle verdict {other}"),
        }
        // Every error displays as text, without panicking.
        if let Err(err) = &got {
            assert!(!err.to_string().is_empty());
        }
        return;
    }
    let build = &functions.build_nested;
    let got = match target {
        1 => verdict::<f64>(build, &data),
        2 => verdict::<i64>(build, &data),
        3 => verdict::<u8>(build, &data),
        4 => verdict::<bool>(build, &data),
        5 => verdict::<Complex64>(build, &data),
        6 => verdict::<Complex32>(build, &data),
        7 => verdict::<f32>(build, &data),
        8 => verdict::<Vec<f64>>(build, &data),
        9 => verdict::<Vec<i32>>(build, &data),
        10 => verdict::<NdVec<i64>>(build, &data),
        11 => verdict::<NdVec<Complex64>>(build, &data),
        12 => verdict::<(f64, Vec<i64>)>(build, &data),
        13 => verdict::<Option<Vec<f64>>>(build, &data),
        14 => verdict::<HashMap<String, f64>>(build, &data),
        _ => verdict::<(String, (bool, NdVec<f32>), ResultView<f64>)>(build, &data),
    };
    let want: String = functions
        .expect_nested
        .call(&data)
        .expect("the oracle itself failed");
    assert_eq!(got, want, "target {target} for {bytes:?}");
});
