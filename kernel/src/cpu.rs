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

/// `values` as little-endian IEEE half floats, rounded to nearest (what
/// [`F32Reader::take_f16`] reads back).
pub fn f16_le_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect()
}

/// Reads the f32 arrays stored one after another in one little-endian file (the weights a
/// generated kernel embeds), in the order they were written.
pub struct F32Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> F32Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next `len` values; `None` when fewer are left.
    pub fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let bytes = len.checked_mul(4).filter(|&n| n <= self.bytes.len())?;
        let (head, rest) = self.bytes.split_at(bytes);
        self.bytes = rest;
        Some(f32s_from_le_bytes(head))
    }

    /// The next `len` values stored as IEEE half floats (two bytes each), widened to f32;
    /// `None` when fewer are left.
    pub fn take_f16(&mut self, len: usize) -> Option<Vec<f32>> {
        let bytes = len.checked_mul(2).filter(|&n| n <= self.bytes.len())?;
        let (head, rest) = self.bytes.split_at(bytes);
        self.bytes = rest;
        Some(
            head.chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        )
    }

    /// Whether every value has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// `max(v, 0)` in place.
pub fn relu(values: &mut [f32]) {
    for v in values {
        *v = v.max(0.0);
    }
}

/// `v` where `v ≥ 0`, else `alpha · v` (ONNX `LeakyRelu`).
pub fn leaky_relu(values: &mut [f32], alpha: f32) {
    for v in values {
        if *v < 0.0 {
            *v *= alpha;
        }
    }
}

/// `1 / (1 + e^-v)`.
pub fn sigmoid(values: &mut [f32]) {
    for v in values {
        *v = 1.0 / (1.0 + (-*v).exp());
    }
}

pub fn tanh(values: &mut [f32]) {
    for v in values {
        *v = v.tanh();
    }
}

/// `max(0, min(1, alpha · v + beta))` (ONNX `HardSigmoid`).
pub fn hard_sigmoid(values: &mut [f32], alpha: f32, beta: f32) {
    for v in values {
        *v = (alpha * *v + beta).clamp(0.0, 1.0);
    }
}

/// `min(max(v, low), high)` (ONNX `Clip`).
pub fn clip(values: &mut [f32], low: f32, high: f32) {
    for v in values {
        *v = v.max(low).min(high);
    }
}

/// Softmax over each row of `width` values, the row's maximum subtracted first so that no
/// exponential overflows.
pub fn softmax(values: &mut [f32], width: usize) {
    for row in values.chunks_exact_mut(width) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let scale = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= scale;
        }
    }
}

/// `v − max − ln Σ e^(v − max)` over each row of `width` values.
pub fn log_softmax(values: &mut [f32], width: usize) {
    for row in values.chunks_exact_mut(width) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let log_sum = row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
        for v in row.iter_mut() {
            *v = *v - max - log_sum;
        }
    }
}

/// What [`normalize`] divides each row by (ONNX-ML `Normalizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// The row's largest value.
    Max,
    /// The sum of its absolute values.
    L1,
    /// The square root of the sum of its squares.
    L2,
}

/// Divides each row of `width` values by its norm; a row whose norm is 0 stays as it is.
pub fn normalize(values: &mut [f32], width: usize, norm: Norm) {
    for row in values.chunks_exact_mut(width) {
        let divisor = match norm {
            Norm::Max => row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)),
            Norm::L1 => row.iter().map(|v| v.abs()).sum(),
            Norm::L2 => row.iter().map(|v| v * v).sum::<f32>().sqrt(),
        };
        if divisor != 0.0 {
            for v in row.iter_mut() {
                *v /= divisor;
            }
        }
    }
}

/// An elementwise operation between a tensor and a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Add,
    /// `v − c`.
    Sub,
    /// `c − v`.
    SubFrom,
    Mul,
    /// `v / c`.
    Div,
    /// `c / v`.
    DivInto,
    Max,
    Min,
}

impl Binary {
    /// The operation with its operands swapped: `a op b == b op.swapped() a`.
    pub fn swapped(self) -> Self {
        match self {
            Binary::Sub => Binary::SubFrom,
            Binary::SubFrom => Binary::Sub,
            Binary::Div => Binary::DivInto,
            Binary::DivInto => Binary::Div,
            commutative => commutative,
        }
    }
}

