//! Measuring a kernel's variants: parity of every sample, then timings of WASM, native CPU and
//! CUDA in one run; and re-measuring a built bundle (`measure`), also in the hosts its loaders
//! serve (`--browser`, `--python-host`, `--node`).

use crate::bundle::Bundle;
use crate::exit::input_error;
use crate::fsx;
use crate::manifest::fit::FitThresholds;
use crate::manifest::kernel::{
    Accelerator, CudaRun, HostTimings, KernelManifest, RuntimeFit, Timings,
};
use crate::manifest::variant::{SimdLevel, VariantTimings};
use crate::manifest::{Parity, Sizes};
use crate::measure::browser::{self, BrowserPlan};
use crate::measure::fit::{self, FitInputs, PageMeasured};
use crate::measure::host::{self, Host, HostKind, HostPlan};
use crate::measure::native::{DeviceChoice, LibraryCopies};
use crate::measure::runner::KernelRunner;
use crate::measure::stats::timed;
use crate::measure::timing::{self, TimingPlan};
use crate::measure::variants::{CudaRequest, Variants};
use crate::measure::wasm::WasmHost;
use crate::measure::watchdog::Watchdog;
use crate::measure::{environment, parity};
use crate::report::{Event, Reporter, Stage};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::Duration;

/// Added to every watchdog limit, so a busy machine does not fail a healthy kernel.
const WATCHDOG_SLACK: Duration = Duration::from_secs(60);

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
    /// Compiling the WASM module once (tract's 14 MB take half a minute), likewise.
    pub compile: Duration,
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
    let (wasm_kernel, compile) = timed(|| host.load(wasm));
    let mut wasm_kernel = wasm_kernel?;
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
        compile,
        accelerator,
        device,
        cuda_parity,
    })
}

/// Parity and timings of the primary WASM variant, native and CUDA; and each further
/// feature-level variant's compile and steady latency (`others`, beside the primary `level`).
pub fn measure_variants(
    host: &WasmHost,
    variants: &Variants,
    (level, others): (SimdLevel, &[(SimdLevel, &[u8])]),
    rustc_release: &str,
    wasm_sizes: &Sizes,
    thresholds: FitThresholds,
    plan: &TimingPlan,
) -> Result<Measured> {
    let run = parity_run(host, variants)?;
    let (samples, native_library) = (&variants.samples, variants.native_library);
    // Both variants' inferences, and the module compiled as often as the plan times it (plus
    // the precompile): a multi-megabyte module spends more time compiling than inferring.
    let compiles = plan.compile_runs as u32 + 1;
    let modules = others.len() as u32 + 1;
    let _watchdog = Watchdog::start(
        watchdog_limit(
            run.per_sample * plan.sample_inferences() as u32 * (modules + 1)
                + run.compile * compiles * modules,
        ),
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
    let runtime_fit = fit::runtime_fit(&FitInputs {
        wasm: &wasm_timings,
        native: &native_timings,
        cuda: cuda_timings.as_ref().map(|t| t.steady.as_slice()),
        wasm_sizes,
        thresholds,
        page: None,
        plugin_host: None,
    });
    let mut variant_timings = vec![VariantTimings {
        level,
        compile: wasm_timings.compile,
        over_native: fit::steady_ratios(&wasm_timings.steady, &native_timings),
        steady: wasm_timings.steady.clone(),
    }];
    for &(other, wasm) in others {
        let (compile, steady) = timing::measure_wasm_steady(wasm, samples, plan)
            .with_context(|| format!("measuring the {other} variant"))?;
        variant_timings.push(VariantTimings {
            level: other,
            compile,
            over_native: fit::steady_ratios(&steady, &native_timings),
            steady,
        });
    }
    variant_timings.sort_by_key(|t| t.level);
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
            plugin_host: None,
            node: None,
            variants: variant_timings,
            stages: Vec::new(),
        },
    })
}

/// Fails on a parity mismatch, naming the first sample that differs.
pub(crate) fn ensure_parity(parity: &Parity, cuda: &CudaRun) -> Result<()> {
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

/// Re-measures a bundle written by [`build`](crate::kernel::pipeline::build) and rewrites its manifest's parity and timings.
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
    let others = manifest
        .wasm
        .variants
        .iter()
        .filter(|v| !v.primary)
        .map(|v| Ok((v.level, bundle.read(&v.file)?)))
        .collect::<Result<Vec<_>>>()?;
    let others: Vec<(SimdLevel, &[u8])> = others
        .iter()
        .map(|(level, wasm)| (*level, wasm.as_slice()))
        .collect();
    let measured = measure_variants(
        &WasmHost::with_call_time_limit(plan.call_time_limit)?,
        &bundle.variants(&wasm, &native_library, &samples_data),
        (manifest.wasm.primary_level(), &others),
        &rustc,
        &manifest.wasm.sizes,
        manifest.timings.runtime_fit.thresholds,
        plan,
    )?;
    reporter.event(Event::Measured {
        parity: &measured.parity,
        cuda: &measured.timings.cuda,
    });
    manifest.parity = measured.parity;
    let stages = std::mem::take(&mut manifest.timings.stages);
    manifest.timings = Timings {
        stages,
        ..measured.timings
    };
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
    call_time_limit: Duration,
    reporter: &mut dyn Reporter,
) -> Result<KernelManifest> {
    let bundle = Bundle::open(bundle_dir)?;
    bundle.ensure_intact()?;
    let mut manifest = bundle.manifest.clone();
    reporter.event(Event::Started(Stage::Measure));
    let run = browser::measure_kernel(chromium, bundle_dir, &manifest.kernel.samples.file, plan)
        .context("measuring the WASM variant in Chromium")?;
    let parity = against_wasmtime(&bundle, run.timings.variant, &run.outputs, call_time_limit)?;
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
    timings.parity = Some(parity.clone());
    // Now that a page was measured, the page verdict judges what it waited for.
    manifest.timings.browser = Some(timings);
    write_rejudged(bundle_dir, &mut manifest, &parity, "in Chromium")?;
    Ok(manifest)
}

