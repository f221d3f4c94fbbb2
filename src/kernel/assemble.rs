//! The kernel manifest, assembled from what each stage of [`build`](super::pipeline::build)
//! returned. Nothing here measures or writes: every figure arrives measured.

use crate::abi;
use crate::bundle::layout::KERNEL_SAMPLES_FILE;
use crate::kernel::measure::Measured;
use crate::kernel::pipeline::{BuildOptions, Built, ShippedWasm, Transformed};
use crate::kernel::project::KernelProject;
use crate::manifest::kernel::{
    CustomSection, KERNEL_KIND, KernelInfo, KernelManifest, NativeVariant, OptimizeInfo,
    ProfileInfo, SamplesInfo, ShakeInfo, ValidateInfo, WasmStages, WasmVariant,
};
use crate::manifest::variant::{self, FeatureVariant};
use crate::manifest::{FileEntry, SCHEMA_VERSION, Tool};
use crate::{fsx, measure::sizes, tools};
use anyhow::Result;

/// Everything the manifest records, by the stage that produced it.
pub(crate) struct Parts<'a> {
    pub project: &'a KernelProject,
    pub options: &'a BuildOptions,
    pub built: &'a Built,
    /// The feature-level variants as shipped, in the order of `built.wasm`.
    pub shipped: &'a [ShippedWasm],
    /// The bundle's files as written, and which of them are the variants and the name map.
    pub files: Vec<FileEntry>,
    /// Each variant's module, in the same order.
    pub wasm_files: Vec<String>,
    pub native_file: String,
    pub name_map_file: Option<String>,
    pub measured: Measured,
}

pub(crate) fn manifest(parts: Parts) -> Result<KernelManifest> {
    let Parts {
        project,
        options,
        built,
        shipped,
        ..
    } = parts;
    let profile = &options.profile;
    let primary = &shipped[built.primary];
    let primary_built = built.primary();
    let Transformed {
        shaken,
        optimized,
        shipped_abi,
        ..
    } = &primary.transformed;
    let floor = &profile.wasm.engine_floor;
    let variants: Vec<FeatureVariant> = shipped
        .iter()
        .zip(&built.wasm)
        .zip(&parts.wasm_files)
        .map(|((variant, built), file)| {
            let lacking: Vec<_> = variant::floor_engines_lacking(floor, variant.level)
                .into_iter()
                .map(|(engine, _)| engine)
                .collect();
            FeatureVariant {
                level: variant.level,
                file: file.clone(),
                target_features: built.plan.settings.target_features.clone(),
                runtime_features: built.plan.settings.runtime_features.clone(),
                primary: variant.level == primary.level,
                built_bytes: built.bytes.len() as u64,
                shaken_bytes: variant.transformed.shaken.wasm.len() as u64,
                sizes: variant.sizes,
                differential_samples: variant.differential_samples,
                agreement: variant.agreement.clone(),
                floor_engines: floor
                    .keys()
                    .filter(|engine| !lacking.contains(engine))
                    .copied()
                    .collect(),
                floor_engines_lacking: lacking,
            }
        })
        .collect();
    Ok(KernelManifest {
        schema_version: SCHEMA_VERSION,
        kind: KERNEL_KIND.into(),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        kernel: KernelInfo {
            name: project.name.clone(),
            version: project.version.clone(),
            abi_version: abi::ABI_VERSION,
            input: project.input.clone(),
            output: project.output.clone(),
            samples: SamplesInfo {
                file: KERNEL_SAMPLES_FILE.into(),
                count: project.sample_count(),
                sha256: fsx::sha256_hex(&project.samples),
            },
            tolerance: project.tolerance,
            model: project.model.clone(),
        },
        profile: ProfileInfo {
            name: profile.name.clone(),
            cargo: profile.cargo.clone(),
            rustc: built.rustc.release.clone(),
        },
        files: parts.files,
        wasm: WasmVariant {
            file: parts.wasm_files[built.primary].clone(),
            target: primary_built.compiled.target.clone(),
            rustflags: primary_built.compiled.rustflags.clone(),
            getrandom_without_wasm_js: primary_built.compiled.getrandom_without_wasm_js.clone(),
            runtime_features: primary_built.plan.settings.runtime_features.clone(),
            stages: WasmStages {
                built_bytes: primary_built.bytes.len() as u64,
                shake: ShakeInfo {
                    bytes: shaken.wasm.len() as u64,
                    functions_before: shaken.functions_before,
                    functions_after: shaken.functions_after,
                    exports_removed: shaken.exports_removed.clone(),
                    custom_sections_removed: shaken
                        .custom_sections_removed
                        .iter()
                        .map(|(name, bytes)| CustomSection {
                            name: name.clone(),
                            bytes: *bytes as u64,
                        })
                        .collect(),
                    kept_names: options.keep_names,
                    panic_entry_points_stubbed: shaken.panic_entry_points_stubbed.clone(),
                    glue_stubbed: shaken.glue_stubbed.clone(),
                    walrus_version: tools::WALRUS_VERSION.into(),
                },
                optimize: OptimizeInfo {
                    bytes: optimized.wasm.len() as u64,
                    level: optimized.level.clone(),
                    features: primary_built.plan.settings.runtime_features.clone(),
                    binaryen_version: tools::binaryen_version(),
                    wasm_opt_crate_version: tools::WASM_OPT_CRATE_VERSION.into(),
                },
                validate: ValidateInfo {
                    differential_samples: primary.differential_samples,
                },
            },
            sizes: primary.sizes,
            imports: shipped_abi.imports.clone(),
            exports: shipped_abi.exports.clone(),
            name_map: parts.name_map_file,
            engine_floor: floor.clone(),
            variants,
            skipped_variants: built.skipped.clone(),
        },
        native: NativeVariant {
            file: parts.native_file,
            target: built.native.target.clone(),
            rustflags: built.native.rustflags.clone(),
            features: built.native_features.clone(),
            profile: options.native_profile.name.clone(),
            sizes: sizes::sizes(&built.native_bytes)?,
        },
        parity: parts.measured.parity,
        budgets: project.budgets.clone(),
        timings: parts.measured.timings,
    })
}
