//! The `build` pipeline for a Python project: resolve the distribution → trace and shake → keep
//! the runtime → validate the shaken bundle on every sample → measure stock, bundle and native
//! CPython → pack. Stages are silent; this module tells a [`Reporter`] what each one did.

use crate::bundle::demo::{self, DemoVariant};
use crate::bundle::layout::{
    LOADER_FILE, LOADER_TYPES_FILE, PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE,
    PYTHON_SNAPSHOT_FILE, python_runtime_path,
};
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::manifest::python::{
    DistributionInfo, KIND, NativeSibling, ProjectInfo, PythonManifest, PythonParity,
    PythonTimings, RuntimeSplitInfo, ShakeInfo, ShippedSizes, SnapshotInfo,
};
use crate::manifest::{FileEntry, Sizes, Tool};
use crate::measure::{parity, sizes};
use crate::profile::{RuntimeSettings, SnapshotSettings, StdlibSettings};
use crate::python::deps;
use crate::python::dist::{self, CORE_FILES, Source};
use crate::python::loader::{LOADER_TYPES, loader};
use crate::python::measure::{
    fit, measure_native, node_version, pyodide_run, python_environment, round_ms, shipped_sizes,
};
use crate::python::project::PythonProject;
use crate::python::run::{self, AppRun, Boot, Mode, RunConfig, first_difference};
use crate::python::shake::{self, Needed, Overrides};
use crate::python::split::{
    SECONDARY_FILE, ShippedSplit, WasmSplit, profile_and_split, restore_stock_runtime,
    validate_split,
};
use crate::report::{Event, Reporter, Stage};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
        &options.python,
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

/// The measured sizes of one shipped runtime file.
fn shipped_file(sizes: &ShippedSizes, file: &str) -> Result<Sizes> {
    sizes
        .per_file
        .iter()
        .find(|f| f.file == file)
        .map(|f| f.bundle)
        .with_context(|| format!("{file} was not measured"))
}

/// `a==1, b==2; from the distribution: c`, or `none`.
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
