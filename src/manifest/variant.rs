//! Feature-level WASM variants: one kernel built at several SIMD levels, so each engine loads
//! the fastest module it can run; and the engines a profile promises to support (its floor).
//!
//! The support table is what each engine's release notes say (the WebAssembly feature table at
//! webassembly.org/features, MDN's browser-compat-data): the first version running the feature
//! without a flag.

use super::common::{Distribution, Sizes, WasmFeature};
use super::kernel::{BatchRatio, Steady};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How much SIMD a variant's code uses; variants are listed and preferred in this order, last
/// best.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "kebab-case")]
pub enum SimdLevel {
    /// No SIMD: runs on every engine with WebAssembly 1.0 and the profile's base features.
    Baseline,
    /// 128-bit SIMD (`-C target-feature=+simd128`).
    Simd128,
    /// Relaxed SIMD on top (`+relaxed-simd`: fused multiply-add, relaxed swizzles): may round
    /// differently on different engines, so it is compared within the kernel's tolerance.
    RelaxedSimd,
}

impl SimdLevel {
    pub const ALL: [SimdLevel; 3] = [Self::Baseline, Self::Simd128, Self::RelaxedSimd];

    /// rustc target features this level adds.
    pub fn target_features(self) -> &'static [&'static str] {
        match self {
            Self::Baseline => &[],
            Self::Simd128 => &["simd128"],
            Self::RelaxedSimd => &["simd128", "relaxed-simd"],
        }
    }

    /// Runtime features this level needs of an engine.
    pub fn runtime_features(self) -> &'static [WasmFeature] {
        match self {
            Self::Baseline => &[],
            Self::Simd128 => &[WasmFeature::Simd],
            Self::RelaxedSimd => &[WasmFeature::Simd, WasmFeature::RelaxedSimd],
        }
    }

    /// The level a list of rustc target features amounts to.
    pub fn of_target_features(features: &[String]) -> Self {
        let has = |name: &str| features.iter().any(|f| f == name);
        if has("relaxed-simd") {
            Self::RelaxedSimd
        } else if has("simd128") {
            Self::Simd128
        } else {
            Self::Baseline
        }
    }

    /// Whether results may differ between engines in the last bits.
    pub fn is_nondeterministic(self) -> bool {
        self == Self::RelaxedSimd
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Simd128 => "simd128",
            Self::RelaxedSimd => "relaxed-simd",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.name() == name)
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine a profile can name in its floor.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Chrome, Edge and other Chromium browsers (V8).
    Chrome,
    Firefox,
    /// Safari on macOS and iOS (JavaScriptCore).
    Safari,
    /// Node.js (V8).
    Node,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Chrome => "chrome",
            Self::Firefox => "firefox",
            Self::Safari => "safari",
            Self::Node => "node",
        }
    }

    /// The first release that runs `level` without a flag; `None` when none does yet.
    pub fn first_release_with(self, level: SimdLevel) -> Option<&'static str> {
        match (level, self) {
            (SimdLevel::Baseline, _) => Some("0"),
            (SimdLevel::Simd128, Self::Chrome) => Some("91"),
            (SimdLevel::Simd128, Self::Firefox) => Some("89"),
            (SimdLevel::Simd128, Self::Safari) => Some("16.4"),
            (SimdLevel::Simd128, Self::Node) => Some("16.4"),
            (SimdLevel::RelaxedSimd, Self::Chrome) => Some("114"),
            (SimdLevel::RelaxedSimd, Self::Firefox) => Some("146"),
            // Apple has not shipped it (WebKit's standards position: neutral).
            (SimdLevel::RelaxedSimd, Self::Safari) => None,
            // V8 11.4 shipped it; Node 20 has V8 11.3 (behind --experimental-wasm-relaxed-simd),
            // Node 21 has V8 11.8.
            (SimdLevel::RelaxedSimd, Self::Node) => Some("21"),
        }
    }

    /// Whether `version` of this engine runs `level`.
    pub fn runs(self, version: &str, level: SimdLevel) -> bool {
        self.first_release_with(level)
            .is_some_and(|first| version_at_least(version, first))
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compares dotted release numbers numerically ("16.4" ≥ "16", "114" ≥ "91").
fn version_at_least(version: &str, first: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (mut have, mut need) = (parts(version), parts(first));
    let len = have.len().max(need.len());
    have.resize(len, 0);
    need.resize(len, 0);
    have >= need
}

/// Whether a release number is dotted digits, as the floor must be written.
pub fn is_release_number(version: &str) -> bool {
    !version.is_empty()
        && version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// The oldest engine releases a profile supports, e.g. `{ safari = "16.4", node = "20" }`.
pub type EngineFloor = BTreeMap<Engine, String>;

/// The engines of `floor` that cannot run `level`, with the release they would need.
pub fn floor_engines_lacking(floor: &EngineFloor, level: SimdLevel) -> Vec<(Engine, String)> {
    floor
        .iter()
        .filter(|(engine, version)| !engine.runs(version, level))
        .map(|(engine, version)| (*engine, version.clone()))
        .collect()
}

/// One feature-level variant of the WASM module as shipped.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureVariant {
    pub level: SimdLevel,
    /// Bundle-relative path of the module.
    pub file: String,
    /// rustc target features it was built with.
    pub target_features: Vec<String>,
    /// What an engine must support to run it; wasm-opt and validation used exactly these.
    pub runtime_features: Vec<WasmFeature>,
    /// The variant the rest of the manifest describes: the most capable one every engine of the
    /// floor runs. Native parity, cold start and the runtime-fit verdict are measured on it.
    pub primary: bool,
    /// Bytes as cargo built it, after the shake and after wasm-opt (the shipped module).
    pub built_bytes: u64,
    pub shaken_bytes: u64,
    pub sizes: Sizes,
    /// Samples run on the module as built and as shipped, bit for bit.
    pub differential_samples: usize,
    /// Its outputs against the reference variant's (the lowest level built) on every sample;
    /// absent for the reference itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<VariantAgreement>,
    /// The floor's engines that run it; the loader picks it only where the engine validates it.
    pub floor_engines: Vec<Engine>,
    /// The floor's engines that cannot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floor_engines_lacking: Vec<Engine>,
}

/// A feature-level variant above the floor's that the profile lists but cargo could not build (a
/// dependency that does not compile with its target features); the others ship without it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SkippedVariant {
    pub level: SimdLevel,
    /// What cargo said, e.g. "could not compile `macerator` (lib) due to 2 previous errors".
    pub reason: String,
}

