//! Comparing the variants' outputs sample by sample.

use crate::manifest::{Parity, PerSampleParity};
use crate::project::kernel::Dtype;

/// Compares two batches of outputs of `count` samples, `dtype` elements each.
pub fn compare(wasm: &[u8], native: &[u8], dtype: Dtype, count: usize, tolerance: f64) -> Parity {
    let wasm = dtype.decode(wasm);
    let native = dtype.decode(native);
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
        let diff = w
            .iter()
            .zip(n)
            .map(|(a, b)| abs_diff(*a, *b))
            .fold(0.0, f64::max);
        let (argmax_w, argmax_n) = (argmax(w), argmax(n));
        if !(diff <= tolerance) || argmax_w != argmax_n {
            mismatched_samples.push(index);
        }
        per_sample.max_abs_diff.push(diff);
        per_sample.argmax_wasm.push(argmax_w);
        per_sample.argmax_native.push(argmax_n);
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
}
