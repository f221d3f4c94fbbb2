//! Target profiles (`targets/*.toml`): how both variants are compiled and what the WASM runtime
//! accepts (browser, size, wasi), and how the native sibling is built (native-cuda). The built-in
//! ones are embedded so an installed binary needs no checkout.

use crate::exit::input_error;
use crate::manifest::fit::FitThresholds;
use crate::manifest::variant::{self, EngineFloor, SimdLevel};
use crate::manifest::{CargoSettings, WasmFeature};
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Built-in WASM profiles by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("browser", include_str!("../targets/browser.toml")),
    ("size", include_str!("../targets/size.toml")),
    ("wasi", include_str!("../targets/wasi.toml")),
];

/// Built-in Python (Pyodide) profiles by name.
const BUILT_IN_PYTHON: &[(&str, &str)] = &[
    ("pyodide", include_str!("../targets/pyodide.toml")),
    (
        "pyodide-fast-boot",
        include_str!("../targets/pyodide-fast-boot.toml"),
    ),
];

/// Built-in native profiles by name.
const BUILT_IN_NATIVE: &[(&str, &str)] =
    &[("native-cuda", include_str!("../targets/native-cuda.toml"))];

pub const DEFAULT_PROFILE: &str = "browser";

pub const DEFAULT_NATIVE_PROFILE: &str = "native-cuda";

pub const DEFAULT_PYTHON_PROFILE: &str = "pyodide";

/// The feature `--no-cuda` leaves out.
pub const CUDA_FEATURE: &str = "cuda";

/// The cargo profile the tool defines (inheriting `release`) so the user's profiles stay untouched.
pub const CARGO_PROFILE_NAME: &str = "wasmpack-infer";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// Profile name (file stem for a profile read from a file).
    #[serde(default)]
    pub name: String,
    pub description: String,
    /// Rust target triple of the WASM variant.
    pub target: String,
    pub cargo: CargoSettings,
    pub wasm: WasmSettings,
    /// Overrides of the thresholds the runtime-fit verdict judges by (keys as in the manifest's
    /// `timings.runtime_fit.thresholds`, in kebab-case); the rest keep their defaults.
    #[serde(default, deserialize_with = "kebab_case_thresholds")]
    pub runtime_fit: FitThresholds,
}

