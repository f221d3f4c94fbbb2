//! `manifest.json` of a Python bundle (`kind: "pyodide"`): same conventions as the kernel
//! manifest (versioned, typed, one JSON Schema with the kernel's, checked in at `schema/manifest.schema.json`),
//! with the stock distribution, the shaken bundle and native CPython side by side.

use super::common::*;
use super::fit::{DeploymentFit, FitThresholds};
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const KIND: &str = "pyodide";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonManifest {
    /// Same version sequence as the kernel manifest.
    pub schema_version: u32,
    /// Always "pyodide".
    pub kind: String,
    pub tool: Tool,
    pub project: ProjectInfo,
    pub distribution: DistributionInfo,
    /// Every file of the bundle except this manifest, sorted by path.
    pub files: Vec<FileEntry>,
    pub native: NativeSibling,
    pub shake: ShakeInfo,
    pub sizes: ShippedSizes,
    /// `pyodide.asm.wasm` split by a profile of the samples; absent when it shipped whole
    /// (`shake.runtime` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_split: Option<RuntimeSplitInfo>,
    /// How the runtime's dynamic linking at boot was planned (`[runtime] link-plan`); absent
    /// when it was not, and in bundles built before it could be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_linking: Option<RuntimeLinkingInfo>,
    /// The memory snapshot, when the profile builds one.
    pub snapshot: Option<SnapshotInfo>,
    pub parity: PythonParity,
    /// The project's budgets (`variant.metric` → limit), checked by `check` and `build --check`.
    pub budgets: Budgets,
    /// Measured in this run.
    pub timings: PythonTimings,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectInfo {
    pub name: String,
    pub version: String,
    /// `module:function`, called once per sample.
    pub entry: String,
    pub dependencies: Vec<String>,
    /// The samples file, shipped as `samples.json`.
    pub samples: usize,
    pub samples_sha256: String,
    /// Largest absolute difference allowed between Pyodide's and native CPython's outputs.
    pub tolerance: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistributionInfo {
    /// `info.version` of its pyodide-lock.json.
    pub version: String,
    /// Where it came from, with the tarball's npm integrity when there was one.
    pub origin: String,
    /// sha256 of each stock file the bundle derives from.
    pub stock_sha256: BTreeMap<String, String>,
}

/// The native CPython sibling: the app and its dependencies, to unpack onto a CPython's path.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NativeSibling {
    /// `.tar.zst` with `app/`, `site-packages/` and `requirements.lock`.
    pub file: String,
    /// `name==version` of every installed dependency (also in the archive's `requirements.lock`).
    pub requirements: Vec<String>,
    /// `[tool.wasmpack-infer.native] requirements`, as written: installed into this sibling only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerated: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
// Named apart from the kernel's ShakeInfo in the one schema both kinds share.
#[schemars(rename = "PythonShakeInfo")]
pub struct ShakeInfo {
    /// Modules the bundle can import, by reason: "boot" (loadPyodide imported it), "traced"
    /// (imported while the samples ran), "static" (an import the app's code names, or one
    /// importing those runs) or "--keep".
    pub modules: BTreeMap<String, String>,
    /// Kept module → the module whose import pulled it in (first seen), where the trace or the
    /// static walk saw one; modules loadPyodide boots with have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub importers: BTreeMap<String, String>,
    pub stdlib_entries_before: usize,
    pub stdlib_entries_after: usize,
    /// `.pyc` files added next to kept modules (`stdlib.precompile`), made by the distribution's
    /// interpreter; 0 when the standard library ships as source only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub precompiled: usize,
    /// The precompiled modules ship as `.pyc` alone, their sources left out
    /// (`stdlib.bytecode-only`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bytecode_only: bool,
    /// `python_stdlib.zip` and `app.zip` store their entries uncompressed, for the server's
    /// compression (`stdlib.store-uncompressed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stored_uncompressed: bool,
    /// Docstrings and comments stripped (`stdlib.strip`); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip: Option<StripInfo>,
    /// Top-level stdlib modules and packages left out entirely.
    pub dropped_top_levels: Vec<String>,
    /// Files of the app archive the app opened while the trace ran (Python's `open` audit
    /// events): its modules and the data it reads.
    pub files_opened: Vec<String>,
    /// Packages kept in pyodide-lock.json (with their wheels).
    pub packages: Vec<String>,
    pub keep: Vec<String>,
    pub drop: Vec<String>,
    /// What happened to `pyodide.asm.wasm`, and why.
    pub runtime: String,
}

/// What stripping docstrings and comments did to the shipped sources (kept stdlib modules, the
/// app and its pip-installed dependencies).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StripInfo {
    /// `.py` files looked at, and of those the ones that changed.
    pub sources: usize,
    pub stripped: usize,
    /// Uncompressed bytes of all the looked-at sources, before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Files that kept their docstrings (losing only comments, if anything), and why
    /// (`stdlib/…` or `app/…`).
    pub docstrings_kept: BTreeMap<String, String>,
}

/// Bytes a page or worker downloads: every file it loads, summed per compressor.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShippedSizes {
    pub stock: Sizes,
    pub bundle: Sizes,
    /// Bundle brotli bytes over stock brotli bytes.
    pub brotli_ratio: f64,
    /// A split runtime: what is fetched before the first inference (the bundle less the
    /// secondary module), and its brotli ratio to stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upfront: Option<Sizes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upfront_brotli_ratio: Option<f64>,
    pub per_file: Vec<FileSizes>,
}

