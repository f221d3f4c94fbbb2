//! {{name}}: a cargo-wasmpack-infer kernel (ABI v1), written without helper crates.
//!
//! It computes softmax(x · W + b) for 8 features and 4 classes. Replace `WEIGHTS`/`BIAS` (or load
//! them with `include_bytes!`) and `infer_sample` with your model; keep the five exports.
//! Build and measure it with `cargo wasmpack-infer build`.

use std::alloc::{Layout, alloc, dealloc};

const INPUTS: usize = 8;
const CLASSES: usize = 4;

/// Row-major `[INPUTS x CLASSES]`.
const WEIGHTS: [f32; INPUTS * CLASSES] = [
    0.50, -0.25, 0.10, 0.00, //
    -0.30, 0.40, 0.20, 0.10, //
    0.05, 0.15, -0.45, 0.30, //
    0.20, -0.10, 0.35, -0.20, //
    -0.15, 0.25, 0.05, 0.40, //
    0.30, 0.05, -0.20, 0.15, //
    0.10, -0.35, 0.25, 0.05, //
    -0.05, 0.20, 0.10, -0.30, //
];
const BIAS: [f32; CLASSES] = [0.1, -0.1, 0.05, 0.0];

fn infer_sample(x: &[f32], y: &mut [f32]) {
    y.copy_from_slice(&BIAS);
    for (xi, row) in x.iter().zip(WEIGHTS.chunks_exact(CLASSES)) {
        for (yj, wij) in y.iter_mut().zip(row) {
            *yj += xi * wij;
        }
    }
    let max = y.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in y.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in y.iter_mut() {
        *v /= sum;
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn wpi_abi_version() -> u32 {
    1
}

fn layout(len: usize) -> Layout {
    Layout::from_size_align(len.max(1), 16).expect("buffer layout")
}

#[unsafe(no_mangle)]
pub extern "C" fn wpi_alloc(len: usize) -> *mut u8 {
    unsafe { alloc(layout(len)) }
}

/// # Safety
/// `ptr` must come from `wpi_alloc(len)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wpi_free(ptr: *mut u8, len: usize) {
    unsafe { dealloc(ptr, layout(len)) }
}

/// Runs a batch of whole samples; returns bytes written or -1 (bad input length) / -2 (output
/// buffer too small).
///
/// # Safety
/// `input`/`output` must be valid for `input_len`/`output_cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wpi_infer(input: *const u8, input_len: usize, output: *mut u8, output_cap: usize) -> isize {
    const IN_BYTES: usize = INPUTS * 4;
    const OUT_BYTES: usize = CLASSES * 4;
    if input_len % IN_BYTES != 0 {
        return -1;
    }
    let batch = input_len / IN_BYTES;
    if output_cap < batch * OUT_BYTES {
        return -2;
    }
    let (input, output) = unsafe {
        (std::slice::from_raw_parts(input, input_len), std::slice::from_raw_parts_mut(output, batch * OUT_BYTES))
    };
    let (mut x, mut y) = ([0f32; INPUTS], [0f32; CLASSES]);
    for (sample, out) in input.chunks_exact(IN_BYTES).zip(output.chunks_exact_mut(OUT_BYTES)) {
        for (v, bytes) in x.iter_mut().zip(sample.chunks_exact(4)) {
            *v = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        infer_sample(&x, &mut y);
        for (bytes, v) in out.chunks_exact_mut(4).zip(&y) {
            bytes.copy_from_slice(&v.to_le_bytes());
        }
    }
    (batch * OUT_BYTES) as isize
}
