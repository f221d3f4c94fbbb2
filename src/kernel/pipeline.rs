//! The `build` pipeline for a kernel crate: build → shake → optimize → validate → measure → pack.
//! Each stage is a function returning a typed value; stages are silent, and [`build`] tells a
//! [`Reporter`] what each one did.

use crate::abi::{self, WasmAbi};
use crate::bundle::demo::{self, DemoVariant};
use crate::bundle::layout::{KERNEL_SAMPLES_FILE, LOADER_FILE, LOADER_TYPES_FILE};
use crate::bundle::names::{self, NameMap};
use crate::bundle::npm::NpmPackage;
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::kernel::assemble;
use crate::kernel::cargo_build::{self, CompileRequest, CompiledVariant, TargetSetup};
use crate::kernel::measure::{Measured, ensure_parity, measure_variants};
use crate::kernel::optimize::Optimized;
use crate::kernel::project::KernelProject;
use crate::kernel::shake::Shaken;
use crate::kernel::{loader, optimize, shake, sources, validate};
use crate::manifest::Sizes;
use crate::manifest::kernel::{KernelManifest, StageTime};
use crate::manifest::variant::{SimdLevel, SkippedVariant, VariantAgreement};
use crate::measure::sizes;
use crate::measure::timing::{SampleSet, TimingPlan};
use crate::measure::variants::{CudaRequest, Variants};
use crate::measure::wasm::{ForeignImportCalled, WasmHost};
use crate::profile::{
    CARGO_PROFILE_NAME, CUDA_FEATURE, NativeProfile, PlannedVariant, Profile, VariantPlan,
    WasmSettings,
};
use crate::report::{Event, Reporter, Stage};
use crate::tools::RustcInfo;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub profile: Profile,
    pub native_profile: NativeProfile,
    /// Build the native sibling without the `cuda` feature even when the kernel declares it.
    pub no_cuda: bool,
    /// Parent of the bundle directory (`dist`).
    pub out_dir: PathBuf,
    pub keep_names: bool,
    /// Build from the checkout rather than the stage, a copy of its packages.
    pub in_place: bool,
    pub offline: bool,
    /// May `rustup target add` a missing target.
    pub allow_install: bool,
    /// mtime of archive entries (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: u64,
    pub timing: TimingPlan,
    /// Write the demo page (`index.html`, from `[package.metadata.wasmpack-infer.demo]`).
    pub demo: bool,
    /// `--variant`: build only these of the profile's feature-level variants (all when empty).
    pub variants: Vec<SimdLevel>,
    /// `--npm`: also write the package's tarball beside package.json.
    pub npm_tarball: bool,
}

#[derive(Debug)]
pub struct BuildOutput {
    pub bundle_dir: PathBuf,
    pub manifest: KernelManifest,
}

/// The shipped module's function names and sizes, from a twin shaken and optimized with names
/// kept; `None` when stripping the twin's names does not give the shipped module exactly.
fn name_map(
    built_wasm: &[u8],
    shake_options: shake::ShakeOptions,
    settings: &WasmSettings,
    shipped: &[u8],
) -> Result<Option<NameMap>> {
    if shake_options.keep_names {
        return NameMap::for_shipped(shipped, shipped);
    }
    let twin_options = shake::ShakeOptions {
        keep_names: true,
        ..shake_options
    };
    let twin = shake::shake(built_wasm, &abi::export_names(), twin_options)?;
    let named = optimize::optimize(&twin.wasm, settings, true)?;
    NameMap::for_shipped(&named.wasm, shipped)
}

/// Every variant compiled from the same sources.
pub(crate) struct Built {
    pub rustc: RustcInfo,
    /// The feature-level WASM variants, lowest level first.
    pub wasm: Vec<BuiltWasm>,
    /// Levels above the primary that did not compile.
    pub skipped: Vec<SkippedVariant>,
    /// Index of the primary in `wasm`.
    pub primary: usize,
    pub native: CompiledVariant,
    pub native_bytes: Vec<u8>,
    pub native_features: Vec<String>,
    pub cuda: CudaRequest,
}