/// How the runtime was split: the primary ships as `pyodide.asm.wasm`, the secondary beside it is
/// fetched only when a function it holds is first called.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSplitInfo {
    /// `wasm-split --version`.
    pub tool: String,
    /// Where the samples ran on the instrumented runtime (`node`, `chromium`, each also booted
    /// from a snapshot when the bundle has one). A host not listed may boot through functions
    /// the profile missed, and load the deferred half while booting.
    pub profiled_in: Vec<String>,
    pub features: Vec<WasmFeature>,
    /// Functions the runtime defines.
    pub functions: usize,
    /// Of those, the ones the profiled run of the samples executed: they stay in the primary.
    pub profiled_functions: usize,
    /// Functions the primary defines: the profiled ones plus a thunk for each exported function
    /// that moved to the secondary.
    pub primary_functions: usize,
    /// Table slots that reach the secondary through a placeholder until it is loaded.
    pub placeholders: usize,
    pub primary_file: String,
    pub secondary_file: String,
    pub primary: Sizes,
    pub secondary: Sizes,
}

/// Emscripten's dynamic-linking set-up at boot, planned by the build (`src/python/link_plan.rs`):
/// `pyodide.asm.mjs` ships patched to look exported functions up in the planned table slots
/// only, and to wrap the JS functions the GOT needs in one module; the table and the GOT come out
/// as Emscripten's own code leaves them, which the build checked in a boot of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeLinkingInfo {
    /// What was done, or why the glue ships as it is (another Pyodide's glue, for one).
    pub note: String,
    /// The plan that ships; absent when none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<LinkPlanInfo>,
}

/// The table slots read at boot, planned.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LinkPlanInfo {
    /// Table slots the shipped `pyodide.asm.wasm`'s element segments fill: what Emscripten's own
    /// code reads at every boot.
    pub table_slots: u32,
    /// Of those, the slots read at boot: those holding an exported function or a non-placeholder
    /// import (listed in the custom section `wasmpack-infer.link-slots`).
    pub planned_slots: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSizes {
    pub file: String,
    /// Absent for files only the bundle has (the app archive).
    pub stock: Option<Sizes>,
    pub bundle: Sizes,
}

/// Pyodide's memory after booting and importing the entry module: boots in a fraction of the
/// time, for more bytes than the runtime itself. Not in `sizes.bundle`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotInfo {
    pub file: String,
    pub sizes: Sizes,
    /// `loader.mjs` boots from it unless told otherwise.
    pub default_boot: bool,
    /// Taken after one call of the entry on the first sample (the profile's `snapshot.warm`):
    /// the first inference after booting from it is not the app's first call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmed: bool,
    /// The bundle booted from it, every sample checked against stock Pyodide's outputs.
    pub run: PyodideRun,
    /// Free heap zeroed just before the snapshot was taken; absent in bundles built before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_heap_zeroed: Option<FreeHeapZeroed>,
    /// The runtime's static data taken out of the file; absent in bundles built before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_data: Option<SnapshotStaticData>,
}

/// The runtime's static data (what its data segments write at instantiation), stored in the
/// snapshot XORed with what those segments write: what the interpreter never changed ships as
/// zeros. `loader.mjs` undoes it when the runtime is instantiated.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotStaticData {
    /// Bytes from the first data segment's start to the last one's end.
    pub bytes: u64,
    /// Of those, the bytes the snapshot holds as instantiated: zeros in the file.
    pub unchanged_bytes: u64,
}

