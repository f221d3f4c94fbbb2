//! {{name}}: a cargo-wasmpack-infer kernel (ABI v1) that runs `model/{{model_file}}` with tract.
//!
//! Written by `cargo wasmpack-infer new kernel --onnx` from the model's graph: input
//! `{{input_name}}` {{input_dims}}, output `{{output_name}}` {{output_dims}}. The model is
//! embedded with `include_bytes!`, loaded and optimized once by `wpi_init`, then run on every
//! batch the host passes. Build and measure it with `cargo wasmpack-infer build`.

use std::alloc::{Layout, alloc, dealloc};
use std::sync::OnceLock;
use tract_onnx::prelude::*;
// Linked for `__getrandom_v03_custom` (see Cargo.toml).
use wasmpack_infer_kernel as _;

const MODEL: &[u8] = include_bytes!("../model/{{model_file}}");
/// The model's input shape without its batch axis, and the f32 values in one sample of it.
const SAMPLE_SHAPE: &[usize] = &[{{input_shape}}];
const INPUT_LEN: usize = {{input_len}};
/// f32 values in one sample of the output the kernel returns, and where it is among the outputs.
const OUTPUT_LEN: usize = {{output_len}};
const OUTPUT_INDEX: usize = {{output_index}};
/// Whether the model's first axis is free (a batch of any size per run) or 1 (one sample a run).
const BATCHED: bool = {{batched}};

/// `wpi_init`: 0, or this when tract cannot load or optimize the model.
const MODEL_REFUSED: i32 = 2;
/// `wpi_infer`: bytes written, or one of these.
const BAD_INPUT_LENGTH: isize = -1;
const OUTPUT_TOO_SMALL: isize = -2;
const NOT_INITIALIZED: isize = -3;
const MODEL_FAILED: isize = -5;

type Plan = Arc<TypedSimplePlan>;
static PLAN: OnceLock<Plan> = OnceLock::new();

fn load() -> TractResult<Plan> {
    let model = tract_onnx::onnx().model_for_read(&mut &MODEL[..])?;
    let batch: TDim = if BATCHED { model.symbols.sym("N").into() } else { 1.into() };
    let shape: TVec<TDim> = std::iter::once(batch)
        .chain(SAMPLE_SHAPE.iter().map(|&d| d.into()))
        .collect();
    model
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()
}

/// Runs `batch` samples of `input` through the model into `output`.
fn run(plan: &Plan, input: &[f32], batch: usize, output: &mut [f32]) -> TractResult<()> {
    let mut shape = vec![batch];
    shape.extend_from_slice(SAMPLE_SHAPE);
    let outputs = plan.run(tvec!(Tensor::from_shape(&shape, input)?.into()))?;
    let result = outputs[OUTPUT_INDEX].cast_to::<f32>()?;
    output.copy_from_slice(result.try_as_plain_ram()?.as_slice::<f32>()?);
    Ok(())
}

#[unsafe(no_mangle)]
pub extern "C" fn wpi_abi_version() -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn wpi_init() -> i32 {
    if PLAN.get().is_some() {
        return 0;
    }
    match load() {
        Ok(plan) => {
            let _ = PLAN.set(plan);
            0
        }
        Err(_) => MODEL_REFUSED,
    }
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

/// Runs a batch of whole samples (f32, little-endian); returns the bytes written or a negative
/// error code.
///
/// # Safety
/// `input`/`output` must be valid for `input_len`/`output_cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wpi_infer(input: *const u8, input_len: usize, output: *mut u8, output_cap: usize) -> isize {
    const IN_BYTES: usize = INPUT_LEN * 4;
    const OUT_BYTES: usize = OUTPUT_LEN * 4;
    if input_len % IN_BYTES != 0 {
        return BAD_INPUT_LENGTH;
    }
    let batch = input_len / IN_BYTES;
    if output_cap < batch * OUT_BYTES {
        return OUTPUT_TOO_SMALL;
    }
    let Some(plan) = PLAN.get() else {
        return NOT_INITIALIZED;
    };
    let bytes = unsafe { std::slice::from_raw_parts(input, input_len) };
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let mut result = vec![0f32; batch * OUTPUT_LEN];
    let ran = if BATCHED {
        run(plan, &values, batch, &mut result)
    } else {
        values
            .chunks_exact(INPUT_LEN)
            .zip(result.chunks_exact_mut(OUTPUT_LEN))
            .try_for_each(|(x, y)| run(plan, x, 1, y))
    };
    if ran.is_err() {
        return MODEL_FAILED;
    }
    let out = unsafe { std::slice::from_raw_parts_mut(output, batch * OUT_BYTES) };
    for (bytes, v) in out.chunks_exact_mut(4).zip(&result) {
        bytes.copy_from_slice(&v.to_le_bytes());
    }
    (batch * OUT_BYTES) as isize
}