impl Built {
    pub fn primary(&self) -> &BuiltWasm {
        &self.wasm[self.primary]
    }
}

/// One feature-level WASM variant as cargo built it.
pub(crate) struct BuiltWasm {
    pub plan: PlannedVariant,
    pub compiled: CompiledVariant,
    pub bytes: Vec<u8>,
}

/// One feature-level variant as shipped: transformed, validated, sized and compared.
pub(crate) struct ShippedWasm {
    pub level: SimdLevel,
    pub transformed: Transformed,
    pub differential_samples: usize,
    pub sizes: Sizes,
    /// Against the reference (lowest) variant; `None` for the reference itself.
    pub agreement: Option<VariantAgreement>,
}

/// A WASM module and what each transform did on the way to it.
pub(crate) struct Transformed {
    pub shaken: Shaken,
    pub optimized: Optimized,
    /// The shipped module's imports and exports.
    pub shipped_abi: WasmAbi,
    pub name_map: Option<NameMap>,
}

pub fn build(
    project: &KernelProject,
    options: &BuildOptions,
    reporter: &mut dyn Reporter,
) -> Result<BuildOutput> {
    let demo_page = options
        .demo
        .then(|| {
            demo::page_for(
                project.demo.as_ref(),
                "package.metadata.wasmpack-infer.demo",
                &project.name,
                &project.version,
                DemoVariant::Wasm,
                &format!("./{}", LOADER_FILE),
            )
        })
        .transpose()?;

    let plan = options.profile.variant_plan(&options.variants)?;
    let mut clock = StageClock::default();
    reporter.event(Event::Started(Stage::Build));
    let built = compile_all(project, options, plan, reporter)?;
    clock.lap("build");
    let several = built.wasm.len() > 1;
    let label = |level: SimdLevel| several.then_some(level);
    let wasm_bytes: Vec<(SimdLevel, u64)> = built
        .wasm
        .iter()
        .map(|variant| (variant.plan.level, variant.bytes.len() as u64))
        .collect();
    reporter.event(Event::Built {
        wasm_target: &built.primary().compiled.target,
        wasm_bytes: &wasm_bytes,
        native_target: &built.native.target,
        native_bytes: built.native_bytes.len() as u64,
    });

    let shake_options = shake::ShakeOptions {
        keep_names: options.keep_names,
        strip_panic_formatting: options.profile.wasm.strip_panic_formatting,
    };
    let shaken = built
        .wasm
        .iter()
        .map(|variant| {
            shake_variant(
                project,
                variant,
                label(variant.plan.level),
                shake_options,
                options.offline,
                reporter,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    clock.lap("shake");
    let transformed = built
        .wasm
        .iter()
        .zip(shaken)
        .enumerate()
        .map(|(index, (variant, shaken))| {
            optimize_variant(
                project,
                variant,
                shaken,
                label(variant.plan.level),
                // The name map describes the primary, the module `diff` compares.
                (index == built.primary).then_some(shake_options),
                options.keep_names,
                reporter,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    clock.lap("optimize");

    reporter.event(Event::Started(Stage::Validate));
    let host = WasmHost::with_call_time_limit(options.timing.call_time_limit)?;
    let samples = SampleSet {
        data: &project.samples,
        input_bytes: project.input.bytes(),
        output_bytes: project.output.bytes(),
    };
    let shipped_variants = validate_variants(
        project,
        &built.wasm,
        transformed,
        &host,
        &samples,
        &label,
        options.offline,
        reporter,
    )?;
    clock.lap("validate");

    reporter.event(Event::Started(Stage::Measure));
    let primary = &shipped_variants[built.primary];
    let shipped_wasm = &primary.transformed.optimized.wasm;
    let variants = Variants {
        wasm: shipped_wasm,
        native_library: &built.native.artifact,
        samples,
        output: &project.output,
        tolerance: project.tolerance,
        cuda: built.cuda.clone(),
    };
    let others: Vec<(SimdLevel, &[u8])> = shipped_variants
        .iter()
        .filter(|v| v.level != primary.level)
        .map(|v| (v.level, v.transformed.optimized.wasm.as_slice()))
        .collect();
    let mut measured: Measured = measure_variants(
        &host,
        &variants,
        (primary.level, &others),
        &built.rustc.release,
        &primary.sizes,
        options.profile.runtime_fit,
        &options.timing,
    )?;
    reporter.event(Event::Measured {
        parity: &measured.parity,
        cuda: &measured.timings.cuda,
    });
    ensure_parity(&measured.parity, &measured.timings.cuda)?;
    clock.lap("measure");

    reporter.event(Event::Started(Stage::Pack));
    let bundle_dir = options.out_dir.join(project.bundle_name());
    let staging = fsx::StagingDir::new(&bundle_dir)?;
    let shipped = bundle_files(project, options, &built, &shipped_variants, demo_page)?;
    let files = pack::write_files(staging.path(), &shipped.files)?;
    clock.lap("pack");
    measured.timings.stages = clock.stages;
    let manifest = assemble::manifest(assemble::Parts {
        project,
        options,
        built: &built,
        shipped: &shipped_variants,
        files,
        wasm_files: shipped.wasm_files,
        native_file: shipped.native_file,
        name_map_file: shipped.name_map_file,
        measured,
    })?;
    let bundle_dir = pack::commit(
        staging,
        &manifest.to_json(),
        Some(&shipped.npm),
        &crate::manifest::metrics::metrics(&manifest),
        &manifest.budgets,
        &format!(
            "[package.metadata.wasmpack-infer.budgets] of crate `{}`",
            project.name
        ),
    )?;
    reporter.event(Event::Packed {
        dir: &bundle_dir,
        files: &manifest.files,
    });
    Ok(BuildOutput {
        bundle_dir,
        manifest,
    })
}

/// The build stage: the WASM variants first, checked against the ABI before the native build (a
/// kernel without the ABI is not worth a second compile), then the native sibling.
fn compile_all(
    project: &KernelProject,
    options: &BuildOptions,
    plan: VariantPlan,
    reporter: &mut dyn Reporter,
) -> Result<Built> {
    let profile = &options.profile;
    let kernel_context = || format!("building kernel crate `{}`", project.name);
    if cargo_build::ensure_target(&profile.target, options.allow_install && !options.offline)?
        == TargetSetup::InstalledWithRustup
    {
        reporter.event(Event::TargetInstalled {
            target: &profile.target,
        });
    }
    let rustc = crate::tools::rustc_info()?;
    let sources = sources::prepare(
        project,
        std::slice::from_ref(&options.out_dir),
        options.in_place,
        options.offline,
    )
    .with_context(kernel_context)?;
    let mut wasm = Vec::new();
    let mut skipped = Vec::new();
    for (index, variant) in plan.variants.into_iter().enumerate() {
        let compiled = cargo_build::compile(
            project,
            &sources,
            &CompileRequest {
                profile,
                cargo_profile: &variant.cargo_profile,
                target: &profile.target,
                rustflags: &variant.rustflags,
                features: &[],
                offline: options.offline,
            },
        );
        // A level above the primary only speeds up the engines that have it: when a dependency
        // does not compile with its features, the rest still ship, unless it was asked for.
        let compiled = match compiled {
            Err(error) if index > plan.primary && options.variants.is_empty() => {
                let reason = cargo_build::failure_summary(&error);
                reporter.event(Event::VariantSkipped {
                    level: variant.level,
                    reason: &reason,
                });
                skipped.push(SkippedVariant {
                    level: variant.level,
                    reason,
                });
                continue;
            }
            compiled => compiled
                .with_context(|| format!("{}, {} variant", kernel_context(), variant.level))?,
        };
        let bytes = fsx::read(&compiled.artifact)?;
        abi::check_wasm(&bytes, &project.name)?;
        wasm.push(BuiltWasm {
            plan: variant,
            compiled,
            bytes,
        });
    }
    let native_profile = &options.native_profile;
    let native_features = native_profile.features_for(&project.features, options.no_cuda);
    let cuda = cuda_request(project, options, &native_features);
    let native = cargo_build::compile(
        project,
        &sources,
        &CompileRequest {
            profile,
            cargo_profile: CARGO_PROFILE_NAME,
            target: &rustc.host,
            rustflags: &native_profile.rustflags,
            features: &native_features,
            offline: options.offline,
        },
    )
    .with_context(kernel_context)?;
    let native_bytes = fsx::read(&native.artifact)?;
    Ok(Built {
        rustc,
        wasm,
        skipped,
        primary: plan.primary,
        native,
        native_bytes,
        native_features,
        cuda,
    })
}

/// The validate stage, per variant: the module validates against exactly its features, computes
/// what cargo's build did on every sample (the differential run), and agrees with the lowest level
/// within the kernel's tolerance.
#[allow(clippy::too_many_arguments)]
fn validate_variants(
    project: &KernelProject,
    compiled: &[BuiltWasm],
    transformed: Vec<Transformed>,
    host: &WasmHost,
    samples: &SampleSet,
    label: &dyn Fn(SimdLevel) -> Option<SimdLevel>,
    offline: bool,
    reporter: &mut dyn Reporter,
) -> Result<Vec<ShippedWasm>> {
    let mut shipped_variants: Vec<ShippedWasm> = Vec::new();
    let mut reference_outputs = None;
    for (variant, transformed) in compiled.iter().zip(transformed) {
        let level = variant.plan.level;
        let context = || format!("validate stage, {level} variant");
        let shipped = &transformed.optimized.wasm;
        validate::validate_module(shipped, &variant.plan.settings.runtime_features)
            .with_context(context)?;
        let validated = validate::differential_run(
            host,
            &variant.bytes,
            shipped,
            &project.samples,
            samples.input_bytes,
            samples.output_bytes,
        )
        .map_err(|error| match ForeignImportCalled::in_chain(&error) {
            Some(called) if transformed.shaken.glue_stubbed.contains(&called.import) => {
                let import = called.import.clone();
                cargo_build::glue_called(project, &variant.compiled.target, offline, &import, error)
            }
            _ => error.context(context()),
        })?;
        let agreement = match &reference_outputs {
            None => {
                reference_outputs = Some((level, validate::outputs(host, shipped, samples)?));
                None
            }
            Some((reference, expected)) => Some(
                validate::agreement(
                    host,
                    (*reference, expected),
                    (level, shipped),
                    samples,
                    &project.output,
                    project.tolerance,
                )
                .with_context(context)?,
            ),
        };
        reporter.event(Event::Validated {
            variant: label(level),
            samples: validated.differential_samples,
            agreement: agreement.as_ref(),
        });
        shipped_variants.push(ShippedWasm {
            level,
            sizes: sizes::sizes(shipped)?,
            transformed,
            differential_samples: validated.differential_samples,
            agreement,
        });
    }
    Ok(shipped_variants)
}

/// The shake stage for one variant. Only what the ABI exports reach counts as the module's
/// imports: a crate may link host glue (wasm-bindgen's, for one) that inference never calls.
fn shake_variant(
    project: &KernelProject,
    variant: &BuiltWasm,
    label: Option<SimdLevel>,
    shake_options: shake::ShakeOptions,
    offline: bool,
    reporter: &mut dyn Reporter,
) -> Result<Shaken> {
    let built_wasm = &variant.bytes;
    reporter.event(Event::Started(Stage::Shake));
    let shaken = shake::shake(built_wasm, &abi::export_names(), shake_options)
        .with_context(|| format!("shake stage, {} variant", variant.plan.level))?;
    reporter.event(Event::Shaken {
        variant: label,
        before: built_wasm.len() as u64,
        after: shaken.wasm.len() as u64,
        functions_before: shaken.functions_before,
        functions_after: shaken.functions_after,
        exports_removed: shaken.exports_removed.len(),
        custom_sections_removed: shaken.custom_sections_removed.len(),
        glue_stubbed: shaken.glue_stubbed.len(),
    });
    let shaken_abi = abi::check_wasm(&shaken.wasm, &project.name)?;
    cargo_build::check_host_imports(
        project,
        &variant.compiled.target,
        offline,
        &shaken_abi.imports,
    )?;
    Ok(shaken)
}

/// The optimize stage for one variant, and the name map of its result when given the options
/// it was shaken with.
fn optimize_variant(
    project: &KernelProject,
    variant: &BuiltWasm,
    shaken: Shaken,
    label: Option<SimdLevel>,
    name_map_of: Option<shake::ShakeOptions>,
    keep_names: bool,
    reporter: &mut dyn Reporter,
) -> Result<Transformed> {
    let settings = &variant.plan.settings;
    reporter.event(Event::Started(Stage::Optimize));
    let optimized = optimize::optimize(&shaken.wasm, settings, keep_names)
        .with_context(|| format!("optimize stage, {} variant", variant.plan.level))?;
    reporter.event(Event::Optimized {
        variant: label,
        before: shaken.wasm.len() as u64,
        after: optimized.wasm.len() as u64,
        level: &optimized.level,
    });
    let name_map = match name_map_of {
        Some(shake_options) => name_map(&variant.bytes, shake_options, settings, &optimized.wasm)
            .context("building the sidecar name map")?,
        None => None,
    };
    Ok(Transformed {
        shipped_abi: abi::check_wasm(&optimized.wasm, &project.name)?,
        shaken,
        optimized,
        name_map,
    })
}

/// Wall time of each stage, lap by lap.
struct StageClock {
    since: Instant,
    stages: Vec<StageTime>,
}

impl Default for StageClock {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            stages: Vec::new(),
        }
    }
}

impl StageClock {
    /// Ends `stage` now; the next one starts.
    fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        let seconds = (now - self.since).as_secs_f64();
        self.stages.push(StageTime {
            stage: stage.into(),
            seconds: (seconds * 1000.0).round() / 1000.0,
        });
        self.since = now;
    }
}

/// What the bundle ships, in the order it is written.
struct ShippedFiles {
    files: Vec<BundleFile>,
    /// Each variant's module, in the order of the variants.
    wasm_files: Vec<String>,
    native_file: String,
    name_map_file: Option<String>,
    /// The WASM variant as an npm package: loader, types, modules and manifest.
    npm: NpmPackage,
}

/// A variant's module file: the primary's is `<crate>.wasm`, as in bundles of one module; the
/// others carry their level, `<crate>.<level>.wasm`.
fn wasm_file_name(crate_name: &str, level: SimdLevel, primary: bool) -> String {
    if primary {
        format!("{crate_name}.wasm")
    } else {
        format!("{crate_name}.{level}.wasm")
    }
}

/// The pack stage's files: the modules, the native library, the WASM tarball (modules, loader,
/// demo page), the samples, the loader and the name map.
fn bundle_files(
    project: &KernelProject,
    options: &BuildOptions,
    built: &Built,
    shipped: &[ShippedWasm],
    demo_page: Option<BundleFile>,
) -> Result<ShippedFiles> {
    let primary_level = built.primary().plan.level;
    let wasm_files: Vec<BundleFile> = shipped
        .iter()
        .map(|variant| {
            BundleFile::new(
                wasm_file_name(&project.name, variant.level, variant.level == primary_level),
                variant.transformed.optimized.wasm.clone(),
            )
        })
        .collect();
    let native_name = built
        .native
        .artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("native artifact has no file name")?;
    let native_file = BundleFile {
        path: native_name,
        bytes: built.native_bytes.clone(),
        executable: true,
    };
    let primary = &shipped[built.primary];
    let loader_variants: Vec<loader::WasmFile> = shipped
        .iter()
        .zip(&built.wasm)
        .zip(&wasm_files)
        .map(|((variant, built), file)| {
            loader::WasmFile::new(
                variant.level,
                &file.path,
                &file.bytes,
                &built.plan.settings.runtime_features,
            )
        })
        .collect();
    let loader_config = loader::LoaderConfig {
        abi_version: abi::ABI_VERSION,
        kernel: loader::KernelName {
            name: &project.name,
            version: &project.version,
        },
        wasm: &loader_variants[built.primary],
        variants: loader::best_first(&loader_variants),
        input: &project.input,
        output: &project.output,
        imports: &primary.transformed.shipped_abi.imports,
    };
    let loader = loader::loader_files(&loader_config);
    let python_loader = loader::python_loader_file(&loader_config);
    let mut wasm_variant_files: Vec<&BundleFile> = wasm_files.iter().collect();
    wasm_variant_files.extend(&loader);
    wasm_variant_files.push(&python_loader);
    wasm_variant_files.extend(&demo_page);
    let tarball = BundleFile::new(
        format!("{}-wasm32.tar.zst", project.bundle_name()),
        pack::deterministic_tar_zst(&wasm_variant_files, options.source_date_epoch)?,
    );
    let name_map_file = primary.transformed.name_map.as_ref().map(|map| {
        BundleFile::new(
            format!("{}{}", project.name, names::SUFFIX),
            crate::manifest::pretty_json(map).into_bytes(),
        )
    });
    let wasm_paths: Vec<String> = wasm_files.iter().map(|f| f.path.clone()).collect();
    let npm = NpmPackage {
        name: project.npm_name.clone(),
        version: project.version.clone(),
        description: project.description.clone().unwrap_or_else(|| {
            format!(
                "{} {}: WASM inference kernel",
                project.name, project.version
            )
        }),
        files: wasm_paths
            .iter()
            .cloned()
            .chain(loader.iter().map(|f| f.path.clone()))
            .chain([crate::manifest::FILE_NAME.to_string()])
            .collect(),
        main: LOADER_FILE.into(),
        types: LOADER_TYPES_FILE.into(),
        tarball_mtime: options.npm_tarball.then_some(options.source_date_epoch),
    };
    let native_path = native_file.path.clone();
    let mut files = wasm_files;
    files.extend([
        native_file,
        tarball,
        BundleFile::new(KERNEL_SAMPLES_FILE, project.samples.clone()),
    ]);
    files.extend(loader);
    files.push(python_loader);
    files.extend(demo_page);
    let name_map_path = name_map_file.as_ref().map(|f| f.path.clone());
    files.extend(name_map_file);
    Ok(ShippedFiles {
        files,
        wasm_files: wasm_paths,
        native_file: native_path,
        name_map_file: name_map_path,
        npm,
    })
}

fn cuda_request(
    project: &KernelProject,
    options: &BuildOptions,
    native_features: &[String],
) -> CudaRequest {
    let has = |features: &[String]| features.iter().any(|f| f == CUDA_FEATURE);
    if has(native_features) {
        CudaRequest::Requested
    } else if !has(&project.features) {
        CudaRequest::NotRequested(format!(
            "kernel crate `{}` declares no `{CUDA_FEATURE}` feature",
            project.name
        ))
    } else if options.no_cuda {
        CudaRequest::NotRequested("--no-cuda".into())
    } else {
        CudaRequest::NotRequested(format!(
            "native profile `{}` does not enable `{CUDA_FEATURE}`",
            options.native_profile.name
        ))
    }
}
