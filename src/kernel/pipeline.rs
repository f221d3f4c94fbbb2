//! The `build` pipeline for a kernel crate: build → shake → optimize → validate → measure → pack.
//! Each stage is a function returning a typed value; stages are silent, and [`build`] tells a
//! [`Reporter`] what each one did.

use crate::abi::{self, WasmAbi};
use crate::bundle::demo::{self, DemoVariant};
use crate::bundle::layout::{KERNEL_SAMPLES_FILE, LOADER_FILE};
use crate::bundle::names::{self, NameMap};
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::kernel::assemble;
use crate::kernel::cargo_build::{self, CompiledVariant, TargetSetup};
use crate::kernel::measure::{Measured, ensure_parity, measure_variants};
use crate::kernel::optimize::Optimized;
use crate::kernel::project::KernelProject;
use crate::kernel::shake::Shaken;
use crate::kernel::{loader, optimize, shake, sources, validate};
use crate::manifest::kernel::{KernelManifest, StageTime};
use crate::measure::sizes;
use crate::measure::timing::{SampleSet, TimingPlan};
use crate::measure::variants::{CudaRequest, Variants};
use crate::measure::wasm::WasmHost;
use crate::profile::{CUDA_FEATURE, NativeProfile, Profile};
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
    profile: &Profile,
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
    let named = optimize::optimize(&twin.wasm, &profile.wasm, true)?;
    NameMap::for_shipped(&named.wasm, shipped)
}

/// Both variants compiled from the same sources.
pub(crate) struct Built {
    pub rustc: RustcInfo,
    pub wasm: CompiledVariant,
    pub wasm_bytes: Vec<u8>,
    pub native: CompiledVariant,
    pub native_bytes: Vec<u8>,
    pub native_features: Vec<String>,
    pub cuda: CudaRequest,
}