/// How a variant's outputs compare with the reference variant's: the lowest level built, the
/// baseline when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantAgreement {
    pub reference: SimdLevel,
    pub samples: usize,
    /// Every output bit-identical to the reference's.
    pub bit_exact: bool,
    pub max_abs_diff: f64,
    /// How it was judged: "bit-exact", or "within tolerance 1e-5" for a variant whose results may
    /// differ in the last bits (relaxed SIMD, whose rounding is the engine's choice).
    pub judged: String,
}

/// A variant's own timings in this run, next to native.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantTimings {
    pub level: SimdLevel,
    /// Cranelift compile of the module.
    pub compile: Distribution,
    /// Per call, copies in and out of linear memory included.
    pub steady: Vec<Steady>,
    /// Its steady medians over native's at each batch (single-threaded native where native ran
    /// on more than one thread).
    pub over_native: Vec<BatchRatio>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_by_name_and_order_by_capability() {
        for level in SimdLevel::ALL {
            assert_eq!(SimdLevel::from_name(level.name()), Some(level));
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{}\"", level.name()));
        }
        assert!(SimdLevel::Baseline < SimdLevel::Simd128);
        assert!(SimdLevel::Simd128 < SimdLevel::RelaxedSimd);
        assert_eq!(
            SimdLevel::of_target_features(&["simd128".into()]),
            SimdLevel::Simd128
        );
        assert_eq!(SimdLevel::of_target_features(&[]), SimdLevel::Baseline);
    }

    #[test]
    fn release_numbers_compare_numerically() {
        assert!(version_at_least("16.4", "16.4"));
        assert!(version_at_least("17", "16.4"));
        assert!(!version_at_least("16", "16.4"));
        assert!(version_at_least("114", "91"));
        assert!(!version_at_least("9", "16.4"));
        assert!(is_release_number("16.4"));
        assert!(!is_release_number("16.x"));
        assert!(!is_release_number(""));
    }

    #[test]
    fn the_floor_says_which_engines_lack_a_level() {
        let floor: EngineFloor = [
            (Engine::Safari, "16.4".to_string()),
            (Engine::Node, "20".to_string()),
            (Engine::Chrome, "114".to_string()),
        ]
        .into();
        assert!(floor_engines_lacking(&floor, SimdLevel::Simd128).is_empty());
        let lacking: Vec<Engine> = floor_engines_lacking(&floor, SimdLevel::RelaxedSimd)
            .into_iter()
            .map(|(engine, _)| engine)
            .collect();
        assert_eq!(lacking, vec![Engine::Safari, Engine::Node]);
        let old_safari: EngineFloor = [(Engine::Safari, "15".to_string())].into();
        assert_eq!(
            floor_engines_lacking(&old_safari, SimdLevel::Simd128).len(),
            1
        );
        assert!(floor_engines_lacking(&old_safari, SimdLevel::Baseline).is_empty());
    }
}
