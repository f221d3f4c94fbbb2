//! A Rust kernel crate: located through `cargo metadata`, described by
//! `[package.metadata.wasmpack-infer]`.

use crate::budget;
use crate::bundle::demo::DemoSpec;
use crate::bundle::npm;
use crate::exit::input_error;
use crate::manifest::Budgets;
use crate::manifest::TensorSpec;
use crate::manifest::kernel::{ModelEngine, ModelSource};
use anyhow::{Context, Result};
use cargo_metadata::{MetadataCommand, Package};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The metadata table a kernel crate must carry.
pub const METADATA_KEY: &str = "wasmpack-infer";

/// `[package.metadata.wasmpack-infer]` as written in the kernel's Cargo.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    input: TensorSpec,
    output: TensorSpec,
    samples: PathBuf,
    tolerance: Option<f64>,
    #[serde(default)]
    budgets: budget::BudgetTables,
    demo: Option<DemoSpec>,
    model: Option<RawModel>,
    #[serde(default)]
    npm: npm::NpmSettings,
}

/// `model = { file = "model/digits.onnx", sha256 = "…", engine = "ahead-of-time" }`: the model
/// file the kernel's sources were made from. With `sha256`, the build refuses a file that has
/// changed since (compiled sources would still carry the old weights).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    file: PathBuf,
    sha256: Option<String>,
    engine: Option<ModelEngine>,
}

/// Used when the crate sets no `tolerance`: f32 kernels may differ in the last bits across targets.
pub const DEFAULT_TOLERANCE: f64 = 1e-5;

/// A kernel crate, checked and ready to build.
#[derive(Debug, Clone)]
pub struct KernelProject {
    pub name: String,
    pub version: String,
    /// The library target's name (file stem of the built artifacts, `-` replaced by `_`).
    pub lib_name: String,
    pub manifest_path: PathBuf,
    pub target_directory: PathBuf,
    /// Cargo features the crate declares (`[features]`), sorted.
    pub features: Vec<String>,
    pub input: TensorSpec,
    pub output: TensorSpec,
    pub samples_path: PathBuf,
    pub samples: Vec<u8>,
    pub tolerance: f64,
    /// `[package.metadata.wasmpack-infer.budgets]`, flattened to `variant.metric`.
    pub budgets: Budgets,
    /// `[package.metadata.wasmpack-infer.demo]`: what `build --demo` needs.
    pub demo: Option<DemoSpec>,
    /// The model file the kernel was made from, hashed now.
    pub model: Option<ModelSource>,
    /// The bundle's npm package name (`[package.metadata.wasmpack-infer.npm] name`, else the
    /// crate's).
    pub npm_name: String,
    /// The crate's description, for package.json.
    pub description: Option<String>,
}

impl KernelProject {
    /// Reads the crate at `path` (a directory or a Cargo.toml). In a workspace, `package` picks
    /// the member; otherwise the package whose manifest is at `path` is taken.
    pub fn load(path: &Path, package: Option<&str>, offline: bool) -> Result<Self> {
        let manifest_path = if path.is_dir() {
            path.join("Cargo.toml")
        } else {
            path.to_path_buf()
        };
        if !manifest_path.is_file() {
            return Err(input_error(format!(
                "no Cargo.toml at {}: pass a kernel crate directory or its Cargo.toml",
                manifest_path.display()
            )));
        }
        let mut command = MetadataCommand::new();
        command.manifest_path(&manifest_path).no_deps();
        if offline {
            command.other_options(vec!["--offline".to_string()]);
        }
        let metadata = command
            .exec()
            .with_context(|| format!("running `cargo metadata` for {}", manifest_path.display()))
            .map_err(|e| input_error(format!("{e:#}")))?;
        let canonical = manifest_path
            .canonicalize()
            .unwrap_or(manifest_path.clone());
        let names = || {
            let names: Vec<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
            names.join(", ")
        };
        let chosen = match package {
            Some(name) => metadata
                .packages
                .iter()
                .find(|p| p.name.as_str() == name)
                .ok_or_else(|| {
                    input_error(format!(
                        "no package `{name}` in {}; packages: {}",
                        manifest_path.display(),
                        names()
                    ))
                })?,
            None => metadata
                .packages
                .iter()
                .find(|p| p.manifest_path.as_std_path() == canonical)
                .ok_or_else(|| {
                    input_error(format!(
                        "{} is a workspace manifest: pick the kernel with --package (one of: {})",
                        manifest_path.display(),
                        names()
                    ))
                })?,
        };
        Self::from_package(chosen, metadata.target_directory.as_std_path())
    }

