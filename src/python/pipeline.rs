//! The `build` pipeline for a Python project: resolve the distribution → trace and shake → keep
//! the runtime → validate the shaken bundle on every sample → measure stock, bundle and native
//! CPython → pack. Stages are silent; this module tells a [`Reporter`] what each one did.

use crate::bundle;
use crate::bundle::demo::{self, DemoVariant};
use crate::bundle::layout::{
    LOADER_FILE, LOADER_TYPES_FILE, PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE,
    PYTHON_SNAPSHOT_FILE, python_runtime_path,
};
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::manifest::WasmFeature;
use crate::manifest::python::{
    DistributionInfo, FileSizes, KIND, NativeRun, NativeSibling, ProjectInfo, PyodideRun,
    PythonFit, PythonManifest, PythonParity, PythonTimings, RuntimeSplitInfo, ShakeInfo,
    ShippedSizes, SnapshotInfo,
};
use crate::manifest::{Distribution, FileEntry, Sizes, Tool};
use crate::measure::browser::{self, BrowserPlan};
use crate::measure::{environment, parity, sizes, stats};
use crate::profile::{RuntimeSettings, SnapshotSettings, StdlibSettings};
use crate::python::deps;
use crate::python::dist::{self, CORE_FILES, Source};
use crate::python::project::PythonProject;
use crate::python::run::{self, AppRun, Boot, Mode, RunConfig};
use crate::python::shake::{self, Needed, Overrides};
use crate::python::split::{self, SECONDARY_FILE, SplitRuntime, WasmSplit};
use crate::report::{Event, Reporter, Stage};
use crate::units::format_bytes;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LOADER_TEMPLATE: &str = include_str!("../../templates/pyodide/loader.mjs");
const LOADER_TYPES: &str = include_str!("../../templates/pyodide/loader.d.ts");
/// Where the runtime files sit inside the bundle.

#[derive(Debug, Clone)]
pub struct PythonBuildOptions {
    pub pyodide: Source,
    pub out_dir: PathBuf,
    pub offline: bool,
    pub overrides: Overrides,
    /// The native interpreter (`python3` by default).
    pub python: PathBuf,
    /// Steady passes over all samples in each measurement.
    pub passes: usize,
    /// Where pip finds the project's dependencies (`--no-index`); pip's own index otherwise.
    pub wheelhouse: Option<PathBuf>,
    /// From the Python profile (`targets/pyodide.toml`), after `--no-snapshot`.
    pub snapshot: SnapshotSettings,
    /// From the Python profile, after `--no-split`.
    pub runtime: RuntimeSettings,
    /// From the Python profile, after `--precompile`.
    pub stdlib: StdlibSettings,
    pub source_date_epoch: u64,
    /// Write the demo page (`index.html`, from `[tool.wasmpack-infer.demo]`).
    pub demo: bool,
}

/// What the native sibling runs with: the Pyodide dependencies, or those plus
/// `[tool.wasmpack-infer.native] requirements` installed together into a directory of its own.
struct NativeDeps {
    own: Option<deps::Installed>,
    lock: Vec<String>,
    /// Top-level modules only the native sibling has: the runner reports which the app imported.
    accelerated_modules: Vec<String>,
}

impl NativeDeps {
    /// `distribution_imports`: what the packages Pyodide takes from its distribution provide,
    /// which native CPython gets from pip instead.
    fn install(
        project: &PythonProject,
        options: &PythonBuildOptions,
        shared: Option<&deps::Installed>,
        distribution_imports: &[String],
    ) -> Result<NativeDeps> {
        if project.native_requirements.is_empty() && distribution_imports.is_empty() {
            return Ok(NativeDeps {
                own: None,
                lock: shared.map(|i| i.lock.clone()).unwrap_or_default(),
                accelerated_modules: Vec::new(),
            });
        }
        let mut requirements = project.dependencies.clone();
        requirements.extend(project.native_requirements.iter().cloned());
        let installed = deps::install(
            &options.python,
            &requirements,
            options.wheelhouse.as_deref(),
            deps::For::Native,
        )
        .context("installing the native sibling's requirements ([project] dependencies and [tool.wasmpack-infer.native])")?;
        let mut shared_names = match shared {
            Some(shared) => deps::top_level_names(shared.site.path())?,
            None => Vec::new(),
        };
        shared_names.extend(distribution_imports.iter().cloned());
        let accelerated_modules = deps::top_level_names(installed.site.path())?
            .into_iter()
            .filter(|name| !shared_names.contains(name))
            .collect();
        Ok(NativeDeps {
            lock: installed.lock.clone(),
            accelerated_modules,
            own: Some(installed),
        })
    }

    /// Its site directory: its own, else the one it shares with Pyodide.
    fn site<'a>(&'a self, shared: Option<&'a Path>) -> Option<&'a Path> {
        self.own.as_ref().map(|i| i.site.path()).or(shared)
    }
}

