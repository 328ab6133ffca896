//! No leak per call: 200,000 calls keep resident memory within 2 MiB of
//! where it stood after warm-up. (The original leaked the argument tuple and
//! the array on every call: 178 MB over 1,000,000 calls.)
//!
//! Alone in its own test binary, so no other test moves the numbers.

mod common;

use common::{article_data, test_func, vm_rss_kib};
use py_in_mem::Outliers;

#[test]
fn two_hundred_thousand_calls_keep_resident_memory_flat() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let raising = test_func("raise_value");
    let bad = test_func("returns_floats");
    let data = article_data(1000, 1);
    let small = [1.0, 2.0, 3.0];
    // Every path: a result, an exception (with its traceback), a bad result.
    let round = |calls: usize| {
        for call in 0..calls {
            assert_eq!(outliers.detect(&data).unwrap(), [7, 113, 835]);
            if call % 10 == 0 {
                assert!(raising.detect(&small).is_err());
                assert!(bad.detect(&small).is_err());
            }
        }
    };
    round(20_000);
    let warm = vm_rss_kib();
    round(200_000);
    let after = vm_rss_kib();
    let grown = after.saturating_sub(warm);
    eprintln!("VmRSS after warm-up {warm} KiB, after 200,000 calls {after} KiB (+{grown} KiB)");
    assert!(
        grown <= 2048,
        "resident memory grew by {grown} KiB over 200,000 calls"
    );
}
