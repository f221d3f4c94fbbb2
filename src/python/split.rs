//! Profile-guided splitting of `pyodide.asm.wasm` with binaryen's `wasm-split`: the functions a
//! profiled run of the samples executed stay in the primary module, fetched first; the rest move
//! to a secondary module that `templates/pyodide/runtime-hooks.js` loads the first time one of
//! their placeholders is called. Nothing is removed, so the runtime can still do everything.

use crate::bundle::layout::{
    PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE, PYTHON_SNAPSHOT_FILE,
    python_runtime_path,
};
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::manifest::WasmFeature;
use crate::measure::browser;
use crate::profile::SnapshotSettings;
use crate::python::placeholder_thunks::{DefinedPlaceholders, define_placeholders};
use crate::python::run::{self, AppRun, Boot, Mode, RunConfig, first_difference};
use anyhow::{Context, Result, bail};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use wasmparser::{Parser, Payload, TypeRef};

/// The secondary module's file name, next to `pyodide.asm.wasm`.
pub const SECONDARY_FILE: &str = "pyodide.asm.deferred.wasm";
/// The namespace the primary imports placeholders from (the loader supplies it).
pub(crate) const PLACEHOLDER_NAMESPACE: &str = "placeholder";
/// The namespace the secondary imports the primary's exports from.
const PRIMARY_NAMESPACE: &str = "primary";
/// Prefix of the exports the split adds to the primary, so they cannot clash with the C API's.
const EXPORT_PREFIX: &str = "%";

/// binaryen's `wasm-split`: `$WPI_WASM_SPLIT`, else the one on `PATH`.
#[derive(Debug, Clone)]
pub struct WasmSplit {
    path: PathBuf,
    /// `wasm-split --version`, recorded in the manifest.
    pub version: String,
}

