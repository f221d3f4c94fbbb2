//! The digits MLP (64-256-128-10, ReLU, softmax) with its weights in `model/digits.safetensors`,
//! run by candle as a candle user writes it: `VarBuilder` over the embedded bytes, one
//! `candle_nn::Linear` per layer in torch's naming, the forward pass on CPU tensors.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, linear};
use wasmpack_infer_kernel::{Kernel, export_kernel};

const WEIGHTS: &[u8] = include_bytes!("../model/digits.safetensors");
const PIXELS: usize = 64;
const HIDDEN: [usize; 2] = [256, 128];
const CLASSES: usize = 10;
/// `wpi_init`'s code when the weights do not load (a missing tensor or a wrong shape).
const WEIGHTS_REFUSED: i32 = 2;

struct Digits {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

fn load() -> candle_core::Result<Digits> {
    let vb = VarBuilder::from_slice_safetensors(WEIGHTS, DType::F32, &Device::Cpu)?;
    Ok(Digits {
        fc1: linear(PIXELS, HIDDEN[0], vb.pp("fc1"))?,
        fc2: linear(HIDDEN[0], HIDDEN[1], vb.pp("fc2"))?,
        fc3: linear(HIDDEN[1], CLASSES, vb.pp("fc3"))?,
    })
}

impl Digits {
    fn forward(&self, input: &[f32]) -> candle_core::Result<Vec<f32>> {
        let batch = input.len() / PIXELS;
        let x = Tensor::from_slice(input, (batch, PIXELS), &Device::Cpu)?;
        let x = self.fc1.forward(&x)?.relu()?;
        let x = self.fc2.forward(&x)?.relu()?;
        let logits = self.fc3.forward(&x)?;
        candle_nn::ops::softmax_last_dim(&logits)?
            .flatten_all()?
            .to_vec1()
    }
}

impl Kernel for Digits {
    const INPUT_LEN: usize = PIXELS;
    const OUTPUT_LEN: usize = CLASSES;

    fn init() -> Result<Self, i32> {
        load().map_err(|_| WEIGHTS_REFUSED)
    }

    fn infer(&mut self, input: &[f32], output: &mut [f32]) {
        let probabilities = self.forward(input).expect("candle ran the model");
        output.copy_from_slice(&probabilities);
    }
}

export_kernel!(Digits);
