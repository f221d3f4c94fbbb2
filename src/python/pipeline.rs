//! The `build` pipeline for a Python project: resolve the distribution and dependencies → pack
//! the app → trace and shake → split the runtime → validate the shaken bundle on every sample
//! (and its snapshot) → measure stock, bundle and native CPython → pack. Each stage is a
//! function returning a typed value; stages are silent, and [`build`] tells a [`Reporter`]
//! what each one did.

use crate::bundle::demo::{self, DemoVariant};
use crate::bundle::layout::{
    LOADER_FILE, LOADER_TYPES_FILE, PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE,
    PYTHON_SNAPSHOT_FILE, python_runtime_path,
};
use crate::bundle::npm::NpmPackage;
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::manifest::fit::FitThresholds;
use crate::manifest::python::{
    FreeHeapZeroed, NativeRun, PythonManifest, RuntimeLinkingInfo, ShippedSizes,
    SnapshotStaticData, StripInfo,
};
use crate::manifest::{Parity, Sizes};
use crate::measure::parity;
use crate::profile::{RuntimeSettings, SnapshotSettings, StdlibSettings};
use crate::python::assemble;
use crate::python::deps;
use crate::python::dist::{self, CORE_FILES, Distribution, Source};
use crate::python::link_plan::{self, PlannedRuntime};
use crate::python::loader::{LOADER_TYPES, loader};
use crate::python::measure::{BootFigures, measure_native, shipped_sizes};
use crate::python::project::PythonProject;
use crate::python::run::{self, AppRun, Boot, Mode, RunConfig, Trace, first_difference};
use crate::python::shake::{self, Needed, Overrides, ShakenStdlib};
use crate::python::split::{
    SECONDARY_FILE, ShippedSplit, SplitRuntime, WasmSplit, profile_and_split,
    restore_stock_runtime, validate_split,
};
use crate::report::{Event, Reporter, Stage};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
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
    /// The profile's thresholds for the per-deployment verdict.
    pub runtime_fit: FitThresholds,
    /// Boots per variant for the cold-start figures, interleaved in fresh Node processes.
    pub boots: usize,
    pub source_date_epoch: u64,
    /// `--npm`: also write the package's tarball beside package.json.
    pub npm_tarball: bool,
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

/// The resolve stage: the distribution, its stock files, and the project's dependencies split
/// between those the distribution provides and those pip installs.
pub(crate) struct Resolved {
    pub distribution: Distribution,
    /// Every stock file, read once: shaken, copied into the bundle and measured from here.
    pub stock: BTreeMap<&'static str, Vec<u8>>,
    pub stock_lock: serde_json::Value,
    pub sources: deps::Sources,
    /// What pip installed for Pyodide (pure-Python wheels), if anything.
    pub installed: Option<deps::Installed>,
    native_deps: NativeDeps,
}

/// The app as it ships: its own files under their installed names, and with its pip-installed
/// dependencies, zipped.
pub(crate) struct PackedApp {
    pub app_code: Vec<(String, Vec<u8>)>,
    /// The app's files and its dependencies', by name in the zip.
    pub files: Vec<(String, Vec<u8>)>,
    /// As stock Pyodide runs it: the sources as written.
    pub zip: Vec<u8>,
    /// The zip, written to the work directory for the stock runs.
    pub path: PathBuf,
    /// `name==version` of what pip installed for Pyodide.
    pub requirements: Vec<String>,
}

/// The shake stage: the trace of stock Pyodide running every sample, and the standard library
/// and lock cut down to what it needs.
pub(crate) struct Shaken {
    /// The stock run's outputs (what the bundle must reproduce) and trace.
    pub traced: AppRun,
    pub needed: Needed,
    pub stdlib: ShakenStdlib,
    /// Kept modules compiled to `.pyc` by the distribution's interpreter (`--precompile`).
    pub precompiled: BTreeMap<String, Vec<u8>>,
    pub stdlib_zip: Vec<u8>,
    /// The app zip the bundle ships: its sources stripped, when the profile strips them.
    pub app_zip: Vec<u8>,
    pub strip: Option<StripInfo>,
    pub lock: serde_json::Value,
    /// Distribution packages loaded after boot, and their wheels.
    pub packages: Vec<String>,
    pub wheels: Vec<(String, Vec<u8>)>,
}

