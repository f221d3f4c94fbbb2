//! CPU building blocks written so LLVM vectorises them (with `simd128` on wasm32).

/// Decodes little-endian `f32` values, e.g. weights embedded with `include_bytes!`.
pub fn f32s_from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A fully connected layer: `y = x · W + b` for one sample, `W` row-major `[inputs × outputs]`.
/// For batches, [`crate::gemm::Dense`] packs the weights once and runs register-tiled, several
/// times faster.
///
/// The inner loop runs over a contiguous weight row and independent accumulators, so it
/// vectorises without reassociating floating-point sums: results are identical on every target.
pub fn dense(x: &[f32], weights: &[f32], bias: &[f32], y: &mut [f32]) {
    let outputs = bias.len();
    debug_assert_eq!(weights.len(), x.len() * outputs);
    debug_assert_eq!(y.len(), outputs);
    y.copy_from_slice(bias);
    for (xi, row) in x.iter().zip(weights.chunks_exact(outputs)) {
        for (yj, wij) in y.iter_mut().zip(row) {
            *yj += xi * wij;
        }
    }
}

/// `max(v, 0)` in place.
pub fn relu(values: &mut [f32]) {
    for v in values {
        *v = v.max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_matches_hand_computed() {
        // x = [1, 2], W = [[1, 2, 3], [4, 5, 6]], b = [0.5, 0, -1]
        let mut y = [0.0; 3];
        dense(
            &[1.0, 2.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &[0.5, 0.0, -1.0],
            &mut y,
        );
        assert_eq!(y, [9.5, 12.0, 14.0]);
    }

    #[test]
    fn relu_clamps_negatives_only() {
        let mut v = [-1.0, 0.0, 2.5];
        relu(&mut v);
        assert_eq!(v, [0.0, 0.0, 2.5]);
    }
}
