//! The `build` pipeline for a kernel crate: build → shake → optimize → validate → measure → pack.
//! Stages are silent; this module tells a [`Reporter`] what each one did.

use crate::abi;
use crate::bundle::Bundle;
use crate::bundle::demo::{self, DemoVariant};
use crate::bundle::layout::{KERNEL_SAMPLES_FILE, LOADER_FILE};
use crate::bundle::pack::{self, BundleFile};
use crate::fsx;
use crate::kernel::cargo_build::{self, TargetSetup};
use crate::kernel::names::{self, NameMap};
use crate::kernel::project::KernelProject;
use crate::kernel::{loader, optimize, shake, sources, validate};
use crate::manifest::kernel::{
    Accelerator, CudaRun, CustomSection, KernelInfo, KernelManifest, NativeVariant, OptimizeInfo,
    ProfileInfo, SamplesInfo, ShakeInfo, Timings, ValidateInfo, WasmStages, WasmVariant,
};
use crate::manifest::{Parity, Tool};
use crate::measure::browser::{self, BrowserPlan};
use crate::measure::native::{DeviceChoice, LibraryCopies};
use crate::measure::runner::KernelRunner;
use crate::measure::stats::timed;
use crate::measure::timing::{SampleSet, TimingPlan};
use crate::measure::variants::{CudaRequest, Variants};
use crate::measure::wasm::WasmHost;
use crate::measure::watchdog::Watchdog;
use crate::measure::{environment, parity, sizes, timing};
use crate::profile::{CUDA_FEATURE, NativeProfile, Profile};
use crate::report::{Event, Reporter, Stage};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Added to every watchdog limit, so a busy machine does not fail a healthy kernel.
const WATCHDOG_SLACK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub profile: Profile,
    pub native_profile: NativeProfile,
    /// Build the native sibling without the `cuda` feature even when the kernel declares it.
    pub no_cuda: bool,
    /// Parent of the bundle directory (`dist`).
    pub out_dir: PathBuf,
    pub keep_names: bool,
    /// Build from the checkout rather than a content-addressed copy of its packages.
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

