//! Sliding windows over images and sequences: convolution as a GEMM over gathered windows
//! (im2col, so it runs on [`Dense`]'s register-tiled kernels), and max and average pooling.
//!
//! Tensors are one sample after another, each `[channels, height, width]` row-major (ONNX's
//! NCHW); a 1-D tensor `[channels, length]` is one of height 1.

use crate::gemm::{Dense, Isa};

/// The geometry of a window sliding over one sample, with every size resolved ahead of time
/// (padding rules such as ONNX's `auto_pad` and `ceil_mode` are the caller's to apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub channels: usize,
    /// `[height, width]` of the input.
    pub input: [usize; 2],
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// Padding before and after each axis: `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// `[height, width]` of the output.
    pub output: [usize; 2],
}

impl Window {
    /// `[height, width]` of the output of a window with these sizes, as ONNX computes it
    /// (`ceil` rounds a last partial window in, if it starts inside the input or its leading
    /// padding); `None` when the kernel does not fit in the padded input.
    pub fn output_size(
        input: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
        ceil: bool,
    ) -> Option<[usize; 2]> {
        let axis = |a: usize| -> Option<usize> {
            let padded = input[a] + pads[a] + pads[a + 2];
            let span = dilations[a] * (kernel[a].checked_sub(1)?) + 1;
            let room = padded.checked_sub(span)?;
            let stride = strides[a].max(1);
            let mut out = if ceil {
                room.div_ceil(stride)
            } else {
                room / stride
            } + 1;
            if ceil && (out - 1) * stride >= input[a] + pads[a] {
                out -= 1;
            }
            Some(out)
        };
        Some([axis(0)?, axis(1)?])
    }

    pub const fn input_len(&self) -> usize {
        self.channels * self.input[0] * self.input[1]
    }

    /// Output positions per channel.
    pub const fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    const fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// The input row (or column, for `axis` 1) that tap `k` of output position `o` reads, or
    /// `None` in the padding.
    #[inline]
    fn source(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        (o * self.strides[axis] + k * self.dilations[axis])
            .checked_sub(self.pads[axis])
            .filter(|&i| i < self.input[axis])
    }

    /// The window of output position `o` along `axis`, clipped to the padded input (the
    /// divisor of an average that counts padding) and to the input itself.
    fn span(&self, axis: usize, o: usize) -> (usize, std::ops::Range<usize>) {
        let start = o * self.strides[axis];
        let padded_end = (start + (self.kernel[axis] - 1) * self.dilations[axis] + 1)
            .min(self.input[axis] + self.pads[axis] + self.pads[axis + 2]);
        let first = start.max(self.pads[axis]) - self.pads[axis];
        let last = padded_end.min(self.input[axis] + self.pads[axis]);
        let inside = first..last.saturating_sub(self.pads[axis]).max(first);
        (padded_end - start, inside)
    }
}

/// Gathered windows held at once: enough rows for the GEMM to run at speed, few enough that the
/// buffer stays in the larger caches (1 MiB).
const COLUMN_VALUES: usize = 1 << 18;

/// A convolution: `groups` dense layers, each from its share of the input channels' windows to
/// its share of the output channels, with the bias and an optional ReLU.
#[derive(Debug, Clone)]
pub struct Conv {
    window: Window,
    groups: usize,
    out_channels: usize,
    dense: Vec<Dense>,
    /// Gathered windows of a chunk of samples, then the chunk's outputs position by position.
    columns: Vec<f32>,
    rows: Vec<f32>,
}