/// `[runtime-fit]` as written in a profile: TOML's kebab-case keys for the manifest's
/// snake_case fields (one struct, so the defaults live in one place).
fn kebab_case_thresholds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<FitThresholds, D::Error> {
    fn snake_case(value: toml::Value) -> toml::Value {
        match value {
            toml::Value::Table(table) => toml::Value::Table(
                table
                    .into_iter()
                    .map(|(key, value)| (key.replace('-', "_"), snake_case(value)))
                    .collect(),
            ),
            other => other,
        }
    }
    let table = toml::Value::Table(toml::Table::deserialize(deserializer)?);
    FitThresholds::deserialize(snake_case(table))
        .map_err(|e| serde::de::Error::custom(e.to_string().replace('_', "-")))
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WasmSettings {
    /// rustc target features for the WASM variant, e.g. "simd128".
    pub target_features: Vec<String>,
    /// rustc `--cfg` settings for the WASM variant: the documented switches that let common
    /// crates build for this target with no JavaScript host, e.g. getrandom's backend.
    #[serde(default)]
    pub cfg: Vec<String>,
    /// wasm-opt level: O0, O1, O2, O3, O4, Os or Oz.
    pub wasm_opt_level: String,
    /// In modules without imports, make panics trap without formatting their message (which has
    /// nowhere to go), so the shaker can drop `core::fmt`.
    pub strip_panic_formatting: bool,
    /// WebAssembly features the target runtime supports; wasm-opt, validation and measurement
    /// all use exactly this set (with each variant's SIMD features in place of any listed here).
    pub runtime_features: Vec<WasmFeature>,
    /// Feature-level variants built from the one crate, e.g. `["baseline", "simd128",
    /// "relaxed-simd"]`: each adds its SIMD features to `target-features` and
    /// `runtime-features`. Without it, one module at the level `target-features` names.
    #[serde(default)]
    pub variants: Vec<SimdLevel>,
    /// The oldest engine releases this profile supports (`chrome`, `firefox`, `safari`, `node`):
    /// at least one variant shipped must run on every one of them.
    #[serde(default)]
    pub engine_floor: EngineFloor,
}

impl WasmSettings {
    /// These settings for one SIMD level: its target and runtime features in place of any SIMD
    /// ones listed, no variants.
    pub fn at_level(&self, level: SimdLevel) -> WasmSettings {
        let simd_targets = SimdLevel::RelaxedSimd.target_features();
        let simd_runtime = SimdLevel::RelaxedSimd.runtime_features();
        let target_features = level
            .target_features()
            .iter()
            .map(|f| f.to_string())
            .chain(
                self.target_features
                    .iter()
                    .filter(|f| !simd_targets.contains(&f.as_str()))
                    .cloned(),
            )
            .collect();
        let mut runtime_features: Vec<WasmFeature> = self
            .runtime_features
            .iter()
            .filter(|f| !simd_runtime.contains(f))
            .copied()
            .collect();
        runtime_features.extend(level.runtime_features());
        WasmSettings {
            target_features,
            runtime_features,
            variants: Vec::new(),
            ..self.clone()
        }
    }

    /// The variants the profile declares, lowest level first.
    pub fn declared_variants(&self) -> Vec<SimdLevel> {
        if self.variants.is_empty() {
            vec![SimdLevel::of_target_features(&self.target_features)]
        } else {
            self.variants.clone()
        }
    }
}

/// One feature-level variant to build: its settings, rustc flags and cargo profile.
#[derive(Debug, Clone)]
pub struct PlannedVariant {
    pub level: SimdLevel,
    pub settings: WasmSettings,
    pub rustflags: Vec<String>,
    /// Each level builds under a cargo profile of its own, so switching between them never
    /// rebuilds another's dependencies.
    pub cargo_profile: String,
}

/// The variants one build makes, lowest level first, and which is the primary.
#[derive(Debug, Clone)]
pub struct VariantPlan {
    pub variants: Vec<PlannedVariant>,
    /// Index in `variants` of the most capable variant every floor engine runs.
    pub primary: usize,
}

impl VariantPlan {
    pub fn primary(&self) -> &PlannedVariant {
        &self.variants[self.primary]
    }
}

/// How the native sibling is built; its cargo settings are the WASM profile's.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NativeProfile {
    #[serde(default)]
    pub name: String,
    pub description: String,
    /// Extra rustc flags for the native variant only.
    #[serde(default)]
    pub rustflags: Vec<String>,
    /// Cargo features turned on when the kernel crate declares them.
    #[serde(default)]
    pub features: Vec<String>,
}

impl NativeProfile {
    /// A built-in native profile by name, or a profile file when `name_or_path` ends in `.toml`.
    pub fn load(name_or_path: &str) -> Result<Self> {
        let mut profile: Self = load_toml(name_or_path, BUILT_IN_NATIVE, "native profile")?;
        if profile.name.is_empty() {
            profile.name = profile_name(name_or_path);
        }
        Ok(profile)
    }

    /// The profile's features the crate declares, less `cuda` when `no_cuda`.
    pub fn features_for(&self, declared: &[String], no_cuda: bool) -> Vec<String> {
        self.features
            .iter()
            .filter(|f| declared.contains(f) && !(no_cuda && f.as_str() == CUDA_FEATURE))
            .cloned()
            .collect()
    }
}

/// How a Python project's Pyodide bundle is made.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonProfile {
    #[serde(default)]
    pub name: String,
    pub description: String,
    pub snapshot: SnapshotSettings,
    #[serde(default)]
    pub runtime: RuntimeSettings,
    #[serde(default)]
    pub stdlib: StdlibSettings,
    /// Overrides of the thresholds the per-deployment verdict judges by, as in a kernel profile.
    #[serde(default, deserialize_with = "kebab_case_thresholds")]
    pub runtime_fit: FitThresholds,
}

