//! The bench's input: the article's data at any size, with outliers where
//! the test knows them, so every path's result can be checked.

/// Where outliers sit in every block of 1,000 values, as in `make run`.
const OUTLIER_OFFSETS: [usize; 3] = [7, 113, 835];

/// Values in `[0, 1)` with 97 added at the outlier positions.
pub struct Case {
    pub data: Vec<f64>,
    /// The indices `outliers.detect` must return.
    pub expected: Vec<usize>,
}

impl Case {
    pub fn new(size: usize) -> Case {
        let mut data: Vec<f64> = (0..size)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let expected: Vec<usize> = (0..size)
            .filter(|i| OUTLIER_OFFSETS.contains(&(i % 1000)))
            .collect();
        for &i in &expected {
            data[i] += 97.0;
        }
        Case { data, expected }
    }
}
