//! A multi-layer perceptron that runs on the GPU when the `cuda` feature is on and a device is
//! present, else on the CPU with [`gemm::Dense`] over whole batches, reporting which one ran.

use crate::Kernel;
use crate::device::{self, CallBreakdown};
use crate::gemm::{Dense, Isa};

/// One fully connected layer: `y = act(x · W + b)`, `W` row-major `[inputs × outputs]`.
#[derive(Debug, Clone)]
pub struct Layer {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
}

impl Layer {
    pub fn inputs(&self) -> usize {
        self.weights.len() / self.bias.len().max(1)
    }

    pub fn outputs(&self) -> usize {
        self.bias.len()
    }
}

/// Why layers cannot form a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    Empty,
    /// Layer `index`'s weights are not `inputs × outputs` for the previous layer's outputs.
    Layer {
        index: usize,
    },
}

pub struct Mlp {
    layers: Vec<CpuLayer>,
    isa: Isa,
    /// Ping-pong activations of a batch on the CPU path, grown to the largest batch seen.
    scratch: [Vec<f32>; 2],
    /// Threads the last CPU call ran on.
    last_threads: usize,
    backend: Backend,
}

/// A layer with its weights packed for the CPU path.
struct CpuLayer {
    dense: Dense,
    relu: bool,
}

enum Backend {
    Cpu {
        /// Why the accelerator was not used, when one could have been.
        reason: Option<String>,
    },
    #[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
    Cuda(crate::cuda::GpuMlp),
}

impl Mlp {
    /// Checks the shapes and picks the device: CUDA when built with the `cuda` feature, not forced
    /// onto the CPU by the host, and a driver and device are present.
    pub fn new(layers: Vec<Layer>) -> Result<Self, ShapeError> {
        let first = layers.first().ok_or(ShapeError::Empty)?;
        let mut width = first.inputs();
        for (index, layer) in layers.iter().enumerate() {
            if layer.bias.is_empty() || layer.weights.len() != width * layer.outputs() {
                return Err(ShapeError::Layer { index });
            }
            width = layer.outputs();
        }
        let backend = select_backend(&layers);
        let layers = layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let dense =
                    Dense::new(&layer.weights, &layer.bias).ok_or(ShapeError::Layer { index })?;
                Ok(CpuLayer {
                    dense,
                    relu: layer.relu,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            layers,
            isa: Isa::detect(),
            scratch: [Vec::new(), Vec::new()],
            last_threads: 0,
            backend,
        })
    }

    pub fn input_len(&self) -> usize {
        self.layers[0].dense.inputs()
    }

    pub fn output_len(&self) -> usize {
        self.layers[self.layers.len() - 1].dense.outputs()
    }

    /// Runs `input.len() / input_len()` samples. A GPU failure mid-run moves the model to the CPU
    /// for good (and says so in [`Mlp::device`]) rather than returning wrong outputs.
    pub fn infer(&mut self, input: &[f32], output: &mut [f32]) {
        #[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
        if let Backend::Cuda(gpu) = &mut self.backend {
            match gpu.infer(input, output) {
                Ok(()) => {
                    self.last_threads = 0;
                    return;
                }
                Err(error) => {
                    self.backend = Backend::Cpu {
                        reason: Some(format!("cuda failed during inference: {error}")),
                    }
                }
            }
        }
        self.infer_cpu(input, output);
    }

    /// Each layer over the whole batch, so its weights are read once per tile of samples rather
    /// than once per sample.
    fn infer_cpu(&mut self, input: &[f32], output: &mut [f32]) {
        let batch = input.len() / self.input_len();
        let last = self.layers.len() - 1;
        let widest = self.layers[..last]
            .iter()
            .map(|layer| layer.dense.outputs())
            .max()
            .unwrap_or(0);
        for buffer in &mut self.scratch {
            if buffer.len() < batch * widest {
                buffer.resize(batch * widest, 0.0);
            }
        }
        let max_threads = device::max_threads();
        let [a, b] = &mut self.scratch;
        let (mut current, mut next) = (&mut *a, &mut *b);
        let mut threads = 1;
        for (index, layer) in self.layers.iter().enumerate() {
            let source: &[f32] = if index == 0 {
                input
            } else {
                &current[..batch * layer.dense.inputs()]
            };
            let target = if index == last {
                &mut *output
            } else {
                &mut next[..batch * layer.dense.outputs()]
            };
            threads =
                threads.max(
                    layer
                        .dense
                        .forward(self.isa, source, target, layer.relu, max_threads),
                );
            std::mem::swap(&mut current, &mut next);
        }
        self.last_threads = threads;
    }

    /// Threads the last call ran on: 0 on the GPU.
    pub fn last_call_threads(&self) -> usize {
        self.last_threads
    }

    /// The instruction set the CPU path multiplies with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `cuda:<device>` or `cpu`, with the reason CUDA was not used.
    pub fn device(&self) -> String {
        match &self.backend {
            Backend::Cpu { reason } => device::cpu_description(reason.as_deref()),
            #[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
            Backend::Cuda(gpu) => format!("cuda:{}", gpu.description()),
        }
    }

    pub fn last_call(&self) -> Option<CallBreakdown> {
        match &self.backend {
            Backend::Cpu { .. } => None,
            #[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
            Backend::Cuda(gpu) => gpu.last_call(),
        }
    }
}

