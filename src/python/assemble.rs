//! The Python manifest, assembled from what each stage of [`build`](super::pipeline::build)
//! returned. Nothing here measures or writes: every figure arrives measured.

use crate::bundle::layout::{PYTHON_APP_ARCHIVE, python_runtime_path};
use crate::fsx;
use crate::manifest::python::{
    DistributionInfo, KIND, NativeSibling, ProjectInfo, PythonManifest, PythonParity,
    PythonTimings, RuntimeSplitInfo, ShakeInfo, SnapshotInfo,
};
use crate::manifest::{FileEntry, SCHEMA_VERSION, Tool};
use crate::measure::sizes;
use crate::python::dist::Distribution;
use crate::python::measure::{
    fit, node_version, pyodide_run_with_boots, python_environment, round_ms,
};
use crate::python::pipeline::{Measured, PythonBuildOptions, Shaken, Validated, shipped_file};
use crate::python::project::PythonProject;
use crate::python::split::{SECONDARY_FILE, ShippedSplit};
use anyhow::Result;

/// Everything the manifest records, by the stage that produced it.
pub(crate) struct Parts<'a> {
    pub project: &'a PythonProject,
    pub options: &'a PythonBuildOptions,
    pub distribution: &'a Distribution,
    pub shaken: &'a Shaken,
    pub validated: &'a Validated,
    pub measured: Measured,
    /// The bundle's files as written, and which of them is the native sibling.
    pub files: Vec<FileEntry>,
    pub native_file: String,
}

pub(crate) fn manifest(parts: Parts) -> Result<PythonManifest> {
    let Parts {
        project,
        options,
        distribution,
        shaken,
        validated,
        measured,
        ..
    } = parts;
    let trace = shaken.trace()?;
    let needed = &shaken.needed;
    let stock = pyodide_run_with_boots(&measured.stock_run, &measured.boots.stock);
    let bundle = pyodide_run_with_boots(&validated.bundle_run, &measured.boots.bundle);
    let snapshot = validated
        .snapshot
        .as_ref()
        .map(|snapshot| -> Result<SnapshotInfo> {
            Ok(SnapshotInfo {
                file: snapshot.file.path.clone(),
                sizes: sizes::sizes(&snapshot.file.bytes)?,
                default_boot: options.snapshot.default,
                warmed: options.snapshot.warm,
                run: pyodide_run_with_boots(&snapshot.run, &measured.boots.snapshot),
                free_heap_zeroed: Some(snapshot.free_heap_zeroed),
                static_data: Some(snapshot.static_data),
            })
        })
        .transpose()?;
    let runtime_fit = fit(
        &stock,
        &bundle,
        &measured.native,
        &measured.sizes,
        snapshot.as_ref(),
        options.runtime_fit,
        None,
    );
    let runtime_split = validated
        .split
        .as_ref()
        .map(
            |ShippedSplit {
                 tool,
                 split,
                 profiled_in,
                 ..
             }|
             -> Result<RuntimeSplitInfo> {
                Ok(RuntimeSplitInfo {
                    tool: tool.version.clone(),
                    profiled_in: profiled_in.clone(),
                    features: options.runtime.features.clone(),
                    functions: split.functions,
                    profiled_functions: split.profiled_functions,
                    primary_functions: split.primary_functions,
                    placeholders: split.placeholders,
                    primary_file: python_runtime_path("pyodide.asm.wasm"),
                    secondary_file: python_runtime_path(SECONDARY_FILE),
                    primary: shipped_file(&measured.sizes, "pyodide.asm.wasm")?,
                    secondary: shipped_file(&measured.sizes, SECONDARY_FILE)?,
                })
            },
        )
        .transpose()?;
    Ok(PythonManifest {
        schema_version: SCHEMA_VERSION,
        kind: KIND.into(),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        project: ProjectInfo {
            name: project.name.clone(),
            version: project.version.clone(),
            entry: project.entry(),
            dependencies: project.dependencies.clone(),
            samples: project.sample_count,
            samples_sha256: fsx::sha256_hex(&project.samples_json),
            tolerance: project.tolerance,
        },
        distribution: DistributionInfo {
            version: distribution.version.clone(),
            origin: distribution.origin.clone(),
            stock_sha256: measured
                .stock_shipped
                .iter()
                .filter(|(name, _)| name != PYTHON_APP_ARCHIVE)
                .map(|(name, bytes)| (name.clone(), fsx::sha256_hex(bytes)))
                .collect(),
        },
        files: parts.files,
        native: NativeSibling {
            file: parts.native_file,
            requirements: measured.native_lock.clone(),
            accelerated: project.native_requirements.clone(),
        },
        shake: ShakeInfo {
            modules: needed
                .modules
                .iter()
                .map(|(name, why)| (name.clone(), why.to_string()))
                .collect(),
            importers: trace
                .importers
                .iter()
                .filter(|(module, _)| {
                    needed
                        .modules
                        .get(*module)
                        .is_some_and(|why| *why != "boot")
                })
                .map(|(module, importer)| (module.clone(), importer.clone()))
                .collect(),
            stdlib_entries_before: shaken.stdlib.entries_before,
            stdlib_entries_after: shaken.stdlib.entries_after,
            precompiled: shaken.precompiled.len(),
            bytecode_only: options.stdlib.bytecode_only,
            stored_uncompressed: options.stdlib.store_uncompressed,
            strip: shaken.strip.clone(),
            dropped_top_levels: shaken.stdlib.dropped_top_levels.clone(),
            files_opened: trace
                .opened
                .iter()
                .filter(|f| f.starts_with("/app/") && !f.ends_with(".pyc"))
                .cloned()
                .collect(),
            packages: shaken.packages.clone(),
            keep: options.overrides.keep.clone(),
            drop: options.overrides.drop.clone(),
            runtime: validated.runtime_note.clone(),
        },
        sizes: measured.sizes,
        runtime_split,
        runtime_linking: Some(validated.linking.clone()),
        snapshot,
        parity: PythonParity {
            bundle_matches_stock: true,
            native: measured.native_parity,
        },
        budgets: project.budgets.clone(),
        timings: PythonTimings {
            environment: python_environment(),
            node: node_version(),
            stock,
            bundle,
            native: measured.native,
            runtime_fit,
            browser: None,
            secondary_load_ms: validated
                .split
                .as_ref()
                .map(|s| round_ms(s.secondary_load_ms)),
        },
    })
}