/// `values op other` between two computed tensors, each value of `other` applying to `repeat`
/// neighbours in `values` (1 for the same shape; `height × width` for a per-channel gate over
/// `[channels, height, width]`).
pub fn elementwise(values: &mut [f32], other: &[f32], repeat: usize, op: Binary) {
    assert!(
        repeat > 0 && values.len() == other.len() * repeat,
        "elementwise: {} values against {} with each applying to {repeat}",
        values.len(),
        other.len()
    );
    if repeat == 1 {
        with_constant(values, other, op);
        return;
    }
    for (chunk, value) in values.chunks_mut(repeat).zip(other) {
        with_constant(chunk, std::slice::from_ref(value), op);
    }
}

/// `value` around every sample of `shape` (one sample's dimensions): `begin[i]` values before
/// and `end[i]` after axis `i`.
pub fn pad(x: &[f32], y: &mut [f32], shape: &[usize], begin: &[usize], end: &[usize], value: f32) {
    let len: usize = shape.iter().product();
    let padded: Vec<usize> = (0..shape.len())
        .map(|a| shape[a] + begin[a] + end[a])
        .collect();
    let padded_len: usize = padded.iter().product();
    assert!(
        len > 0 && x.len().is_multiple_of(len) && y.len() == x.len() / len * padded_len,
        "padding samples of {shape:?} to {padded:?}: {} inputs and {} outputs",
        x.len(),
        y.len()
    );
    y.fill(value);
    let Some(&row) = shape.last() else {
        return;
    };
    // Each row of the last axis lands at its place in the padded sample.
    let rows = len / row.max(1);
    for (sample, out) in x.chunks_exact(len).zip(y.chunks_exact_mut(padded_len)) {
        for r in 0..rows {
            let (mut rest, mut at, mut stride) =
                (r, begin[shape.len() - 1], padded[shape.len() - 1]);
            for a in (0..shape.len() - 1).rev() {
                at += (rest % shape[a] + begin[a]) * stride;
                rest /= shape[a];
                stride *= padded[a];
            }
            out[at..at + row].copy_from_slice(&sample[r * row..(r + 1) * row]);
        }
    }
}

/// Along one axis of `axis_len` values, each `inner` apart, the ones at `indices` (all below
/// `axis_len`), for every index of the axes before it: `x` is rows of `axis_len × inner` values,
/// `y` rows of `indices.len() × inner`.
pub fn gather(x: &[f32], y: &mut [f32], axis_len: usize, inner: usize, indices: &[usize]) {
    let (row_in, row_out) = (axis_len * inner, indices.len() * inner);
    assert!(
        row_in > 0
            && x.len().is_multiple_of(row_in)
            && y.len() == x.len() / row_in * row_out
            && indices.iter().all(|&i| i < axis_len),
        "gather: {} inputs in rows of {axis_len} × {inner}, {} outputs, indices {indices:?}",
        x.len(),
        y.len()
    );
    for (row, out) in x
        .chunks_exact(row_in)
        .zip(y.chunks_exact_mut(row_out.max(1)))
    {
        for (&index, block) in indices.iter().zip(out.chunks_exact_mut(inner)) {
            block.copy_from_slice(&row[index * inner..(index + 1) * inner]);
        }
    }
}

/// Tensors side by side along one axis: `out` is rows of `blocks.iter().sum()` values, row `r`
/// the `r`-th block of `blocks[i]` values of each part in turn.
pub fn concat(parts: &[&[f32]], blocks: &[usize], out: &mut [f32]) {
    let width: usize = blocks.iter().sum();
    let rows = out.len().checked_div(width).unwrap_or(0);
    assert!(
        parts.len() == blocks.len()
            && out.len() == rows * width
            && parts.iter().zip(blocks).all(|(p, b)| p.len() == rows * b),
        "concat: parts of {:?} values do not make rows of {blocks:?} into {}",
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        out.len()
    );
    for (r, row) in out.chunks_exact_mut(width.max(1)).enumerate() {
        let mut at = 0;
        for (part, &block) in parts.iter().zip(blocks) {
            row[at..at + block].copy_from_slice(&part[r * block..(r + 1) * block]);
            at += block;
        }
    }
}

