//! `manifest.json`: one typed, versioned description of a bundle. The JSON Schema in
//! `schema/manifest.schema.json` is generated from these types; a test fails when they drift.
//!
//! Everything outside [`Manifest::timings`] is a pure function of the inputs and the toolchain, so
//! two builds of the same input can be compared field by field; timings, and where they were
//! taken, live in their own section.

use crate::profile::{CargoSettings, WasmFeature};
use crate::project::kernel::TensorSpec;
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 2;
pub const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
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
    pub budgets: crate::budget::Budgets,
    /// Measured in this run; the only section allowed to differ between two builds of one input.
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
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
pub struct FileEntry {
    /// Path relative to the bundle directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Subresource-integrity string for `<script integrity>` / `fetch(..., {integrity})`.
    pub sri: String,
}

/// Byte counts of one artifact, raw and as each compressor would ship it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    pub raw_bytes: u64,
    /// zstd level 19.
    pub zstd_bytes: u64,
    /// gzip level 9.
    pub gzip_bytes: u64,
    /// brotli quality 11, window 22: what a browser downloads from a well-configured server.
    pub brotli_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WasmVariant {
    /// Bundle-relative path of the shipped module.
    pub file: String,
    pub target: String,
    pub rustflags: Vec<String>,
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

/// WASM against native (CPU path) on every sample.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    pub samples: usize,
    pub tolerance: f64,
    /// Largest absolute difference over all output elements.
    pub max_abs_diff: f64,
    /// Samples whose largest output element is the same in both variants.
    pub argmax_agree: usize,
    /// Samples beyond tolerance, or whose argmax differs.
    pub mismatched_samples: Vec<usize>,
    pub passed: bool,
    pub per_sample: PerSampleParity,
}

/// How a re-run's parity compares with the one a manifest records.
#[derive(Debug, Clone, PartialEq)]
pub enum Reproduction {
    /// The same figures, to the bit.
    Exact,
    /// Every sample still within tolerance with the same argmax in both variants, by figures that
    /// moved: the native variant may sum in another order on another CPU, or across threads.
    WithinTolerance { max_abs_diff: f64 },
    /// What departs from the record, for a message.
    Differs(String),
}

