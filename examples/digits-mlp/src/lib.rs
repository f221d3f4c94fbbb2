//! Digits MLP: 8x8 grey-scale digit (64 pixels in [0, 1]) → 10 logits, one per digit.
//! Weights come from `train.py` (scikit-learn `MLPClassifier`, ReLU hidden layer of 32).

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

struct DigitsMlp {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    hidden: [f32; HIDDEN],
}

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
        Ok(Self {
            w1: w1.to_vec(),
            b1: b1.to_vec(),
            w2: w2.to_vec(),
            b2: b2.to_vec(),
            hidden: [0.0; HIDDEN],
        })
    }

    fn infer(&mut self, input: &[f32], output: &mut [f32]) {
        for (x, logits) in input.chunks_exact(INPUTS).zip(output.chunks_exact_mut(CLASSES)) {
            cpu::dense(x, &self.w1, &self.b1, &mut self.hidden);
            cpu::relu(&mut self.hidden);
            cpu::dense(&self.hidden, &self.w2, &self.b2, logits);
        }
    }
}

export_kernel!(DigitsMlp);
