//! The GPU path of [`Mlp`](crate::mlp::Mlp): weights uploaded once, matmuls through cuBLAS, bias
//! and activation in one NVRTC-compiled kernel, device buffers reused across calls.
//!
//! cudarc loads the driver, cuBLAS and NVRTC at run time and panics when one is missing, and a
//! panic must never cross the ABI (kernels build with `panic = "abort"`), so every library is
//! probed before first use and its absence becomes the reason the CPU path runs.

use crate::device::CallBreakdown;
use crate::mlp::Layer;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use std::sync::Arc;
use std::time::Instant;

/// `y = act(y + b)` over a row-major `[batch × outputs]` matrix.
const BIAS_ACTIVATION_SOURCE: &str = r#"
extern "C" __global__ void bias_activation(float* y, const float* b, unsigned int outputs,
                                           unsigned int n, int relu) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = y[i] + b[i % outputs];
        y[i] = relu ? fmaxf(v, 0.0f) : v;
    }
}
"#;

struct DeviceLayer {
    weights: CudaSlice<f32>,
    bias: CudaSlice<f32>,
    inputs: usize,
    outputs: usize,
    relu: bool,
    /// This layer's output for up to `capacity` samples.
    activations: CudaSlice<f32>,
}

pub struct GpuMlp {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    bias_activation: CudaFunction,
    layers: Vec<DeviceLayer>,
    input: CudaSlice<f32>,
    /// Samples the device buffers hold; grown on demand, never shrunk.
    capacity: usize,
    description: String,
    last_call: Option<CallBreakdown>,
}

/// The library cudarc would load for `probe`, or why it cannot.
fn require(present: unsafe fn() -> bool, library: &str) -> Result<(), String> {
    // SAFETY: the probe only tries to dlopen candidate names; it runs no library code beyond
    // their initialisers, which are NVIDIA's own.
    if unsafe { present() } {
        Ok(())
    } else {
        Err(format!("{library} not found on the dynamic loader path"))
    }
}

