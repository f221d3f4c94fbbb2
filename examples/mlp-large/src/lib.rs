//! A large MLP for the batch sweep: 256 inputs → three ReLU layers of 1024 → 16 outputs, about
//! 2.4 M multiply-adds per sample. Weights are generated in `wpi_init` from a fixed seed (He-uniform,
//! so activations stay of order one), which keeps the module small and the outputs reproducible
//! on every target. With the `cuda` feature the native sibling runs it on the GPU when one is
//! present: the point of this example is where that pays and where transfers dominate.

use wasmpack_infer_kernel::export_kernel;
use wasmpack_infer_kernel::mlp::{Layer, MlpKernel, MlpModel};

const WIDTHS: [usize; 5] = [256, 1024, 1024, 1024, 16];
const SEED: u64 = 0x5EED_1024;

/// SplitMix64: a tiny, well-distributed generator with the same sequence on every target.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-bound, bound), from the top 24 bits so every value is exact in f32.
    fn uniform(&mut self, bound: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (unit * 2.0 - 1.0) * bound
    }
}

struct MlpLarge;

impl MlpModel for MlpLarge {
    const INPUT_LEN: usize = WIDTHS[0];
    const OUTPUT_LEN: usize = WIDTHS[WIDTHS.len() - 1];

    fn layers() -> Result<Vec<Layer>, i32> {
        let mut rng = SplitMix64(SEED);
        let last = WIDTHS.len() - 2;
        Ok(WIDTHS
            .windows(2)
            .enumerate()
            .map(|(index, pair)| {
                let (inputs, outputs) = (pair[0], pair[1]);
                let bound = (6.0 / inputs as f32).sqrt();
                Layer {
                    weights: (0..inputs * outputs).map(|_| rng.uniform(bound)).collect(),
                    bias: (0..outputs).map(|_| rng.uniform(0.1)).collect(),
                    relu: index != last,
                }
            })
            .collect())
    }
}

export_kernel!(MlpKernel<MlpLarge>);
