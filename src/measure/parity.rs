//! Comparing the variants' outputs sample by sample.

use crate::manifest::Dtype;
use crate::manifest::{Parity, PerSampleParity};

/// Compares two batches of outputs of `count` samples, `dtype` elements each.
pub fn compare(wasm: &[u8], native: &[u8], dtype: Dtype, count: usize, tolerance: f64) -> Parity {
    compare_values(&dtype.decode(wasm), &dtype.decode(native), count, tolerance)
}

/// Compares per-sample JSON outputs: their numbers (in lists, objects, at any depth) within
/// `tolerance` with argmax agreement, and everything else about them (keys, strings, booleans,
/// the shape) by equality. A dict of probabilities is compared like a list of them.
pub fn compare_json(
    wasm: &[serde_json::Value],
    native: &[serde_json::Value],
    tolerance: f64,
) -> Parity {
    let count = wasm.len().max(native.len());
    let mut per_sample = PerSampleParity {
        max_abs_diff: Vec::with_capacity(count),
        argmax_wasm: Vec::with_capacity(count),
        argmax_native: Vec::with_capacity(count),
    };
    let mut mismatched_samples = Vec::new();
    for index in 0..count {
        let (diff, argmax_w, argmax_n) = match (wasm.get(index), native.get(index)) {
            (Some(w), Some(n)) => {
                let ((w_numbers, w_rest), (n_numbers, n_rest)) = (split(w), split(n));
                if w_rest == n_rest && w_numbers.len() == n_numbers.len() {
                    compare_numbers(&w_numbers, &n_numbers)
                } else {
                    (f64::INFINITY, 0, 0)
                }
            }
            _ => (f64::INFINITY, 0, 0),
        };
        if !per_sample.record(diff, argmax_w, argmax_n, tolerance) {
            mismatched_samples.push(index);
        }
    }
    Parity {
        samples: count,
        tolerance,
        max_abs_diff: per_sample.max_abs_diff.iter().copied().fold(0.0, f64::max),
        argmax_agree: count - mismatched_samples.len(),
        passed: mismatched_samples.is_empty(),
        mismatched_samples,
        per_sample,
    }
}

