//! `bench/python/http_model.py`'s model computed in Rust, for the answers
//! every service is checked against, and the request bodies.
//!
//! The weights and bias come from the same seed through the same generator
//! (splitmix64) as the Python file's; a change to one must be made to both.

/// Features per row.
pub const D: usize = 16;
/// `http_model.SEED`.
const SEED: u64 = 19;

/// The next value of splitmix64, advancing `state`.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [-1, 1), as `http_model.parameters` makes each value.
fn uniform(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// The model's weights and bias.
pub struct Model {
    weights: [f64; D],
    bias: f64,
}

impl Model {
    pub fn new() -> Model {
        let mut state = SEED;
        let mut weights = [0.0; D];
        for w in &mut weights {
            *w = uniform(&mut state);
        }
        let bias = uniform(&mut state);
        Model { weights, bias }
    }

    /// `Model().predict` on `rows`: labels and scores.
    pub fn predict(&self, rows: &[[f64; D]]) -> (Vec<i64>, Vec<f64>) {
        let scores: Vec<f64> = rows
            .iter()
            .map(|row| {
                let z: f64 = row.iter().zip(&self.weights).map(|(x, w)| x * w).sum();
                1.0 / (1.0 + (-(z + self.bias)).exp())
            })
            .collect();
        let labels = scores.iter().map(|&s| i64::from(s >= 0.5)).collect();
        (labels, scores)
    }
}

/// `count` different requests of `rows` rows each, features uniform in
/// [-1, 1) from `seed`.
pub fn requests(count: usize, rows: usize, seed: u64) -> Vec<Vec<[f64; D]>> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            (0..rows)
                .map(|_| {
                    let mut row = [0.0; D];
                    for x in &mut row {
                        *x = uniform(&mut state);
                    }
                    row
                })
                .collect()
        })
        .collect()
}

/// `{"rows": [...]}` for `rows`.
pub fn body(rows: &[[f64; D]]) -> String {
    serde_json::json!({ "rows": rows }).to_string()
}

/// The answer a service gave, checked against the expected one: labels
/// equal, scores within 1e-9. Returns what differs.
pub fn check_answer(json: &[u8], expected: &(Vec<i64>, Vec<f64>)) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        labels: Vec<i64>,
        scores: Vec<f64>,
    }
    let answer: Answer = serde_json::from_slice(json).map_err(|e| {
        format!(
            "not the answer's JSON ({e}): {:?}",
            String::from_utf8_lossy(json)
        )
    })?;
    if answer.labels != expected.0 {
        return Err(format!(
            "labels {:?}, expected {:?}",
            answer.labels, expected.0
        ));
    }
    let close = answer.scores.len() == expected.1.len()
        && answer
            .scores
            .iter()
            .zip(&expected.1)
            .all(|(a, b)| (a - b).abs() <= 1e-9);
    if !close {
        return Err(format!(
            "scores {:?}, expected {:?} (to 1e-9)",
            answer.scores, expected.1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_zeros_scores_the_logistic_of_the_bias() {
        let model = Model::new();
        let (labels, scores) = model.predict(&[[0.0; D]]);
        assert_eq!(scores, [1.0 / (1.0 + (-model.bias).exp())]);
        assert_eq!(labels, [i64::from(scores[0] >= 0.5)]);
    }
}