impl GpuMlp {
    pub fn new(layers: &[Layer]) -> Result<Self, String> {
        require(cudarc::driver::sys::is_culib_present, "libcuda.so")?;
        require(cudarc::cublas::sys::is_culib_present, "libcublas.so")?;
        require(cudarc::nvrtc::sys::is_culib_present, "libnvrtc.so")?;
        let context = CudaContext::new(0).map_err(|e| format!("no usable device 0: {e}"))?;
        let (major, minor) = context
            .compute_capability()
            .map_err(|e| format!("compute capability: {e}"))?;
        let description = describe(&context, (major, minor));
        let stream = context.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e}"))?;
        // For this device's architecture: NVRTC's default target differs between CUDA releases
        // and may be one the driver no longer accepts.
        let options = cudarc::nvrtc::CompileOptions {
            options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
            ..Default::default()
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(BIAS_ACTIVATION_SOURCE, options)
            .map_err(|e| format!("NVRTC: {e}"))?;
        let bias_activation = context
            .load_module(ptx)
            .and_then(|module| module.load_function("bias_activation"))
            .map_err(|e| format!("loading the NVRTC module: {e}"))?;
        let upload = |values: &[f32]| {
            stream
                .clone_htod(values)
                .map_err(|e| format!("uploading weights: {e}"))
        };
        // Buffers start at one sample (CUDA refuses zero-byte allocations) and grow on demand.
        let alloc = |len: usize| {
            stream
                .alloc_zeros::<f32>(len)
                .map_err(|e| format!("allocating device buffers: {e}"))
        };
        let layers = layers
            .iter()
            .map(|layer| {
                Ok(DeviceLayer {
                    weights: upload(&layer.weights)?,
                    bias: upload(&layer.bias)?,
                    inputs: layer.inputs(),
                    outputs: layer.outputs(),
                    relu: layer.relu,
                    activations: alloc(layer.outputs())?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            input: alloc(layers[0].inputs)?,
            stream,
            blas,
            bias_activation,
            layers,
            capacity: 1,
            description,
            last_call: None,
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn last_call(&self) -> Option<CallBreakdown> {
        self.last_call
    }

    fn reserve(&mut self, batch: usize) -> Result<(), String> {
        if batch <= self.capacity {
            return Ok(());
        }
        let alloc = |len: usize| {
            self.stream
                .alloc_zeros::<f32>(len)
                .map_err(|e| format!("allocating device buffers for {batch} samples: {e}"))
        };
        self.input = alloc(batch * self.layers[0].inputs)?;
        for layer in &mut self.layers {
            layer.activations = alloc(batch * layer.outputs)?;
        }
        self.capacity = batch;
        Ok(())
    }

    pub fn infer(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), String> {
        let batch = input.len() / self.layers[0].inputs;
        self.reserve(batch)?;
        let sync = |stream: &CudaStream| stream.synchronize().map_err(|e| e.to_string());

        let started = Instant::now();
        self.stream
            .memcpy_htod(input, &mut self.input.slice_mut(..input.len()))
            .map_err(|e| format!("copying the input to the device: {e}"))?;
        sync(&self.stream)?;
        let uploaded = Instant::now();

        for index in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(index);
            let layer = &mut rest[0];
            let source = match before.last() {
                Some(previous) => &previous.activations,
                None => &self.input,
            };
            // Row-major Y[batch × out] = X[batch × in] · W[in × out] is, column-major,
            // Yᵀ = Wᵀ · Xᵀ: cuBLAS sees W as an out × in matrix and X as in × batch.
            let (m, n, k) = (layer.outputs as i32, batch as i32, layer.inputs as i32);
            let config = GemmConfig {
                transa: cublasOperation_t::CUBLAS_OP_N,
                transb: cublasOperation_t::CUBLAS_OP_N,
                m,
                n,
                k,
                alpha: 1.0f32,
                lda: m,
                ldb: k,
                beta: 0.0f32,
                ldc: m,
            };
            // SAFETY: the buffers hold at least k×m weights, k×n inputs and m×n outputs.
            unsafe {
                self.blas
                    .gemm(config, &layer.weights, source, &mut layer.activations)
            }
            .map_err(|e| format!("cuBLAS sgemm, layer {index}: {e}"))?;
            let elements = (batch * layer.outputs) as u32;
            let (outputs, relu) = (layer.outputs as u32, i32::from(layer.relu));
            let mut launch = self.stream.launch_builder(&self.bias_activation);
            launch
                .arg(&mut layer.activations)
                .arg(&layer.bias)
                .arg(&outputs)
                .arg(&elements)
                .arg(&relu);
            // SAFETY: the kernel's parameters match BIAS_ACTIVATION_SOURCE and it touches only
            // the first `elements` activations, which the buffer holds.
            unsafe { launch.launch(LaunchConfig::for_num_elems(elements)) }
                .map_err(|e| format!("bias/activation kernel, layer {index}: {e}"))?;
        }
        sync(&self.stream)?;
        let computed = Instant::now();

        let last = &self.layers[self.layers.len() - 1];
        self.stream
            .memcpy_dtoh(&last.activations.slice(..output.len()), output)
            .map_err(|e| format!("copying the output to the host: {e}"))?;
        sync(&self.stream)?;
        let downloaded = Instant::now();

        let nanos = |from: Instant, to: Instant| to.duration_since(from).as_nanos() as u64;
        self.last_call = Some(CallBreakdown {
            upload_ns: nanos(started, uploaded),
            compute_ns: nanos(uploaded, computed),
            download_ns: nanos(computed, downloaded),
        });
        Ok(())
    }
}

/// e.g. `NVIDIA H100 80GB HBM3 (sm_90, driver 13.0)`.
fn describe(context: &Arc<CudaContext>, (major, minor): (i32, i32)) -> String {
    let name = context
        .name()
        .unwrap_or_else(|e| format!("unnamed device ({e})"));
    let mut version = 0i32;
    // SAFETY: the driver library is loaded (CudaContext::new succeeded) and `version` is valid.
    let driver = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
    let driver = if driver == cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        format!("driver {}.{}", version / 1000, version % 1000 / 10)
    } else {
        "driver version unknown".into()
    };
    format!("{name} (sm_{major}{minor}, {driver})")
}