impl Shaken {
    pub fn trace(&self) -> Result<&Trace> {
        self.traced
            .trace
            .as_ref()
            .context("the trace run reported no modules")
    }
}

/// The validate stage: the bundle's own run of every sample (also its measured run), what
/// became of the runtime, and the snapshot booted and checked.
pub(crate) struct Validated {
    pub bundle_run: AppRun,
    /// Why the runtime ships split or whole.
    pub runtime_note: String,
    pub split: Option<ShippedSplit>,
    /// What became of the runtime's linking at boot (checked in a boot of the bundle).
    pub linking: RuntimeLinkingInfo,
    pub snapshot: Option<ShippedSnapshot>,
}

/// The bundle's memory snapshot, booted and checked.
pub(crate) struct ShippedSnapshot {
    pub file: BundleFile,
    pub run: AppRun,
    pub free_heap_zeroed: FreeHeapZeroed,
    pub static_data: SnapshotStaticData,
}

/// The boots [`interleaved_boots`] timed, per variant.
#[derive(Default)]
pub(crate) struct Boots {
    pub stock: Vec<BootFigures>,
    pub bundle: Vec<BootFigures>,
    /// Booted from the memory snapshot; empty without one.
    pub snapshot: Vec<BootFigures>,
}

/// The measure stage's runs and figures.
pub(crate) struct Measured {
    pub stock_run: AppRun,
    pub boots: Boots,
    pub native: NativeRun,
    pub native_parity: Parity,
    pub sizes: ShippedSizes,
    /// The stock files (and the app zip) as measured: the baseline of every size ratio.
    pub stock_shipped: Vec<(String, Vec<u8>)>,
    pub native_sibling_files: Vec<(String, Vec<u8>)>,
    pub native_lock: Vec<String>,
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
    let resolved = resolve(project, options)?;
    let app = pack_app(project, &resolved, work.path())?;
    reporter.event(Event::AppPacked {
        pyodide_version: &resolved.distribution.version,
        origin: &resolved.distribution.origin,
        app_bytes: app.zip.len() as u64,
        entry: &project.entry(),
        installed: &app.requirements,
        from_distribution: &resolved.sources.from_distribution,
    });

    reporter.event(Event::Started(Stage::Shake));
    let shaken = shake_stage(project, options, &resolved, &app)?;
    reporter.event(Event::StdlibShaken {
        entries_before: shaken.stdlib.entries_before,
        entries_after: shaken.stdlib.entries_after,
        precompiled: shaken.precompiled.len(),
        bytecode_only: options.stdlib.bytecode_only,
        stripped: shaken
            .strip
            .as_ref()
            .map(|s| (s.stripped, s.bytes_before - s.bytes_after)),
        bytes_before: resolved.stock["python_stdlib.zip"].len() as u64,
        bytes_after: shaken.stdlib_zip.len() as u64,
        modules_kept: shaken.needed.modules.len(),
        top_levels_dropped: shaken.stdlib.dropped_top_levels.len(),
        packages: &shaken.packages,
    });
    let linking = link_plan_stage(options, &resolved);
    let mut runtime_files = runtime_files(&resolved, &shaken, linking.as_ref().ok())?;
    let entry = project.entry();
    let measure_config = RunConfig {
        entry: &entry,
        samples: &project.samples_path,
        passes: options.passes,
        packages: &shaken.packages,
    };