/// A split runtime that passed validation: what the manifest says of it.
struct ShippedSplit {
    tool: WasmSplit,
    split: SplitRuntime,
    /// Where its profile was taken.
    profiled_in: Vec<String>,
    /// Loading the secondary right after boot, in the validation run.
    secondary_load_ms: f64,
}

#[derive(Debug)]
pub struct PythonBuildOutput {
    pub bundle_dir: PathBuf,
    pub manifest: PythonManifest,
}

pub fn build(
    project: &PythonProject,
    options: &PythonBuildOptions,
    reporter: &mut dyn Reporter,
) -> Result<PythonBuildOutput> {
    let work = tempfile::tempdir().context("creating a work directory")?;
    let demo_page = options
        .demo
        .then(|| {
            demo::page_for(
                project.demo.as_ref(),
                "tool.wasmpack-infer.demo",
                &project.name,
                &project.version,
                DemoVariant::Pyodide,
                &format!("./{}", python_runtime_path(LOADER_FILE)),
            )
        })
        .transpose()?;

    reporter.event(Event::Started(Stage::Build));
    let distribution = dist::resolve(&options.pyodide, options.offline)?;
    // Every stock file is read once: shaken, copied into the bundle and measured from here.
    let stock: BTreeMap<&str, Vec<u8>> = CORE_FILES
        .iter()
        .map(|name| Ok((*name, distribution.read(name)?)))
        .collect::<Result<_>>()?;
    let stock_lock: serde_json::Value =
        serde_json::from_slice(&stock["pyodide-lock.json"]).context("reading pyodide-lock.json")?;
    let sources = deps::split_by_lock(
        &options.python,
        &project.dependencies,
        &stock_lock,
        &distribution.dir,
    )?;
    let installed = if sources.from_pip.is_empty() {
        None
    } else {
        Some(deps::install(
            &options.python,
            &sources.from_pip,
            options.wheelhouse.as_deref(),
            deps::For::Pyodide,
        )?)
    };
    let site = installed.as_ref().map(|i| i.site.path());
    let native_deps = NativeDeps::install(
        project,
        options,
        installed.as_ref(),
        &shake::lock_imports(&stock_lock, &sources.from_distribution),
    )?;
    let app_code = shake::app_files(&project.app.path, &project.app.installed_as)?;
    let site_files = match site {
        Some(site) => shake::app_files(site, "")?,
        None => Vec::new(),
    };
    let requirements = installed
        .as_ref()
        .map(|i| i.lock.clone())
        .unwrap_or_default();
    let mut app_and_deps = app_code.clone();
    app_and_deps.extend(site_files.iter().cloned());
    app_and_deps.sort_by(|a, b| a.0.cmp(&b.0));
    let app_zip = shake::app_zip(&app_and_deps)?;
    let app_path = work.path().join(PYTHON_APP_ARCHIVE);
    fsx::write(&app_path, &app_zip)?;
    reporter.event(Event::AppPacked {
        pyodide_version: &distribution.version,
        origin: &distribution.origin,
        app_bytes: app_zip.len() as u64,
        entry: &project.entry(),
        installed: &requirements,
        from_distribution: &sources.from_distribution,
    });

    reporter.event(Event::Started(Stage::Shake));
    let entry = project.entry();
    let trace_config = RunConfig {
        entry: &entry,
        samples: &project.samples_path,
        passes: 0,
        packages: &sources.from_distribution,
    };
    let traced = run::pyodide(
        &distribution.dir,
        &app_path,
        Mode::Trace,
        &trace_config,
        &Boot::default(),
    )
    .context("tracing the app in stock Pyodide")?;
    let trace = traced
        .trace
        .as_ref()
        .context("the trace run reported no modules")?;
    let needed = Needed::from_trace(trace, &options.overrides)?;
    let stock_stdlib = &stock["python_stdlib.zip"];
    let shaken = shake::shake_stdlib(stock_stdlib, &needed, &options.overrides)?;
    let precompiled = if options.stdlib.precompile {
        run::compile_stdlib(&distribution.dir, &shaken.zip)
            .context("precompiling the kept standard library with the distribution's interpreter")?
    } else {
        BTreeMap::new()
    };
    let stdlib_zip = shake::with_entries(&shaken.zip, &precompiled)?;
    let (lock, packages) = shake::trim_lock(&stock_lock, &needed)?;
    let wheels = shake::package_files(&stock_lock, &packages, &distribution.dir)?;
    // What loader.mjs loads after boot, with the SRI it checks in Node (Pyodide checks in browsers).
    let loader_packages: Vec<serde_json::Value> = packages
        .iter()
        .zip(&wheels)
        .map(|(name, (file, bytes))| {
            serde_json::json!({ "name": name, "file": file, "integrity": fsx::sri_sha384(bytes) })
        })
        .collect();
    reporter.event(Event::StdlibShaken {
        entries_before: shaken.entries_before,
        entries_after: shaken.entries_after,
        precompiled: precompiled.len(),
        bytes_before: stock_stdlib.len() as u64,
        bytes_after: stdlib_zip.len() as u64,
        modules_kept: needed.modules.len(),
        top_levels_dropped: shaken.dropped_top_levels.len(),
        packages: &packages,
    });

    let mut runtime_files: Vec<BundleFile> = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm"]
        .iter()
        .map(|name| BundleFile::new(python_runtime_path(name), stock[name].clone()))
        .collect();
    runtime_files.push(BundleFile::new(
        python_runtime_path("python_stdlib.zip"),
        stdlib_zip.clone(),
    ));
    runtime_files.push(BundleFile::new(
        python_runtime_path("pyodide-lock.json"),
        serde_json::to_vec(&lock).context("writing pyodide-lock.json")?,
    ));
    runtime_files.extend(
        wheels
            .into_iter()
            .map(|(file, bytes)| BundleFile::new(python_runtime_path(&file), bytes)),
    );
    runtime_files.push(BundleFile::new(
        python_runtime_path(PYTHON_APP_ARCHIVE),
        app_zip.clone(),
    ));
    let measure_config = RunConfig {
        entry: &entry,
        samples: &project.samples_path,
        passes: options.passes,
        packages: &packages,
    };

    reporter.event(Event::Started(Stage::Split));
    let split = if !options.runtime.split {
        Err(
            "pyodide.asm.wasm shipped unchanged: splitting is off (--no-split, or the Python \
             profile's runtime.split)"
                .to_string(),
        )
    } else {
        match WasmSplit::find() {
            Ok(tool) => profile_and_split(
                &tool,
                &options.runtime.features,
                &runtime_files,
                &measure_config,
                options.snapshot.build,
            )
            .map(|(split, profiled_in)| (tool, split, profiled_in))
            .map_err(|e| format!("pyodide.asm.wasm shipped unchanged: splitting it failed: {e:#}")),
            Err(why) => Err(format!("pyodide.asm.wasm shipped unchanged: {why}")),
        }
    };
    reporter.event(match &split {
        Ok((_, split, profiled_in)) => Event::RuntimeSplit {
            profiled_in,
            profiled_functions: split.profiled_functions,
            functions: split.functions,
            primary_bytes: split.primary.len() as u64,
            deferred_bytes: split.secondary.len() as u64,
        },
        Err(why) => Event::RuntimeWhole { why },
    });

    reporter.event(Event::Started(Stage::Validate));
    let bundle_dir = options.out_dir.join(project.bundle_name());
    let staging = fsx::StagingDir::new(&bundle_dir)?;
    let runtime_dir = staging.path().join(PYTHON_RUNTIME_DIR);
    pack::write_files(staging.path(), &runtime_files)?;
    // The split runtime ships only if every sample gives stock's outputs on it twice: with the
    // secondary loaded up front (so the code behind every placeholder is checked too), and
    // without it (what the profile predicts), which is also the bundle's measured run.
    let measure_bundle = || -> Result<AppRun> {
        let run = run::pyodide(
            &runtime_dir,
            &runtime_dir.join(PYTHON_APP_ARCHIVE),
            Mode::Measure,
            &measure_config,
            &Boot::default(),
        )
        .context("running every sample on the shaken bundle (a module it needs may have been dropped: try --keep MODULE)")?;
        if let Some(sample) = first_difference(&traced.outputs, &run.outputs) {
            bail!(
                "the shaken bundle's output differs from stock Pyodide's on sample {sample} of {}: \
                 something it needs was dropped (try --keep MODULE)",
                project.sample_count
            );
        }
        Ok(run)
    };
    let (bundle_run, runtime_note, split_outcome) = match split {
        Ok((tool, split, profiled_in)) => {
            match validate_split(&split, &runtime_dir, &measure_config, &traced.outputs) {
                Ok((run, secondary_load_ms)) => {
                    let note = format!(
                        "pyodide.asm.wasm split by {}: every sample gave stock's outputs with the \
                         deferred half unused and loaded up front",
                        tool.version
                    );
                    let shipped = ShippedSplit {
                        tool,
                        split,
                        profiled_in,
                        secondary_load_ms,
                    };
                    (run, note, Some(shipped))
                }
                Err(e) => {
                    restore_stock_runtime(&runtime_dir, &stock["pyodide.asm.wasm"])?;
                    let note = format!(
                        "pyodide.asm.wasm shipped unchanged: the split runtime failed validation: {e:#}"
                    );
                    (measure_bundle()?, note, None)
                }
            }
        }
        Err(why) => (measure_bundle()?, why, None),
    };
    if let Some(ShippedSplit { split, .. }) = &split_outcome {
        let wasm = runtime_files
            .iter_mut()
            .find(|f| f.path == python_runtime_path("pyodide.asm.wasm"))
            .context("the runtime files lack pyodide.asm.wasm")?;
        *wasm = BundleFile::new(
            python_runtime_path("pyodide.asm.wasm"),
            split.primary.clone(),
        );
        runtime_files.push(BundleFile::new(
            python_runtime_path(SECONDARY_FILE),
            split.secondary.clone(),
        ));
    }
    let snapshot = if options.snapshot.build {
        let bytes = run::make_snapshot(
            &runtime_dir,
            &runtime_dir.join(PYTHON_APP_ARCHIVE),
            &measure_config,
        )
        .context("making a memory snapshot of the bundle")?;
        let file = BundleFile::new(python_runtime_path(PYTHON_SNAPSHOT_FILE), bytes);
        pack::write_files(staging.path(), std::slice::from_ref(&file))?;
        let run = run::pyodide(
            &runtime_dir,
            &runtime_dir.join(PYTHON_APP_ARCHIVE),
            Mode::Measure,
            &measure_config,
            &Boot {
                snapshot: Some(&runtime_dir.join(PYTHON_SNAPSHOT_FILE)),
                ..Boot::default()
            },
        )
        .context("running every sample on the bundle booted from its memory snapshot")?;
        if let Some(sample) = first_difference(&traced.outputs, &run.outputs) {
            bail!(
                "booted from its memory snapshot, the bundle's output differs from stock \
                 Pyodide's on sample {sample} of {}",
                project.sample_count
            );
        }
        Some((file, run))
    } else {
        None
    };
    let loader_file = BundleFile::new(
        python_runtime_path(LOADER_FILE),
        loader(
            project,
            &app_zip,
            snapshot.as_ref().map(|(f, _)| f.bytes.as_slice()),
            options.snapshot.default,
            split_outcome.as_ref().map(|s| s.split.secondary.as_slice()),
            &loader_packages,
        )
        .into_bytes(),
    );
    pack::write_files(staging.path(), std::slice::from_ref(&loader_file))?;
    runtime_files.push(loader_file);
    reporter.event(Event::BundleValidated {
        samples: project.sample_count,
        with_snapshot: snapshot.is_some(),
    });

    reporter.event(Event::Started(Stage::Measure));
    let stock_run = run::pyodide(
        &distribution.dir,
        &app_path,
        Mode::Measure,
        &measure_config,
        &Boot::default(),
    )
    .context("measuring stock Pyodide")?;
    let native_site = native_deps.site(site);
    // The native sibling imports the files the bundle ships, laid out as installed (as `verify`
    // unpacks them), not the project directory: a src layout or a renamed package dir imports
    // the same way, and nothing else beside pyproject.toml can shadow or fill in for them.
    let native_app = work.path().join("native-app");
    let native_app_files: Vec<BundleFile> = app_code
        .iter()
        .map(|(name, bytes)| BundleFile::new(name.clone(), bytes.clone()))
        .collect();
    pack::write_files(&native_app, &native_app_files)?;
    let mut native_paths = vec![native_app.as_path()];
    native_paths.extend(native_site);
    let native_sibling_files = match native_site {
        Some(site) => shake::app_files(site, "")?,
        None => Vec::new(),
    };
    let native_lock = native_deps.lock.clone();
    let native = measure_native(
        options,
        &native_paths,
        &measure_config,
        &native_deps.accelerated_modules,
    )?;
    let native_parity =
        parity::compare_json(&bundle_run.outputs, &native.1.outputs, project.tolerance);
    let stock_shipped: Vec<(String, Vec<u8>)> = stock
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .chain(std::iter::once((
            PYTHON_APP_ARCHIVE.to_string(),
            app_zip.clone(),
        )))
        .collect();
    let bundle_shipped: Vec<(String, Vec<u8>)> = runtime_files
        .iter()
        .map(|f| {
            (
                f.path.trim_start_matches("pyodide/").to_string(),
                f.bytes.clone(),
            )
        })
        .collect();
    let sizes = shipped_sizes(&stock_shipped, &bundle_shipped, SECONDARY_FILE)?;
    let stock = pyodide_run(&stock_run);
    let bundle = pyodide_run(&bundle_run);
    let snapshot_info = snapshot
        .as_ref()
        .map(|(file, run)| -> Result<SnapshotInfo> {
            Ok(SnapshotInfo {
                file: file.path.clone(),
                sizes: sizes::sizes(&file.bytes)?,
                default_boot: options.snapshot.default,
                run: pyodide_run(run),
            })
        })
        .transpose()?;
    let runtime_fit = fit(&stock, &bundle, &native.0, &sizes, snapshot_info.as_ref());
    let runtime_split = split_outcome
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
                    primary: shipped_file(&sizes, "pyodide.asm.wasm")?,
                    secondary: shipped_file(&sizes, SECONDARY_FILE)?,
                })
            },
        )
        .transpose()?;
    reporter.event(Event::NativeParity {
        parity: &native_parity,
    });
    if !native_parity.passed {
        bail!(
            "Pyodide and native CPython disagree on {} of {} samples (first: sample {})",
            native_parity.mismatched_samples.len(),
            native_parity.samples,
            native_parity.mismatched_samples[0]
        );
    }

    reporter.event(Event::Started(Stage::Pack));
    if let Some((file, _)) = snapshot {
        runtime_files.push(file);
    }
    // Not shipped to browsers, so added after the shipped bytes were measured.
    let mut unshipped = vec![BundleFile::new(
        python_runtime_path(LOADER_TYPES_FILE),
        LOADER_TYPES.as_bytes().to_vec(),
    )];
    unshipped.extend(demo_page);
    pack::write_files(staging.path(), &unshipped)?;
    runtime_files.extend(unshipped);
    let mut archived: Vec<&BundleFile> = runtime_files.iter().collect();
    archived.sort_by(|a, b| a.path.cmp(&b.path));
    let tarball = BundleFile::new(
        format!("{}-pyodide.tar.zst", project.bundle_name()),
        pack::deterministic_tar_zst(&archived, options.source_date_epoch)?,
    );
    let samples_file = BundleFile::new(PYTHON_SAMPLES_FILE, project.samples_json.clone());
    let native_archive = native_archive(
        project,
        &app_code,
        &native_sibling_files,
        &native_lock,
        options,
    )?;
    let native_sibling = NativeSibling {
        file: native_archive.path.clone(),
        requirements: native_lock.clone(),
        accelerated: project.native_requirements.clone(),
    };
    let mut files: Vec<FileEntry> =
        pack::write_files(staging.path(), &[tarball, samples_file, native_archive])?;
    files.extend(runtime_files.iter().map(pack::describe));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = PythonManifest {
        schema_version: crate::manifest::SCHEMA_VERSION,
        kind: KIND.into(),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        project: ProjectInfo {
            name: project.name.clone(),
            version: project.version.clone(),
            entry: entry.clone(),
            dependencies: project.dependencies.clone(),
            samples: project.sample_count,
            samples_sha256: fsx::sha256_hex(&project.samples_json),
            tolerance: project.tolerance,
        },
        distribution: DistributionInfo {
            version: distribution.version.clone(),
            origin: distribution.origin.clone(),
            stock_sha256: stock_shipped
                .iter()
                .filter(|(name, _)| name != PYTHON_APP_ARCHIVE)
                .map(|(name, bytes)| (name.clone(), fsx::sha256_hex(bytes)))
                .collect(),
        },
        files,
        native: native_sibling,
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
            stdlib_entries_before: shaken.entries_before,
            stdlib_entries_after: shaken.entries_after,
            precompiled: precompiled.len(),
            dropped_top_levels: shaken.dropped_top_levels.clone(),
            files_opened: trace
                .opened
                .iter()
                .filter(|f| f.starts_with("/app/") && !f.ends_with(".pyc"))
                .cloned()
                .collect(),
            packages,
            keep: options.overrides.keep.clone(),
            drop: options.overrides.drop.clone(),
            runtime: runtime_note,
        },
        sizes,
        runtime_split,
        snapshot: snapshot_info,
        parity: PythonParity {
            bundle_matches_stock: true,
            native: native_parity,
        },
        budgets: project.budgets.clone(),
        timings: PythonTimings {
            environment: python_environment(),
            node: node_version(),
            stock,
            bundle,
            native: native.0,
            runtime_fit,
            browser: None,
            secondary_load_ms: split_outcome
                .as_ref()
                .map(|s| round_ms(s.secondary_load_ms)),
        },
    };
    // Budgets name metrics only a manifest has; a bad one is an input error before anything is
    // committed. Whether they pass is for `check`.
    crate::budget::check(
        &crate::manifest::metrics::pyodide_metrics(&manifest),
        &manifest.budgets,
    )
    .with_context(|| {
        format!(
            "in [tool.wasmpack-infer.budgets] of project `{}`",
            project.name
        )
    })?;
    let bundle_dir = pack::commit(staging, &manifest.to_json())?;
    reporter.event(Event::Packed {
        dir: &bundle_dir,
        files: &manifest.files,
    });
    Ok(PythonBuildOutput {
        bundle_dir,
        manifest,
    })
}

