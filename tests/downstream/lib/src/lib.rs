//! A library between the binary and py-in-mem.

pub use py_in_mem::Error;

/// The indices of the outliers in `data`, found by numpy.
pub fn outliers(data: &[f64]) -> Result<Vec<usize>, Error> {
    py_in_mem::Outliers::new("outliers", "detect")?.detect(data)
}

/// The libpython files mapped in this process, from /proc/self/maps.
pub fn libpython_mapped() -> std::collections::BTreeSet<String> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains("/libpython"))
        .map(str::to_owned)
        .collect()
}