    reporter.event(Event::Started(Stage::Split));
    let split = split_stage(options, &runtime_files, &measure_config, linking.is_ok());
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
    pack::write_files(staging.path(), &runtime_files)?;
    let validated = validate_stage(
        project,
        options,
        &resolved,
        &shaken,
        &linking,
        split,
        &staging.path().join(PYTHON_RUNTIME_DIR),
        &measure_config,
    )?;
    if let Some(ShippedSplit { split, .. }) = &validated.split {
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
    reporter.event(Event::RuntimeLinking {
        linking: &validated.linking,
    });
    let loader_file = loader_file(project, options, &shaken, &validated);
    pack::write_files(staging.path(), std::slice::from_ref(&loader_file))?;
    runtime_files.push(loader_file);
    reporter.event(Event::BundleValidated {
        samples: project.sample_count,
        with_snapshot: validated.snapshot.is_some(),
    });

    reporter.event(Event::Started(Stage::Measure));
    let measured = measure_stage(
        options,
        &resolved,
        &app,
        &runtime_files,
        &validated,
        &staging.path().join(PYTHON_RUNTIME_DIR),
        &measure_config,
        project.tolerance,
        work.path(),
    )?;
    reporter.event(Event::NativeParity {
        parity: &measured.native_parity,
    });
    let native_parity = &measured.native_parity;
    if !native_parity.passed {
        bail!(
            "Pyodide and native CPython disagree on {} of {} samples (first: sample {})",
            native_parity.mismatched_samples.len(),
            native_parity.samples,
            native_parity.mismatched_samples[0]
        );
    }

    reporter.event(Event::Started(Stage::Pack));
    if let Some(ShippedSnapshot { file, .. }) = &validated.snapshot {
        runtime_files.push(file.clone());
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
        &app.app_code,
        &measured.native_sibling_files,
        &measured.native_lock,
        options,
    )?;
    let native_file = native_archive.path.clone();
    let mut files = pack::write_files(staging.path(), &[tarball, samples_file, native_archive])?;
    files.extend(runtime_files.iter().map(pack::describe));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = assemble::manifest(assemble::Parts {
        project,
        options,
        distribution: &resolved.distribution,
        shaken: &shaken,
        validated: &validated,
        measured,
        files,
        native_file,
    })?;
    let npm = NpmPackage {
        name: project.npm_name.clone(),
        version: project.version.clone(),
        description: project
            .description
            .clone()
            .unwrap_or_else(|| format!("{} {}: Python on Pyodide", project.name, project.version)),
        // The runtime directory (loader, its types, Pyodide, the app) and the manifest; not the
        // archives, the samples or the demo page.
        files: runtime_files
            .iter()
            .map(|f| f.path.clone())
            .filter(|path| path.starts_with(&format!("{PYTHON_RUNTIME_DIR}/")))
            .chain([crate::manifest::FILE_NAME.to_string()])
            .collect(),
        main: python_runtime_path(LOADER_FILE),
        types: python_runtime_path(LOADER_TYPES_FILE),
        tarball_mtime: options.npm_tarball.then_some(options.source_date_epoch),
    };
    let bundle_dir = pack::commit(
        staging,
        &manifest.to_json(),
        Some(&npm),
        &crate::manifest::metrics::pyodide_metrics(&manifest),
        &manifest.budgets,
        &format!(
            "[tool.wasmpack-infer.budgets] of project `{}`",
            project.name
        ),
    )?;
    reporter.event(Event::Packed {
        dir: &bundle_dir,
        files: &manifest.files,
    });
    Ok(PythonBuildOutput {
        bundle_dir,
        manifest,
    })
}

/// The distribution, its stock files, and the dependencies of both sides installed.
fn resolve(project: &PythonProject, options: &PythonBuildOptions) -> Result<Resolved> {
    let distribution = dist::resolve(&options.pyodide, options.offline)?;
    let stock: BTreeMap<&'static str, Vec<u8>> = CORE_FILES
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
    let native_deps = NativeDeps::install(
        project,
        options,
        installed.as_ref(),
        &shake::lock_imports(&stock_lock, &sources.from_distribution),
    )?;
    Ok(Resolved {
        distribution,
        stock,
        stock_lock,
        sources,
        installed,
        native_deps,
    })
}

/// The app's files and its pip-installed dependencies, zipped as the bundle ships them.
fn pack_app(project: &PythonProject, resolved: &Resolved, work: &Path) -> Result<PackedApp> {
    let app_code = shake::app_files(&project.app.path, &project.app.installed_as)?;
    let mut app_and_deps = app_code.clone();
    if let Some(installed) = &resolved.installed {
        app_and_deps.extend(shake::app_files(installed.site.path(), "")?);
    }
    app_and_deps.sort_by(|a, b| a.0.cmp(&b.0));
    let zip = shake::app_zip(&app_and_deps)?;
    let path = work.join(PYTHON_APP_ARCHIVE);
    fsx::write(&path, &zip)?;
    Ok(PackedApp {
        app_code,
        files: app_and_deps,
        zip,
        path,
        requirements: resolved
            .installed
            .as_ref()
            .map(|i| i.lock.clone())
            .unwrap_or_default(),
    })
}

/// Traces stock Pyodide over every sample, then keeps what the trace (and `--keep`) needs.
fn shake_stage(
    project: &PythonProject,
    options: &PythonBuildOptions,
    resolved: &Resolved,
    app: &PackedApp,
) -> Result<Shaken> {
    let entry = project.entry();
    let trace_config = RunConfig {
        entry: &entry,
        samples: &project.samples_path,
        passes: 0,
        packages: &resolved.sources.from_distribution,
    };
    let traced = run::pyodide(
        &resolved.distribution.dir,
        &app.path,
        Mode::Trace,
        &trace_config,
        &Boot {
            stock: true,
            ..Boot::default()
        },
    )
    .context("tracing the app in stock Pyodide")?;
    let trace = traced
        .trace
        .as_ref()
        .context("the trace run reported no modules")?;
    let needed = Needed::from_trace(trace, &options.overrides)?;
    let stdlib = shake::shake_stdlib(
        &resolved.stock["python_stdlib.zip"],
        &needed,
        &options.overrides,
    )?;
    let (stdlib_sources, app_zip, strip) = if options.stdlib.strip {
        let stripped = strip_stage(&resolved.distribution.dir, &stdlib.zip, &app.files)?;
        (stripped.stdlib_zip, stripped.app_zip, Some(stripped.info))
    } else {
        (stdlib.zip.clone(), app.zip.clone(), None)
    };
    // Compiled from what ships, so the code objects hold no stripped docstring either.
    let mut precompiled = if options.stdlib.precompile || options.stdlib.bytecode_only {
        run::compile_stdlib(&resolved.distribution.dir, &stdlib_sources)
            .context("precompiling the kept standard library with the distribution's interpreter")?
    } else {
        BTreeMap::new()
    };
    let source_of = |pyc: &String| pyc.strip_suffix('c').map(str::to_string);
    // Bytecode alone for what boot and the samples import; a module only the static walk or
    // --keep added stays source (smaller, and compiled only if it is ever imported).
    let imported = needed.imported_stdlib_entries();
    if options.stdlib.bytecode_only && !options.stdlib.precompile {
        precompiled.retain(|pyc, _| source_of(pyc).is_some_and(|py| imported.contains(&py)));
    }
    let mut stdlib_zip = shake::with_entries(&stdlib_sources, &precompiled)?;
    if options.stdlib.bytecode_only {
        // Each imported module's source: zipimport imports the .pyc without it.
        let sources: BTreeSet<String> = precompiled
            .keys()
            .filter_map(source_of)
            .filter(|py| imported.contains(py))
            .collect();
        stdlib_zip = shake::without_entries(&stdlib_zip, &sources)?;
    }
    let app_zip = if options.stdlib.store_uncompressed {
        stdlib_zip = shake::stored(&stdlib_zip).context("storing python_stdlib.zip's entries")?;
        shake::stored(&app_zip).context("storing app.zip's entries")?
    } else {
        app_zip
    };
    let (lock, packages) = shake::trim_lock(&resolved.stock_lock, &needed)?;
    let wheels = shake::package_files(&resolved.stock_lock, &packages, &resolved.distribution.dir)?;
    Ok(Shaken {
        traced,
        needed,
        stdlib,
        precompiled,
        stdlib_zip,
        app_zip,
        strip,
        lock,
        packages,
        wheels,
    })
}

/// Sources stripped of docstrings and comments, as they ship.
struct Stripped {
    stdlib_zip: Vec<u8>,
    app_zip: Vec<u8>,
    info: StripInfo,
}

/// Strips the kept standard library's sources and the app's (with its pip-installed
/// dependencies) in one run of the distribution's interpreter.
fn strip_stage(
    distribution_dir: &Path,
    stdlib_zip: &[u8],
    app_files: &[(String, Vec<u8>)],
) -> Result<Stripped> {
    const STDLIB: &str = "stdlib/";
    const APP: &str = "app/";
    let mut sources: Vec<(String, Vec<u8>)> = shake::python_sources(stdlib_zip)?
        .into_iter()
        .map(|(name, bytes)| (format!("{STDLIB}{name}"), bytes))
        .collect();
    sources.extend(
        app_files
            .iter()
            .filter(|(name, _)| name.ends_with(".py"))
            .map(|(name, bytes)| (format!("{APP}{name}"), bytes.clone())),
    );
    let result = run::strip_sources(distribution_dir, &shake::app_zip(&sources)?)
        .context("stripping docstrings and comments with the distribution's interpreter")?;
    let bytes_before: u64 = sources.iter().map(|(_, b)| b.len() as u64).sum();
    let bytes_after: u64 = sources
        .iter()
        .map(|(name, b)| result.stripped.get(name).unwrap_or(b).len() as u64)
        .sum();
    let stdlib_stripped: BTreeMap<String, Vec<u8>> = result
        .stripped
        .iter()
        .filter_map(|(name, b)| Some((name.strip_prefix(STDLIB)?.to_string(), b.clone())))
        .collect();
    let app_files: Vec<(String, Vec<u8>)> = app_files
        .iter()
        .map(|(name, bytes)| {
            let shipped = result
                .stripped
                .get(&format!("{APP}{name}"))
                .unwrap_or(bytes);
            (name.clone(), shipped.clone())
        })
        .collect();
    Ok(Stripped {
        stdlib_zip: shake::with_entries(stdlib_zip, &stdlib_stripped)?,
        app_zip: shake::app_zip(&app_files)?,
        info: StripInfo {
            sources: sources.len(),
            stripped: result.stripped.len(),
            bytes_before,
            bytes_after,
            docstrings_kept: result.docstrings_kept,
        },
    })
}

/// The stock runtime with its linking at boot planned, or why it ships as it is.
fn link_plan_stage(
    options: &PythonBuildOptions,
    resolved: &Resolved,
) -> std::result::Result<PlannedRuntime, String> {
    if !options.runtime.link_plan {
        return Err(
            "pyodide.asm.mjs shipped as it is: the link plan is off (--no-link-plan, or \
                    the Python profile's runtime.link-plan)"
                .to_string(),
        );
    }
    link_plan::plan_runtime(
        &resolved.stock["pyodide.asm.mjs"],
        &resolved.stock["pyodide.asm.wasm"],
    )
    .map_err(|e| format!("pyodide.asm.mjs shipped as it is: planning its linking failed: {e:#}"))
}

/// The runtime directory as the bundle ships it, before any split: the stock runtime (its
/// linking planned, when it is), the shaken standard library and lock, the kept wheels and the
/// app.
fn runtime_files(
    resolved: &Resolved,
    shaken: &Shaken,
    planned: Option<&PlannedRuntime>,
) -> Result<Vec<BundleFile>> {
    let file =
        |name: &str, bytes: &[u8]| BundleFile::new(python_runtime_path(name), bytes.to_vec());
    let mut files = vec![file("pyodide.mjs", &resolved.stock["pyodide.mjs"])];
    match planned {
        Some(planned) => {
            files.push(file("pyodide.asm.mjs", &planned.glue));
            files.push(file("pyodide.asm.wasm", &planned.wasm));
        }
        None => {
            files.push(file("pyodide.asm.mjs", &resolved.stock["pyodide.asm.mjs"]));
            files.push(file(
                "pyodide.asm.wasm",
                &resolved.stock["pyodide.asm.wasm"],
            ));
        }
    }
    files.push(BundleFile::new(
        python_runtime_path("python_stdlib.zip"),
        shaken.stdlib_zip.clone(),
    ));
    files.push(BundleFile::new(
        python_runtime_path("pyodide-lock.json"),
        serde_json::to_vec(&shaken.lock).context("writing pyodide-lock.json")?,
    ));
    files.extend(
        shaken
            .wheels
            .iter()
            .map(|(file, bytes)| BundleFile::new(python_runtime_path(file), bytes.clone())),
    );
    files.push(BundleFile::new(
        python_runtime_path(PYTHON_APP_ARCHIVE),
        shaken.app_zip.clone(),
    ));
    Ok(files)
}

/// Profiles the runtime over the samples and splits it in two; `Err` says why it ships whole.
fn split_stage(
    options: &PythonBuildOptions,
    runtime_files: &[BundleFile],
    config: &RunConfig,
    link_planned: bool,
) -> std::result::Result<(WasmSplit, SplitRuntime, Vec<String>), String> {
    if !options.runtime.split {
        return Err(
            "pyodide.asm.wasm shipped unchanged: splitting is off (--no-split, or the Python \
             profile's runtime.split)"
                .to_string(),
        );
    }
    let tool =
        WasmSplit::find().map_err(|why| format!("pyodide.asm.wasm shipped unchanged: {why}"))?;
    profile_and_split(
        &tool,
        &options.runtime.features,
        runtime_files,
        config,
        options.snapshot,
    )
    .and_then(|(mut split, profiled_in)| {
        // The primary's table and exports are not the stock module's: plan them again.
        if link_planned {
            let (primary, plan) = link_plan::annotate(&split.primary)
                .context("planning the primary module's linking")?;
            split.primary = primary;
            split.link_plan = Some(plan);
        }
        Ok((tool, split, profiled_in))
    })
    .map_err(|e| format!("pyodide.asm.wasm shipped unchanged: splitting it failed: {e:#}"))
}

/// Runs every sample on the staged bundle in `runtime_dir`, which must give stock's outputs. The
/// split runtime ships only if it does so twice: with the deferred half loaded up front (so the
/// code behind every placeholder is checked too), and without it (what the profile predicts),
/// which is also the bundle's measured run; else the stock runtime goes back. Then the memory
/// snapshot, if the profile asks for one, is made and booted the same way.
#[allow(clippy::too_many_arguments)]
fn validate_stage(
    project: &PythonProject,
    options: &PythonBuildOptions,
    resolved: &Resolved,
    shaken: &Shaken,
    linking: &std::result::Result<PlannedRuntime, String>,
    split: std::result::Result<(WasmSplit, SplitRuntime, Vec<String>), String>,
    runtime_dir: &Path,
    config: &RunConfig,
) -> Result<Validated> {
    let expected = &shaken.traced.outputs;
    let app = runtime_dir.join(PYTHON_APP_ARCHIVE);
    let hint = if shaken.strip.as_ref().is_some_and(|s| s.stripped > 0) {
        "try --keep MODULE, or --no-strip if it reads a docstring"
    } else {
        "try --keep MODULE"
    };
    let measure_bundle = || -> Result<AppRun> {
        let run = run::pyodide(runtime_dir, &app, Mode::Measure, config, &Boot::default())
            .with_context(|| format!("running every sample on the shaken bundle (a module it needs may have been dropped: {hint})"))?;
        if let Some(sample) = first_difference(expected, &run.outputs) {
            bail!(
                "the shaken bundle's output differs from stock Pyodide's on sample {sample} of {}: \
                 something it needs was dropped ({hint})",
                project.sample_count
            );
        }
        Ok(run)
    };
    let (bundle_run, runtime_note, split) = match split {
        Ok((tool, split, profiled_in)) => {
            match validate_split(&split, runtime_dir, config, expected) {
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
                    let whole = match linking {
                        Ok(planned) => &planned.wasm,
                        Err(_) => &resolved.stock["pyodide.asm.wasm"],
                    };
                    restore_stock_runtime(runtime_dir, whole)?;
                    let note = format!(
                        "pyodide.asm.wasm shipped unchanged: the split runtime failed validation: {e:#}"
                    );
                    (measure_bundle()?, note, None)
                }
            }
        }
        Err(why) => (measure_bundle()?, why, None),
    };
    let linking = match linking {
        Ok(planned) => {
            let plan = match &split {
                // Checked in the split's validation run.
                Some(shipped) => shipped.split.link_plan.unwrap_or(planned.plan),
                None => {
                    let check = RunConfig {
                        passes: 0,
                        ..*config
                    };
                    let boot = Boot {
                        check_link_plan: true,
                        ..Boot::default()
                    };
                    run::pyodide(runtime_dir, &app, Mode::Measure, &check, &boot).context(
                        "checking the runtime's link plan in a boot of the bundle (--no-link-plan \
                         ships Pyodide's glue as it is)",
                    )?;
                    planned.plan
                }
            };
            RuntimeLinkingInfo {
                note: format!(
                    "pyodide.asm.mjs patched: Emscripten's linking at boot reads the {} of {} \
                     table slots that its lookups can find, and wraps the JS functions the GOT \
                     needs in one module; a boot of the bundle checked the slots left out",
                    plan.planned_slots, plan.table_slots
                ),
                plan: Some(plan),
            }
        }
        Err(why) => RuntimeLinkingInfo {
            note: why.clone(),
            plan: None,
        },
    };
    let snapshot = if options.snapshot.build {
        Some(snapshot_stage(
            project,
            runtime_dir,
            config,
            options.snapshot.warm,
            expected,
        )?)
    } else {
        None
    };
    Ok(Validated {
        bundle_run,
        runtime_note,
        split,
        linking,
        snapshot,
    })
}

