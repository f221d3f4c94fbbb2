//! Digits MLP: 8x8 grey-scale digit (64 pixels in [0, 1]) → 10 logits, one per digit.
//! Weights come from `train.py` (scikit-learn `MLPClassifier`, ReLU hidden layer of 32).
//! With the `cuda` feature the native sibling runs on the GPU when one is present.

use wasmpack_infer_kernel::mlp::{Layer, MlpKernel, MlpModel};
use wasmpack_infer_kernel::{cpu, export_kernel};

const INPUTS: usize = 64;
const HIDDEN: usize = 32;
const CLASSES: usize = 10;
const WEIGHTS: &[u8] = include_bytes!("../model/weights.bin");

// The model and every buffer are allocated once, so the small size-class allocator serves this
// kernel as well as dlmalloc, in a third of the code.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: wasmpack_infer_kernel::alloc::SizeClassAllocator =
    wasmpack_infer_kernel::alloc::SizeClassAllocator::new();

struct DigitsMlp;

impl MlpModel for DigitsMlp {
    const INPUT_LEN: usize = INPUTS;
    const OUTPUT_LEN: usize = CLASSES;

    fn layers() -> Result<Vec<Layer>, i32> {
        let all = cpu::f32s_from_le_bytes(WEIGHTS);
        let sizes = [INPUTS * HIDDEN, HIDDEN, HIDDEN * CLASSES, CLASSES];
        if all.len() != sizes.iter().sum::<usize>() {
            return Err(1);
        }
        let (w1, rest) = all.split_at(sizes[0]);
        let (b1, rest) = rest.split_at(sizes[1]);
        let (w2, b2) = rest.split_at(sizes[2]);
        Ok(vec![
            Layer {
                weights: w1.to_vec(),
                bias: b1.to_vec(),
                relu: true,
            },
            Layer {
                weights: w2.to_vec(),
                bias: b2.to_vec(),
                relu: false,
            },
        ])
    }
}

export_kernel!(MlpKernel<DigitsMlp>);
