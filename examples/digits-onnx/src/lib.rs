//! The digits MLP as scikit-learn trained it and skl2onnx exported it (`model/digits.onnx`), run
//! by tract: loaded from the embedded bytes, the batch dimension declared symbolic (skl2onnx
//! leaves it unnamed), optimized once at init, then one plan for every batch size.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::dims;
use wasmpack_infer_kernel::{Kernel, export_kernel};

const MODEL: &[u8] = include_bytes!("../model/digits.onnx");
const PIXELS: usize = 64;
const CLASSES: usize = 10;
/// skl2onnx's outputs: `label` (int64) then `probabilities`.
const PROBABILITIES: usize = 1;
/// `wpi_init`'s code when tract cannot load the model.
const MODEL_REFUSED: i32 = 2;

type Plan = Arc<TypedSimplePlan>;

struct Digits {
    plan: Plan,
}

fn load() -> TractResult<Plan> {
    let model = tract_onnx::onnx().model_for_read(&mut &MODEL[..])?;
    let batch = model.symbols.sym("N");
    model
        .with_input_fact(0, f32::fact(dims!(batch, PIXELS)).into())?
        .into_optimized()?
        .into_runnable()
}

impl Kernel for Digits {
    const INPUT_LEN: usize = PIXELS;
    const OUTPUT_LEN: usize = CLASSES;

    fn init() -> Result<Self, i32> {
        load().map(|plan| Digits { plan }).map_err(|_| MODEL_REFUSED)
    }

    fn infer(&mut self, input: &[f32], output: &mut [f32]) {
        let batch = input.len() / PIXELS;
        let pixels = Tensor::from_shape(&[batch, PIXELS], input).expect("whole samples");
        let outputs = self.plan.run(tvec!(pixels.into())).expect("tract ran the model");
        let view = outputs[PROBABILITIES]
            .try_as_plain_ram()
            .expect("probabilities in memory");
        output.copy_from_slice(view.as_slice::<f32>().expect("f32 probabilities"));
    }
}

export_kernel!(Digits);