/// The shipped WASM module and what each transform did on the way to it.
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

    let mut clock = StageClock::default();
    reporter.event(Event::Started(Stage::Build));
    let built = compile_both(project, options, reporter)?;
    clock.lap("build");
    reporter.event(Event::Built {
        wasm_target: &built.wasm.target,
        wasm_bytes: built.wasm_bytes.len() as u64,
        native_target: &built.native.target,
        native_bytes: built.native_bytes.len() as u64,
    });

    let transformed = transform(project, &built, options, reporter, &mut clock)?;
    let shipped_wasm = &transformed.optimized.wasm;

    reporter.event(Event::Started(Stage::Validate));
    validate::validate_module(shipped_wasm, &options.profile.wasm.runtime_features)
        .context("validate stage")?;
    let host = WasmHost::with_call_time_limit(options.timing.call_time_limit)?;
    let validated = validate::differential_run(
        &host,
        &built.wasm_bytes,
        shipped_wasm,
        &project.samples,
        project.input.bytes(),
        project.output.bytes(),
    )
    .context("validate stage: differential run")?;
    reporter.event(Event::Validated {
        samples: validated.differential_samples,
    });
    clock.lap("validate");

    reporter.event(Event::Started(Stage::Measure));
    let wasm_sizes = sizes::sizes(shipped_wasm)?;
    let variants = Variants {
        wasm: shipped_wasm,
        native_library: &built.native.artifact,
        samples: SampleSet {
            data: &project.samples,
            input_bytes: project.input.bytes(),
            output_bytes: project.output.bytes(),
        },
        output: &project.output,
        tolerance: project.tolerance,
        cuda: built.cuda.clone(),
    };
    let mut measured: Measured = measure_variants(
        &host,
        &variants,
        &built.rustc.release,
        &wasm_sizes,
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
    let shipped = bundle_files(project, options, &built, &transformed, demo_page)?;
    let files = pack::write_files(staging.path(), &shipped.files)?;
    clock.lap("pack");
    measured.timings.stages = clock.stages;
    let manifest = assemble::manifest(assemble::Parts {
        project,
        options,
        built: &built,
        transformed: &transformed,
        differential_samples: validated.differential_samples,
        wasm_sizes,
        files,
        wasm_file: shipped.wasm_file,
        native_file: shipped.native_file,
        name_map_file: shipped.name_map_file,
        measured,
    })?;
    let bundle_dir = pack::commit(
        staging,
        &manifest.to_json(),
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

/// The build stage: the WASM variant first, checked against the ABI before the native build (a
/// kernel without the ABI is not worth a second compile), then the native sibling.
fn compile_both(
    project: &KernelProject,
    options: &BuildOptions,
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
    let wasm = cargo_build::compile(
        project,
        &sources,
        profile,
        &profile.target,
        &profile.wasm_rustflags(),
        &[],
        options.offline,
    )
    .with_context(kernel_context)?;
    let wasm_bytes = fsx::read(&wasm.artifact)?;
    abi::check_wasm(&wasm_bytes, &project.name)?;
    let native_profile = &options.native_profile;
    let native_features = native_profile.features_for(&project.features, options.no_cuda);
    let cuda = cuda_request(project, options, &native_features);
    let native = cargo_build::compile(
        project,
        &sources,
        profile,
        &rustc.host,
        &native_profile.rustflags,
        &native_features,
        options.offline,
    )
    .with_context(kernel_context)?;
    let native_bytes = fsx::read(&native.artifact)?;
    Ok(Built {
        rustc,
        wasm,
        wasm_bytes,
        native,
        native_bytes,
        native_features,
        cuda,
    })
}

/// The shake and optimize stages, and the name map of their result. Only what the ABI exports
/// reach counts as the module's imports: a crate may link host glue (wasm-bindgen's, for one)
/// that inference never calls.
fn transform(
    project: &KernelProject,
    built: &Built,
    options: &BuildOptions,
    reporter: &mut dyn Reporter,
    clock: &mut StageClock,
) -> Result<Transformed> {
    let built_wasm = &built.wasm_bytes;
    let profile = &options.profile;
    reporter.event(Event::Started(Stage::Shake));
    let shake_options = shake::ShakeOptions {
        keep_names: options.keep_names,
        strip_panic_formatting: profile.wasm.strip_panic_formatting,
    };
    let shaken =
        shake::shake(built_wasm, &abi::export_names(), shake_options).context("shake stage")?;
    reporter.event(Event::Shaken {
        before: built_wasm.len() as u64,
        after: shaken.wasm.len() as u64,
        functions_before: shaken.functions_before,
        functions_after: shaken.functions_after,
        exports_removed: shaken.exports_removed.len(),
        custom_sections_removed: shaken.custom_sections_removed.len(),
    });
    let shaken_abi = abi::check_wasm(&shaken.wasm, &project.name)?;
    cargo_build::check_host_imports(
        project,
        &built.wasm.target,
        options.offline,
        &shaken_abi.imports,
    )?;
    clock.lap("shake");

    reporter.event(Event::Started(Stage::Optimize));
    let optimized = optimize::optimize(&shaken.wasm, &profile.wasm, options.keep_names)
        .context("optimize stage")?;
    reporter.event(Event::Optimized {
        before: shaken.wasm.len() as u64,
        after: optimized.wasm.len() as u64,
        level: &optimized.level,
    });
    let name_map = name_map(built_wasm, shake_options, profile, &optimized.wasm)
        .context("building the sidecar name map")?;
    clock.lap("optimize");
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
    wasm_file: String,
    native_file: String,
    name_map_file: Option<String>,
}

/// The pack stage's files: the module, the native library, the WASM variant's tarball (module,
/// loader, demo page), the samples, the loader and the name map.
fn bundle_files(
    project: &KernelProject,
    options: &BuildOptions,
    built: &Built,
    transformed: &Transformed,
    demo_page: Option<BundleFile>,
) -> Result<ShippedFiles> {
    let wasm_file = BundleFile::new(
        format!("{}.wasm", project.name),
        transformed.optimized.wasm.clone(),
    );
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
    let loader = loader::loader_files(&loader::LoaderConfig {
        abi_version: abi::ABI_VERSION,
        kernel: loader::KernelName {
            name: &project.name,
            version: &project.version,
        },
        wasm: loader::WasmFile {
            file: &wasm_file.path,
            sri: &fsx::sri_sha384(&wasm_file.bytes),
            bytes: wasm_file.bytes.len() as u64,
        },
        input: &project.input,
        output: &project.output,
        imports: &transformed.shipped_abi.imports,
    });
    let mut wasm_variant_files: Vec<&BundleFile> = vec![&wasm_file];
    wasm_variant_files.extend(&loader);
    wasm_variant_files.extend(&demo_page);
    let tarball = BundleFile::new(
        format!("{}-wasm32.tar.zst", project.bundle_name()),
        pack::deterministic_tar_zst(&wasm_variant_files, options.source_date_epoch)?,
    );
    let name_map_file = transformed.name_map.as_ref().map(|map| {
        BundleFile::new(
            format!("{}{}", project.name, names::SUFFIX),
            crate::manifest::pretty_json(map).into_bytes(),
        )
    });
    let (wasm_path, native_path) = (wasm_file.path.clone(), native_file.path.clone());
    let mut files = vec![
        wasm_file,
        native_file,
        tarball,
        BundleFile::new(KERNEL_SAMPLES_FILE, project.samples.clone()),
    ];
    files.extend(loader);
    files.extend(demo_page);
    let name_map_path = name_map_file.as_ref().map(|f| f.path.clone());
    files.extend(name_map_file);
    Ok(ShippedFiles {
        files,
        wasm_file: wasm_path,
        native_file: native_path,
        name_map_file: name_map_path,
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