pub fn build(
    project: &KernelProject,
    options: &BuildOptions,
    reporter: &mut dyn Reporter,
) -> Result<BuildOutput> {
    let profile = &options.profile;
    let kernel_context = || format!("building kernel crate `{}`", project.name);
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

    reporter.event(Event::Started(Stage::Build));
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
    let wasm_build = cargo_build::compile(
        project,
        &sources,
        profile,
        &profile.target,
        &profile.wasm_rustflags(),
        &[],
        options.offline,
    )
    .with_context(kernel_context)?;
    let built_wasm = fsx::read(&wasm_build.artifact)?;
    // Checked before the native build: a kernel without the ABI is not worth a second compile.
    let wasm_abi = abi::check_wasm(&built_wasm, &project.name)?;
    let native_profile = &options.native_profile;
    let native_features = native_profile.features_for(&project.features, options.no_cuda);
    let cuda = cuda_request(project, options, &native_features);
    let native_build = cargo_build::compile(
        project,
        &sources,
        profile,
        &rustc.host,
        &native_profile.rustflags,
        &native_features,
        options.offline,
    )
    .with_context(kernel_context)?;
    let native_bytes = fsx::read(&native_build.artifact)?;
    reporter.event(Event::Built {
        wasm_target: &wasm_build.target,
        wasm_bytes: built_wasm.len() as u64,
        native_target: &native_build.target,
        native_bytes: native_bytes.len() as u64,
    });

    reporter.event(Event::Started(Stage::Shake));
    let shake_options = shake::ShakeOptions {
        keep_names: options.keep_names,
        strip_panic_formatting: profile.wasm.strip_panic_formatting,
    };
    let shaken =
        shake::shake(&built_wasm, &abi::export_names(), shake_options).context("shake stage")?;
    reporter.event(Event::Shaken {
        before: built_wasm.len() as u64,
        after: shaken.wasm.len() as u64,
        functions_before: shaken.functions_before,
        functions_after: shaken.functions_after,
        exports_removed: shaken.exports_removed.len(),
        custom_sections_removed: shaken.custom_sections_removed.len(),
    });

    reporter.event(Event::Started(Stage::Optimize));
    let optimized = optimize::optimize(&shaken.wasm, &profile.wasm, options.keep_names)
        .context("optimize stage")?;
    reporter.event(Event::Optimized {
        before: shaken.wasm.len() as u64,
        after: optimized.wasm.len() as u64,
        level: &optimized.level,
    });
    let name_map = name_map(&built_wasm, shake_options, profile, &optimized.wasm)
        .context("building the sidecar name map")?;

    reporter.event(Event::Started(Stage::Validate));
    validate::validate_module(&optimized.wasm, &profile.wasm.runtime_features)
        .context("validate stage")?;
    let host = WasmHost::with_call_time_limit(options.timing.call_time_limit)?;
    let validated = validate::differential_run(
        &host,
        &built_wasm,
        &optimized.wasm,
        &project.samples,
        project.input.bytes(),
        project.output.bytes(),
    )
    .context("validate stage: differential run")?;
    reporter.event(Event::Validated {
        samples: validated.differential_samples,
    });

    reporter.event(Event::Started(Stage::Measure));
    let variants = Variants {
        wasm: &optimized.wasm,
        native_library: &native_build.artifact,
        samples: SampleSet {
            data: &project.samples,
            input_bytes: project.input.bytes(),
            output_bytes: project.output.bytes(),
        },
        output: &project.output,
        tolerance: project.tolerance,
        cuda,
    };
    let wasm_sizes = sizes::sizes(&optimized.wasm)?;
    let measured = measure_variants(
        &host,
        &variants,
        &rustc.release,
        wasm_sizes.brotli_bytes,
        &options.timing,
    )?;
    reporter.event(Event::Measured {
        parity: &measured.parity,
        cuda: &measured.timings.cuda,
    });
    ensure_parity(&measured.parity, &measured.timings.cuda)?;

    reporter.event(Event::Started(Stage::Pack));
    let bundle_dir = options.out_dir.join(project.bundle_name());
    let wasm_file = BundleFile::new(format!("{}.wasm", project.name), optimized.wasm.clone());
    let native_name = native_build
        .artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("native artifact has no file name")?;
    let native_file = BundleFile {
        path: native_name,
        bytes: native_bytes,
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
            sri: &crate::fsx::sri_sha384(&wasm_file.bytes),
            bytes: wasm_file.bytes.len() as u64,
        },
        input: &project.input,
        output: &project.output,
        imports: &wasm_abi.imports,
    });
    let mut wasm_variant_files: Vec<&BundleFile> = vec![&wasm_file];
    wasm_variant_files.extend(&loader);
    wasm_variant_files.extend(&demo_page);
    let tarball = BundleFile::new(
        format!("{}-wasm32.tar.zst", project.bundle_name()),
        pack::deterministic_tar_zst(&wasm_variant_files, options.source_date_epoch)?,
    );
    let samples_file = BundleFile::new(KERNEL_SAMPLES_FILE, project.samples.clone());
    let name_map_file = name_map.as_ref().map(|map| {
        BundleFile::new(
            format!("{}{}", project.name, names::SUFFIX),
            crate::manifest::pretty_json(map).into_bytes(),
        )
    });
    let native_sizes = sizes::sizes(&native_file.bytes)?;

    let staging = fsx::StagingDir::new(&bundle_dir)?;
    let mut bundle_files = vec![
        wasm_file.clone(),
        native_file.clone(),
        tarball,
        samples_file,
    ];
    bundle_files.extend(loader);
    bundle_files.extend(demo_page);
    bundle_files.extend(name_map_file.clone());
    let files = pack::write_files(staging.path(), &bundle_files)?;
    let manifest = KernelManifest {
        schema_version: crate::manifest::SCHEMA_VERSION,
        kind: crate::manifest::kernel::KERNEL_KIND.into(),
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
        },
        profile: ProfileInfo {
            name: profile.name.clone(),
            cargo: profile.cargo.clone(),
            rustc: rustc.release.clone(),
        },
        files,
        wasm: WasmVariant {
            file: wasm_file.path.clone(),
            target: wasm_build.target.clone(),
            rustflags: wasm_build.rustflags.clone(),
            runtime_features: profile.wasm.runtime_features.clone(),
            stages: WasmStages {
                built_bytes: built_wasm.len() as u64,
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
                    walrus_version: crate::tools::WALRUS_VERSION.into(),
                },
                optimize: OptimizeInfo {
                    bytes: optimized.wasm.len() as u64,
                    level: optimized.level.clone(),
                    features: profile.wasm.runtime_features.clone(),
                    binaryen_version: crate::tools::binaryen_version(),
                    wasm_opt_crate_version: crate::tools::WASM_OPT_CRATE_VERSION.into(),
                },
                validate: ValidateInfo {
                    differential_samples: validated.differential_samples,
                },
            },
            sizes: wasm_sizes,
            imports: wasm_abi.imports.clone(),
            exports: abi::check_wasm(&optimized.wasm, &project.name)?.exports,
            name_map: name_map_file.map(|f| f.path),
        },
        native: NativeVariant {
            file: native_file.path.clone(),
            target: native_build.target.clone(),
            rustflags: native_build.rustflags.clone(),
            features: native_features,
            profile: native_profile.name.clone(),
            sizes: native_sizes,
        },
        parity: measured.parity,
        budgets: project.budgets.clone(),
        timings: measured.timings,
    };
    // Budgets name metrics and units only a manifest can check; a bad one is an input error
    // before anything is committed. Whether they pass is for `check`.
    crate::budget::check(
        &crate::manifest::metrics::metrics(&manifest),
        &manifest.budgets,
    )
    .with_context(|| {
        format!(
            "in [package.metadata.wasmpack-infer.budgets] of crate `{}`",
            project.name
        )
    })?;
    let bundle_dir = pack::commit(staging, &manifest.to_json())?;
    reporter.event(Event::Packed {
        dir: &bundle_dir,
        files: &manifest.files,
    });
    Ok(BuildOutput {
        bundle_dir,
        manifest,
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

/// Parity and timings of both variants, measured in one run.
pub struct Measured {
    pub parity: Parity,
    pub timings: Timings,
}

/// Outputs of every sample on both variants, compared.
pub struct ParityRun {
    /// WASM against the native CPU path.
    pub parity: Parity,
    /// The slower variant's cost per sample, to size watchdogs for further work.
    pub per_sample: Duration,
    /// What the native library picks when left to choose, and its own description of it.
    pub accelerator: Accelerator,
    pub device: Option<String>,
    /// WASM against CUDA, when the library picked CUDA.
    pub cuda_parity: Option<Parity>,
}

fn watchdog_limit(work: Duration) -> Duration {
    WATCHDOG_SLACK + work * 20
}

/// Runs all samples as one batch on the WASM variant (capped host) and the native one (under a
/// watchdog sized from the WASM run: native code cannot be interrupted), and compares them: on
/// the CPU path always, and on CUDA when the library picks it.
pub fn parity_run(host: &WasmHost, variants: &Variants) -> Result<ParityRun> {
    let Variants {
        wasm,
        native_library,
        samples,
        output,
        tolerance,
        cuda,
    } = variants;
    let count = samples.data.len() / samples.input_bytes;
    let mut wasm_kernel = host.load(wasm)?;
    wasm_kernel.init().context("WASM variant")?;
    let (wasm_out, wasm_took) =
        timed(|| wasm_kernel.infer(samples.data, count, samples.output_bytes));
    let wasm_out = wasm_out.context("running all samples on the WASM variant")?;

    let watchdog = Watchdog::start(
        watchdog_limit(wasm_took),
        "running the samples on the native variant".into(),
    );
    let mut copies = LibraryCopies::new(native_library)?;
    let mut cpu_kernel = copies.load_cpu()?;
    let (native_out, native_took) =
        timed(|| cpu_kernel.infer(samples.data, count, samples.output_bytes));
    let native_out = native_out.context("running all samples on the native variant")?;
    let compare = |other: &[u8]| parity::compare(&wasm_out, other, output.dtype, count, *tolerance);
    let parity = compare(&native_out);

    let (accelerator, device, cuda_parity) = if *cuda == CudaRequest::Requested {
        let mut kernel = copies.load(DeviceChoice::Auto)?;
        kernel.init().context("native variant")?;
        let (accelerator, device) = kernel.accelerator()?;
        let cuda_parity = if accelerator == Accelerator::Cuda {
            let out = kernel
                .infer(samples.data, count, samples.output_bytes)
                .context("running all samples on the native variant's CUDA path")?;
            Some(compare(&out))
        } else {
            None
        };
        (accelerator, device, cuda_parity)
    } else {
        let (accelerator, device) = cpu_kernel.accelerator()?;
        (accelerator, device, None)
    };
    drop(watchdog);
    Ok(ParityRun {
        parity,
        per_sample: wasm_took.max(native_took) / count.max(1) as u32,
        accelerator,
        device,
        cuda_parity,
    })
}

pub fn measure_variants(
    host: &WasmHost,
    variants: &Variants,
    rustc_release: &str,
    download_bytes: u64,
    plan: &TimingPlan,
) -> Result<Measured> {
    let run = parity_run(host, variants)?;
    let (samples, native_library) = (&variants.samples, variants.native_library);
    let _watchdog = Watchdog::start(
        watchdog_limit(run.per_sample * plan.sample_inferences() as u32 * 2),
        "timing the variants".into(),
    );
    let wasm_timings =
        timing::measure_wasm(variants.wasm, samples, plan).context("measuring the WASM variant")?;
    let mut copies = LibraryCopies::new(native_library)?;
    let native_timings = timing::measure_native(&mut copies, DeviceChoice::Cpu, samples, plan)
        .context("measuring the native variant")?;
    let cuda_timings = match run.accelerator {
        Accelerator::Cuda => Some(
            timing::measure_native(&mut copies, DeviceChoice::Auto, samples, plan)
                .context("measuring the native variant's CUDA path")?,
        ),
        Accelerator::Cpu => None,
    };
    let runtime_fit = timing::runtime_fit(
        &wasm_timings,
        &native_timings,
        cuda_timings.as_ref().map(|t| t.steady.as_slice()),
        download_bytes,
    );
    let reason = match (&variants.cuda, run.accelerator) {
        (_, Accelerator::Cuda) => None,
        (CudaRequest::NotRequested(why), _) => Some(why.clone()),
        (CudaRequest::Requested, Accelerator::Cpu) => Some(match &run.device {
            Some(device) => device
                .strip_prefix("cpu (")
                .and_then(|d| d.strip_suffix(')'))
                .unwrap_or(device)
                .to_string(),
            None => "the kernel does not say which device it uses (no `wpi_device_info`)".into(),
        }),
    };
    let cuda = CudaRun {
        requested: variants.cuda == CudaRequest::Requested,
        accelerator: run.accelerator,
        device: run.device,
        reason,
        cold: cuda_timings.as_ref().map(|t| t.cold),
        steady: cuda_timings.map(|t| t.steady).unwrap_or_default(),
        parity: run.cuda_parity,
    };
    Ok(Measured {
        parity: run.parity,
        timings: Timings {
            environment: environment::describe(rustc_release),
            wasm: wasm_timings,
            native: native_timings,
            cuda,
            runtime_fit,
            browser: None,
        },
    })
}

/// Fails on a parity mismatch, naming the first sample that differs.
fn ensure_parity(parity: &Parity, cuda: &CudaRun) -> Result<()> {
    if !parity.passed {
        bail!(parity_failure(parity, "native"));
    }
    if let Some(cuda_parity) = cuda.parity.as_ref().filter(|p| !p.passed) {
        bail!(parity_failure(cuda_parity, "CUDA"));
    }
    Ok(())
}

fn parity_failure(parity: &Parity, other: &str) -> String {
    let first = parity.mismatched_samples[0];
    format!(
        "the WASM and {other} variants disagree on {} of {} samples (first: sample {first}, \
         max |difference| {:.3e}, argmax {} vs {}); tolerance is {:e}",
        parity.mismatched_samples.len(),
        parity.samples,
        parity.per_sample.max_abs_diff[first],
        parity.per_sample.argmax_wasm[first],
        parity.per_sample.argmax_native[first],
        parity.tolerance,
    )
}

/// Re-measures a bundle written by [`build`] and rewrites its manifest's parity and timings.
pub fn remeasure(
    bundle_dir: &Path,
    plan: &TimingPlan,
    reporter: &mut dyn Reporter,
) -> Result<KernelManifest> {
    let bundle = Bundle::open(bundle_dir)?;
    bundle.ensure_intact()?;
    let mut manifest = bundle.manifest.clone();
    let wasm = bundle.read(&manifest.wasm.file)?;
    let samples_data = bundle.read(&manifest.kernel.samples.file)?;
    reporter.event(Event::Started(Stage::Measure));
    let rustc = crate::tools::rustc_info()
        .map(|r| r.release)
        .unwrap_or_else(|_| manifest.profile.rustc.clone());
    let native_library = bundle.path_of(&manifest.native.file)?;
    let measured = measure_variants(
        &WasmHost::with_call_time_limit(plan.call_time_limit)?,
        &bundle.variants(&wasm, &native_library, &samples_data),
        &rustc,
        manifest.wasm.sizes.brotli_bytes,
        plan,
    )?;
    reporter.event(Event::Measured {
        parity: &measured.parity,
        cuda: &measured.timings.cuda,
    });
    manifest.parity = measured.parity;
    manifest.timings = measured.timings;
    fsx::write_atomic(
        &bundle_dir.join(crate::manifest::FILE_NAME),
        manifest.to_json().as_bytes(),
    )?;
    ensure_parity(&manifest.parity, &manifest.timings.cuda)?;
    Ok(manifest)
}

/// Measures a bundle's WASM variant in headless Chromium (`measure --browser`) and records it in
/// the manifest as `timings.browser`, with the browser's outputs checked against wasmtime's.
pub fn measure_browser(
    bundle_dir: &Path,
    chromium: &Path,
    plan: &BrowserPlan,
    call_time_limit: std::time::Duration,
    reporter: &mut dyn Reporter,
) -> Result<KernelManifest> {
    let bundle = Bundle::open(bundle_dir)?;
    bundle.ensure_intact()?;
    let mut manifest = bundle.manifest.clone();
    reporter.event(Event::Started(Stage::Measure));
    let run = browser::measure_kernel(chromium, bundle_dir, &manifest.kernel.samples.file, plan)
        .context("measuring the WASM variant in Chromium")?;
    let wasm = bundle.read(&manifest.wasm.file)?;
    let samples = bundle.read(&manifest.kernel.samples.file)?;
    let count = manifest.kernel.samples.count;
    let mut kernel = WasmHost::with_call_time_limit(call_time_limit)?.load(&wasm)?;
    kernel.init().context("WASM variant")?;
    let expected = kernel
        .infer(&samples, count, manifest.kernel.output.bytes())
        .context("running all samples on the WASM variant in wasmtime")?;
    let parity = parity::compare(
        &expected,
        &run.outputs,
        manifest.kernel.output.dtype,
        count,
        manifest.parity.tolerance,
    );
    let mut timings = run.timings;
    let first_batch = timings.steady.first();
    reporter.event(Event::BrowserMeasured {
        browser: &timings.environment.browser,
        load_us: timings.load.median_us,
        snapshot_load_us: None,
        steady_us: first_batch.map(|s| s.latency.median_us),
        batch: first_batch.map(|s| s.batch),
        reference: "wasmtime",
        parity: &parity,
    });
    let passed = parity.passed;
    let first_mismatch = parity.mismatched_samples.first().copied();
    timings.parity = Some(parity);
    manifest.timings.browser = Some(timings);
    fsx::write_atomic(
        &bundle_dir.join(crate::manifest::FILE_NAME),
        manifest.to_json().as_bytes(),
    )?;
    if !passed {
        bail!(
            "in Chromium the WASM variant computed different outputs than in wasmtime (first at sample {})",
            first_mismatch.unwrap_or(0)
        );
    }
    Ok(manifest)
}
