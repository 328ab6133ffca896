//! Fuzz target: bytes become what the Python function returns (dtype,
//! dimensions, strides, byte order, alignment, values, a view of the input,
//! a non-array object, or an exception; see `fuzz/pim_fuzz.py`), and the
//! call goes through the crate. Every outcome must be the correct result or
//! the right `Error`; a crash, an abort or a sanitizer report is a bug.
//!
//! The oracle, `pim_fuzz.expect`, judges the same object with numpy's
//! high-level API (`ndim`, `dtype.kind`, Python ints), independently of the
//! glue's C-level checks and of `indices.rs`'s strided, byte-swapped reads.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use py_in_mem::{Error, Outliers};

fn functions() -> &'static (Outliers, Outliers) {
    static FUNCTIONS: OnceLock<(Outliers, Outliers)> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        py_in_mem::add_sys_path(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        (
            Outliers::new("pim_fuzz", "build").unwrap(),
            Outliers::new("pim_fuzz", "expect").unwrap(),
        )
    })
}

fuzz_target!(|bytes: &[u8]| {
    // One value per byte, at least 8 (the spec's header) and at most 4,096.
    let mut data: Vec<f64> = bytes.iter().take(4096).map(|&b| f64::from(b)).collect();
    data.resize(data.len().max(8), 0.0);
    let (build, expect) = functions();
    let got = build.detect(&data);
    let verdict = expect.detect(&data).expect("the oracle itself failed");
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
});