/// Makes the bundle's memory snapshot, writes it beside the runtime, and boots from it: every
/// sample must still give stock's outputs.
fn snapshot_stage(
    project: &PythonProject,
    runtime_dir: &Path,
    config: &RunConfig,
    warm: bool,
    expected: &[serde_json::Value],
) -> Result<ShippedSnapshot> {
    let app = runtime_dir.join(PYTHON_APP_ARCHIVE);
    let snapshot = run::make_snapshot(runtime_dir, &app, config, warm)
        .context("making a memory snapshot of the bundle")?;
    let file = BundleFile::new(python_runtime_path(PYTHON_SNAPSHOT_FILE), snapshot.bytes);
    fsx::write(&runtime_dir.join(PYTHON_SNAPSHOT_FILE), &file.bytes)?;
    let run = run::pyodide(
        runtime_dir,
        &app,
        Mode::Measure,
        config,
        &Boot {
            snapshot: Some(&runtime_dir.join(PYTHON_SNAPSHOT_FILE)),
            ..Boot::default()
        },
    )
    .context("running every sample on the bundle booted from its memory snapshot")?;
    if let Some(sample) = first_difference(expected, &run.outputs) {
        bail!(
            "booted from its memory snapshot, the bundle's output differs from stock \
             Pyodide's on sample {sample} of {}",
            project.sample_count
        );
    }
    Ok(ShippedSnapshot {
        file,
        run,
        free_heap_zeroed: snapshot.free_heap_zeroed,
        static_data: snapshot.static_data,
    })
}