/// A model made of dense layers: describe it, and [`MlpKernel`] is the [`Kernel`] that runs it on
/// the CPU or the GPU.
///
/// ```ignore
/// struct Digits;
/// impl MlpModel for Digits {
///     const INPUT_LEN: usize = 64;
///     const OUTPUT_LEN: usize = 10;
///     fn layers() -> Result<Vec<Layer>, i32> { /* decode weights */ }
/// }
/// export_kernel!(MlpKernel<Digits>);
/// ```
pub trait MlpModel: 'static {
    const INPUT_LEN: usize;
    const OUTPUT_LEN: usize;
    /// The layers, first to last; `Err(code)` is returned by `wpi_init`.
    fn layers() -> Result<Vec<Layer>, i32>;
}

/// `wpi_init` code for layers whose shapes do not chain or match the model's lengths.
pub const ERR_SHAPE: i32 = -100;

/// The [`Kernel`] running an [`MlpModel`].
pub struct MlpKernel<M>(Mlp, std::marker::PhantomData<fn() -> M>);

impl<M: MlpModel> Kernel for MlpKernel<M> {
    const INPUT_LEN: usize = M::INPUT_LEN;
    const OUTPUT_LEN: usize = M::OUTPUT_LEN;

    fn init() -> Result<Self, i32> {
        let mlp = Mlp::new(M::layers()?).map_err(|_| ERR_SHAPE)?;
        if mlp.input_len() != M::INPUT_LEN || mlp.output_len() != M::OUTPUT_LEN {
            return Err(ERR_SHAPE);
        }
        Ok(Self(mlp, std::marker::PhantomData))
    }

    fn infer(&mut self, input: &[f32], output: &mut [f32]) {
        self.0.infer(input, output);
    }

    fn device(&self) -> String {
        self.0.device()
    }

    fn last_call(&self) -> Option<CallBreakdown> {
        self.0.last_call()
    }

    fn last_call_threads(&self) -> usize {
        self.0.last_call_threads()
    }
}

#[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
fn select_backend(layers: &[Layer]) -> Backend {
    if device::cpu_forced() {
        return Backend::Cpu {
            reason: Some("cuda not used: the host asked for the CPU".into()),
        };
    }
    match crate::cuda::GpuMlp::new(layers) {
        Ok(gpu) => Backend::Cuda(gpu),
        Err(reason) => Backend::Cpu {
            reason: Some(format!("cuda unavailable: {reason}")),
        },
    }
}

#[cfg(not(all(feature = "cuda", not(target_arch = "wasm32"))))]
fn select_backend(_layers: &[Layer]) -> Backend {
    let reason = if cfg!(target_arch = "wasm32") {
        None
    } else {
        Some("built without the cuda feature".into())
    };
    Backend::Cpu { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_layers() -> Vec<Layer> {
        vec![
            Layer {
                weights: vec![1.0, -1.0, 2.0, 0.5],
                bias: vec![0.0, 1.0],
                relu: true,
            },
            Layer {
                weights: vec![1.0, 2.0],
                bias: vec![0.5],
                relu: false,
            },
        ]
    }

    #[test]
    fn cpu_path_matches_hand_computed() {
        let mut mlp = Mlp::new(two_layers()).unwrap();
        let mut out = [0.0; 2];
        // x = [1, 1]: hidden = relu([3, 0.5]) = [3, 0.5]; out = 3 + 1 + 0.5 = 4.5
        // x = [0, -1]: hidden = relu([-2, 0.5]) = [0, 0.5]; out = 1 + 0.5 = 1.5
        mlp.infer(&[1.0, 1.0, 0.0, -1.0], &mut out);
        assert_eq!(out, [4.5, 1.5]);
        assert!(mlp.device().starts_with("cpu"), "{}", mlp.device());
        assert_eq!(mlp.last_call(), None);
    }

    #[test]
    fn device_says_why_cuda_did_not_run() {
        let mlp = Mlp::new(two_layers()).unwrap();
        let device = mlp.device();
        if cfg!(feature = "cuda") {
            assert!(
                device.starts_with("cuda:") || device.starts_with("cpu (cuda unavailable: "),
                "{device}"
            );
        } else {
            assert_eq!(device, "cpu (built without the cuda feature)");
        }
    }

    struct TwoLayers;
    impl MlpModel for TwoLayers {
        const INPUT_LEN: usize = 2;
        const OUTPUT_LEN: usize = 1;
        fn layers() -> Result<Vec<Layer>, i32> {
            Ok(two_layers())
        }
    }

    struct WrongLengths;
    impl MlpModel for WrongLengths {
        const INPUT_LEN: usize = 3;
        const OUTPUT_LEN: usize = 1;
        fn layers() -> Result<Vec<Layer>, i32> {
            Ok(two_layers())
        }
    }

    #[test]
    fn mlp_kernel_runs_the_model_and_checks_its_lengths() {
        let mut kernel = MlpKernel::<TwoLayers>::init().unwrap();
        let mut out = [0.0];
        kernel.infer(&[1.0, 1.0], &mut out);
        assert_eq!(out, [4.5]);
        assert_eq!(MlpKernel::<WrongLengths>::init().err(), Some(ERR_SHAPE));
    }

    #[test]
    fn shape_errors_name_the_layer() {
        assert_eq!(Mlp::new(vec![]).err(), Some(ShapeError::Empty));
        let mut layers = two_layers();
        layers[1].weights.push(0.0);
        assert_eq!(Mlp::new(layers).err(), Some(ShapeError::Layer { index: 1 }));
    }
}