impl Conv {
    /// Weights in ONNX's layout `[out_channels, channels / groups, kernel height, kernel
    /// width]`, one bias per output channel; `None` when the sizes do not agree.
    pub fn new(window: Window, groups: usize, weights: &[f32], bias: &[f32]) -> Option<Self> {
        let out_channels = bias.len();
        let (inputs, outputs) = Self::group_size(&window, groups, out_channels)?;
        if weights.len() != out_channels * inputs {
            return None;
        }
        let dense = (0..groups)
            .map(|g| {
                // Dense wants `[inputs × outputs]`: the group's filters side by side.
                let mut matrix = vec![0.0; inputs * outputs];
                for o in 0..outputs {
                    let filter = &weights[(g * outputs + o) * inputs..][..inputs];
                    for (i, &w) in filter.iter().enumerate() {
                        matrix[i * outputs + o] = w;
                    }
                }
                Dense::new(&matrix, &bias[g * outputs..][..outputs])
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self::with_dense(window, groups, out_channels, dense))
    }

    /// f32 values in the packed weights of such a convolution, every group's after the other.
    pub fn packed_len(window: &Window, groups: usize, out_channels: usize) -> usize {
        Self::group_size(window, groups, out_channels).map_or(0, |(inputs, outputs)| {
            groups * Dense::packed_len(inputs, outputs)
        })
    }

    /// A convolution from weights [`Conv::packed`] wrote.
    pub fn from_packed(
        window: Window,
        groups: usize,
        packed: &[f32],
        bias: &[f32],
    ) -> Option<Self> {
        let out_channels = bias.len();
        let (inputs, outputs) = Self::group_size(&window, groups, out_channels)?;
        let per_group = Dense::packed_len(inputs, outputs);
        if packed.len() != groups * per_group {
            return None;
        }
        let dense = packed
            .chunks_exact(per_group)
            .zip(bias.chunks_exact(outputs))
            .map(|(weights, bias)| Dense::from_packed(inputs, outputs, weights.to_vec(), bias))
            .collect::<Option<Vec<_>>>()?;
        Some(Self::with_dense(window, groups, out_channels, dense))
    }

    /// Every group's packed weights, in order.
    pub fn packed(&self) -> Vec<f32> {
        self.dense
            .iter()
            .flat_map(|d| d.packed())
            .copied()
            .collect()
    }

    pub fn output_len(&self) -> usize {
        self.out_channels * self.window.positions()
    }

    /// `(inputs, outputs)` of each group's dense layer.
    fn group_size(window: &Window, groups: usize, out_channels: usize) -> Option<(usize, usize)> {
        let fits = groups > 0
            && out_channels > 0
            && window.channels.is_multiple_of(groups)
            && out_channels.is_multiple_of(groups)
            && window.positions() > 0
            && window.taps() > 0;
        fits.then(|| {
            (
                window.channels / groups * window.taps(),
                out_channels / groups,
            )
        })
    }

    fn with_dense(window: Window, groups: usize, out_channels: usize, dense: Vec<Dense>) -> Self {
        Self {
            window,
            groups,
            out_channels,
            dense,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The convolution of `x.len() / input_len` samples into `y`, on up to `max_threads`
    /// threads; returns how many it used. Panics if `x` and `y` do not hold the same whole
    /// number of samples.
    pub fn forward(
        &mut self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        relu: bool,
        max_threads: usize,
    ) -> usize {
        let window = self.window;
        let (input_len, output_len) = (window.input_len(), self.output_len());
        let samples = x.len() / input_len;
        assert!(
            x.len() == samples * input_len && y.len() == samples * output_len,
            "convolution {input_len}→{output_len} values: {} inputs and {} outputs are not the \
             same number of samples",
            x.len(),
            y.len()
        );
        let positions = window.positions();
        let group_inputs = self.dense[0].inputs();
        let group_outputs = self.dense[0].outputs();
        let chunk = (COLUMN_VALUES / (positions * group_inputs)).clamp(1, samples.max(1));
        self.columns.resize(chunk * positions * group_inputs, 0.0);
        self.rows.resize(chunk * positions * group_outputs, 0.0);
        let mut used = 1;
        for first in (0..samples).step_by(chunk) {
            let count = chunk.min(samples - first);
            for (g, dense) in self.dense.iter().enumerate() {
                let columns = &mut self.columns[..count * positions * group_inputs];
                for (n, sample_columns) in columns
                    .chunks_exact_mut(positions * group_inputs)
                    .enumerate()
                {
                    let sample = &x[(first + n) * input_len..][..input_len];
                    gather_windows(&window, self.groups, g, sample, sample_columns);
                }
                let rows = &mut self.rows[..count * positions * group_outputs];
                used = used.max(dense.forward(isa, columns, rows, relu, max_threads));
                // Position-major rows to channel-major outputs.
                for (n, sample_rows) in rows.chunks_exact(positions * group_outputs).enumerate() {
                    let out = &mut y[(first + n) * output_len..][..output_len];
                    for (p, row) in sample_rows.chunks_exact(group_outputs).enumerate() {
                        for (o, &v) in row.iter().enumerate() {
                            out[(g * group_outputs + o) * positions + p] = v;
                        }
                    }
                }
            }
        }
        used
    }
}

/// Writes group `g`'s windows of one sample, one row per output position, each row the group's
/// channels × kernel taps (zeros in the padding).
fn gather_windows(window: &Window, groups: usize, g: usize, sample: &[f32], columns: &mut [f32]) {
    let channels = window.channels / groups;
    let [height, width] = window.input;
    let [kh, kw] = window.kernel;
    let mut rows = columns.chunks_exact_mut(channels * kh * kw);
    for oy in 0..window.output[0] {
        for ox in 0..window.output[1] {
            let row = rows.next().expect("one row per output position");
            let mut at = 0;
            for c in 0..channels {
                let plane = &sample[(g * channels + c) * height * width..][..height * width];
                for ky in 0..kh {
                    let iy = window.source(0, oy, ky);
                    for kx in 0..kw {
                        row[at] = match (iy, window.source(1, ox, kx)) {
                            (Some(iy), Some(ix)) => plane[iy * width + ix],
                            _ => 0.0,
                        };
                        at += 1;
                    }
                }
            }
        }
    }
}

/// Max pooling of `x.len() / input_len` samples into `y` (padding is never the maximum).
pub fn max_pool(window: &Window, x: &[f32], y: &mut [f32]) {
    pool(window, x, y, |plane, width, oy, ox| {
        let mut best = f32::NEG_INFINITY;
        for ky in 0..window.kernel[0] {
            let Some(iy) = window.source(0, oy, ky) else {
                continue;
            };
            for kx in 0..window.kernel[1] {
                if let Some(ix) = window.source(1, ox, kx) {
                    best = best.max(plane[iy * width + ix]);
                }
            }
        }
        best
    });
}

/// Average pooling of `x.len() / input_len` samples into `y`, dividing by the taps inside the
/// input, or by every tap inside the padded input when `count_padding`. Dilation is not
/// supported (`window.dilations` must be 1).
pub fn average_pool(window: &Window, x: &[f32], y: &mut [f32], count_padding: bool) {
    debug_assert_eq!(window.dilations, [1, 1]);
    pool(window, x, y, |plane, width, oy, ox| {
        let (padded_rows, rows) = window.span(0, oy);
        let (padded_cols, cols) = window.span(1, ox);
        let mut sum = 0.0;
        for iy in rows.clone() {
            for v in &plane[iy * width + cols.start..iy * width + cols.end] {
                sum += v;
            }
        }
        let count = if count_padding {
            padded_rows * padded_cols
        } else {
            rows.len() * cols.len()
        };
        sum / count as f32
    });
}

/// Runs `reduce(plane, width, oy, ox)` for every sample, channel and output position.
fn pool(
    window: &Window,
    x: &[f32],
    y: &mut [f32],
    reduce: impl Fn(&[f32], usize, usize, usize) -> f32,
) {
    let [height, width] = window.input;
    let plane_len = height * width;
    let positions = window.positions();
    assert!(
        x.len().is_multiple_of(plane_len)
            && y.len().is_multiple_of(positions)
            && x.len() / plane_len == y.len() / positions,
        "pooling {plane_len}→{positions} values per channel: {} inputs and {} outputs are not the \
         same number of planes",
        x.len(),
        y.len()
    );
    for (plane, out) in x.chunks_exact(plane_len).zip(y.chunks_exact_mut(positions)) {
        let mut outputs = out.iter_mut();
        for oy in 0..window.output[0] {
            for ox in 0..window.output[1] {
                *outputs.next().expect("one output per position") = reduce(plane, width, oy, ox);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(channels: usize, input: [usize; 2], kernel: [usize; 2], pads: [usize; 4]) -> Window {
        let (strides, dilations) = ([1, 1], [1, 1]);
        Window {
            channels,
            input,
            kernel,
            strides,
            dilations,
            pads,
            output: Window::output_size(input, kernel, strides, dilations, pads, false).unwrap(),
        }
    }

    /// The convolution by its definition, one output at a time.
    fn direct(window: &Window, groups: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let per_group_in = window.channels / groups;
        let per_group_out = b.len() / groups;
        let [kh, kw] = window.kernel;
        let mut y = Vec::new();
        for (o, &bias) in b.iter().enumerate() {
            let g = o / per_group_out;
            for oy in 0..window.output[0] {
                for ox in 0..window.output[1] {
                    let mut sum = bias;
                    for c in 0..per_group_in {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let (Some(iy), Some(ix)) =
                                    (window.source(0, oy, ky), window.source(1, ox, kx))
                                {
                                    let input =
                                        (g * per_group_in + c) * window.input[0] * window.input[1]
                                            + iy * window.input[1]
                                            + ix;
                                    sum +=
                                        x[input] * w[((o * per_group_in + c) * kh + ky) * kw + kx];
                                }
                            }
                        }
                    }
                    y.push(sum);
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn output_sizes_follow_onnx() {
        // 5 wide, kernel 2, stride 2: floor gives 2, ceil 3 (the last window half inside).
        let size = |ceil| Window::output_size([1, 5], [1, 2], [1, 2], [1, 1], [0; 4], ceil);
        assert_eq!(size(false), Some([1, 2]));
        assert_eq!(size(true), Some([1, 3]));
        // A kernel larger than the padded input.
        assert_eq!(
            Window::output_size([2, 2], [3, 3], [1, 1], [1, 1], [0; 4], false),
            None
        );
    }

    #[test]
    fn convolution_matches_its_definition_with_padding_strides_dilations_and_groups() {
        for (groups, strides, dilations) in [
            (1, [1, 1], [1, 1]),
            (2, [2, 1], [1, 2]),
            (4, [1, 2], [2, 1]),
        ] {
            let pads = [1, 0, 2, 1];
            let (input, kernel) = ([7, 6], [3, 2]);
            let mut w = Window {
                channels: 4,
                input,
                kernel,
                strides,
                dilations,
                pads,
                output: [0, 0],
            };
            w.output = Window::output_size(input, kernel, strides, dilations, pads, false).unwrap();
            let out_channels = 8;
            let weights = values(out_channels * 4 / groups * 6, 7);
            let bias = values(out_channels, 3);
            let x = values(3 * w.input_len(), 11);
            let mut conv = Conv::new(w, groups, &weights, &bias).unwrap();
            let mut y = vec![0.0; 3 * conv.output_len()];
            conv.forward(Isa::detect(), &x, &mut y, false, 2);
            let expected: Vec<f32> = x
                .chunks_exact(w.input_len())
                .flat_map(|sample| direct(&w, groups, sample, &weights, &bias))
                .collect();
            for (got, want) in y.iter().zip(&expected) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "groups {groups}: {got} vs {want}"
                );
            }
            let repacked =
                Conv::from_packed(w, groups, &conv.packed(), &bias).expect("packed lengths agree");
            assert_eq!(
                conv.packed().len(),
                Conv::packed_len(&w, groups, out_channels)
            );
            let mut again = vec![0.0; y.len()];
            let mut repacked = repacked;
            repacked.forward(Isa::detect(), &x, &mut again, false, 1);
            assert_eq!(again, y, "packed weights load back to the same convolution");
        }
    }

    #[test]
    fn relu_and_chunking_keep_every_sample() {
        let w = window(1, [40, 40], [3, 3], [1, 1, 1, 1]);
        let weights = values(16 * 9, 5);
        let bias = values(16, 9);
        let mut conv = Conv::new(w, 1, &weights, &bias).unwrap();
        // More samples than one chunk of gathered windows holds.
        let samples = COLUMN_VALUES / (w.positions() * 9) + 3;
        let x = values(samples * w.input_len(), 1);
        let mut y = vec![0.0; samples * conv.output_len()];
        conv.forward(Isa::detect(), &x, &mut y, true, 2);
        let last = &x[(samples - 1) * w.input_len()..];
        let expected: Vec<f32> = direct(&w, 1, last, &weights, &bias)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let got = &y[(samples - 1) * conv.output_len()..];
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-5);
        }
    }

    #[test]
    fn pools_skip_or_count_the_padding() {
        // One 3×3 plane, 2×2 windows, stride 1, padded by one on the bottom and right.
        let mut w = window(1, [3, 3], [2, 2], [0, 0, 1, 1]);
        assert_eq!(w.output, [3, 3]);
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut y = vec![0.0; 9];
        max_pool(&w, &x, &mut y);
        assert_eq!(y, [5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0]);
        average_pool(&w, &x, &mut y, false);
        assert_eq!(y[8], 9.0, "only the one real tap");
        assert_eq!(y[0], 3.0, "(1 + 2 + 4 + 5) / 4");
        average_pool(&w, &x, &mut y, true);
        assert_eq!(y[8], 9.0 / 4.0, "the padding counts");
        // A global pool: one window over the whole plane, for two channels.
        w = window(2, [3, 3], [3, 3], [0; 4]);
        let two: Vec<f32> = x.iter().chain(&x).map(|v| -v).collect();
        let mut y = vec![0.0; 2];
        average_pool(&w, &two, &mut y, false);
        assert_eq!(y, [-5.0, -5.0]);
        max_pool(&w, &two, &mut y);
        assert_eq!(y, [-1.0, -1.0]);
    }

    #[test]
    fn ceil_mode_windows_are_clipped_to_the_input() {
        let input = [1, 5];
        let (kernel, strides) = ([1, 2], [1, 2]);
        let w = Window {
            channels: 1,
            input,
            kernel,
            strides,
            dilations: [1, 1],
            pads: [0; 4],
            output: Window::output_size(input, kernel, strides, [1, 1], [0; 4], true).unwrap(),
        };
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut y = [0.0; 3];
        average_pool(&w, &x, &mut y, true);
        assert_eq!(y, [1.5, 3.5, 5.0], "the last window holds one value");
        max_pool(&w, &x, &mut y);
        assert_eq!(y, [2.0, 4.0, 5.0]);
    }
}