/// What is done to the kept standard library.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StdlibSettings {
    /// Add `.pyc` files made by the distribution's own interpreter (so the magic number matches)
    /// next to the kept modules' sources: Pyodide then skips compiling them at every boot.
    pub precompile: bool,
    /// Ship the modules that booting and the samples import as `.pyc` alone, not the sources
    /// they were compiled from: boot skips compiling without paying for both. A module only the
    /// static walk or `--keep` added stays source (with its `.pyc` beside it under `precompile`).
    /// Tracebacks still name the file and line; they show no source text.
    #[serde(default)]
    pub bytecode_only: bool,
    /// Store the entries of `python_stdlib.zip` and `app.zip` uncompressed: the server's brotli or
    /// gzip then compresses across files, which deflating each entry on its own keeps it from
    /// (`--deflate-entries` turns it off). The archives grow raw and shrink compressed.
    #[serde(default)]
    pub store_uncompressed: bool,
    /// Strip docstrings and comments from the kept modules and the app (lines keep their
    /// numbers; modules that may read docstrings keep theirs), with the distribution's own
    /// `ast`, each file checked to parse to the same code (`--no-strip` turns it off).
    pub strip: bool,
}

/// What is done to `pyodide.asm.wasm` itself (nothing, in a profile without `[runtime]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeSettings {
    /// Split the runtime with binaryen's `wasm-split`, guided by a profile of the samples: the
    /// functions they ran ship first, the rest load only if something calls them.
    pub split: bool,
    /// The features the runtime uses and its hosts support, passed to binaryen's tools: a
    /// feature the host lacks (e.g. typed function references in Node 20) would break it.
    pub features: Vec<WasmFeature>,
    /// Plan Emscripten's dynamic linking at boot (`src/python/link_plan.rs`): the table slots
    /// that the glue's lookups can find are written into `pyodide.asm.wasm`, and
    /// `pyodide.asm.mjs` ships patched to read only those, instead of every slot, at each boot.
    #[serde(default)]
    pub link_plan: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SnapshotSettings {
    /// Build a memory snapshot after importing the entry module, and measure booting from it.
    pub build: bool,
    /// `loader.mjs` boots from the snapshot by default.
    pub default: bool,
    /// Call the entry once, on the first sample, before the snapshot is taken: what the app
    /// does on its first call (loading weights, filling caches) ships done. Off unless asked:
    /// whatever that call changes ships changed (a change to any sample's output fails the
    /// build's check against stock Pyodide).
    #[serde(default)]
    pub warm: bool,
}

impl PythonProfile {
    /// A built-in Python profile by name, or a profile file when `name_or_path` ends in `.toml`.
    pub fn load(name_or_path: &str) -> Result<Self> {
        let mut profile: Self = load_toml(name_or_path, BUILT_IN_PYTHON, "Python profile")?;
        if profile.name.is_empty() {
            profile.name = profile_name(name_or_path);
        }
        if profile.snapshot.default && !profile.snapshot.build {
            return Err(input_error(format!(
                "Python profile `{}`: snapshot.default = true needs snapshot.build = true",
                profile.name
            )));
        }
        Ok(profile)
    }
}

/// `a, b and c`, in order.
fn names(levels: &[SimdLevel]) -> String {
    let names: Vec<&str> = levels.iter().map(|level| level.name()).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "nothing".into(),
    }
}

/// A profile's name: the built-in name, or a file's stem.
fn profile_name(name_or_path: &str) -> String {
    Path::new(name_or_path)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| name_or_path.to_string())
}

/// Parses a built-in profile by name or a profile file (a path ending in `.toml`).
fn load_toml<T: DeserializeOwned>(
    name_or_path: &str,
    built_in: &[(&str, &str)],
    kind: &str,
) -> Result<T> {
    let parse = |text: &str| -> Result<T> {
        toml::from_str(text).map_err(|e| input_error(format!("invalid {kind}: {e}")))
    };
    if name_or_path.ends_with(".toml") {
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {kind} {}", path.display()))
            .map_err(|e| input_error(format!("{e:#}")))?;
        return parse(&text).with_context(|| format!("in {kind} {}", path.display()));
    }
    let (name, text) = built_in
        .iter()
        .find(|(name, _)| *name == name_or_path)
        .ok_or_else(|| {
            let names: Vec<&str> = built_in.iter().map(|(name, _)| *name).collect();
            input_error(format!(
                "unknown {kind} `{name_or_path}`; built-in: {} (or pass a path ending in .toml)",
                names.join(", ")
            ))
        })?;
    parse(text).with_context(|| format!("in built-in {kind} `{name}`"))
}