/// A JSON value's numbers, in order (an object's by key), and the value with each number
/// replaced by 0: what must be equal for the numbers to be compared.
fn split(value: &serde_json::Value) -> (Vec<f64>, serde_json::Value) {
    use serde_json::Value;
    fn walk(value: &Value, numbers: &mut Vec<f64>) -> Value {
        match value {
            Value::Number(n) => {
                numbers.push(n.as_f64().unwrap_or(f64::NAN));
                Value::from(0)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, numbers)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, v)| (key.clone(), walk(v, numbers)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut numbers = Vec::new();
    let rest = walk(value, &mut numbers);
    (numbers, rest)
}

/// Compares `count` samples of equal width, flattened.
fn compare_values(wasm: &[f64], native: &[f64], count: usize, tolerance: f64) -> Parity {
    let per = wasm.len() / count.max(1);
    let mut per_sample = PerSampleParity {
        max_abs_diff: vec![],
        argmax_wasm: vec![],
        argmax_native: vec![],
    };
    let mut mismatched_samples = Vec::new();
    for (index, (w, n)) in wasm
        .chunks_exact(per.max(1))
        .zip(native.chunks_exact(per.max(1)))
        .enumerate()
    {
        let (diff, argmax_w, argmax_n) = compare_numbers(w, n);
        if !per_sample.record(diff, argmax_w, argmax_n, tolerance) {
            mismatched_samples.push(index);
        }
    }
    let argmax_agree = per_sample
        .argmax_wasm
        .iter()
        .zip(&per_sample.argmax_native)
        .filter(|(a, b)| a == b)
        .count();
    let max_abs_diff = per_sample.max_abs_diff.iter().copied().fold(0.0, f64::max);
    Parity {
        samples: count,
        tolerance,
        max_abs_diff,
        argmax_agree,
        passed: mismatched_samples.is_empty() && wasm.len() == native.len(),
        mismatched_samples,
        per_sample,
    }
}

/// One sample's numbers side by side: the largest difference, and each side's argmax.
fn compare_numbers(wasm: &[f64], native: &[f64]) -> (f64, usize, usize) {
    let diff = wasm
        .iter()
        .zip(native)
        .map(|(a, b)| abs_diff(*a, *b))
        .fold(0.0, f64::max);
    (diff, argmax(wasm), argmax(native))
}

impl PerSampleParity {
    /// Records one sample; whether it agrees: within `tolerance` (a NaN difference never is)
    /// with the same argmax.
    fn record(
        &mut self,
        diff: f64,
        argmax_wasm: usize,
        argmax_native: usize,
        tolerance: f64,
    ) -> bool {
        self.max_abs_diff.push(diff);
        self.argmax_wasm.push(argmax_wasm);
        self.argmax_native.push(argmax_native);
        let within = diff <= tolerance;
        within && argmax_wasm == argmax_native
    }
}

/// |a - b|, with two NaNs equal and one NaN infinitely far from anything.
fn abs_diff(a: f64, b: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0.0,
        (false, false) if a == b => 0.0,
        (false, false) => (a - b).abs(),
        _ => f64::INFINITY,
    }
}

/// Index of the largest element (the first on ties; NaN never wins).
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn flags_samples_beyond_tolerance_or_with_other_argmax() {
        let wasm = bytes(&[0.1, 0.9, 0.5, 0.4, 1.0, 2.0]);
        let native = bytes(&[0.1, 0.9, 0.4, 0.5, 1.0, 2.5]);
        let parity = compare(&wasm, &native, Dtype::F32, 3, 0.01);
        assert_eq!(parity.mismatched_samples, vec![1, 2]);
        assert_eq!(parity.argmax_agree, 2);
        assert!(!parity.passed);
        assert!((parity.max_abs_diff - 0.5).abs() < 1e-6);
        assert_eq!(parity.per_sample.argmax_wasm, vec![1, 0, 1]);
    }

    #[test]
    fn identical_outputs_pass_even_with_nan() {
        let out = bytes(&[f32::NAN, 1.0]);
        let parity = compare(&out, &out, Dtype::F32, 1, 0.0);
        assert!(parity.passed, "{parity:?}");
        assert_eq!(parity.max_abs_diff, 0.0);
    }

    #[test]
    fn json_outputs_compare_as_numbers_or_by_equality() {
        use serde_json::json;
        let wasm = [json!([0.1, 0.9]), json!([1.0, 0.0])];
        let native = [json!([0.1, 0.9000001]), json!([0.0, 1.0])];
        let parity = compare_json(&wasm, &native, 1e-3);
        assert_eq!(parity.mismatched_samples, vec![1]);
        assert_eq!(parity.per_sample.argmax_native, vec![1, 1]);

        let labels = [json!("cat"), json!({"k": 1})];
        assert!(compare_json(&labels, &labels, 0.0).passed);
        let parity = compare_json(&labels, &[json!("dog"), json!({"k": 1})], 0.0);
        assert_eq!(parity.mismatched_samples, vec![0]);
        assert_eq!(parity.max_abs_diff, f64::INFINITY);
    }

    /// What a scorer returns: probabilities by label, which two Pythons sum in their last bits
    /// differently (3.12 made `sum` of floats compensated).
    #[test]
    fn json_objects_compare_their_numbers_within_tolerance() {
        use serde_json::json;
        let native = [json!({"neg": 0.18368644776918713, "pos": 0.8163135522308129})];
        let pyodide = [json!({"neg": 0.18368644776918702, "pos": 0.816313552230813})];
        let parity = compare_json(&pyodide, &native, 1e-9);
        assert!(parity.passed, "{parity:?}");
        assert!(parity.max_abs_diff > 0.0 && parity.max_abs_diff < 1e-15);
        assert_eq!(parity.per_sample.argmax_native, vec![1]);
        // Beyond tolerance, another key, or another label beside the numbers: a mismatch.
        for other in [
            json!({"neg": 0.2, "pos": 0.8}),
            json!({"negative": 0.18368644776918713, "pos": 0.8163135522308129}),
            json!({"label": "pos", "p": [0.8]}),
        ] {
            let reference = json!({"label": "neg", "p": [0.8]});
            let native = if other.get("label").is_some() {
                &reference
            } else {
                &native[0]
            };
            assert!(
                !compare_json(
                    std::slice::from_ref(&other),
                    std::slice::from_ref(native),
                    1e-9
                )
                .passed,
                "{other}"
            );
        }
    }
}
