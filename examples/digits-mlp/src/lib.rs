//! Digits MLP: 8x8 grey-scale digit (64 pixels in [0, 1]) → 10 logits, one per digit.
//! Weights come from `train.py` (scikit-learn `MLPClassifier`, ReLU hidden layer of 32).
//! With the `cuda` feature the native sibling runs on the GPU when one is present.

use wasmpack_infer_kernel::mlp::{Layer, Mlp};
use wasmpack_infer_kernel::{Kernel, cpu, export_kernel};

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

struct DigitsMlp(Mlp);

impl Kernel for DigitsMlp {
    const INPUT_LEN: usize = INPUTS;
    const OUTPUT_LEN: usize = CLASSES;

    fn init() -> Result<Self, i32> {
        let all = cpu::f32s_from_le_bytes(WEIGHTS);
        let sizes = [INPUTS * HIDDEN, HIDDEN, HIDDEN * CLASSES, CLASSES];
        if all.len() != sizes.iter().sum::<usize>() {
            return Err(1);
        }
        let (w1, rest) = all.split_at(sizes[0]);
        let (b1, rest) = rest.split_at(sizes[1]);
        let (w2, b2) = rest.split_at(sizes[2]);
        let layers = vec![
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
        ];
        Mlp::new(layers).map(Self).map_err(|_| 2)
    }

    fn infer(&mut self, input: &[f32], output: &mut [f32]) {
        self.0.infer(input, output);
    }

    fn device(&self) -> String {
        self.0.device()
    }

    fn last_call(&self) -> Option<wasmpack_infer_kernel::device::CallBreakdown> {
        self.0.last_call()
    }
}

export_kernel!(DigitsMlp);
