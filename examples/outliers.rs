//! The article's Listing 1: detect outliers in 1,000 random values with
//! Python's `outliers.detect`, in this process, on this memory.
//!
//! Run with `make run` (or `cargo run --example outliers` after `make setup`).

use std::time::{SystemTime, UNIX_EPOCH};

use py_in_mem::Outliers;

/// 1,000 uniform values in [0, 1) with +97 at indices 7, 113 and 835.
fn article_data() -> Vec<f64> {
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    // SplitMix64: enough randomness for an example, no dependency.
    let mut uniform = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    };
    let mut data: Vec<f64> = (0..1000).map(|_| uniform()).collect();
    for i in [7, 113, 835] {
        data[i] += 97.0;
    }
    data
}

fn main() -> Result<(), py_in_mem::Error> {
    let data = article_data();
    let outliers = Outliers::new("outliers", "detect")?;
    let indices = outliers.detect(&data)?;
    println!("outliers at: {indices:?}");
    outliers.close();
    Ok(())
}