    fn from_package(package: &Package, target_directory: &Path) -> Result<Self> {
        let name = package.name.to_string();
        let crate_dir = package
            .manifest_path
            .parent()
            .map(|p| p.as_std_path())
            .unwrap_or(Path::new("."));
        let lib = package
            .targets
            .iter()
            .find(|t| t.crate_types.iter().any(|k| k.to_string() == "cdylib"))
            .ok_or_else(|| {
                input_error(format!(
                    "crate `{name}` has no cdylib target: add `[lib] crate-type = [\"cdylib\"]` to {}",
                    package.manifest_path
                ))
            })?;
        let table = package.metadata.get(METADATA_KEY).ok_or_else(|| {
            input_error(format!(
                "crate `{name}` has no [package.metadata.{METADATA_KEY}] table in {}; add e.g.\n\n\
                 [package.metadata.{METADATA_KEY}]\n\
                 input = {{ dtype = \"f32\", shape = [64] }}\n\
                 output = {{ dtype = \"f32\", shape = [10] }}\n\
                 samples = \"samples/inputs.bin\"\n\
                 tolerance = 1e-5",
                package.manifest_path
            ))
        })?;
        let raw: RawMetadata = serde_json::from_value(table.clone()).map_err(|e| {
            input_error(format!(
                "crate `{name}`: [package.metadata.{METADATA_KEY}]: {e}"
            ))
        })?;
        for (key, spec) in [("input", &raw.input), ("output", &raw.output)] {
            if spec.shape.is_empty() || spec.elements() == 0 {
                return Err(input_error(format!(
                    "crate `{name}`: [package.metadata.{METADATA_KEY}] {key}.shape = {:?}: needs at least one non-zero dimension",
                    spec.shape
                )));
            }
        }
        let tolerance = raw.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(input_error(format!(
                "crate `{name}`: [package.metadata.{METADATA_KEY}] tolerance = {tolerance}: must be a finite number >= 0"
            )));
        }
        if let Some(demo) = &raw.demo {
            demo.check(
                &format!("crate `{name}`: [package.metadata.{METADATA_KEY}.demo]"),
                raw.input.elements(),
                Some(raw.output.elements()),
            )?;
        }
        let samples_path = crate_dir.join(&raw.samples);
        let samples = std::fs::read(&samples_path).map_err(|e| {
            input_error(format!(
                "crate `{name}`: [package.metadata.{METADATA_KEY}] samples = {:?}: cannot read {}: {e}",
                raw.samples,
                samples_path.display()
            ))
        })?;
        let sample_bytes = raw.input.bytes();
        if samples.is_empty() || samples.len() % sample_bytes != 0 {
            return Err(input_error(format!(
                "crate `{name}`: [package.metadata.{METADATA_KEY}] samples = {:?} holds {} bytes, \
                 not a whole number of samples of {sample_bytes} bytes (input {:?} x {:?})",
                raw.samples,
                samples.len(),
                raw.input.dtype,
                raw.input.shape
            )));
        }
        let model = raw
            .model
            .as_ref()
            .map(|model| model_source(&name, crate_dir, model))
            .transpose()?;
        let npm_name = npm::package_name(
            raw.npm.name.as_deref(),
            &name,
            "[package.metadata.wasmpack-infer.npm] name",
        )
        .with_context(|| format!("in {}", package.manifest_path))?;
        Ok(Self {
            model,
            npm_name,
            description: package.description.clone(),
            lib_name: lib.name.replace('-', "_"),
            version: package.version.to_string(),
            manifest_path: package.manifest_path.clone().into_std_path_buf(),
            target_directory: target_directory.to_path_buf(),
            // A BTreeMap: already sorted.
            features: package.features.keys().cloned().collect(),
            input: raw.input,
            output: raw.output,
            samples_path,
            samples,
            tolerance,
            budgets: budget::from_tables(raw.budgets),
            demo: raw.demo,
            name,
        })
    }

    pub fn sample_count(&self) -> usize {
        self.samples.len() / self.input.bytes()
    }

    /// `<name>-<version>`, the bundle directory's name.
    pub fn bundle_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// Reads and hashes the model file the metadata names, checking it against the hash the
/// sources were generated from.
fn model_source(name: &str, crate_dir: &Path, model: &RawModel) -> Result<ModelSource> {
    let path = crate_dir.join(&model.file);
    let bytes = std::fs::read(&path).map_err(|e| {
        input_error(format!(
            "crate `{name}`: [package.metadata.{METADATA_KEY}] model.file = {:?}: cannot read {}: {e}",
            model.file,
            path.display()
        ))
    })?;
    let sha256 = crate::fsx::sha256_hex(&bytes);
    if let Some(expected) = &model.sha256
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        return Err(input_error(format!(
            "crate `{name}`: {} has sha256 {sha256}, but the crate's sources were generated from \
             {expected} ([package.metadata.{METADATA_KEY}] model.sha256): regenerate the crate \
             with `cargo wasmpack-infer new kernel {name} --onnx {}` into a new directory, or put \
             the model it was made from back",
            path.display(),
            path.display()
        )));
    }
    Ok(ModelSource {
        file: model.file.to_string_lossy().replace('\\', "/"),
        sha256,
        bytes: bytes.len() as u64,
        engine: model.engine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_metadata_key_is_named() {
        let value = serde_json::json!({
            "input": {"dtype": "f32", "shape": [4]},
            "output": {"dtype": "f32", "shape": [2]},
            "samples": "x.bin",
            "batch": 3
        });
        let err = serde_json::from_value::<RawMetadata>(value).unwrap_err();
        assert!(err.to_string().contains("unknown field `batch`"), "{err}");
    }
}