/// The free chunks of Emscripten's malloc, zeroed through malloc itself before the snapshot: they
/// hold what freed objects left, which compresses as badly as live data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FreeHeapZeroed {
    pub bytes: u64,
    pub chunks: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonParity {
    /// The shaken bundle's outputs equal stock Pyodide's on every sample (a difference fails
    /// the build: the shaken runtime must behave exactly as the stock one).
    pub bundle_matches_stock: bool,
    /// Pyodide (`wasm`) against native CPython (`native`), per sample.
    pub native: Parity,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonTimings {
    pub environment: Environment,
    /// Node's version, which ran both Pyodide measurements.
    pub node: String,
    pub stock: PyodideRun,
    pub bundle: PyodideRun,
    pub native: NativeRun,
    pub runtime_fit: PythonFit,
    /// The bundle in headless Chromium (`measure --browser`); absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<PyodideBrowserTimings>,
    /// A split runtime: the run that loaded the secondary right after boot (to check every
    /// sample on it) and the time that load took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_load_ms: Option<f64>,
}

/// Cold starts to the first inference over several boots, in ms.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BootSeries {
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl BootSeries {
    /// The series of `cold_starts_ms`; `None` when empty.
    pub fn of(cold_starts_ms: &[f64]) -> Option<Self> {
        let mut sorted = cold_starts_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let round = |ms: f64| (ms * 1000.0).round() / 1000.0;
        Some(Self {
            runs: sorted.len(),
            median_ms: round(*sorted.get(sorted.len() / 2)?),
            min_ms: round(sorted[0]),
            max_ms: round(sorted[sorted.len() - 1]),
        })
    }
}

/// Steady latency per sample over several blocks, each block one pass over every sample in a
/// boot of its own, interleaved with the other variants' blocks: the median, fastest and slowest
/// of the blocks' medians, in µs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SteadyBlocks {
    pub runs: usize,
    pub median_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

impl SteadyBlocks {
    /// The series of per-block medians `block_medians_us`; `None` when empty.
    pub fn of(block_medians_us: &[f64]) -> Option<Self> {
        let series = BootSeries::of(block_medians_us)?;
        Some(Self {
            runs: series.runs,
            median_us: series.median_ms,
            min_us: series.min_ms,
            max_us: series.max_ms,
        })
    }
}

/// One boot of a Pyodide distribution with the app, in Node.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PyodideRun {
    /// `loadPyodide`, in ms (one run: a boot takes seconds).
    pub boot_ms: f64,
    /// Unpacking the app and importing the entry module, in ms.
    pub import_ms: f64,
    pub first_inference_ms: f64,
    /// Boot + import + first inference: the median of `boots` when they were timed, else this
    /// run's.
    pub cold_start_ms: f64,
    /// Cold starts of boots of their own in fresh Node processes, interleaved with the other
    /// variants' (stock, bundle, snapshot, stock, …) so that the machine's drift touches all
    /// alike; absent before schema 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots: Option<BootSeries>,
    /// Per-sample latency over every sample after the first pass.
    pub steady: Distribution,
    /// Steady latency in the interleaved boots' blocks (absent before they were timed): what
    /// compares variants, where `steady` is one run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_blocks: Option<SteadyBlocks>,
    /// A split runtime: the time this run spent loading the secondary module; absent when
    /// nothing it ran needed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_load_ms: Option<f64>,
    /// Medians of one more pass's calls in parts: the sample converted from JS to Python
    /// (`upload_us`), the entry (`compute_us`), the result converted back (`download_us`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<TransferBreakdown>,
    /// Where a boot's time goes: each phase's median over the interleaved boots (this run's
    /// when none were timed); absent where the runner could not time the phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_phases: Option<BootPhases>,
}

