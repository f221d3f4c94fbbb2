//! Measuring a Python bundle: stock Pyodide, the bundle and native CPython under the same
//! samples, the bytes each ships, and what the comparison says (the runtime fit); and, for
//! `measure --browser`, the bundle in Chromium. The pipeline calls these; none prints.

use crate::bundle;
use crate::bundle::layout::{
    LOADER_FILE, PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE, python_runtime_path,
};
use crate::fsx;
use crate::manifest::fit::FitThresholds;
use crate::manifest::python::SteadyBlocks;
use crate::manifest::python::{
    BootPhases, BootSeries, FileSizes, HotFunction, NativeRun, PyodideBrowserTimings, PyodideRun,
    PythonFit, PythonManifest, ShippedSizes, SnapshotInfo, TimeAttribution,
};
use crate::manifest::{Distribution, Sizes, TransferBreakdown};
use crate::measure::browser::{self, BrowserPlan};
use crate::measure::fit::{self, PageMeasured, PythonFitInputs};
use crate::measure::stats::{self, ratio, round3};
use crate::measure::{environment, parity, sizes};
use crate::python::deps;
use crate::python::run::{self, AppRun, Boot, Mode, RunConfig};
use crate::report::{Event, Reporter, Stage};
use crate::units::format_bytes;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub(crate) fn steady(us: &[f64]) -> Distribution {
    let durations: Vec<Duration> = us
        .iter()
        .map(|u| Duration::from_secs_f64(u.max(0.0) / 1e6))
        .collect();
    stats::distribution(&durations)
}

pub(crate) fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// What one interleaved boot timed (`pipeline::interleaved_boots`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootFigures {
    /// Boot + import + first inference.
    pub cold_start_ms: f64,
    /// The median per sample of one steady pass over every sample after it.
    pub steady_us: f64,
    pub phases: Option<BootPhases>,
}

/// Each phase's median over `runs`; `None` unless there are runs and every one timed its
/// phases.
fn median_phases(runs: &[Option<BootPhases>]) -> Option<BootPhases> {
    let runs: Vec<BootPhases> = runs.iter().copied().collect::<Option<_>>()?;
    let median = |pick: fn(&BootPhases) -> f64| {
        let values: Vec<f64> = runs.iter().map(pick).collect();
        BootSeries::of(&values).map_or(0.0, |series| series.median_ms)
    };
    (!runs.is_empty()).then(|| BootPhases {
        snapshot_read_ms: median(|p| p.snapshot_read_ms),
        fetch_ms: median(|p| p.fetch_ms),
        compile_ms: median(|p| p.compile_ms),
        instantiate_ms: median(|p| p.instantiate_ms),
        restore_ms: median(|p| p.restore_ms),
        startup_ms: median(|p| p.startup_ms),
        packages_ms: median(|p| p.packages_ms),
    })
}

/// `run`'s figures, with the cold starts and steady blocks of `boots` (interleaved boots of
/// their own) when there are any: the cold start is then their median.
pub(crate) fn pyodide_run_with_boots(run: &AppRun, boots: &[BootFigures]) -> PyodideRun {
    let mut figures = pyodide_run(run);
    let cold: Vec<f64> = boots.iter().map(|b| b.cold_start_ms).collect();
    if let Some(series) = BootSeries::of(&cold) {
        figures.cold_start_ms = series.median_ms;
        figures.boots = Some(series);
    }
    let steady: Vec<f64> = boots.iter().map(|b| b.steady_us).collect();
    figures.steady_blocks = SteadyBlocks::of(&steady);
    if !boots.is_empty() {
        figures.boot_phases = median_phases(&boots.iter().map(|b| b.phases).collect::<Vec<_>>());
    }
    figures
}

pub(crate) fn pyodide_run(run: &AppRun) -> PyodideRun {
    PyodideRun {
        boot_ms: round_ms(run.boot_ms),
        import_ms: round_ms(run.import_ms),
        first_inference_ms: round_ms(run.first_inference_ms),
        cold_start_ms: round_ms(run.boot_ms + run.import_ms + run.first_inference_ms),
        boots: None,
        steady: steady(&run.steady_us),
        steady_blocks: None,
        secondary_load_ms: run.secondary_ms.map(round_ms),
        boundary: run
            .boundary_us
            .map(|[js_to_python, entry, python_to_js]| TransferBreakdown {
                upload_us: round3(js_to_python),
                compute_us: round3(entry),
                download_us: round3(python_to_js),
            }),
        boot_phases: median_phases(&[run.boot_phases]),
    }
}

/// Runs the app in a fresh venv of `python`, so the user's site-packages stay out.
/// `accelerated_modules`: the native-only modules whose import the run reports.
pub(crate) fn measure_native(
    python: &Path,
    paths: &[&std::path::Path],
    config: &RunConfig,
    accelerated_modules: &[String],
) -> Result<(NativeRun, AppRun)> {
    let (_venv, python) = deps::venv(python)?;
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
        attribution: run.attribution.as_ref().map(|a| TimeAttribution {
            calls: a.calls,
            python_share: round3(a.python_share),
            c_share: round3(a.c_share),
            boundary_share: round3(a.boundary_share),
            hottest: a
                .hottest
                .iter()
                .map(|h| HotFunction {
                    function: h.function.clone(),
                    share: round3(h.share),
                })
                .collect(),
        }),
    };
    Ok((native, run))
}