impl WasmSplit {
    /// The tool, or why it cannot be used.
    pub fn find() -> std::result::Result<Self, String> {
        let path = std::env::var_os("WPI_WASM_SPLIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("wasm-split"));
        let output = Command::new(&path).arg("--version").output().map_err(|e| {
            format!(
                "{} not found ({e}): install binaryen (apt/brew `binaryen`) or set WPI_WASM_SPLIT",
                path.display()
            )
        })?;
        if !output.status.success() {
            return Err(format!(
                "`{} --version` failed ({})",
                path.display(),
                output.status
            ));
        }
        let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok(Self { path, version })
    }

    /// The module with an exported `__write_profile(ptr, len)` that writes which functions ran.
    pub fn instrument(&self, features: &[WasmFeature], wasm: &[u8]) -> Result<Vec<u8>> {
        let work = tempfile::tempdir().context("creating a directory for wasm-split")?;
        let input = work.path().join("in.wasm");
        let output = work.path().join("instrumented.wasm");
        crate::fsx::write(&input, wasm)?;
        self.run(
            Command::new(&self.path)
                .arg("--instrument")
                .args(features.iter().map(|f| f.binaryen_flag()))
                .arg(&input)
                .arg("-o")
                .arg(&output),
            "instrumenting the runtime",
        )?;
        crate::fsx::read(&output)
    }

    /// One profile holding every function any of `profiles` saw run.
    pub fn merge_profiles(&self, profiles: &[Vec<u8>]) -> Result<Vec<u8>> {
        let work = tempfile::tempdir().context("creating a directory for wasm-split")?;
        let mut command = Command::new(&self.path);
        command.arg("--merge-profiles");
        for (i, profile) in profiles.iter().enumerate() {
            let path = work.path().join(format!("{i}.data"));
            crate::fsx::write(&path, profile)?;
            command.arg(path);
        }
        let merged = work.path().join("merged.data");
        self.run(command.arg("-o").arg(&merged), "merging profiles")?;
        crate::fsx::read(&merged)
    }

    /// Splits `wasm` by `profile` (what [`WasmSplit::instrument`]'s module wrote).
    pub fn split(
        &self,
        features: &[WasmFeature],
        wasm: &[u8],
        profile: &[u8],
    ) -> Result<SplitRuntime> {
        let work = tempfile::tempdir().context("creating a directory for wasm-split")?;
        let dir = work.path();
        crate::fsx::write(&dir.join("in.wasm"), wasm)?;
        crate::fsx::write(&dir.join("profile.data"), profile)?;
        self.run(
            Command::new(&self.path)
                .args(features.iter().map(|f| f.binaryen_flag()))
                .arg(dir.join("in.wasm"))
                .arg(format!("--profile={}", dir.join("profile.data").display()))
                .arg("-o1")
                .arg(dir.join("primary.wasm"))
                .arg("-o2")
                .arg(dir.join("secondary.wasm"))
                .arg(format!("--export-prefix={EXPORT_PREFIX}"))
                .arg(format!("--placeholder-namespace={PLACEHOLDER_NAMESPACE}"))
                .arg(format!("--import-namespace={PRIMARY_NAMESPACE}")),
            "splitting the runtime",
        )?;
        let secondary = crate::fsx::read(&dir.join("secondary.wasm"))?;
        let primary =
            export_tables_as_imported(&crate::fsx::read(&dir.join("primary.wasm"))?, &secondary)?;
        let DefinedPlaceholders {
            wasm: primary,
            placeholders,
        } = define_placeholders(&primary, &secondary)?;
        let functions = defined_functions(wasm)?;
        Ok(SplitRuntime {
            profiled_functions: functions_run(profile, functions)?,
            functions,
            primary_functions: defined_functions(&primary)?,
            placeholders,
            primary,
            secondary,
            link_plan: None,
        })
    }

    fn run(&self, command: &mut Command, what: &str) -> Result<()> {
        let output = command
            .output()
            .with_context(|| format!("{what}: running {}", self.path.display()))?;
        if !output.status.success() {
            bail!(
                "{what}: {} failed ({}):\n{}",
                self.path.display(),
                output.status,
                crate::tools::tail_lines(&String::from_utf8_lossy(&output.stderr), 15)
            );
        }
        Ok(())
    }
}

/// A runtime split in two.
#[derive(Debug, Clone)]
pub struct SplitRuntime {
    pub primary: Vec<u8>,
    pub secondary: Vec<u8>,
    /// Functions defined by the runtime before the split.
    pub functions: usize,
    /// Of those, the ones the profiled run executed: the primary keeps them.
    pub profiled_functions: usize,
    /// Functions the primary defines: the profiled ones, plus a small thunk for every exported
    /// function that moved (the C API stays callable through the table).
    pub primary_functions: usize,
    /// Table slots that call into the secondary (through a placeholder until it is loaded).
    pub placeholders: usize,
    /// The link plan written into the primary, when the runtime's linking is planned.
    pub link_plan: Option<crate::manifest::python::LinkPlanInfo>,
}

/// Points the primary's table exports at the tables the secondary imports them as.
///
/// binaryen 108's `wasm-split` exports every table it shares under a new name but always as
/// table 0, so Pyodide's two externref tables (`%table`, `%table_0`) went out as its funcref
/// table and the secondary failed to link. The secondary imports the primary's tables in index
/// order, so its k-th table import names the primary's table k.
pub fn export_tables_as_imported(primary: &[u8], secondary: &[u8]) -> Result<Vec<u8>> {
    let mut wanted = BTreeMap::new();
    for payload in Parser::new(0).parse_all(secondary) {
        if let Payload::ImportSection(reader) = payload.context("reading the secondary module")? {
            for import in reader.into_imports() {
                let import = import.context("reading the secondary module's imports")?;
                if matches!(import.ty, TypeRef::Table(_)) {
                    let index = wanted.len() as u32;
                    wanted.insert(import.name.to_string(), index);
                }
            }
        }
    }
    let mut module = wasm_encoder::Module::new();
    let mut tables = 0u32;
    for payload in Parser::new(0).parse_all(primary) {
        let payload = payload.context("reading the primary module")?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    if matches!(import?.ty, TypeRef::Table(_)) {
                        tables += 1;
                    }
                }
            }
            Payload::TableSection(reader) => tables += reader.count(),
            _ => {}
        }
        if let Payload::ExportSection(reader) = payload {
            let mut exports = wasm_encoder::ExportSection::new();
            for export in reader {
                let export = export.context("reading the primary module's exports")?;
                let kind = export_kind(export.kind)?;
                let index = match (export.kind, wanted.get(export.name)) {
                    (wasmparser::ExternalKind::Table, Some(&table)) => {
                        if table >= tables {
                            bail!(
                                "the secondary module imports table `{}` as table {table}, but \
                                 the primary has {tables} tables",
                                export.name
                            );
                        }
                        table
                    }
                    _ => export.index,
                };
                exports.export(export.name, kind, index);
            }
            module.section(&exports);
        } else if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &primary[range],
            });
        }
    }
    Ok(module.finish())
}