/// Runs every sample on a runtime instrumented by `wasm-split --instrument` (with the shaken
/// stdlib and the app, as shipped) in Node and, when Chromium is here, in the browser, each also
/// booted from a memory snapshot when the bundle gets one (restoring runs other code), and splits
/// the stock runtime by what any of those runs executed. Returns the split and where it profiled.
fn profile_and_split(
    tool: &WasmSplit,
    features: &[WasmFeature],
    runtime_files: &[BundleFile],
    config: &RunConfig,
    snapshot: bool,
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
    if snapshot {
        fsx::write(&snapshot_path, &run::make_snapshot(&dir, &app, config)?)?;
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
        let found = split::profile_in_chromium(
            &chromium,
            work.path(),
            config.entry,
            PYTHON_SAMPLES_FILE,
            snapshot.then_some(PYTHON_SNAPSHOT_FILE),
            config.packages,
            run::RUN_TIME_LIMIT,
        )
        .context("profiling the instrumented runtime in Chromium")?;
        profiled_in.push("chromium".into());
        if snapshot {
            profiled_in.push("chromium, booted from a snapshot".into());
        }
        profiles.extend(found);
    }
    let profile = tool.merge_profiles(&profiles)?;
    Ok((tool.split(features, stock_wasm, &profile)?, profiled_in))
}