/// `loader.mjs`, with the digests of what it loads: the app, the snapshot, the deferred runtime
/// and the kept packages (whose SRI it checks in Node; Pyodide checks in browsers).
fn loader_file(
    project: &PythonProject,
    options: &PythonBuildOptions,
    shaken: &Shaken,
    validated: &Validated,
) -> BundleFile {
    let packages: Vec<serde_json::Value> = shaken
        .packages
        .iter()
        .zip(&shaken.wheels)
        .map(|(name, (file, bytes))| {
            serde_json::json!({ "name": name, "file": file, "integrity": fsx::sri_sha384(bytes) })
        })
        .collect();
    BundleFile::new(
        python_runtime_path(LOADER_FILE),
        loader(
            project,
            &shaken.app_zip,
            validated.snapshot.as_ref().map(|s| s.file.bytes.as_slice()),
            options.snapshot.default,
            validated
                .split
                .as_ref()
                .map(|s| s.split.secondary.as_slice()),
            &packages,
        )
        .into_bytes(),
    )
}

/// Stock Pyodide and the native sibling over the samples, and the shipped bytes of both
/// distributions (stock and bundle) side by side.
#[allow(clippy::too_many_arguments)]
fn measure_stage(
    options: &PythonBuildOptions,
    resolved: &Resolved,
    app: &PackedApp,
    runtime_files: &[BundleFile],
    validated: &Validated,
    runtime_dir: &Path,
    config: &RunConfig,
    tolerance: f64,
    work: &Path,
) -> Result<Measured> {
    let stock_run = run::pyodide(
        &resolved.distribution.dir,
        &app.path,
        Mode::Measure,
        config,
        &Boot {
            stock: true,
            ..Boot::default()
        },
    )
    .context("measuring stock Pyodide")?;
    let boots = interleaved_boots(
        resolved,
        app,
        runtime_dir,
        validated.snapshot.is_some(),
        config,
        options.boots,
    )?;
    let shared_site = resolved.installed.as_ref().map(|i| i.site.path());
    let native_site = resolved.native_deps.site(shared_site);
    // The native sibling imports the files the bundle ships, laid out as installed (as `verify`
    // unpacks them), not the project directory: a src layout or a renamed package dir imports
    // the same way, and nothing else beside pyproject.toml can shadow or fill in for them.
    let native_app = work.join("native-app");
    let native_app_files: Vec<BundleFile> = app
        .app_code
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
    let (native, native_app_run) = measure_native(
        &options.python,
        &native_paths,
        config,
        &resolved.native_deps.accelerated_modules,
    )?;
    let native_parity = parity::compare_json(
        &validated.bundle_run.outputs,
        &native_app_run.outputs,
        tolerance,
    );
    let stock_shipped: Vec<(String, Vec<u8>)> = resolved
        .stock
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.clone()))
        .chain(std::iter::once((
            PYTHON_APP_ARCHIVE.to_string(),
            app.zip.clone(),
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
    Ok(Measured {
        stock_run,
        boots,
        native,
        native_parity,
        sizes,
        stock_shipped,
        native_sibling_files,
        native_lock: resolved.native_deps.lock.clone(),
    })
}

/// Cold starts of stock Pyodide, the bundle and, when built, the bundle booted from its memory
/// snapshot: `rounds` boots each, interleaved (stock, bundle, snapshot, stock, …), each in a
/// fresh Node process that boots, imports the app, runs the first sample and then one steady
/// pass over every sample. A boot varies by ±0.5 s here; one per variant cannot tell a 10 %
/// difference from noise, and interleaving spreads the machine's drift over all of them alike
/// (the steady blocks likewise).
fn interleaved_boots(
    resolved: &Resolved,
    app: &PackedApp,
    runtime_dir: &Path,
    with_snapshot: bool,
    config: &RunConfig,
    rounds: usize,
) -> Result<Boots> {
    // Each boot runs the first sample (its cold start), then one steady pass over every sample:
    // a block of steady calls interleaved with the other variants' like the boots.
    let one_pass = RunConfig {
        passes: 1,
        ..*config
    };
    let bundle_app = runtime_dir.join(PYTHON_APP_ARCHIVE);
    let snapshot = runtime_dir.join(PYTHON_SNAPSHOT_FILE);
    let cold_start = |dir: &Path, app: &Path, boot: &Boot, what: &str| -> Result<BootFigures> {
        let run = run::pyodide(dir, app, Mode::Measure, &one_pass, boot)
            .with_context(|| format!("booting {what} for its cold start"))?;
        Ok(BootFigures {
            cold_start_ms: run.boot_ms + run.import_ms + run.first_inference_ms,
            steady_us: crate::measure::stats::distribution_us(run.steady_us.iter().copied())
                .median_us,
            phases: run.boot_phases,
        })
    };
    let mut boots = Boots::default();
    for _ in 0..rounds {
        boots.stock.push(cold_start(
            &resolved.distribution.dir,
            &app.path,
            &Boot {
                stock: true,
                ..Boot::default()
            },
            "stock Pyodide",
        )?);
        boots.bundle.push(cold_start(
            runtime_dir,
            &bundle_app,
            &Boot::default(),
            "the bundle",
        )?);
        if with_snapshot {
            boots.snapshot.push(cold_start(
                runtime_dir,
                &bundle_app,
                &Boot {
                    snapshot: Some(&snapshot),
                    ..Boot::default()
                },
                "the bundle from its memory snapshot",
            )?);
        }
    }
    Ok(boots)
}

/// The measured sizes of one shipped runtime file.
pub(crate) fn shipped_file(sizes: &ShippedSizes, file: &str) -> Result<Sizes> {
    sizes
        .per_file
        .iter()
        .find(|f| f.file == file)
        .map(|f| f.bundle)
        .with_context(|| format!("{file} was not measured"))
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