impl Parity {
    /// Whether `rerun` reproduces this recorded parity. The WASM variant is deterministic, so its
    /// argmax must not move; the distance between the variants may, but only within tolerance,
    /// and only for a record that passed (a failing record must come out the same again).
    pub fn reproduced_by(&self, rerun: &Parity) -> Reproduction {
        let differs = |at: String| Reproduction::Differs(at);
        if rerun == self {
            return Reproduction::Exact;
        }
        if self.samples != rerun.samples || self.tolerance != rerun.tolerance {
            return differs("in the summary".into());
        }
        let (a, b) = (&self.per_sample, &rerun.per_sample);
        let moved = |figure: fn(&PerSampleParity, usize) -> Option<f64>| {
            (0..self.samples).find(|&i| figure(a, i) != figure(b, i))
        };
        let argmax_moved = moved(|p, i| Some(*p.argmax_wasm.get(i)? as f64))
            .into_iter()
            .chain(moved(|p, i| Some(*p.argmax_native.get(i)? as f64)))
            .min();
        if let Some(i) = argmax_moved {
            return differs(format!("first at sample {i}"));
        }
        let (tolerance, recorded_diff) = (self.tolerance, &a.max_abs_diff);
        let drifted_past_tolerance = (0..self.samples).find(|&i| {
            let (was, now) = (recorded_diff.get(i), b.max_abs_diff.get(i));
            // Written so a NaN or a missing figure counts as drift.
            !was.zip(now)
                .is_some_and(|(was, now)| (was - now).abs() <= tolerance)
        });
        match (self.passed, rerun.passed) {
            (true, true) => match drifted_past_tolerance {
                Some(i) => differs(format!("first at sample {i}")),
                None => Reproduction::WithinTolerance {
                    max_abs_diff: rerun.max_abs_diff,
                },
            },
            (true, false) => differs(format!(
                "first at sample {}, now beyond the tolerance",
                rerun.mismatched_samples.first().copied().unwrap_or(0)
            )),
            _ => differs(
                moved(|p, i| p.max_abs_diff.get(i).copied())
                    .map_or("in the summary".to_string(), |i| {
                        format!("first at sample {i}")
                    }),
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerSampleParity {
    pub max_abs_diff: Vec<f64>,
    pub argmax_wasm: Vec<usize>,
    pub argmax_native: Vec<usize>,
}

/// A timing distribution in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    pub runs: usize,
    pub median_us: f64,
    pub p95_us: f64,
    pub min_us: f64,
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
}

/// Where a browser measurement ran.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserEnvironment {
    /// `chromium --version`.
    pub browser: String,
    pub user_agent: String,
    /// Served with COOP/COEP, so `performance.now()` is fine-grained (5 µs, not 100 µs).
    pub cross_origin_isolated: bool,
    /// The smallest step `performance.now()` took in the page.
    pub timer_resolution_us: f64,
}

/// A Pyodide bundle loaded by its own `pyodide/loader.mjs` in a browser page.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PyodideBrowserTimings {
    pub environment: BrowserEnvironment,
    /// `load()`: fetching and booting the runtime, checking and importing the app.
    pub load: Distribution,
    /// `load({ snapshot: true })`, when the bundle has a memory snapshot.
    pub snapshot_load: Option<Distribution>,
    /// The first `infer()` of one sample after a normal boot.
    pub first_inference: Distribution,
    /// Per sample, cycling through all samples.
    pub steady: BrowserSteady,
    /// The browser's outputs against the same bundle in Node.
    pub parity: Option<Parity>,
    /// A split runtime: how long loading its deferred half took in a normal boot that ran every
    /// sample, and in a snapshot boot that did; absent when nothing loaded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_load_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_deferred_load_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserSteady {
    pub batch: usize,
    /// Each run times this many back-to-back calls and records their mean, so a call shorter
    /// than the timer's resolution is still measured.
    pub calls_per_run: usize,
    pub latency: Distribution,
    pub samples_per_second: f64,
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
    pub rustc: String,
    /// The engine the WASM variant was measured in.
    pub wasm_engine: String,
    pub binaryen: String,
    /// Unix time the measurement finished.
    pub measured_at_unix: u64,
}

/// Steady-state latency at one batch size.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Steady {
    pub batch: usize,
    pub latency: Distribution,
    /// Samples per second at the median latency.
    pub samples_per_second: f64,
    /// Medians of where an accelerated call spent its time, as the kernel reports it
    /// (`wpi_last_call_ns`); absent for CPU runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferBreakdown>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransferBreakdown {
    /// Host → device copy of the input.
    pub upload_us: f64,
    /// Kernels on the device.
    pub compute_us: f64,
    /// Device → host copy of the output.
    pub download_us: f64,
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
    pub steady: Vec<Steady>,
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
    /// One-line human summary of the figures above.
    pub verdict: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchRatio {
    pub batch: usize,
    pub wasm_over_native: f64,
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

/// Pretty JSON with a final newline, as every manifest and schema file is written.
pub fn pretty_json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("manifest types serialize");
    text.push('\n');
    text
}

/// The JSON Schema of a manifest type, as checked in under `schema/`.
pub fn schema_of<T: JsonSchema>() -> String {
    pretty_json(&schemars::schema_for!(T))
}

impl Manifest {
    pub fn to_json(&self) -> String {
        pretty_json(self)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(|e| crate::exit::input_error(format!("{e:#}")))?;
        let value = serde_json::from_str::<serde_json::Value>(&text).ok();
        if value.as_ref().and_then(|v| v.get("kind")?.as_str())
            == Some(crate::pyodide::manifest::KIND)
        {
            return Err(crate::exit::input_error(format!(
                "{} belongs to a Python (Pyodide) bundle: `check`, `diff`, `report`, `inspect` and \
                 `measure --browser` read it; `verify` works on kernel bundles only for now",
                path.display()
            )));
        }
        let version = value.and_then(|v| v.get("schema_version")?.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            return Err(crate::exit::input_error(format!(
                "{}: schema_version {version:?} is not {SCHEMA_VERSION}, the version this tool reads",
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

/// A manifest of either kind, as `check` and `diff` read them.
#[derive(Debug, Clone)]
pub enum AnyManifest {
    Kernel(Box<Manifest>),
    Pyodide(Box<crate::pyodide::manifest::PyodideManifest>),
}

/// One schema for both kinds: a kernel manifest (`kind` "kernel", or absent in those written
/// before the tag) or a Python one (`kind` "pyodide").
impl JsonSchema for AnyManifest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BundleManifest".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "oneOf": [
                generator.subschema_for::<Manifest>(),
                generator.subschema_for::<crate::pyodide::manifest::PyodideManifest>(),
            ]
        })
    }
}

impl AnyManifest {
    /// The JSON Schema of manifest.json, either kind, as checked in at
    /// `schema/manifest.schema.json`.
    pub fn json_schema() -> String {
        schema_of::<Self>()
    }