/// Stock's and the bundle's bytes, file by file and in total; `deferred` (a bundle file fetched
/// only when needed) is left out of the up-front total. Each distinct content is compressed once.
/// brotli-11 of the 9.6 MB runtime takes tens of seconds, so sizes are also kept in the cache dir
/// by content hash (and tool version, which pins the compressors): the stock files never change.
pub(crate) fn shipped_sizes(
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

pub(crate) fn fit(
    stock: &PyodideRun,
    bundle: &PyodideRun,
    native: &NativeRun,
    sizes: &ShippedSizes,
    snapshot: Option<&SnapshotInfo>,
    thresholds: FitThresholds,
    browser: Option<&PyodideBrowserTimings>,
) -> PythonFit {
    let interpreter_tax = ratio(bundle.steady.median_us, native.steady.median_us);
    let cold_start_over_native = ratio(bundle.cold_start_ms, native.cold_start_ms);
    let cold_start_over_stock = ratio(bundle.cold_start_ms, stock.cold_start_ms);
    let steady_over_stock = bundle
        .steady_blocks
        .zip(stock.steady_blocks)
        .map(|(bundle, stock)| (ratio(bundle.median_us, stock.median_us), bundle.runs));
    let snapshot_cold_start_over_stock =
        snapshot.map(|s| ratio(s.run.cold_start_ms, stock.cold_start_ms));
    let boots = bundle
        .boots
        .map(|b| format!("median of {} interleaved boots; ", b.runs))
        .unwrap_or_default();
    let mut verdict = format!(
        "Pyodide runs steady inference at {interpreter_tax:.2}x native CPython; cold start {:.2} s \
         ({boots}stock {:.2} s, native {:.0} ms); ships {} brotli, {:.0} % of stock's {}",
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
    if let Some((ratio, blocks)) = steady_over_stock {
        verdict.push_str(&format!(
            "; steady {ratio:.2}x stock per sample (median of {blocks} interleaved blocks)"
        ));
    }
    if let Some(a) = &native.attribution {
        let dominant = [
            (
                a.python_share,
                "Python-level code, which the interpreter tax applies to",
            ),
            (
                a.c_share,
                "C (builtins and compiled extensions), which Pyodide runs as WASM",
            ),
            (
                a.boundary_share,
                "converting inputs and outputs at the boundary",
            ),
        ]
        .into_iter()
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(share, class)| format!("{:.0} % {class}", share * 100.0))
        .unwrap_or_default();
        verdict.push_str(&format!("; native CPython's time is mostly {dominant}"));
    }
    let boundary_share = bundle.boundary.and_then(|b| {
        let total = b.upload_us + b.compute_us + b.download_us;
        (total > 0.0).then(|| (b.upload_us + b.download_us) / total)
    });
    if let Some(share) = boundary_share {
        verdict.push_str(&format!(
            "; in Pyodide, converting each call's input and output between JS and Python takes \
             {:.0} % of it",
            share * 100.0
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
    let deployments = fit::python_deployments(&PythonFitInputs {
        upfront_brotli_bytes: sizes.upfront.as_ref().unwrap_or(&sizes.bundle).brotli_bytes,
        bundle_gzip_bytes: sizes.bundle.gzip_bytes,
        cold_start_us: bundle.cold_start_ms * 1e3,
        snapshot: snapshot.map(|s| (s.run.cold_start_ms * 1e3, s.sizes.gzip_bytes)),
        steady_us: bundle.steady.median_us,
        interpreter_tax,
        boundary_share,
        page: browser.map(|b| PageMeasured {
            first_result_us: b.load.median_us + b.first_inference.median_us,
            steady_us: b.steady.latency.median_us,
        }),
        thresholds,
    });
    let fits: Vec<String> = deployments
        .iter()
        .map(|d| format!("{} {}", d.deployment.as_str(), d.fit.as_str()))
        .collect();
    verdict.push_str(&format!("; Pyodide fits: {}", fits.join(", ")));
    PythonFit {
        thresholds: Some(thresholds),
        deployments,
        interpreter_tax,
        cold_start_over_native,
        cold_start_over_stock,
        steady_over_stock: steady_over_stock.map(|(ratio, _)| ratio),
        snapshot_cold_start_over_stock,
        bytes_over_stock: sizes.brotli_ratio,
        upfront_bytes_over_stock: sizes.upfront_brotli_ratio,
        verdict,
    }
}

pub(crate) fn python_environment() -> crate::manifest::Environment {
    let rustc = crate::tools::rustc_info()
        .map(|r| r.release)
        .unwrap_or_default();
    let mut environment = environment::describe(&rustc);
    environment.wasm_engine = format!("Node {} (V8)", node_version());
    environment
}

pub(crate) fn node_version() -> String {
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
    let t = &manifest.timings;
    // The page verdict again, on the page's own boot and calls.
    let runtime_fit = fit(
        &t.stock,
        &t.bundle,
        &t.native,
        &manifest.sizes,
        manifest.snapshot.as_ref(),
        t.runtime_fit.thresholds.unwrap_or_default(),
        Some(&timings),
    );
    manifest.timings.runtime_fit = runtime_fit;
    manifest.timings.browser = Some(timings);
    fsx::write_atomic(&manifest_path, manifest.to_json().as_bytes())?;
    if let Some(sample) = mismatch {
        bail!(
            "in Chromium the bundle computed different outputs than in Node (first at sample {sample})"
        );
    }
    Ok(manifest)
}