impl WasmFeature {
    pub fn binaryen(self) -> wasm_opt::Feature {
        use wasm_opt::Feature as B;
        match self {
            Self::SignExt => B::SignExt,
            Self::MutableGlobals => B::MutableGlobals,
            Self::NontrappingFloatToInt => B::TruncSat,
            Self::BulkMemory => B::BulkMemory,
            Self::Multivalue => B::Multivalue,
            Self::ReferenceTypes => B::ReferenceTypes,
            Self::Simd => B::Simd,
            Self::RelaxedSimd => B::RelaxedSimd,
            Self::ExceptionHandling => B::ExceptionHandling,
            Self::TailCall => B::TailCall,
        }
    }

    pub fn wasmparser(self) -> wasmparser::WasmFeatures {
        use wasmparser::WasmFeatures as P;
        match self {
            Self::SignExt => P::SIGN_EXTENSION,
            Self::MutableGlobals => P::MUTABLE_GLOBAL,
            Self::NontrappingFloatToInt => P::SATURATING_FLOAT_TO_INT,
            Self::BulkMemory => P::BULK_MEMORY,
            Self::Multivalue => P::MULTI_VALUE,
            // funcref tables are "GC types" to wasmparser even without the GC proposal.
            Self::ReferenceTypes => P::REFERENCE_TYPES | P::GC_TYPES,
            Self::Simd => P::SIMD,
            Self::RelaxedSimd => P::RELAXED_SIMD,
            Self::ExceptionHandling => P::EXCEPTIONS | P::LEGACY_EXCEPTIONS,
            Self::TailCall => P::TAIL_CALL,
        }
    }

    /// The command-line flag binaryen's tools take for this feature.
    pub fn binaryen_flag(self) -> String {
        let name = serde_json::to_value(self).expect("a unit variant serializes");
        format!("--enable-{}", name.as_str().unwrap_or_default())
    }
}

/// The wasmparser feature set for a runtime supporting exactly `features` (plus the MVP).
pub fn wasmparser_features(features: &[WasmFeature]) -> wasmparser::WasmFeatures {
    features
        .iter()
        .fold(wasmparser::WasmFeatures::WASM1, |all, f| {
            all | f.wasmparser()
        })
}

