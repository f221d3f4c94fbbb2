//! Target profiles (`targets/*.toml`): how both variants are compiled and what the WASM runtime
//! accepts. The built-in ones are embedded so an installed binary needs no checkout.

use crate::exit::input_error;
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Built-in profiles by name; the first is the default.
const BUILT_IN: &[(&str, &str)] = &[
    ("browser", include_str!("../targets/browser.toml")),
    ("size", include_str!("../targets/size.toml")),
    ("wasi", include_str!("../targets/wasi.toml")),
];

pub const DEFAULT_PROFILE: &str = "browser";

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
    pub native: NativeSettings,
}

/// Settings of the cargo profile both variants are built with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CargoSettings {
    /// "0".."3", "s" or "z", as in Cargo.toml.
    pub opt_level: String,
    pub lto: bool,
    pub codegen_units: u32,
    /// "abort" or "unwind".
    pub panic: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WasmSettings {
    /// rustc target features for the WASM variant, e.g. "simd128".
    pub target_features: Vec<String>,
    /// wasm-opt level: O0, O1, O2, O3, O4, Os or Oz.
    pub wasm_opt_level: String,
    /// In modules without imports, make panics trap without formatting their message (which has
    /// nowhere to go), so the shaker can drop `core::fmt`.
    pub strip_panic_formatting: bool,
    /// WebAssembly features the target runtime supports; wasm-opt, validation and measurement
    /// all use exactly this set.
    pub runtime_features: Vec<WasmFeature>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NativeSettings {
    /// Extra rustc flags for the native variant only.
    #[serde(default)]
    pub rustflags: Vec<String>,
}

/// A post-MVP WebAssembly feature, named as binaryen names it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum WasmFeature {
    SignExt,
    MutableGlobals,
    NontrappingFloatToInt,
    BulkMemory,
    Multivalue,
    ReferenceTypes,
    Simd,
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
        }
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
        if name_or_path.ends_with(".toml") {
            let path = Path::new(name_or_path);
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading profile {}", path.display()))
                .map_err(|e| input_error(format!("{e:#}")))?;
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            return Self::parse(&stem, &text)
                .with_context(|| format!("in profile {}", path.display()));
        }
        let (name, text) = BUILT_IN
            .iter()
            .find(|(name, _)| *name == name_or_path)
            .ok_or_else(|| {
                input_error(format!(
                    "unknown profile `{name_or_path}`; built-in profiles: {} (or pass a path ending in .toml)",
                    Self::built_in_names().join(", ")
                ))
            })?;
        Self::parse(name, text).with_context(|| format!("in built-in profile `{name}`"))
    }

    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(name, _)| *name).collect()
    }

    fn parse(name: &str, text: &str) -> Result<Self> {
        let mut profile: Profile =
            toml::from_str(text).map_err(|e| input_error(format!("invalid profile: {e}")))?;
        if profile.name.is_empty() {
            profile.name = name.to_string();
        }
        profile.check()?;
        Ok(profile)
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
        if self.wasm.target_features.iter().any(|f| f == "simd128")
            && !self.wasm.runtime_features.contains(&WasmFeature::Simd)
        {
            return Err(input_error(
                "wasm.target-features enables simd128 but wasm.runtime-features lacks \"simd\"",
            ));
        }
        Ok(())
    }

    /// `--config` arguments defining [`CARGO_PROFILE_NAME`] with this profile's settings.
    pub fn cargo_profile_config(&self) -> Vec<String> {
        let key = format!("profile.{CARGO_PROFILE_NAME}");
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

    /// rustc flags of the WASM variant.
    pub fn wasm_rustflags(&self) -> Vec<String> {
        self.wasm
            .target_features
            .iter()
            .flat_map(|f| ["-C".to_string(), format!("target-feature=+{f}")])
            .collect()
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
    fn cargo_config_quotes_string_opt_levels_only() {
        let mut profile = Profile::load("browser").unwrap();
        assert!(
            profile
                .cargo_profile_config()
                .contains(&"profile.wasmpack-infer.opt-level=3".into())
        );
        profile.cargo.opt_level = "s".into();
        assert!(
            profile
                .cargo_profile_config()
                .contains(&"profile.wasmpack-infer.opt-level=\"s\"".into())
        );
    }

    #[test]
    fn unknown_profile_is_a_usage_error_listing_the_built_ins() {
        let err = Profile::load("gpu").unwrap_err();
        assert!(format!("{err}").contains("browser"));
        assert!(err.is::<crate::exit::InputError>());
    }

    #[test]
    fn simd_code_needs_a_simd_runtime() {
        let text = include_str!("../targets/browser.toml").replace("  \"simd\",\n", "");
        let err = Profile::parse("x", &text).unwrap_err();
        assert!(format!("{err}").contains("simd"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = format!(
            "{}\nturbo = true\n",
            include_str!("../targets/browser.toml")
        );
        assert!(Profile::parse("x", &text).is_err());
    }
}