/// `values[i] = values[i] op constant[i % constant.len()]`: a constant broadcast over every
/// sample (and over the leading axes of one) repeats with its own length.
pub fn with_constant(values: &mut [f32], constant: &[f32], op: Binary) {
    if constant.is_empty() {
        return;
    }
    for chunk in values.chunks_mut(constant.len()) {
        let pairs = chunk.iter_mut().zip(constant);
        match op {
            Binary::Add => pairs.for_each(|(v, c)| *v += c),
            Binary::Sub => pairs.for_each(|(v, c)| *v -= c),
            Binary::SubFrom => pairs.for_each(|(v, c)| *v = c - *v),
            Binary::Mul => pairs.for_each(|(v, c)| *v *= c),
            Binary::Div => pairs.for_each(|(v, c)| *v /= c),
            Binary::DivInto => pairs.for_each(|(v, c)| *v = c / *v),
            Binary::Max => pairs.for_each(|(v, c)| *v = v.max(*c)),
            Binary::Min => pairs.for_each(|(v, c)| *v = v.min(*c)),
        }
    }
}

/// Permutes the axes of every sample of `shape` (one sample's dimensions): output axis `i` is
/// input axis `perm[i]`.
pub fn transpose(x: &[f32], y: &mut [f32], shape: &[usize], perm: &[usize]) {
    let len: usize = shape.iter().product();
    assert!(
        perm.len() == shape.len() && x.len() == y.len() && len > 0 && x.len().is_multiple_of(len),
        "transposing samples of {shape:?} by {perm:?}: {} inputs and {} outputs",
        x.len(),
        y.len()
    );
    let mut input_strides = vec![1; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        input_strides[axis] = input_strides[axis + 1] * shape[axis + 1];
    }
    let dims: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| input_strides[p]).collect();
    for (sample, out) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
        // An odometer over the output's index, carrying the input offset along.
        let mut index = vec![0; dims.len()];
        let mut at = 0;
        for value in out.iter_mut() {
            *value = sample[at];
            for axis in (0..dims.len()).rev() {
                index[axis] += 1;
                at += strides[axis];
                if index[axis] < dims[axis] {
                    break;
                }
                at -= strides[axis] * dims[axis];
                index[axis] = 0;
            }
        }
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
    fn reader_takes_arrays_in_order_and_stops_at_the_end() {
        let bytes: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut reader = F32Reader::new(&bytes);
        assert_eq!(reader.take(2), Some(vec![1.0, 2.0]));
        assert_eq!(reader.take(2), None, "one value is left, not two");
        assert_eq!(reader.take(1), Some(vec![3.0]));
        assert!(reader.is_empty());
    }

    #[test]
    fn half_floats_round_trip_within_their_precision() {
        let values = [1.0f32, -0.333_333_34, 65504.0, 1e-3];
        let mut bytes = f16_le_bytes(&values);
        bytes.extend(1.5f32.to_le_bytes());
        let mut reader = F32Reader::new(&bytes);
        let back = reader.take_f16(4).unwrap();
        for (v, b) in values.iter().zip(&back) {
            assert!((v - b).abs() <= v.abs() / 2048.0, "{v} came back as {b}");
        }
        assert_eq!(back[0], 1.0);
        assert_eq!(
            reader.take(1),
            Some(vec![1.5]),
            "f32 values follow the f16 ones"
        );
        assert!(reader.is_empty());
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let mut v = [1.0, 2.0, 3.0, 1000.0, 1000.0, 0.0];
        softmax(&mut v, 3);
        assert!((v[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((v[2] - 0.665_240_9).abs() < 1e-6, "{v:?}");
        assert_eq!(&v[3..], &[0.5, 0.5, 0.0]);
        let mut logs = [1.0, 2.0, 3.0];
        log_softmax(&mut logs, 3);
        assert!((logs[2] - 0.665_240_9f32.ln()).abs() < 1e-6, "{logs:?}");
    }

    #[test]
    fn activations_match_their_definitions() {
        let mut v = [-2.0, 0.0, 3.0];
        sigmoid(&mut v);
        assert!((v[0] - 0.119_202_92).abs() < 1e-7 && v[1] == 0.5, "{v:?}");
        let mut v = [-2.0, 0.5];
        leaky_relu(&mut v, 0.1);
        assert_eq!(v, [-0.2, 0.5]);
        let mut v = [-10.0, 0.0, 10.0];
        hard_sigmoid(&mut v, 0.2, 0.5);
        assert_eq!(v, [0.0, 0.5, 1.0]);
        let mut v = [-3.0, 0.5, 9.0];
        clip(&mut v, 0.0, 6.0);
        assert_eq!(v, [0.0, 0.5, 6.0]);
    }

    #[test]
    fn normalize_divides_each_row_by_its_norm() {
        let mut v = [1.0, -3.0, 0.0, 0.0, 3.0, 4.0];
        normalize(&mut v, 2, Norm::L1);
        assert_eq!(v, [0.25, -0.75, 0.0, 0.0, 3.0 / 7.0, 4.0 / 7.0]);
        let mut v = [3.0, 4.0];
        normalize(&mut v, 2, Norm::L2);
        assert_eq!(v, [0.6, 0.8]);
        let mut v = [2.0, 4.0];
        normalize(&mut v, 2, Norm::Max);
        assert_eq!(v, [0.5, 1.0]);
    }

    #[test]
    fn constants_repeat_over_samples() {
        let mut v = [1.0, 2.0, 3.0, 4.0];
        with_constant(&mut v, &[10.0, 20.0], Binary::Add);
        assert_eq!(v, [11.0, 22.0, 13.0, 24.0]);
        with_constant(&mut v, &[1.0], Binary::SubFrom);
        assert_eq!(v, [-10.0, -21.0, -12.0, -23.0]);
        with_constant(&mut v, &[-2.0, 2.0], Binary::DivInto);
        assert_eq!(v, [0.2, -2.0 / 21.0, 2.0 / 12.0, -2.0 / 23.0]);
    }

    #[test]
    fn transpose_moves_axes_in_every_sample() {
        // Two samples of [2, 3]; swapping the axes gives [3, 2].
        let x = [
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
        ];
        let mut y = [0.0; 12];
        transpose(&x, &mut y, &[2, 3], &[1, 0]);
        assert_eq!(
            y,
            [
                0.0, 3.0, 1.0, 4.0, 2.0, 5.0, 10.0, 13.0, 11.0, 14.0, 12.0, 15.0
            ]
        );
        // [2, 1, 3] → [3, 2, 1]: value (a, b, c) moves to (c, a, b).
        let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let mut y = vec![0.0; 6];
        transpose(&x, &mut y, &[2, 1, 3], &[2, 0, 1]);
        assert_eq!(y, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn two_tensors_combine_elementwise_or_per_channel() {
        let mut v = [1.0, 2.0, 3.0, 4.0];
        elementwise(&mut v, &[10.0, 20.0, 30.0, 40.0], 1, Binary::Add);
        assert_eq!(v, [11.0, 22.0, 33.0, 44.0]);
        // Two channels of two values, one gate each.
        elementwise(&mut v, &[2.0, 0.5], 2, Binary::Mul);
        assert_eq!(v, [22.0, 44.0, 16.5, 22.0]);
        for op in [Binary::Sub, Binary::Div, Binary::Max] {
            let (mut a, mut b) = ([6.0f32], [3.0f32]);
            with_constant(&mut a, &[3.0], op);
            with_constant(&mut b, &[6.0], op.swapped());
            assert_eq!(a, b, "{op:?}");
        }
    }

    #[test]
    fn pad_surrounds_each_sample() {
        // Two samples of [1, 2]: one row above (of 9s) and one column after.
        let mut y = [0.0; 12];
        pad(
            &[1.0, 2.0, 3.0, 4.0],
            &mut y,
            &[1, 2],
            &[1, 0],
            &[0, 1],
            9.0,
        );
        assert_eq!(
            y,
            [9.0, 9.0, 9.0, 1.0, 2.0, 9.0, 9.0, 9.0, 9.0, 3.0, 4.0, 9.0]
        );
    }

    #[test]
    fn gather_picks_blocks_along_the_axis_in_every_row() {
        // Two rows of three blocks of two values; blocks 2, 0 and 2 again.
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut y = [0.0; 12];
        gather(&x, &mut y, 3, 2, &[2, 0, 2]);
        assert_eq!(
            y,
            [
                4.0, 5.0, 0.0, 1.0, 4.0, 5.0, 10.0, 11.0, 6.0, 7.0, 10.0, 11.0
            ]
        );
    }

    #[test]
    fn concat_puts_blocks_side_by_side_per_row() {
        // Two rows (samples): [a0 a1 | b0] and [a2 a3 | b1].
        let mut out = [0.0; 6];
        concat(&[&[1.0, 2.0, 3.0, 4.0], &[9.0, 8.0]], &[2, 1], &mut out);
        assert_eq!(out, [1.0, 2.0, 9.0, 3.0, 4.0, 8.0]);
    }

    #[test]
    fn relu_clamps_negatives_only() {
        let mut v = [-1.0, 0.0, 2.5];
        relu(&mut v);
        assert_eq!(v, [0.0, 0.0, 2.5]);
    }
}