impl Profile {
    /// A built-in profile by name, or a profile file when `name_or_path` ends in `.toml`.
    pub fn load(name_or_path: &str) -> Result<Self> {
        let mut profile: Self = load_toml(name_or_path, BUILT_IN, "profile")?;
        if profile.name.is_empty() {
            profile.name = profile_name(name_or_path);
        }
        profile
            .check()
            .with_context(|| format!("in profile `{}`", profile.name))?;
        Ok(profile)
    }

    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(name, _)| *name).collect()
    }

    fn check(&self) -> Result<()> {
        const OPT_LEVELS: [&str; 6] = ["0", "1", "2", "3", "s", "z"];
        const WASM_OPT_LEVELS: [&str; 7] = ["O0", "O1", "O2", "O3", "O4", "Os", "Oz"];
        if !OPT_LEVELS.contains(&self.cargo.opt_level.as_str()) {
            return Err(input_error(format!(
                "cargo.opt-level = {:?}: expected one of {OPT_LEVELS:?}",
                self.cargo.opt_level
            )));
        }
        if !["abort", "unwind"].contains(&self.cargo.panic.as_str()) {
            return Err(input_error(format!(
                "cargo.panic = {:?}: expected \"abort\" or \"unwind\"",
                self.cargo.panic
            )));
        }
        if !WASM_OPT_LEVELS.contains(&self.wasm.wasm_opt_level.as_str()) {
            return Err(input_error(format!(
                "wasm.wasm-opt-level = {:?}: expected one of {WASM_OPT_LEVELS:?}",
                self.wasm.wasm_opt_level
            )));
        }
        self.check_variants()?;
        if self.wasm.variants.is_empty()
            && self.wasm.target_features.iter().any(|f| f == "simd128")
            && !self.wasm.runtime_features.contains(&WasmFeature::Simd)
        {
            return Err(input_error(
                "wasm.target-features enables simd128 but wasm.runtime-features lacks \"simd\"",
            ));
        }
        if self.wasm.variants.is_empty()
            && self
                .wasm
                .target_features
                .iter()
                .any(|f| f == "relaxed-simd")
            && !(self
                .wasm
                .runtime_features
                .contains(&WasmFeature::RelaxedSimd)
                && self.wasm.runtime_features.contains(&WasmFeature::Simd))
        {
            return Err(input_error(
                "wasm.target-features enables relaxed-simd, which needs both \"simd\" and \
                 \"relaxed-simd\" in wasm.runtime-features",
            ));
        }
        Ok(())
    }

    fn check_variants(&self) -> Result<()> {
        let variants = &self.wasm.variants;
        if !variants.is_empty() {
            if let Some(simd) = self.wasm.target_features.iter().find(|f| {
                SimdLevel::RelaxedSimd
                    .target_features()
                    .contains(&f.as_str())
            }) {
                return Err(input_error(format!(
                    "wasm.target-features lists {simd:?} and wasm.variants is set: the variants \
                     choose the SIMD level, so leave it out of target-features"
                )));
            }
            if !variants.windows(2).all(|pair| pair[0] < pair[1]) {
                return Err(input_error(format!(
                    "wasm.variants = [{}]: list each level once, lowest first ({})",
                    variants
                        .iter()
                        .map(|level| format!("\"{level}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    names(&SimdLevel::ALL)
                )));
            }
        }
        if let Some((engine, version)) = self
            .wasm
            .engine_floor
            .iter()
            .find(|(_, version)| !variant::is_release_number(version))
        {
            return Err(input_error(format!(
                "wasm.engine-floor.{engine} = {version:?}: expected a release number such as \"20\" or \"16.4\""
            )));
        }
        self.variant_plan(&[]).map(drop)
    }

    /// `--config` arguments defining cargo profile `name` (inheriting `release`) with this
    /// profile's settings.
    pub fn cargo_profile_config(&self, name: &str) -> Vec<String> {
        let key = format!("profile.{name}");
        let opt_level = match self.cargo.opt_level.parse::<u8>() {
            Ok(level) => level.to_string(),
            Err(_) => format!("\"{}\"", self.cargo.opt_level),
        };
        vec![
            format!("{key}.inherits=\"release\""),
            format!("{key}.opt-level={opt_level}"),
            format!("{key}.lto={}", self.cargo.lto),
            format!("{key}.codegen-units={}", self.cargo.codegen_units),
            format!("{key}.panic=\"{}\"", self.cargo.panic),
            // Debug info would only be stripped again; leaving it out keeps builds fast.
            format!("{key}.debug=false"),
        ]
    }

    /// The variants to build: the profile's, or those of `only` (`--variant`); one of them must
    /// run on every engine of the floor.
    pub fn variant_plan(&self, only: &[SimdLevel]) -> Result<VariantPlan> {
        let declared = self.wasm.declared_variants();
        if let Some(unknown) = only.iter().find(|level| !declared.contains(level)) {
            return Err(input_error(format!(
                "--variant {unknown}: profile `{}` builds {}",
                self.name,
                names(&declared)
            )));
        }
        let levels: Vec<SimdLevel> = declared
            .into_iter()
            .filter(|level| only.is_empty() || only.contains(level))
            .collect();
        let floor = &self.wasm.engine_floor;
        let primary = levels
            .iter()
            .rposition(|&level| variant::floor_engines_lacking(floor, level).is_empty())
            .ok_or_else(|| {
                let best = *levels.last().expect("a profile builds at least one variant");
                let lacking: Vec<String> = variant::floor_engines_lacking(floor, best)
                    .iter()
                    .map(|(engine, version)| format!("{engine} {version}"))
                    .collect();
                input_error(format!(
                    "no variant of {} runs on every engine of profile `{}`'s floor: {} lack {best}; \
                     also build a lower level (--variant baseline, or add it to wasm.variants) or \
                     raise wasm.engine-floor",
                    names(&levels),
                    self.name,
                    lacking.join(", ")
                ))
            })?;
        let variants = levels
            .into_iter()
            .map(|level| {
                let settings = self.wasm.at_level(level);
                let features = settings
                    .target_features
                    .iter()
                    .flat_map(|f| ["-C".to_string(), format!("target-feature=+{f}")]);
                let cfg = settings
                    .cfg
                    .iter()
                    .flat_map(|c| ["--cfg".to_string(), c.clone()]);
                PlannedVariant {
                    level,
                    rustflags: features.chain(cfg).collect(),
                    settings,
                    cargo_profile: format!("{CARGO_PROFILE_NAME}-{level}"),
                }
            })
            .collect();
        Ok(VariantPlan { variants, primary })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_parses() {
        for name in Profile::built_in_names() {
            let profile = Profile::load(name).unwrap();
            assert_eq!(profile.name, name);
        }
        assert!(Profile::built_in_names().contains(&DEFAULT_PROFILE));
    }

    #[test]
    fn a_profile_overrides_runtime_fit_thresholds_in_kebab_case() {
        let browser = include_str!("../targets/browser.toml");
        let with = |table: &str| toml::from_str::<Profile>(&format!("{browser}\n{table}"));
        let profile =
            with("[runtime-fit]\ncompute-tax = { strong-up-to = 2.0, weak-above = 8.0 }\n")
                .unwrap();
        assert_eq!(profile.runtime_fit.compute_tax.strong_up_to, 2.0);
        assert_eq!(profile.runtime_fit.compute_tax.weak_above, 8.0);
        assert_eq!(
            profile.runtime_fit.download_bytes,
            FitThresholds::default().download_bytes
        );
        assert_eq!(
            Profile::load("browser").unwrap().runtime_fit,
            FitThresholds::default()
        );
        let err = with("[runtime-fit]\ncompute-taxes = 2.0\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `compute-taxes`"),
            "{err}"
        );
    }

    #[test]
    fn cargo_config_quotes_string_opt_levels_only() {
        let mut profile = Profile::load("browser").unwrap();
        assert!(
            profile
                .cargo_profile_config(CARGO_PROFILE_NAME)
                .contains(&"profile.wasmpack-infer.opt-level=3".into())
        );
        profile.cargo.opt_level = "s".into();
        assert!(
            profile
                .cargo_profile_config(CARGO_PROFILE_NAME)
                .contains(&"profile.wasmpack-infer.opt-level=\"s\"".into())
        );
    }

    #[test]
    fn unknown_profile_is_a_usage_error_listing_the_built_ins() {
        let err = Profile::load("gpu").unwrap_err();
        assert!(format!("{err}").contains("browser"));
        assert!(err.is::<crate::exit::InputError>());
    }

    fn profile_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path.to_string_lossy().into_owned())
    }

    #[test]
    fn simd_code_needs_a_simd_runtime() {
        let text = include_str!("../targets/size.toml").replace("  \"simd\",\n", "");
        let (_dir, path) = profile_file(&text);
        let err = Profile::load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("simd"), "{err:#}");
    }

    #[test]
    fn relaxed_simd_code_needs_a_relaxed_simd_runtime() {
        let relaxed = include_str!("../tests/fixtures/profiles/relaxed-simd.toml");
        let (_dir, path) = profile_file(relaxed);
        assert!(Profile::load(&path).is_ok());
        let (_dir, path) = profile_file(&relaxed.replace("  \"relaxed-simd\",\n", ""));
        let err = Profile::load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("needs both"), "{err:#}");
    }

    #[test]
    fn the_browser_profile_builds_three_levels_with_simd128_primary() {
        let profile = Profile::load("browser").unwrap();
        let plan = profile.variant_plan(&[]).unwrap();
        let levels: Vec<SimdLevel> = plan.variants.iter().map(|v| v.level).collect();
        assert_eq!(levels, SimdLevel::ALL);
        let primary = plan.primary();
        assert_eq!(primary.level, SimdLevel::Simd128);
        assert_eq!(
            primary.rustflags,
            [
                "-C",
                "target-feature=+simd128",
                "--cfg",
                "getrandom_backend=\"custom\""
            ]
        );
        assert!(
            primary
                .settings
                .runtime_features
                .contains(&WasmFeature::Simd)
        );
        let baseline = &plan.variants[0];
        assert!(!baseline.rustflags.iter().any(|f| f.contains("simd")));
        assert!(
            !baseline
                .settings
                .runtime_features
                .contains(&WasmFeature::Simd)
        );
        let relaxed = &plan.variants[2].settings;
        assert!(relaxed.runtime_features.contains(&WasmFeature::RelaxedSimd));
        assert_eq!(relaxed.target_features, ["simd128", "relaxed-simd"]);
        let cargo_profiles: std::collections::BTreeSet<&str> = plan
            .variants
            .iter()
            .map(|v| v.cargo_profile.as_str())
            .collect();
        assert_eq!(cargo_profiles.len(), 3, "one cargo profile per level");
    }

    #[test]
    fn a_variant_beyond_the_floor_is_never_shipped_alone() {
        let profile = Profile::load("browser").unwrap();
        let err = profile.variant_plan(&[SimdLevel::RelaxedSimd]).unwrap_err();
        let message = format!("{err:#}");
        assert!(err.is::<crate::exit::InputError>());
        assert!(message.contains("safari 16.4"), "{message}");
        assert!(message.contains("--variant baseline"), "{message}");
        let plan = profile
            .variant_plan(&[SimdLevel::Baseline, SimdLevel::RelaxedSimd])
            .unwrap();
        assert_eq!(plan.primary().level, SimdLevel::Baseline);
        let err = Profile::load("size")
            .unwrap()
            .variant_plan(&[SimdLevel::Baseline])
            .unwrap_err();
        assert!(
            err.to_string().contains("profile `size` builds simd128"),
            "{err}"
        );
    }

    #[test]
    fn variant_settings_are_checked_naming_the_key() {
        let browser = include_str!("../targets/browser.toml");
        let cases = [
            (
                browser.replace("target-features = []", "target-features = [\"simd128\"]"),
                "leave it out of target-features",
            ),
            (
                browser.replace(
                    "variants = [\"baseline\", \"simd128\", \"relaxed-simd\"]",
                    "variants = [\"simd128\", \"baseline\"]",
                ),
                "lowest first",
            ),
            (
                browser.replace("safari = \"16.4\"", "safari = \"sixteen\""),
                "wasm.engine-floor.safari",
            ),
            (
                browser
                    .replace(
                        "variants = [\"baseline\", \"simd128\", \"relaxed-simd\"]",
                        "variants = [\"simd128\", \"relaxed-simd\"]",
                    )
                    .replace("safari = \"16.4\"", "safari = \"15\""),
                "no variant of simd128 and relaxed-simd runs on every engine",
            ),
        ];
        for (text, needle) in cases {
            let (_dir, path) = profile_file(&text);
            let err = Profile::load(&path).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{needle}: {err:#}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = format!(
            "{}\nturbo = true\n",
            include_str!("../targets/browser.toml")
        );
        let (_dir, path) = profile_file(&text);
        assert!(Profile::load(&path).is_err());
    }

    #[test]
    fn profile_files_are_named_after_their_stem() {
        let (_dir, path) = profile_file(include_str!("../targets/native-cuda.toml"));
        assert_eq!(NativeProfile::load(&path).unwrap().name, "custom");
        assert_eq!(
            NativeProfile::load(DEFAULT_NATIVE_PROFILE).unwrap().name,
            DEFAULT_NATIVE_PROFILE
        );
    }

    /// The two built-in Python profiles differ only in what trades bytes for cold start.
    #[test]
    fn fast_boot_is_the_pyodide_profile_with_bytecode_and_the_snapshot_by_default() {
        let bytes = PythonProfile::load(DEFAULT_PYTHON_PROFILE).unwrap();
        let fast = PythonProfile::load("pyodide-fast-boot").unwrap();
        assert!(!bytes.stdlib.bytecode_only && !bytes.snapshot.default);
        assert!(fast.stdlib.bytecode_only && fast.snapshot.default && fast.snapshot.build);
        let as_bytes = PythonProfile {
            name: bytes.name.clone(),
            description: bytes.description.clone(),
            snapshot: bytes.snapshot,
            stdlib: bytes.stdlib,
            ..fast
        };
        assert_eq!(as_bytes, bytes);
    }

    #[test]
    fn python_profile_needs_a_built_snapshot_to_default_to_it() {
        let profile = PythonProfile::load(DEFAULT_PYTHON_PROFILE).unwrap();
        assert!(profile.snapshot.build);
        let text = include_str!("../targets/pyodide.toml")
            .replace("build = true", "build = false")
            .replace("default = false", "default = true");
        let (_dir, path) = profile_file(&text);
        let err = PythonProfile::load(&path).unwrap_err();
        assert!(
            format!("{err:#}").contains("needs snapshot.build"),
            "{err:#}"
        );
    }

    #[test]
    fn native_features_need_a_declaration_and_cuda_can_be_dropped() {
        let profile = NativeProfile::load(DEFAULT_NATIVE_PROFILE).unwrap();
        let declared = vec!["cuda".to_string(), "extra".to_string()];
        assert_eq!(profile.features_for(&declared, false), vec!["cuda"]);
        assert!(profile.features_for(&declared, true).is_empty());
        assert!(profile.features_for(&[], false).is_empty());
    }
}
