//! The README's example: find the outliers in 1,000 values with numpy, then
//! say which libpython the process runs on.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut data: Vec<f64> = (0..1000).map(|i| (i % 10) as f64 / 10.0).collect();
    for i in [7, 113, 835] {
        data[i] += 97.0;
    }
    let found = py_in_mem::Outliers::new("outliers", "detect").and_then(|o| o.detect(&data));
    // Which libpython the loader mapped, from the kernel's view of the process.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut mapped: Vec<&str> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains("/libpython"))
        .collect();
    mapped.dedup();
    for path in mapped {
        println!("libpython: {path}");
    }
    match found {
        Ok(indices) => {
            println!("outliers at: {indices:?}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