    /// Reads a manifest, picking the type from its `kind` (absent in kernel manifests written
    /// before the tag).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(|e| crate::exit::input_error(format!("{e:#}")))?;
        let kind = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("kind")?.as_str().map(str::to_string));
        match kind.as_deref() {
            Some(crate::pyodide::manifest::KIND) => Ok(Self::Pyodide(Box::new(
                crate::pyodide::manifest::PyodideManifest::read(path)?,
            ))),
            _ => Ok(Self::Kernel(Box::new(Manifest::read(path)?))),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kernel(_) => KERNEL_KIND,
            Self::Pyodide(_) => crate::pyodide::manifest::KIND,
        }
    }

    pub fn metrics(&self) -> Vec<crate::budget::Metric> {
        match self {
            Self::Kernel(m) => crate::budget::metrics(m),
            Self::Pyodide(m) => crate::budget::pyodide_metrics(m),
        }
    }

    pub fn budgets(&self) -> &crate::budget::Budgets {
        match self {
            Self::Kernel(m) => &m.budgets,
            Self::Pyodide(m) => &m.budgets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parity(diffs: &[f64], argmax_native: &[usize], tolerance: f64) -> Parity {
        let argmax_wasm = vec![1; diffs.len()];
        let mismatched_samples: Vec<usize> = (0..diffs.len())
            .filter(|&i| diffs[i] > tolerance || argmax_native[i] != argmax_wasm[i])
            .collect();
        Parity {
            samples: diffs.len(),
            tolerance,
            max_abs_diff: diffs.iter().copied().fold(0.0, f64::max),
            argmax_agree: diffs.len() - mismatched_samples.len(),
            passed: mismatched_samples.is_empty(),
            mismatched_samples,
            per_sample: PerSampleParity {
                max_abs_diff: diffs.to_vec(),
                argmax_wasm,
                argmax_native: argmax_native.to_vec(),
            },
        }
    }

    #[test]
    fn parity_reproduces_within_tolerance_but_not_past_it() {
        let recorded = parity(&[1.2e-8, 0.0, 3.1e-8], &[1, 1, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&recorded.clone()),
            Reproduction::Exact
        );
        let drifted = parity(&[2.4e-8, 1e-9, 3.1e-8], &[1, 1, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&drifted),
            Reproduction::WithinTolerance {
                max_abs_diff: 3.1e-8
            }
        );
        let beyond = parity(&[1.2e-8, 0.0, 2e-5], &[1, 1, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&beyond),
            Reproduction::Differs("first at sample 2, now beyond the tolerance".into())
        );
        // A record edited to a figure no re-run could drift to.
        let mut edited = recorded.clone();
        edited.per_sample.max_abs_diff[1] = 0.5;
        assert_eq!(
            edited.reproduced_by(&recorded),
            Reproduction::Differs("first at sample 1".into())
        );
        let argmax = parity(&[1.2e-8, 0.0, 3.1e-8], &[1, 0, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&argmax),
            Reproduction::Differs("first at sample 1".into())
        );
        let looser = parity(&[1.2e-8, 0.0, 3.1e-8], &[1, 1, 1], 1e-3);
        assert_eq!(
            recorded.reproduced_by(&looser),
            Reproduction::Differs("in the summary".into())
        );
        // A record that failed must fail the same way again.
        let failed = parity(&[0.5, 0.0], &[1, 1], 1e-5);
        let other = parity(&[0.25, 0.0], &[1, 1], 1e-5);
        assert_eq!(
            failed.reproduced_by(&other),
            Reproduction::Differs("first at sample 0".into())
        );
    }

    #[test]
    fn recorded_figures_read_back_to_the_bit() {
        // f32 differences such as these once read back one ULP off, so verify saw a change.
        let diffs = [
            1.4901161193847656e-8,
            5.960464477539063e-8,
            2.9802322387695312e-8,
        ];
        let recorded = parity(&diffs, &[1, 1, 1], 1e-5);
        let text = serde_json::to_string(&recorded).unwrap();
        assert_eq!(serde_json::from_str::<Parity>(&text).unwrap(), recorded);
        for x in (0..2000u32).map(|i| f32::from_bits(0x3300_0000 + i * 7919) as f64) {
            let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
    }

    #[test]
    fn a_python_manifest_is_named_as_such_where_a_kernel_one_is_expected() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/digits-py.json");
        let err = Manifest::read(&path).unwrap_err();
        assert!(err.is::<crate::exit::InputError>());
        assert!(
            format!("{err}").contains("Python (Pyodide) bundle"),
            "{err}"
        );
        assert!(matches!(
            AnyManifest::read(&path).unwrap(),
            AnyManifest::Pyodide(_)
        ));
    }

    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/manifest.schema.json");
        let generated = AnyManifest::json_schema();
        if std::env::var_os("BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schema/manifest.schema.json is out of date: run `BLESS=1 cargo test manifest` and commit it"
        );
    }
}
