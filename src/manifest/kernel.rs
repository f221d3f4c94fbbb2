//! `manifest.json` of a kernel bundle (`kind: "kernel"`): the WASM variant and the native sibling
//! built from one crate, measured side by side.
//!
//! Everything outside [`KernelManifest::timings`] is a pure function of the inputs and the
//! toolchain, so two builds of the same input can be compared field by field; timings, and where
//! they were taken, live in their own section.

use super::common::*;
use super::fit::{DeploymentFit, FitThresholds};
use super::variant::{EngineFloor, FeatureVariant, SimdLevel, SkippedVariant, VariantTimings};
use super::{OLDEST_READABLE_SCHEMA, SCHEMA_VERSION, pretty_json};
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelManifest {
    /// Version of this schema; readers reject versions they do not know.
    pub schema_version: u32,
    /// `"kernel"`: which of the two manifest types this is (the other is `"pyodide"`). Manifests
    /// written before the tag existed lack it and read as kernels.
    #[serde(default = "kernel_kind")]
    pub kind: String,
    pub tool: Tool,
    pub kernel: KernelInfo,
    pub profile: ProfileInfo,
    /// Every file of the bundle except this manifest, sorted by path.
    pub files: Vec<FileEntry>,
    pub wasm: WasmVariant,
    pub native: NativeVariant,
    pub parity: Parity,
    /// The project's budgets (`variant.metric` → limit), checked by `check` and `build --check`.
    pub budgets: Budgets,
    /// Measured in this run; the only section allowed to differ between two builds of one input.
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelInfo {
    pub name: String,
    pub version: String,
    pub abi_version: u32,
    pub input: TensorSpec,
    pub output: TensorSpec,
    /// Parity and timing samples, shipped in the bundle as `samples.bin`.
    pub samples: SamplesInfo,
    /// Largest absolute difference allowed between the variants' outputs.
    pub tolerance: f64,
    /// The model file the kernel was made from (`model` in its metadata), hashed in this build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSource {
    /// Relative to the crate, e.g. `model/digits.onnx`.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    /// How the kernel runs it, as the crate's metadata says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<ModelEngine>,
}

/// How a kernel runs the model it was made from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ModelEngine {
    /// Rust generated from the graph (`new kernel --onnx`), no interpreter linked.
    AheadOfTime,
    /// The tract interpreter, with the model embedded.
    Tract,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamplesInfo {
    pub file: String,
    pub count: usize,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileInfo {
    pub name: String,
    /// Cargo profile settings both variants were built with.
    pub cargo: CargoSettings,
    pub rustc: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WasmVariant {
    /// Bundle-relative path of the shipped module.
    pub file: String,
    pub target: String,
    pub rustflags: Vec<String>,
    /// getrandom packages built without the `wasm_js` feature their dependants turned on, so
    /// that they take the profile's `getrandom_backend` cfg (getrandom 0.4 cannot build both:
    /// rust-random/getrandom#840), e.g. `getrandom 0.4.3`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        alias = "own_getrandom_backend"
    )]
    pub getrandom_without_wasm_js: Vec<String>,
    /// Features the target runtime supports; the module was optimized and validated against them.
    pub runtime_features: Vec<WasmFeature>,
    pub stages: WasmStages,
    /// Sizes of the shipped (final) module.
    pub sizes: Sizes,
    /// Host imports the module needs (none for a self-contained kernel).
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// The sidecar with the shipped module's function names and sizes (`diff` reads it), when
    /// the build could make one that matches the module exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_map: Option<String>,
    /// The oldest engine releases the profile supports; one variant runs on all of them.
    #[serde(default, skip_serializing_if = "EngineFloor::is_empty")]
    pub engine_floor: EngineFloor,
    /// Every feature-level variant shipped, from baseline up; the one marked `primary` is the
    /// module the fields above describe. `loader.mjs` loads the most capable one the engine
    /// validates. (Absent in schema 2 manifests, which shipped one module.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<FeatureVariant>,
    /// Variants the profile lists above the primary that cargo could not build; `--variant`
    /// naming one makes that an error instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_variants: Vec<SkippedVariant>,
}

impl WasmVariant {
    /// The SIMD level of the module this section describes (a schema 2 manifest's, from its
    /// rustflags).
    pub fn primary_level(&self) -> SimdLevel {
        self.variants
            .iter()
            .find(|v| v.primary)
            .map(|v| v.level)
            .unwrap_or_else(|| {
                let features: Vec<String> = self
                    .rustflags
                    .iter()
                    .filter_map(|flag| flag.strip_prefix("target-feature=+"))
                    .map(str::to_string)
                    .collect();
                SimdLevel::of_target_features(&features)
            })
    }
}

/// Size after each stage, and what each stage did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WasmStages {
    /// As cargo produced it.
    pub built_bytes: u64,
    pub shake: ShakeInfo,
    pub optimize: OptimizeInfo,
    pub validate: ValidateInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShakeInfo {
    pub bytes: u64,
    pub functions_before: usize,
    pub functions_after: usize,
    pub exports_removed: Vec<String>,
    pub custom_sections_removed: Vec<CustomSection>,
    pub kept_names: bool,
    /// Panic entry points made to trap without formatting a message nobody can read.
    pub panic_entry_points_stubbed: Vec<String>,
    /// wasm-bindgen glue imports (`module.name`) the ABI exports reach but no sample called,
    /// each made a function that traps: the shipped module imports nothing, and a call at run
    /// time traps rather than computing anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub glue_stubbed: Vec<String>,
    pub walrus_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomSection {
    pub name: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimizeInfo {
    pub bytes: u64,
    /// wasm-opt level, e.g. "O3" or "Oz".
    pub level: String,
    pub features: Vec<WasmFeature>,
    pub binaryen_version: String,
    pub wasm_opt_crate_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidateInfo {
    /// Samples run on the module as built and on the final module (validated by wasmparser
    /// against the runtime features first), with bit-identical outputs: a build that fails either
    /// check writes no manifest.
    pub differential_samples: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NativeVariant {
    pub file: String,
    pub target: String,
    pub rustflags: Vec<String>,
    /// Cargo features of the kernel crate the library was built with (e.g. `cuda`).
    pub features: Vec<String>,
    /// The native profile (`targets/native-*.toml`) it was built with.
    pub profile: String,
    pub sizes: Sizes,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    pub environment: Environment,
    pub wasm: WasmTimings,
    /// The native library on the CPU (told so through `wpi_force_cpu` when it is accelerated).
    pub native: NativeTimings,
    /// The native library's CUDA path on the measuring machine: whether it ran, and its figures.
    pub cuda: CudaRun,
    pub runtime_fit: RuntimeFit,
    /// The WASM variant in headless Chromium (`measure --browser`); absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserTimings>,
    /// The WASM variant in a Python host process through the bundle's `loader.py`
    /// (`measure --python-host`); absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_host: Option<HostTimings>,
    /// The WASM variant in Node through the bundle's `loader.mjs` (`measure --node`): the
    /// server-side JavaScript host, with the JS ↔ linear-memory copies timed apart; absent when
    /// not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<HostTimings>,
    /// Each feature-level variant's compile and steady latency, next to native (the primary's
    /// figures are those of `wasm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantTimings>,
    /// How long each stage of the build took, in order (`build` only; `measure` keeps them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageTime>,
}

/// One stage of `build` and its wall time.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageTime {
    /// `build` (both cargo builds), `shake`, `optimize`, `validate`, `measure` or `pack`.
    pub stage: String,
    pub seconds: f64,
}

/// The WASM variant loaded by its own `loader.mjs` in a browser page, served from 127.0.0.1.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserTimings {
    pub environment: BrowserEnvironment,
    /// `load()`: download (no cache), SRI check, compile, instantiate and `wpi_init`.
    pub load: Distribution,
    /// The first `infer()` of one sample on a freshly loaded model.
    pub first_inference: Distribution,
    /// Per call, `infer()` included (copies in and out of linear memory, the Promise).
    pub steady: Vec<BrowserSteady>,
    /// The browser's outputs for every sample against the same module in wasmtime.
    pub parity: Option<Parity>,
    /// The feature-level variant the loader picked in this browser (the most capable one it
    /// validates), which all figures above are of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<SimdLevel>,
}

/// The WASM variant as a sandboxed guest of a Python process: loaded and called by the bundle's own
/// The WASM variant in a host process through the bundle's own loader: `loader.py` under
/// wasmtime-py (the sandboxed-plugin deployment, `timings.plugin_host`) or `loader.mjs` in Node
/// (`timings.node`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostTimings {
    /// e.g. `wasmtime-py 51.0.0, CPython 3.11.7, NumPy arrays` or `Node 20.20.0, V8 11.3`.
    pub runtime: String,
    /// The feature-level variant the loader picked (the most capable one the engine validates).
    pub variant: SimdLevel,
    /// `load()`: reading the module, its hash check, compile, instantiate and `wpi_init`.
    pub load: Distribution,
    /// The first `infer()` of one sample on a freshly loaded model.
    pub first_inference: Distribution,
    /// Per `infer()` call from the host, with `transfer` splitting calls of their own into the
    /// copy into linear memory (`upload_us`, reading the host's buffer included), the
    /// `wpi_infer` call (`compute_us`, crossing into the guest and back included) and the copy
    /// out into a new array (`download_us`).
    pub steady: Vec<Steady>,
    /// The loader's outputs for every sample against the same module in wasmtime from Rust.
    pub parity: Parity,
}

/// Which device ran a native measurement.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Accelerator {
    Cuda,
    Cpu,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CudaRun {
    /// The library was built with the `cuda` feature: the kernel declares it, the native profile
    /// enables it and `--no-cuda` was not given.
    pub requested: bool,
    /// What the shipped library picked here when left to choose.
    pub accelerator: Accelerator,
    /// The kernel's own description of that device (`wpi_device_info`), when it exports one,
    /// e.g. `cuda:NVIDIA H100 80GB HBM3 (sm_90, driver 13.0)`.
    pub device: Option<String>,
    /// Why the CUDA path did not run, when it did not.
    pub reason: Option<String>,
    /// Present when the CUDA path ran: its cold start (context, NVRTC, weight upload) …
    pub cold: Option<ColdStart>,
    /// … its steady latency per batch size, with transfer and compute time …
    pub steady: Vec<Steady>,
    /// … and WASM against CUDA on every sample (a mismatch fails the build).
    pub parity: Option<Parity>,
}

/// Steady-state latency at one batch size.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Steady {
    pub batch: usize,
    pub latency: Distribution,
    /// Samples per second at the median latency.
    pub samples_per_second: f64,
    /// Medians of where a call spent its time: for an accelerated call as the kernel reports it
    /// (`wpi_last_call_ns`), for the WASM variant as the host timed its copies and the call on
    /// calls of their own; absent for native CPU runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferBreakdown>,
    /// The most CPU threads a call ran on: what the kernel reports (`wpi_last_call_threads`) or,
    /// when more, what the OS saw on three more calls (threads on a CPU for a tenth of a call
    /// or more; a pool of the kernel's own, rayon's under candle, counts). Absent for a kernel
    /// that does not report (the WASM variant has one thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
}

/// From nothing to the first result, per fresh instance.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColdStart {
    /// `wpi_init` (0 when the kernel has none).
    pub init: Distribution,
    /// The first `wpi_infer` of one sample after init.
    pub first_inference: Distribution,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WasmTimings {
    /// Cranelift compile of the shipped module.
    pub compile: Distribution,
    /// Loading the module precompiled by the same engine.
    pub deserialize: Distribution,
    /// A fresh store, `InstancePre::instantiate`, ABI export lookup and the version check.
    pub instantiate: Distribution,
    pub cold: ColdStart,
    /// Includes copying input into and output out of linear memory: the sandbox boundary.
    pub steady: Vec<Steady>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NativeTimings {
    /// `dlopen` plus symbol lookup of a fresh copy of the library.
    pub load: Distribution,
    pub cold: ColdStart,
    /// On as many threads as the kernel picks for each batch, as a user's process would run it.
    pub steady: Vec<Steady>,
    /// The batches of `steady` that ran on more than one thread, capped at one
    /// (`wpi_set_threads`): the like-for-like figure next to the single-threaded WASM variant.
    /// A batch that still ran on several threads under the cap (a pool the helper crate does not
    /// own) is left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub single_thread: Vec<Steady>,
}

/// What the WASM variant costs relative to native, from this run's medians.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFit {
    /// WASM steady median over native CPU steady median, per batch size (> 1: WASM is slower).
    pub steady_ratio: Vec<BatchRatio>,
    /// Per batch size of the sweep: each variant's median and which one wins.
    pub batches: Vec<BatchFit>,
    /// Precompiled WASM (deserialize + instantiate + init + first inference), in µs.
    pub wasm_cold_start_us: f64,
    /// Same path when the host must compile first (compile instead of deserialize), in µs.
    pub wasm_cold_start_compiling_us: f64,
    /// Native (load + init + first inference), in µs.
    pub native_cold_start_us: f64,
    /// Instantiation median over first-inference median: how much of a cold call is setup.
    pub instantiate_over_first_inference: f64,
    /// Bytes a browser downloads for the WASM variant (brotli).
    pub download_bytes: u64,
    /// One-line human summary of the figures above and the deployments below.
    pub verdict: String,
    /// The thresholds `deployments` were judged by: the profile's `[runtime-fit]`, else the
    /// defaults.
    #[serde(default)]
    pub thresholds: FitThresholds,
    /// How well the WASM variant fits each deployment shape, what to ship there, and the
    /// measured figures that decided it.
    #[serde(default)]
    pub deployments: Vec<DeploymentFit>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchRatio {
    pub batch: usize,
    pub wasm_over_native: f64,
    /// Against native capped at one thread, where native ran on more at this batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_over_native_single_thread: Option<f64>,
}

/// One batch size of the sweep, across the variants measured.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchFit {
    pub batch: usize,
    pub wasm_us: f64,
    pub native_cpu_us: f64,
    /// Present when the CUDA path ran.
    pub cuda_us: Option<f64>,
    /// The variant with the lowest median: "wasm", "native-cpu" or "cuda".
    pub fastest: String,
    /// e.g. "cuda fastest: 8.10x native-cpu, 9.72x wasm".
    pub summary: String,
}

impl KernelManifest {
    pub fn to_json(&self) -> String {
        pretty_json(self)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(|e| crate::exit::input_error(format!("{e:#}")))?;
        let value = serde_json::from_str::<serde_json::Value>(&text).ok();
        if value.as_ref().and_then(|v| v.get("kind")?.as_str()) == Some(super::python::KIND) {
            return Err(crate::exit::input_error(format!(
                "{} belongs to a Python (Pyodide) bundle, where a kernel bundle is expected: \
                 `measure` re-measures a Python bundle with --browser only",
                path.display()
            )));
        }
        let version = value.and_then(|v| v.get("schema_version")?.as_u64());
        if !super::is_readable_schema(version) {
            return Err(crate::exit::input_error(format!(
                "{}: schema_version {version:?} is not one this tool reads \
                 ({OLDEST_READABLE_SCHEMA} to {SCHEMA_VERSION})",
                path.display()
            )));
        }
        serde_json::from_str(&text).map_err(|e| {
            crate::exit::input_error(format!("{}: not a valid manifest: {e}", path.display()))
        })
    }
}

/// The `kind` of a kernel bundle's manifest.
pub const KERNEL_KIND: &str = "kernel";

fn kernel_kind() -> String {
    KERNEL_KIND.to_string()
}