/// Outputs of every sample from the bundle's module at `level` (the primary when the bundle
/// ships no such variant) in wasmtime from Rust, compared with `outputs`, which another host
/// computed on the same module.
fn against_wasmtime(
    bundle: &Bundle,
    level: Option<SimdLevel>,
    outputs: &[u8],
    call_time_limit: Duration,
) -> Result<Parity> {
    let manifest = &bundle.manifest;
    let file = level
        .and_then(|level| manifest.wasm.variants.iter().find(|v| v.level == level))
        .map_or(&manifest.wasm.file, |v| &v.file);
    let wasm = bundle.read(file)?;
    let samples = &manifest.kernel.samples;
    let samples_data = bundle.read(&samples.file)?;
    let mut kernel = WasmHost::with_call_time_limit(call_time_limit)?.load(&wasm)?;
    kernel.init().context("WASM variant")?;
    let expected = kernel
        .infer(&samples_data, samples.count, manifest.kernel.output.bytes())
        .context("running all samples on the WASM variant in wasmtime")?;
    Ok(parity::compare(
        &expected,
        outputs,
        manifest.kernel.output.dtype,
        samples.count,
        manifest.parity.tolerance,
    ))
}

/// Writes `manifest` with its verdict judged again on what was just measured, then fails when the
/// host (`where`, "in Chromium") computed different outputs than wasmtime: the figures stay on
/// record beside the failure.
fn write_rejudged(
    bundle_dir: &Path,
    manifest: &mut KernelManifest,
    parity: &Parity,
    host: &str,
) -> Result<()> {
    manifest.timings.runtime_fit = rejudge(manifest);
    fsx::write_atomic(
        &bundle_dir.join(crate::manifest::FILE_NAME),
        manifest.to_json().as_bytes(),
    )?;
    if !parity.passed {
        bail!(
            "{host} the WASM variant computed different outputs than in wasmtime from Rust (first at sample {})",
            parity.mismatched_samples.first().copied().unwrap_or(0)
        );
    }
    Ok(())
}

/// The runtime-fit verdict again, from the manifest's timings and whatever was measured after
/// `build`: a browser page's first result, a Python host's boundary.
fn rejudge(manifest: &KernelManifest) -> RuntimeFit {
    let t = &manifest.timings;
    fit::runtime_fit(&FitInputs {
        wasm: &t.wasm,
        native: &t.native,
        cuda: (!t.cuda.steady.is_empty()).then_some(t.cuda.steady.as_slice()),
        wasm_sizes: &manifest.wasm.sizes,
        thresholds: t.runtime_fit.thresholds,
        page: t.browser.as_ref().and_then(|b| {
            Some(PageMeasured {
                first_result_us: b.load.median_us + b.first_inference.median_us,
                steady_us: b.steady.iter().min_by_key(|s| s.batch)?.latency.median_us,
            })
        }),
        plugin_host: t.plugin_host.as_ref().map(|host| {
            // wasmtime from Rust ran the level the Python host loaded: its compute.
            let in_rust = t
                .variants
                .iter()
                .find(|v| v.level == host.variant)
                .map_or(t.wasm.steady.as_slice(), |v| v.steady.as_slice());
            (host, in_rust)
        }),
    })
}

/// Measures a bundle's WASM variant in `host` through the bundle's own loader
/// (`measure --python-host`, `measure --node`) and records it as `timings.plugin_host` or
/// `timings.node`, with the host's outputs checked against wasmtime's from Rust on the same
/// module.
pub fn measure_in_host(
    bundle_dir: &Path,
    host: &Host,
    plan: &HostPlan,
    reporter: &mut dyn Reporter,
) -> Result<KernelManifest> {
    let bundle = Bundle::open(bundle_dir)?;
    bundle.ensure_intact()?;
    let mut manifest = bundle.manifest.clone();
    let loader = host.kind.loader();
    if !manifest.files.iter().any(|f| f.path == loader) {
        return Err(input_error(format!(
            "{} has no {loader} (built before bundles shipped one): build it again",
            bundle_dir.display()
        )));
    }
    reporter.event(Event::Started(Stage::Measure));
    let samples = &manifest.kernel.samples;
    let run = host::measure_kernel(host, bundle_dir, &samples.file, samples.count, plan)
        .with_context(|| format!("measuring the WASM variant through {loader}"))?;
    let parity = against_wasmtime(
        &bundle,
        Some(run.variant),
        &run.outputs,
        plan.call_time_limit,
    )?;
    let timings = HostTimings {
        runtime: run.runtime,
        variant: run.variant,
        load: run.load,
        first_inference: run.first_inference,
        steady: run.steady,
        parity: parity.clone(),
    };
    reporter.event(Event::HostMeasured {
        host: host.kind.label(),
        timings: &timings,
    });
    *match host.kind {
        HostKind::Python => &mut manifest.timings.plugin_host,
        HostKind::Node => &mut manifest.timings.node,
    } = Some(timings);
    write_rejudged(
        bundle_dir,
        &mut manifest,
        &parity,
        &format!("through {loader}"),
    )?;
    Ok(manifest)
}