fn export_kind(kind: wasmparser::ExternalKind) -> Result<wasm_encoder::ExportKind> {
    use wasm_encoder::ExportKind as E;
    use wasmparser::ExternalKind as K;
    Ok(match kind {
        K::Func => E::Func,
        K::Table => E::Table,
        K::Memory => E::Memory,
        K::Global => E::Global,
        K::Tag => E::Tag,
        other => bail!("the primary module exports a {other:?}, which this tool cannot rewrite"),
    })
}

/// How many functions a `wasm-split --instrument` profile saw run: after an 8-byte module hash it
/// holds one little-endian u32 per defined function, the order of its first call or 0.
fn functions_run(profile: &[u8], functions: usize) -> Result<usize> {
    if profile.len() != 8 + 4 * functions {
        bail!(
            "the profile has {} bytes, not the {} a runtime of {functions} functions writes",
            profile.len(),
            8 + 4 * functions
        );
    }
    Ok(profile[8..]
        .chunks_exact(4)
        .filter(|entry| *entry != [0; 4])
        .count())
}

/// How many functions `wasm` defines (imports not counted).
pub fn defined_functions(wasm: &[u8]) -> Result<usize> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::FunctionSection(reader) = payload? {
            return Ok(reader.count() as usize);
        }
    }
    Ok(0)
}

/// The split's profiling page: the instrumented runtime, booted in Chromium (normally or from the
/// snapshot), runs every sample and posts each profile back.
const PROFILE_PAGE: &str = include_str!("../../templates/browser/profile.html");
const PROFILE_SLOT: &str = "/*WPI_PROFILE*/ {} /*END_WPI_PROFILE*/";
const PROFILE_PATH: &str = "/__wpi/profile.html";

/// A Pyodide runtime instrumented by `wasm-split --instrument` (`dir/pyodide/`, with `app.zip`)
/// booted in headless Chromium, normally and, with `snapshot` (a path under `dir`), from that
/// memory snapshot; every sample run after each boot. Returns the profile each boot wrote.
pub fn profile_in_chromium(
    chromium: &Path,
    dir: &Path,
    entry: &str,
    samples_file: &str,
    snapshot: Option<&str>,
    packages: &[String],
    timeout: Duration,
) -> Result<Vec<Vec<u8>>> {
    let config = json!({
        "indexURL": "/pyodide/",
        "app": "/pyodide/app.zip",
        "entry": entry,
        "samples": format!("/{samples_file}"),
        "snapshot": snapshot.map(|s| format!("/{s}")),
        "packages": packages,
    });
    let html = crate::python::run::with_shared_js(PROFILE_PAGE).replacen(
        PROFILE_SLOT,
        &config.to_string(),
        1,
    );
    let body = browser::run_in_chromium(chromium, dir, PROFILE_PATH, html, timeout)?;
    #[derive(Deserialize)]
    struct Profiles {
        profiles: Vec<String>,
    }
    browser::PageResult::<Profiles>::read(&body, "the instrumented runtime")?
        .profiles
        .iter()
        .map(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .context("the profiling page sent a profile that is not base64")
        })
        .collect()
}

/// A split runtime that passed validation: what the manifest says of it.
pub(crate) struct ShippedSplit {
    pub(crate) tool: WasmSplit,
    pub(crate) split: SplitRuntime,
    /// Where its profile was taken.
    pub(crate) profiled_in: Vec<String>,
    /// Loading the secondary right after boot, in the validation run.
    pub(crate) secondary_load_ms: f64,
}