/// Puts the split runtime into `runtime_dir` and runs every sample on it with the secondary
/// loaded up front, then without it (the measured run). Returns that run and how long the
/// up-front load took.
fn validate_split(
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

/// The measured sizes of one shipped runtime file.
fn shipped_file(sizes: &ShippedSizes, file: &str) -> Result<Sizes> {
    sizes
        .per_file
        .iter()
        .find(|f| f.file == file)
        .map(|f| f.bundle)
        .with_context(|| format!("{file} was not measured"))
}

/// Undoes [`validate_split`]'s files.
fn restore_stock_runtime(runtime_dir: &Path, stock_wasm: &[u8]) -> Result<()> {
    fsx::write(&runtime_dir.join("pyodide.asm.wasm"), stock_wasm)?;
    let secondary = runtime_dir.join(SECONDARY_FILE);
    std::fs::remove_file(&secondary).with_context(|| format!("removing {}", secondary.display()))
}

fn loader(
    project: &PythonProject,
    app_zip: &[u8],
    snapshot: Option<&[u8]>,
    snapshot_default: bool,
    secondary: Option<&[u8]>,
    packages: &[serde_json::Value],
) -> String {
    let json = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let snapshot_sri = snapshot.map_or("null".to_string(), |bytes| json(&fsx::sri_sha384(bytes)));
    // SHA-256: the loader checks the secondary synchronously, with its own digest code.
    let secondary_sri = secondary.map_or("null".to_string(), |bytes| json(&fsx::sri_sha256(bytes)));
    let boots_from_snapshot = snapshot.is_some() && snapshot_default;
    run::with_shared_js(LOADER_TEMPLATE)
        .replace("{{SNAPSHOT_SRI}}", &snapshot_sri)
        .replace("{{SECONDARY_SRI}}", &secondary_sri)
        .replace(
            "{{SNAPSHOT_DEFAULT}}",
            if boots_from_snapshot { "true" } else { "false" },
        )
        .replace("{{NAME}}", &project.name)
        .replace("{{VERSION}}", &project.version)
        .replace("{{ENTRY_MODULE}}", &json(&project.entry_module))
        .replace("{{ENTRY_FUNCTION}}", &json(&project.entry_function))
        .replace("{{APP_SRI}}", &json(&fsx::sri_sha384(app_zip)))
        .replace(
            "{{PACKAGES}}",
            &serde_json::Value::from(packages).to_string(),
        )
}

/// `a==1, b==2; from the distribution: c`, or `none`.
/// The first sample whose outputs differ, comparing the JSON values exactly.
pub fn first_difference(a: &[serde_json::Value], b: &[serde_json::Value]) -> Option<usize> {
    (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
}

fn steady(us: &[f64]) -> Distribution {
    let durations: Vec<Duration> = us
        .iter()
        .map(|u| Duration::from_secs_f64(u.max(0.0) / 1e6))
        .collect();
    stats::distribution(&durations)
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

fn pyodide_run(run: &AppRun) -> PyodideRun {
    PyodideRun {
        boot_ms: round_ms(run.boot_ms),
        import_ms: round_ms(run.import_ms),
        first_inference_ms: round_ms(run.first_inference_ms),
        cold_start_ms: round_ms(run.boot_ms + run.import_ms + run.first_inference_ms),
        steady: steady(&run.steady_us),
        secondary_load_ms: run.secondary_ms.map(round_ms),
    }
}

/// The native sibling: the app and its installed dependencies with their requirement lock, to
/// unpack and put on a CPython's path.
fn native_archive(
    project: &PythonProject,
    app_code: &[(String, Vec<u8>)],
    site_files: &[(String, Vec<u8>)],
    requirements: &[String],
    options: &PythonBuildOptions,
) -> Result<BundleFile> {
    let mut files: Vec<BundleFile> =
        app_code
            .iter()
            .map(|(name, bytes)| BundleFile::new(format!("app/{name}"), bytes.clone()))
            .chain(site_files.iter().map(|(name, bytes)| {
                BundleFile::new(format!("site-packages/{name}"), bytes.clone())
            }))
            .collect();
    let mut lock = requirements.join("\n");
    lock.push('\n');
    files.push(BundleFile::new("requirements.lock", lock.into_bytes()));
    let refs: Vec<&BundleFile> = files.iter().collect();
    Ok(BundleFile::new(
        format!("{}-native.tar.zst", project.bundle_name()),
        pack::deterministic_tar_zst(&refs, options.source_date_epoch)?,
    ))
}

/// Runs the app in a fresh venv of `options.python`, so the user's site-packages stay out.
/// `accelerated_modules`: the native-only modules whose import the run reports.
fn measure_native(
    options: &PythonBuildOptions,
    paths: &[&std::path::Path],
    config: &RunConfig,
    accelerated_modules: &[String],
) -> Result<(NativeRun, AppRun)> {
    let (_venv, python) = deps::venv(&options.python)?;
    let startup = run::python_startup(&python)?;
    let run = run::native(&python, paths, config, accelerated_modules)
        .context("running the app in native CPython")?;
    let startup_ms = startup.as_secs_f64() * 1e3;
    let native = NativeRun {
        python: run.python.clone().unwrap_or_default(),
        startup_ms: round_ms(startup_ms),
        import_ms: round_ms(run.import_ms),
        first_inference_ms: round_ms(run.first_inference_ms),
        cold_start_ms: round_ms(startup_ms + run.import_ms + run.first_inference_ms),
        steady: steady(&run.steady_us),
        accelerated_imported: run.imported.clone(),
        cuda: Some(crate::measure::cuda_probe::probe()),
    };
    Ok((native, run))
}

/// Stock's and the bundle's bytes, file by file and in total; `deferred` (a bundle file fetched
/// only when needed) is left out of the up-front total. Each distinct content is compressed once.
/// brotli-11 of the 9.6 MB runtime takes tens of seconds, so sizes are also kept in the cache dir
/// by content hash (and tool version, which pins the compressors): the stock files never change.
fn shipped_sizes(
    stock: &[(String, Vec<u8>)],
    bundle: &[(String, Vec<u8>)],
    deferred: &str,
) -> Result<ShippedSizes> {
    let cache_dir = fsx::cache_dir().join("sizes");
    let mut memo: BTreeMap<String, Sizes> = BTreeMap::new();
    let mut sizes_of = |bytes: &[u8]| -> Result<Sizes> {
        let key = format!("{}-{}", env!("CARGO_PKG_VERSION"), fsx::sha256_hex(bytes));
        if let Some(found) = memo.get(&key) {
            return Ok(*found);
        }
        let cached = cache_dir.join(format!("{key}.json"));
        let computed = match std::fs::read(&cached)
            .ok()
            .and_then(|text| serde_json::from_slice::<Sizes>(&text).ok())
        {
            Some(sizes) => sizes,
            None => {
                let sizes = sizes::sizes(bytes)?;
                // Best effort: a read-only cache only costs time.
                if bytes.len() > 1 << 20 && std::fs::create_dir_all(&cache_dir).is_ok() {
                    let _ = fsx::write_atomic(&cached, &serde_json::to_vec(&sizes)?);
                }
                sizes
            }
        };
        memo.insert(key, computed);
        Ok(computed)
    };
    let mut per_file = Vec::new();
    let mut stock_by_name = BTreeMap::new();
    for (name, bytes) in stock {
        stock_by_name.insert(name.clone(), sizes_of(bytes)?);
    }
    for (name, bytes) in bundle {
        per_file.push(FileSizes {
            file: name.clone(),
            stock: stock_by_name.get(name).copied(),
            bundle: sizes_of(bytes)?,
        });
    }
    let total = |all: &mut dyn Iterator<Item = Sizes>| {
        all.fold(
            Sizes {
                raw_bytes: 0,
                zstd_bytes: 0,
                gzip_bytes: 0,
                brotli_bytes: 0,
            },
            |t, s| Sizes {
                raw_bytes: t.raw_bytes + s.raw_bytes,
                zstd_bytes: t.zstd_bytes + s.zstd_bytes,
                gzip_bytes: t.gzip_bytes + s.gzip_bytes,
                brotli_bytes: t.brotli_bytes + s.brotli_bytes,
            },
        )
    };
    let stock_total = total(&mut stock_by_name.values().copied());
    let bundle_total = total(&mut per_file.iter().map(|f| f.bundle));
    let upfront = per_file.iter().any(|f| f.file == deferred).then(|| {
        total(
            &mut per_file
                .iter()
                .filter(|f| f.file != deferred)
                .map(|f| f.bundle),
        )
    });
    Ok(ShippedSizes {
        brotli_ratio: ratio(
            bundle_total.brotli_bytes as f64,
            stock_total.brotli_bytes as f64,
        ),
        upfront_brotli_ratio: upfront
            .map(|u| ratio(u.brotli_bytes as f64, stock_total.brotli_bytes as f64)),
        upfront,
        stock: stock_total,
        bundle: bundle_total,
        per_file,
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        f64::INFINITY
    }
}

fn fit(
    stock: &PyodideRun,
    bundle: &PyodideRun,
    native: &NativeRun,
    sizes: &ShippedSizes,
    snapshot: Option<&SnapshotInfo>,
) -> PythonFit {
    let interpreter_tax = ratio(bundle.steady.median_us, native.steady.median_us);
    let cold_start_over_native = ratio(bundle.cold_start_ms, native.cold_start_ms);
    let cold_start_over_stock = ratio(bundle.cold_start_ms, stock.cold_start_ms);
    let snapshot_cold_start_over_stock =
        snapshot.map(|s| ratio(s.run.cold_start_ms, stock.cold_start_ms));
    let mut verdict = format!(
        "Pyodide runs steady inference at {interpreter_tax:.2}x native CPython; cold start {:.2} s \
         (stock {:.2} s, native {:.0} ms); ships {} brotli, {:.0} % of stock's {}",
        bundle.cold_start_ms / 1e3,
        stock.cold_start_ms / 1e3,
        native.cold_start_ms,
        format_bytes(sizes.bundle.brotli_bytes),
        sizes.brotli_ratio * 100.0,
        format_bytes(sizes.stock.brotli_bytes),
    );
    if let (Some(upfront), Some(ratio)) = (&sizes.upfront, sizes.upfront_brotli_ratio) {
        verdict.push_str(&format!(
            ", of which {} ({:.0} % of stock) is fetched before the first inference and the rest of \
             the split runtime only if called",
            format_bytes(upfront.brotli_bytes),
            ratio * 100.0
        ));
    }
    if let Some(snapshot) = snapshot {
        verdict.push_str(&format!(
            "; booted from its memory snapshot, cold start {:.2} s ({:.2}x stock) for {} more brotli",
            snapshot.run.cold_start_ms / 1e3,
            snapshot.run.cold_start_ms / stock.cold_start_ms.max(1e-9),
            format_bytes(snapshot.sizes.brotli_bytes)
        ));
    }
    PythonFit {
        interpreter_tax,
        cold_start_over_native,
        cold_start_over_stock,
        snapshot_cold_start_over_stock,
        bytes_over_stock: sizes.brotli_ratio,
        upfront_bytes_over_stock: sizes.upfront_brotli_ratio,
        verdict,
    }
}

fn python_environment() -> crate::manifest::Environment {
    let rustc = crate::tools::rustc_info()
        .map(|r| r.release)
        .unwrap_or_default();
    let mut environment = environment::describe(&rustc);
    environment.wasm_engine = format!("Node {} (V8)", node_version());
    environment
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Measures a Pyodide bundle in headless Chromium (`measure --browser`): boots normal and from
/// the snapshot when it has one, first inference, steady per sample, and the browser's outputs
/// against the same bundle's in Node. Recorded as `timings.browser` in the bundle's manifest.
pub fn measure_browser(
    bundle_dir: &Path,
    chromium: &Path,
    plan: &BrowserPlan,
    reporter: &mut dyn Reporter,
) -> Result<PythonManifest> {
    let manifest_path = bundle_dir.join(crate::manifest::FILE_NAME);
    let mut manifest = PythonManifest::read(&manifest_path)?;
    bundle::ensure_intact(bundle_dir, &manifest.files)?;
    reporter.event(Event::Started(Stage::Measure));
    let run = browser::measure_pyodide(
        chromium,
        bundle_dir,
        &format!("/{}", python_runtime_path(LOADER_FILE)),
        PYTHON_SAMPLES_FILE,
        manifest.snapshot.is_some(),
        plan,
    )
    .context("measuring the Pyodide bundle in Chromium")?;
    let runtime_dir = bundle::path_in(bundle_dir, PYTHON_RUNTIME_DIR)?;
    let in_node = run::pyodide(
        &runtime_dir,
        &runtime_dir.join(PYTHON_APP_ARCHIVE),
        Mode::Measure,
        &RunConfig {
            entry: &manifest.project.entry,
            samples: &bundle::path_in(bundle_dir, PYTHON_SAMPLES_FILE)?,
            passes: 1,
            packages: &manifest.shake.packages,
        },
        &Boot::default(),
    )
    .context("running every sample on the bundle in Node, for parity")?;
    let parity = parity::compare_json(&in_node.outputs, &run.outputs, manifest.project.tolerance);
    let mut timings = run.timings;
    reporter.event(Event::BrowserMeasured {
        browser: &timings.environment.browser,
        load_us: timings.load.median_us,
        snapshot_load_us: timings.snapshot_load.as_ref().map(|d| d.median_us),
        steady_us: Some(timings.steady.latency.median_us),
        batch: None,
        reference: "Node",
        parity: &parity,
    });
    let mismatch =
        (!parity.passed).then(|| parity.mismatched_samples.first().copied().unwrap_or(0));
    timings.parity = Some(parity);
    manifest.timings.browser = Some(timings);
    fsx::write_atomic(&manifest_path, manifest.to_json().as_bytes())?;
    if let Some(sample) = mismatch {
        bail!(
            "in Chromium the bundle computed different outputs than in Node (first at sample {sample})"
        );
    }
    Ok(manifest)
}