/// One Pyodide boot (`boot_ms`) in phases, in ms, timed by wrapping the calls `loadPyodide`
/// makes; in one boot they add up to its `boot_ms`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BootPhases {
    /// Reading and checking the memory snapshot (0 without one). A bundle's loader starts it
    /// with the boot, beside the fetch: not one of the phases that add up to the boot.
    pub snapshot_read_ms: f64,
    /// From the start of the boot until Pyodide asks for the runtime module: importing
    /// Pyodide's JavaScript and reading the module (and the snapshot, which Pyodide awaits).
    pub fetch_ms: f64,
    /// From then until the module is compiled. A bundle's loader compiles it from the start of
    /// the boot, beside the fetch: this is only what is left when Pyodide asks (often 0).
    pub compile_ms: f64,
    /// Instantiating it.
    pub instantiate_ms: f64,
    /// Copying the memory snapshot into the instance's memory (0 without one).
    pub restore_ms: f64,
    /// The rest of `loadPyodide`: the runtime's and Python's start-up (importing what a boot
    /// imports), or after a restore, setting up again what a snapshot cannot hold.
    pub startup_ms: f64,
    /// Loading the distribution's packages (0 without any).
    pub packages_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NativeRun {
    /// `python3 --version` of the interpreter.
    pub python: String,
    /// `python3 -c pass`, in ms.
    pub startup_ms: f64,
    pub import_ms: f64,
    pub first_inference_ms: f64,
    pub cold_start_ms: f64,
    pub steady: Distribution,
    /// Top-level modules of the native-only requirements that the app imported in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerated_imported: Vec<String>,
    /// Whether a CUDA device was usable on the machine that measured (what accelerated
    /// libraries would find).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<CudaPresence>,
    /// Where native CPython's time goes, from one more pass over the samples under cProfile:
    /// the class that dominates here is the one that survives the move to Pyodide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<TimeAttribution>,
}

/// One pass over the samples, its time split by where it was spent (shares of the whole).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeAttribution {
    /// Entry calls profiled (one per sample).
    pub calls: usize,
    /// Self time in functions written in Python: what an interpreter's speed decides. cProfile
    /// slows these calls more than C ones, so this is an upper bound.
    pub python_share: f64,
    /// Self time in C: builtins and compiled extensions (NumPy's loops, say).
    pub c_share: f64,
    /// Converting at the boundary: each sample's JSON decoded into Python objects and the
    /// result encoded back.
    pub boundary_share: f64,
    /// The functions with the most self time, hottest first.
    pub hottest: Vec<HotFunction>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HotFunction {
    /// `name (file:line)` for Python code, cProfile's `<built-in method …>` form for C.
    pub function: String,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonFit {
    /// Pyodide steady median over native CPython steady median (the interpreter tax).
    pub interpreter_tax: f64,
    /// Bundle cold start over native cold start.
    pub cold_start_over_native: f64,
    /// Bundle cold start over stock cold start.
    pub cold_start_over_stock: f64,
    /// Bundle steady over stock steady, medians of their interleaved blocks (absent when none
    /// were timed): what the shake and the split cost or save per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_over_stock: Option<f64>,
    /// Cold start booted from the memory snapshot over stock cold start.
    pub snapshot_cold_start_over_stock: Option<f64>,
    /// Bundle brotli bytes over stock brotli bytes.
    pub bytes_over_stock: f64,
    /// A split runtime: bytes fetched before the first inference over stock's (brotli).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upfront_bytes_over_stock: Option<f64>,
    pub verdict: String,
    /// The thresholds the deployments were judged by: the defaults, overridden by the profile's
    /// `[runtime-fit]` (absent before schema 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<FitThresholds>,
    /// How well the bundle fits each deployment shape, and what to ship there (absent before
    /// schema 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<DeploymentFit>,
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

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl PythonManifest {
    pub fn to_json(&self) -> String {
        super::pretty_json(self)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let version = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|v| v.get("schema_version")?.as_u64());
        if !super::is_readable_schema(version) {
            return Err(crate::exit::input_error(format!(
                "{}: schema_version {version:?} is not one this tool reads ({} to {})",
                path.display(),
                super::OLDEST_READABLE_SCHEMA,
                super::SCHEMA_VERSION
            )));
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            crate::exit::input_error(format!(
                "{}: not a valid Pyodide manifest: {e}",
                path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_series_keeps_its_median_and_range() {
        let series = BootSeries::of(&[2900.0, 2400.0, 3500.0, 2500.0, 2600.0]).unwrap();
        assert_eq!(
            series,
            BootSeries {
                runs: 5,
                median_ms: 2600.0,
                min_ms: 2400.0,
                max_ms: 3500.0
            }
        );
        assert_eq!(BootSeries::of(&[]), None);
        let blocks = SteadyBlocks::of(&[180.0, 170.0, 175.0]).unwrap();
        assert_eq!((blocks.runs, blocks.median_us), (3, 175.0));
        assert_eq!((blocks.min_us, blocks.max_us), (170.0, 180.0));
    }
}