/// Runs every sample on a runtime instrumented by `wasm-split --instrument` (with the shaken
/// stdlib and the app, as shipped) in Node and, when Chromium is here, in the browser, each also
/// booted from a memory snapshot when the bundle gets one (restoring runs other code), and splits
/// the stock runtime by what any of those runs executed. Returns the split and where it profiled.
pub(crate) fn profile_and_split(
    tool: &WasmSplit,
    features: &[WasmFeature],
    runtime_files: &[BundleFile],
    config: &RunConfig,
    snapshot: SnapshotSettings,
) -> Result<(SplitRuntime, Vec<String>)> {
    let wasm_path = python_runtime_path("pyodide.asm.wasm");
    let stock_wasm = &runtime_files
        .iter()
        .find(|f| f.path == wasm_path)
        .context("the runtime files lack pyodide.asm.wasm")?
        .bytes;
    let instrumented = tool.instrument(features, stock_wasm)?;
    let work = tempfile::tempdir().context("creating a directory for the profiled run")?;
    let files: Vec<BundleFile> = runtime_files
        .iter()
        .map(|f| match f.path == wasm_path {
            true => BundleFile::new(f.path.clone(), instrumented.clone()),
            false => f.clone(),
        })
        .collect();
    pack::write_files(work.path(), &files)?;
    let dir = work.path().join(PYTHON_RUNTIME_DIR);
    let app = dir.join(PYTHON_APP_ARCHIVE);
    let profile_config = RunConfig {
        passes: 1,
        ..*config
    };
    let node_profile = |boot: Boot, what: &str| -> Result<Vec<u8>> {
        let out = work.path().join("profile.data");
        run::pyodide(
            &dir,
            &app,
            Mode::Measure,
            &profile_config,
            &Boot {
                profile_out: Some(&out),
                ..boot
            },
        )
        .with_context(|| format!("running every sample on the instrumented runtime {what}"))?;
        fsx::read(&out)
    };
    let mut profiles = vec![node_profile(Boot::default(), "in Node")?];
    let mut profiled_in = vec!["node".to_string()];
    let snapshot_path = work.path().join(PYTHON_SNAPSHOT_FILE);
    if snapshot.build {
        fsx::write(
            &snapshot_path,
            &run::make_snapshot(&dir, &app, config, snapshot.warm)?.bytes,
        )?;
        let boot = Boot {
            snapshot: Some(&snapshot_path),
            ..Boot::default()
        };
        profiles.push(node_profile(boot, "in Node, booted from a snapshot")?);
        profiled_in.push("node, booted from a snapshot".into());
    }
    // A browser boots through code Node does not (its fetches, its console): without its profile,
    // a page would load the deferred half while booting.
    if let Ok(chromium) = browser::find_chromium() {
        fsx::write(
            &work.path().join(PYTHON_SAMPLES_FILE),
            &fsx::read(config.samples)?,
        )?;
        let found = profile_in_chromium(
            &chromium,
            work.path(),
            config.entry,
            PYTHON_SAMPLES_FILE,
            snapshot.build.then_some(PYTHON_SNAPSHOT_FILE),
            config.packages,
            run::RUN_TIME_LIMIT,
        )
        .context("profiling the instrumented runtime in Chromium")?;
        profiled_in.push("chromium".into());
        if snapshot.build {
            profiled_in.push("chromium, booted from a snapshot".into());
        }
        profiles.extend(found);
    }
    let profile = tool.merge_profiles(&profiles)?;
    Ok((tool.split(features, stock_wasm, &profile)?, profiled_in))
}

/// Puts the split runtime into `runtime_dir` and runs every sample on it with the secondary
/// loaded up front (checking its link plan, when it has one), then without it (the measured
/// run). Returns that run and how long the up-front load took.
pub(crate) fn validate_split(
    split: &SplitRuntime,
    runtime_dir: &Path,
    config: &RunConfig,
    expected: &[serde_json::Value],
) -> Result<(AppRun, f64)> {
    fsx::write(&runtime_dir.join("pyodide.asm.wasm"), &split.primary)?;
    fsx::write(&runtime_dir.join(SECONDARY_FILE), &split.secondary)?;
    let app = runtime_dir.join(PYTHON_APP_ARCHIVE);
    let eager = run::pyodide(
        runtime_dir,
        &app,
        Mode::Measure,
        &RunConfig {
            passes: 0,
            ..*config
        },
        &Boot {
            load_secondary: true,
            check_link_plan: split.link_plan.is_some(),
            ..Boot::default()
        },
    )
    .context("running every sample with the secondary module loaded up front")?;
    if let Some(sample) = first_difference(expected, &eager.outputs) {
        bail!("with the secondary module loaded up front, sample {sample} differs from stock");
    }
    let loaded_ms = eager
        .secondary_ms
        .context("the runner did not report loading the secondary module")?;
    let lazy = run::pyodide(runtime_dir, &app, Mode::Measure, config, &Boot::default())
        .context("running every sample on the primary module")?;
    if let Some(sample) = first_difference(expected, &lazy.outputs) {
        bail!("on the primary module, sample {sample} differs from stock");
    }
    Ok((lazy, loaded_ms))
}

/// Undoes [`validate_split`]'s files.
pub(crate) fn restore_stock_runtime(runtime_dir: &Path, stock_wasm: &[u8]) -> Result<()> {
    fsx::write(&runtime_dir.join("pyodide.asm.wasm"), stock_wasm)?;
    let secondary = runtime_dir.join(SECONDARY_FILE);
    std::fs::remove_file(&secondary).with_context(|| format!("removing {}", secondary.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    fn table_exports(wasm: &[u8]) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(reader) = payload.unwrap() {
                for export in reader {
                    let export = export.unwrap();
                    if export.kind == wasmparser::ExternalKind::Table {
                        out.push((export.name.to_string(), export.index));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn shared_tables_are_exported_as_the_secondary_imports_them() {
        // What binaryen 108 writes: both externref tables exported as table 0.
        let primary = module(
            r#"(module
                 (table $funcs 2 funcref) (table $a 0 externref) (table $b 0 externref)
                 (func $f) (elem (i32.const 0) $f)
                 (export "__indirect_function_table" (table $funcs))
                 (export "%table" (table $funcs)) (export "%table_0" (table $funcs))
                 (export "f" (func $f)))"#,
        );
        let secondary = module(
            r#"(module
                 (import "primary" "__indirect_function_table" (table 2 funcref))
                 (import "primary" "%table" (table 0 externref))
                 (import "primary" "%table_0" (table 0 externref)))"#,
        );
        let fixed = export_tables_as_imported(&primary, &secondary).unwrap();
        assert_eq!(
            table_exports(&fixed),
            vec![
                ("__indirect_function_table".to_string(), 0),
                ("%table".to_string(), 1),
                ("%table_0".to_string(), 2)
            ]
        );
        wasmparser::validate(&fixed).unwrap();
        // Everything else is carried over byte for byte.
        assert_eq!(fixed.len(), primary.len());
        assert_eq!(defined_functions(&fixed).unwrap(), 1);
    }

    #[test]
    fn a_table_the_primary_lacks_is_refused() {
        let primary = module(r#"(module (table $t 1 funcref) (export "%table" (table $t)))"#);
        let secondary = module(
            r#"(module (import "primary" "x" (table 1 funcref))
                       (import "primary" "%table" (table 0 externref)))"#,
        );
        let err = export_tables_as_imported(&primary, &secondary).unwrap_err();
        assert!(
            format!("{err:#}").contains("primary has 1 tables"),
            "{err:#}"
        );
    }

    #[test]
    fn profiles_count_the_functions_that_ran() {
        let mut profile = vec![7u8; 8];
        for order in [0u32, 3, 0, 1] {
            profile.extend(order.to_le_bytes());
        }
        assert_eq!(functions_run(&profile, 4).unwrap(), 2);
        assert!(functions_run(&profile, 5).is_err());
    }

    #[test]
    fn feature_flags_are_binaryens() {
        assert_eq!(
            WasmFeature::NontrappingFloatToInt.binaryen_flag(),
            "--enable-nontrapping-float-to-int"
        );
        assert_eq!(
            WasmFeature::ExceptionHandling.binaryen_flag(),
            "--enable-exception-handling"
        );
    }
}
