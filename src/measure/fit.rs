//! The runtime-fit verdict of a kernel build: what the WASM variant costs against native (steady
//! ratios, cold starts, bytes), which variant wins at each batch, and, per deployment shape,
//! how well WASM fits there and what to ship, judged by the [`FitThresholds`] in force.

use crate::manifest::Sizes;
use crate::manifest::fit::{Band, Deployment, DeploymentFit, Fit, FitFigure, FitThresholds};
use crate::manifest::kernel::{
    BatchFit, BatchRatio, HostTimings, NativeTimings, RuntimeFit, Steady, WasmTimings,
};
use crate::measure::stats::{ratio, round3};
use crate::units::{format_bytes, format_duration_us};

/// What the verdict is computed from: one run's timings and the shipped module's sizes.
pub struct FitInputs<'a> {
    pub wasm: &'a WasmTimings,
    pub native: &'a NativeTimings,
    /// The native library's CUDA path, when it ran.
    pub cuda: Option<&'a [Steady]>,
    pub wasm_sizes: &'a Sizes,
    pub thresholds: FitThresholds,
    /// The page measured in Chromium (`measure --browser`), judged in place of wasmtime's
    /// figures.
    pub page: Option<PageMeasured>,
    /// Calls from a Python host through `loader.py` (`measure --python-host`), when measured,
    /// with wasmtime's steady figures from Rust for the level it loaded: the plugin verdict's
    /// boundary share, in place of the copies' in wasmtime from Rust.
    pub plugin_host: Option<(&'a HostTimings, &'a [Steady])>,
}

/// A page measured in Chromium (`measure --browser`): what the browser-page verdict judges in
/// place of the figures of the hosts the build ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageMeasured {
    /// `load()` (download, integrity check, compile or boot, init) plus the first inference.
    pub first_result_us: f64,
    /// One call at the smallest batch the page timed, in steady state.
    pub steady_us: f64,
}

/// The browser-page verdict: bytes fetched before the first result, the first result and a
/// call in steady state, from the page in Chromium when it was measured, else from `built`
/// (the figures of the build's own host, `measured_in` it when not wasmtime).
fn browser_page(
    ship: &str,
    download_bytes: u64,
    page: Option<PageMeasured>,
    built: PageMeasured,
    built_in: Option<&str>,
    t: &FitThresholds,
) -> DeploymentFit {
    let (figures, measured_in) = match page {
        Some(page) => (page, Some("chromium")),
        None => (built, built_in),
    };
    let judged = |name: &str, value: f64, band: Band| {
        let figure = FitFigure::judged(name, value, band);
        match measured_in {
            Some(host) => figure.measured_in(host),
            None => figure,
        }
    };
    shape(
        Deployment::BrowserPage,
        ship.into(),
        vec![
            Some(FitFigure::judged(
                "download_bytes",
                download_bytes as f64,
                t.download_bytes,
            )),
            Some(judged(
                "first_result_us",
                figures.first_result_us,
                t.first_result_us,
            )),
            Some(judged(
                "page_steady_us",
                figures.steady_us,
                t.page_steady_us,
            )),
        ],
    )
}

/// The WASM variant's costs relative to native, from the medians of one run, and the verdict
/// per deployment.
pub fn runtime_fit(inputs: &FitInputs) -> RuntimeFit {
    let FitInputs {
        wasm, native, cuda, ..
    } = inputs;
    let steady_ratio = steady_ratios(&wasm.steady, native);
    let batches: Vec<BatchFit> = wasm
        .steady
        .iter()
        .filter_map(|w| {
            let native_cpu_us = median_at(&native.steady, w.batch)?;
            Some(batch_fit(
                w.batch,
                w.latency.median_us,
                native_cpu_us,
                cuda.and_then(|c| median_at(c, w.batch)),
            ))
        })
        .collect();
    let first_and_init = wasm.cold.init.median_us + wasm.cold.first_inference.median_us;
    let wasm_cold_start_us =
        round3(wasm.deserialize.median_us + wasm.instantiate.median_us + first_and_init);
    let wasm_cold_start_compiling_us =
        round3(wasm.compile.median_us + wasm.instantiate.median_us + first_and_init);
    let native_cold_start_us = round3(
        native.load.median_us + native.cold.init.median_us + native.cold.first_inference.median_us,
    );
    let instantiate_over_first_inference = ratio(
        wasm.instantiate.median_us,
        wasm.cold.first_inference.median_us,
    );
    let deployments = deployments(
        inputs,
        &batches,
        wasm_cold_start_us,
        wasm_cold_start_compiling_us,
    );
    let download_bytes = inputs.wasm_sizes.brotli_bytes;
    let verdict = verdict(
        &steady_ratio,
        &batches,
        &deployments,
        wasm_cold_start_us,
        native_cold_start_us,
        download_bytes,
    );
    RuntimeFit {
        steady_ratio,
        batches,
        wasm_cold_start_us,
        wasm_cold_start_compiling_us,
        native_cold_start_us,
        instantiate_over_first_inference,
        download_bytes,
        verdict,
        thresholds: inputs.thresholds,
        deployments,
    }
}

/// WASM steady medians over native's at each batch both ran, and over native's single-threaded
/// figure where native ran on more than one thread.
pub fn steady_ratios(wasm_steady: &[Steady], native: &NativeTimings) -> Vec<BatchRatio> {
    wasm_steady
        .iter()
        .filter_map(|w| {
            Some(BatchRatio {
                batch: w.batch,
                wasm_over_native: ratio(w.latency.median_us, median_at(&native.steady, w.batch)?),
                wasm_over_native_single_thread: median_at(&native.single_thread, w.batch)
                    .map(|single| ratio(w.latency.median_us, single)),
            })
        })
        .collect()
}

fn median_at(steady: &[Steady], batch: usize) -> Option<f64> {
    steady
        .iter()
        .find(|s| s.batch == batch)
        .map(|s| s.latency.median_us)
}

/// The verdict for each deployment shape, from the figures that decide it there.
fn deployments(
    inputs: &FitInputs,
    batches: &[BatchFit],
    cold_start_us: f64,
    cold_start_compiling_us: f64,
) -> Vec<DeploymentFit> {
    let t = &inputs.thresholds;
    let (Some(smallest), Some(largest)) = (batches.first(), batches.last()) else {
        return Vec::new();
    };
    let compute_tax = compute_tax(inputs.wasm, inputs.native)
        .map(|tax| FitFigure::judged("compute_tax", tax, t.compute_tax));
    // The boundary's share of a call at the smallest batch. In a Python host, all the call
    // costs beyond the same module's call in wasmtime from Rust (copies through Python buffers,
    // wasmtime-py's conversions of each argument); from Rust, the copies into and out of linear
    // memory, as the crossing itself costs nanoseconds there.
    let boundary_share = match inputs.plugin_host {
        Some((host, in_rust)) => host
            .steady
            .iter()
            .find(|s| s.batch == smallest.batch)
            .zip(in_rust.iter().find(|s| s.batch == smallest.batch))
            .map(|(python, rust)| {
                let share = 1.0 - ratio(rust.latency.median_us, python.latency.median_us);
                FitFigure::judged("boundary_share", round3(share.max(0.0)), t.boundary_share)
                    .measured_in("wasmtime-py")
            }),
        None => inputs
            .wasm
            .steady
            .iter()
            .find(|s| s.batch == smallest.batch)
            .and_then(|s| s.transfer)
            .map(|b| {
                let copies = b.upload_us + b.download_us;
                let share = ratio(copies, copies + b.compute_us);
                FitFigure::judged("boundary_share", share, t.boundary_share)
            }),
    };
    vec![
        browser_page(
            "wasm",
            inputs.wasm_sizes.brotli_bytes,
            inputs.page,
            PageMeasured {
                first_result_us: cold_start_compiling_us,
                steady_us: smallest.wasm_us,
            },
            None,
            t,
        ),
        shape(
            Deployment::EdgeFunction,
            "wasm, precompiled".into(),
            vec![
                Some(FitFigure::judged(
                    "edge_cold_start_us",
                    cold_start_us,
                    t.edge_cold_start_us,
                )),
                Some(FitFigure::judged(
                    "edge_module_gzip_bytes",
                    inputs.wasm_sizes.gzip_bytes as f64,
                    t.edge_module_gzip_bytes,
                )),
                compute_tax.clone(),
            ],
        ),
        shape(
            Deployment::SandboxedPlugin,
            "wasm".into(),
            vec![compute_tax, boundary_share],
        ),
        native_shape(
            Deployment::ServerBatch,
            "wasm",
            server_ship(batches),
            FitFigure::judged(
                "server_ratio",
                ratio(largest.wasm_us, best_native(largest)),
                t.server_ratio,
            ),
        ),
        native_shape(
            Deployment::LatencyCriticalNative,
            "wasm",
            smallest.fastest.clone(),
            FitFigure::judged(
                "latency_ratio",
                ratio(smallest.wasm_us, best_native(smallest)),
                t.latency_ratio,
            ),
        ),
    ]
}

/// One deployment judged by its figures: as weak as the weakest.
fn shape(deployment: Deployment, ship: String, figures: Vec<Option<FitFigure>>) -> DeploymentFit {
    let figures: Vec<FitFigure> = figures.into_iter().flatten().collect();
    DeploymentFit {
        deployment,
        fit: figures
            .iter()
            .map(|f| f.grade)
            .min()
            .unwrap_or(Fit::Conditional),
        ship,
        figures,
    }
}

/// Where native code can run, the WASM variant (`wasm`: "wasm", "pyodide") is worth shipping
/// only when it comes close to the fastest native path; otherwise that path (`fastest`) is what
/// to ship.
fn native_shape(
    deployment: Deployment,
    wasm: &str,
    fastest: String,
    figure: FitFigure,
) -> DeploymentFit {
    let ship = if figure.grade == Fit::Strong {
        wasm.to_string()
    } else {
        fastest
    };
    shape(deployment, ship, vec![Some(figure)])
}

/// What a Python bundle's verdict per deployment is judged from: the figures of one build.
pub struct PythonFitInputs {
    /// Brotli bytes fetched before the first inference (the whole bundle unless split).
    pub upfront_brotli_bytes: u64,
    /// The bundle gzip-compressed, as an edge platform counts a script's size.
    pub bundle_gzip_bytes: u64,
    /// Boot + import + first inference in Node, µs.
    pub cold_start_us: f64,
    /// The same booted from the memory snapshot, and the snapshot's gzip bytes, when built.
    pub snapshot: Option<(f64, u64)>,
    /// One sample in steady state in Pyodide, µs.
    pub steady_us: f64,
    /// Pyodide steady over native CPython steady.
    pub interpreter_tax: f64,
    /// Pyodide's share of a call spent converting the input and output between JS and Python.
    pub boundary_share: Option<f64>,
    /// The page measured in Chromium (`measure --browser`), judged in place of Node's figures.
    pub page: Option<PageMeasured>,
    pub thresholds: FitThresholds,
}

/// A Python bundle's verdict per deployment shape, by the same thresholds as a kernel's: the
/// interpreter tax (Pyodide over native CPython, the same code) is judged as the compute tax,
/// and where native code can run the native sibling is CPython itself.
pub fn python_deployments(inputs: &PythonFitInputs) -> Vec<DeploymentFit> {
    let t = &inputs.thresholds;
    let tax = || {
        Some(FitFigure::judged(
            "interpreter_tax",
            round3(inputs.interpreter_tax),
            t.compute_tax,
        ))
    };
    // A snapshot is worth shipping to an edge when it starts the function sooner for its bytes.
    let (edge_ship, edge_cold_us, edge_gzip) = match inputs.snapshot {
        Some((snapshot_us, snapshot_gzip)) if snapshot_us < inputs.cold_start_us => (
            "pyodide + snapshot",
            snapshot_us,
            inputs.bundle_gzip_bytes + snapshot_gzip,
        ),
        _ => ("pyodide", inputs.cold_start_us, inputs.bundle_gzip_bytes),
    };
    vec![
        browser_page(
            "pyodide",
            inputs.upfront_brotli_bytes,
            inputs.page,
            PageMeasured {
                first_result_us: inputs.cold_start_us,
                steady_us: inputs.steady_us,
            },
            Some("node"),
            t,
        ),
        shape(
            Deployment::EdgeFunction,
            edge_ship.into(),
            vec![
                Some(
                    FitFigure::judged("edge_cold_start_us", edge_cold_us, t.edge_cold_start_us)
                        .measured_in("node"),
                ),
                Some(FitFigure::judged(
                    "edge_module_gzip_bytes",
                    edge_gzip as f64,
                    t.edge_module_gzip_bytes,
                )),
                tax(),
            ],
        ),
        shape(
            Deployment::SandboxedPlugin,
            "pyodide".into(),
            vec![
                tax(),
                inputs.boundary_share.map(|share| {
                    FitFigure::judged("boundary_share", round3(share), t.boundary_share)
                }),
            ],
        ),
        native_shape(
            Deployment::ServerBatch,
            "pyodide",
            "native-cpython".into(),
            FitFigure::judged(
                "server_ratio",
                round3(inputs.interpreter_tax),
                t.server_ratio,
            ),
        ),
        native_shape(
            Deployment::LatencyCriticalNative,
            "pyodide",
            "native-cpython".into(),
            FitFigure::judged(
                "latency_ratio",
                round3(inputs.interpreter_tax),
                t.latency_ratio,
            ),
        ),
    ]
}

/// The fastest native path (CPU on its threads, or CUDA) at one batch.
fn best_native(batch: &BatchFit) -> f64 {
    batch
        .cuda_us
        .map_or(batch.native_cpu_us, |cuda| cuda.min(batch.native_cpu_us))
}

/// WASM over native on one thread, the median over the batches where a one-thread native figure
/// exists (native ran on one thread, or was timed again capped at one).
fn compute_tax(wasm: &WasmTimings, native: &NativeTimings) -> Option<f64> {
    let mut taxes: Vec<f64> = wasm
        .steady
        .iter()
        .filter_map(|w| {
            let one_thread = median_at(&native.single_thread, w.batch).or_else(|| {
                native
                    .steady
                    .iter()
                    .find(|n| n.batch == w.batch && n.threads.is_none_or(|t| t <= 1))
                    .map(|n| n.latency.median_us)
            })?;
            Some(ratio(w.latency.median_us, one_thread))
        })
        .collect();
    if taxes.is_empty() {
        return None;
    }
    taxes.sort_by(f64::total_cmp);
    Some(taxes[taxes.len() / 2])
}

/// What a batch server ships: the fastest variant at the largest batch; for CUDA, from the
/// smallest batch after which it stays the fastest.
fn server_ship(batches: &[BatchFit]) -> String {
    let Some(largest) = batches.last() else {
        return "native-cpu".into();
    };
    if largest.fastest != "cuda" {
        return largest.fastest.clone();
    }
    let from = batches
        .iter()
        .rev()
        .take_while(|b| b.fastest == "cuda")
        .last()
        .map_or(largest.batch, |b| b.batch);
    format!("cuda from batch {from}")
}

/// Which variant wins at one batch size, and by how much over each other one.
pub(crate) fn batch_fit(
    batch: usize,
    wasm_us: f64,
    native_cpu_us: f64,
    cuda_us: Option<f64>,
) -> BatchFit {
    let mut variants = vec![("wasm", wasm_us), ("native-cpu", native_cpu_us)];
    variants.extend(cuda_us.map(|us| ("cuda", us)));
    let (fastest, best) = variants
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("wasm", wasm_us));
    let margins: Vec<String> = variants
        .iter()
        .filter(|(name, _)| *name != fastest)
        .map(|(name, us)| format!("{:.2}x {name}", ratio(*us, best)))
        .collect();
    BatchFit {
        batch,
        wasm_us,
        native_cpu_us,
        cuda_us,
        fastest: fastest.to_string(),
        summary: format!("{fastest} fastest: {}", margins.join(", ")),
    }
}

fn verdict(
    steady: &[BatchRatio],
    batches: &[BatchFit],
    deployments: &[DeploymentFit],
    wasm_cold_us: f64,
    native_cold_us: f64,
    download: u64,
) -> String {
    let speed = steady
        .iter()
        .map(|r| match r.wasm_over_native_single_thread {
            Some(single) => format!(
                "{:.2}x native ({single:.2}x native on one thread) at batch {}",
                r.wasm_over_native, r.batch
            ),
            None => format!("{:.2}x native at batch {}", r.wasm_over_native, r.batch),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "WASM steady inference runs at {speed}; cold start {} (precompiled) vs {} native; {} to download (brotli)",
        format_duration_us(wasm_cold_us),
        format_duration_us(native_cold_us),
        format_bytes(download)
    );
    let cuda_wins: Vec<String> = batches
        .iter()
        .filter(|b| b.cuda_us.is_some())
        .map(|b| format!("batch {}: {}", b.batch, b.summary))
        .collect();
    if !cuda_wins.is_empty() {
        text.push_str(&format!("; with CUDA, {}", cuda_wins.join("; ")));
    }
    if !deployments.is_empty() {
        let fits: Vec<String> = deployments
            .iter()
            .map(|d| format!("{} {}", d.deployment.as_str(), d.fit.as_str()))
            .collect();
        text.push_str(&format!("; WASM fits: {}", fits.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Distribution;
    use crate::manifest::TransferBreakdown;
    use crate::manifest::kernel::ColdStart;

    fn dist(median_us: f64) -> Distribution {
        Distribution {
            runs: 5,
            median_us,
            p95_us: median_us,
            min_us: median_us,
        }
    }

    fn steady(batch: usize, median_us: f64, threads: Option<u32>) -> Steady {
        Steady {
            batch,
            latency: dist(median_us),
            samples_per_second: 0.0,
            transfer: None,
            threads,
        }
    }

    fn cold() -> ColdStart {
        ColdStart {
            init: dist(100.0),
            first_inference: dist(50.0),
        }
    }

    fn sizes(brotli_bytes: u64, gzip_bytes: u64) -> Sizes {
        Sizes {
            raw_bytes: gzip_bytes * 2,
            zstd_bytes: gzip_bytes,
            gzip_bytes,
            brotli_bytes,
        }
    }

    /// A small kernel: WASM 2x native at batch 1, a fifth of that call in copies; at batch 256
    /// 1.2x native on two threads and 0.8x native capped at one.
    fn timings() -> (WasmTimings, NativeTimings) {
        let mut batch_one = steady(1, 10.0, None);
        batch_one.transfer = Some(TransferBreakdown {
            upload_us: 1.0,
            compute_us: 8.0,
            download_us: 1.0,
        });
        let wasm = WasmTimings {
            compile: dist(20_000.0),
            deserialize: dist(500.0),
            instantiate: dist(50.0),
            cold: cold(),
            steady: vec![batch_one, steady(256, 1200.0, None)],
        };
        let native = NativeTimings {
            load: dist(300.0),
            cold: cold(),
            steady: vec![steady(1, 5.0, Some(1)), steady(256, 1000.0, Some(2))],
            single_thread: vec![steady(256, 1500.0, Some(1))],
        };
        (wasm, native)
    }

    fn fit_of(fit: &RuntimeFit, deployment: Deployment) -> &DeploymentFit {
        fit.deployments
            .iter()
            .find(|d| d.deployment == deployment)
            .unwrap()
    }

    #[test]
    fn each_deployment_is_judged_by_its_own_figures() {
        let (wasm, native) = timings();
        let fit = runtime_fit(&FitInputs {
            wasm: &wasm,
            native: &native,
            cuda: None,
            wasm_sizes: &sizes(200 * 1024, 300 * 1024),
            thresholds: FitThresholds::default(),
            page: None,
            plugin_host: None,
        });
        let page = fit_of(&fit, Deployment::BrowserPage);
        assert_eq!(page.fit, Fit::Strong, "{page:?}");
        let names: Vec<&str> = page.figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["download_bytes", "first_result_us", "page_steady_us"]
        );
        // compile 20 ms + instantiate + init + first inference.
        assert_eq!(page.figures[1].value, 20_200.0);

        // Tax: 2.0 at batch 1 (native on one thread), 0.8 at 256 against the capped run.
        let plugin = fit_of(&fit, Deployment::SandboxedPlugin);
        assert_eq!(plugin.figures[0].name, "compute_tax");
        assert_eq!(plugin.figures[0].value, 2.0);
        assert_eq!(plugin.figures[0].grade, Fit::Conditional);
        assert_eq!(plugin.figures[1].name, "boundary_share");
        assert_eq!(plugin.figures[1].value, 0.2);
        assert_eq!(plugin.fit, Fit::Conditional);

        let server = fit_of(&fit, Deployment::ServerBatch);
        assert_eq!(server.figures[0].value, 1.2);
        assert_eq!(server.fit, Fit::Strong);
        // Close enough to native on its two threads: WASM is fine to ship there.
        assert_eq!(server.ship, "wasm");

        let latency = fit_of(&fit, Deployment::LatencyCriticalNative);
        assert_eq!(latency.figures[0].value, 2.0);
        assert_eq!(latency.fit, Fit::Conditional);
        assert_eq!(latency.ship, "native-cpu");
        assert!(
            fit.verdict
                .contains("WASM fits: browser page strong, edge function conditional"),
            "{}",
            fit.verdict
        );
    }

    #[test]
    fn the_weakest_figure_decides_and_thresholds_move_it() {
        let (wasm, native) = timings();
        let big = sizes(20 * 1024 * 1024, 30 * 1024 * 1024);
        let inputs = |thresholds| FitInputs {
            wasm: &wasm,
            native: &native,
            cuda: None,
            wasm_sizes: &big,
            thresholds,
            page: None,
            plugin_host: None,
        };
        let fit = runtime_fit(&inputs(FitThresholds::default()));
        assert_eq!(fit_of(&fit, Deployment::BrowserPage).fit, Fit::Weak);
        assert_eq!(fit_of(&fit, Deployment::EdgeFunction).fit, Fit::Weak);

        let mut generous = FitThresholds::default();
        generous.download_bytes.weak_above = 64.0 * 1024.0 * 1024.0;
        let fit = runtime_fit(&inputs(generous));
        assert_eq!(fit_of(&fit, Deployment::BrowserPage).fit, Fit::Conditional);
        assert_eq!(fit.thresholds, generous);

        // A page measured in Chromium decides the first result and the steady call, and says so.
        let fit = runtime_fit(&FitInputs {
            page: Some(PageMeasured {
                first_result_us: 2e6,
                steady_us: 20e3,
            }),
            ..inputs(generous)
        });
        let page = fit_of(&fit, Deployment::BrowserPage);
        let (first, steady) = (&page.figures[1], &page.figures[2]);
        assert_eq!((first.value, first.grade), (2e6, Fit::Weak));
        assert_eq!((steady.value, steady.grade), (20e3, Fit::Conditional));
        for figure in [first, steady] {
            assert_eq!(figure.measured_in.as_deref(), Some("chromium"));
        }

        // A Python host's calls decide the plugin's boundary: all they add over the same module's
        // calls in wasmtime from Rust, here nine tenths at the smallest batch.
        let mut python_steady = wasm.steady.clone();
        for steady in &mut python_steady {
            steady.latency.median_us *= 10.0;
        }
        let output = 0f32.to_le_bytes();
        let host = HostTimings {
            runtime: "wasmtime-py".into(),
            variant: crate::manifest::variant::SimdLevel::Simd128,
            load: wasm.steady[0].latency,
            first_inference: wasm.steady[0].latency,
            steady: python_steady,
            parity: crate::measure::parity::compare(
                &output,
                &output,
                crate::manifest::Dtype::F32,
                1,
                1e-5,
            ),
        };
        let fit = runtime_fit(&FitInputs {
            plugin_host: Some((&host, &wasm.steady)),
            ..inputs(generous)
        });
        let boundary = &fit_of(&fit, Deployment::SandboxedPlugin).figures[1];
        assert_eq!(boundary.name, "boundary_share");
        assert_eq!((boundary.value, boundary.grade), (0.9, Fit::Weak));
        assert_eq!(boundary.measured_in.as_deref(), Some("wasmtime-py"));
    }

    #[test]
    fn a_batch_server_ships_cuda_from_where_it_stays_fastest() {
        let batches = [
            batch_fit(1, 10.0, 5.0, Some(40.0)),
            batch_fit(16, 100.0, 50.0, Some(45.0)),
            batch_fit(256, 1000.0, 800.0, Some(900.0)),
            batch_fit(4096, 9000.0, 6000.0, Some(500.0)),
        ];
        assert_eq!(server_ship(&batches), "cuda from batch 4096");
        assert_eq!(server_ship(&batches[..2]), "cuda from batch 16");
        assert_eq!(server_ship(&batches[..1]), "native-cpu");
    }

    #[test]
    fn batch_fit_names_the_fastest_variant_and_its_margins() {
        let fit = batch_fit(4096, 9000.0, 6000.0, Some(500.0));
        assert_eq!(fit.fastest, "cuda");
        assert_eq!(fit.summary, "cuda fastest: 18.00x wasm, 12.00x native-cpu");
        let fit = batch_fit(1, 3.0, 2.0, Some(40.0));
        assert_eq!(fit.fastest, "native-cpu");
        assert_eq!(fit.summary, "native-cpu fastest: 1.50x wasm, 20.00x cuda");
        assert_eq!(
            batch_fit(16, 1.0, 2.0, None).summary,
            "wasm fastest: 2.00x native-cpu"
        );
    }

    /// A Python bundle that boots in seconds and runs at 1.8x native CPython: the page waits too
    /// long for its first result, the edge ships the snapshot because it starts sooner, and
    /// where native code runs, native CPython is what to ship.
    #[test]
    fn a_python_bundle_is_judged_per_deployment_with_cpython_as_native() {
        let inputs = PythonFitInputs {
            upfront_brotli_bytes: 2_000_000,
            bundle_gzip_bytes: 3_000_000,
            cold_start_us: 3_000_000.0,
            snapshot: Some((600_000.0, 5_000_000)),
            steady_us: 300.0,
            interpreter_tax: 1.8,
            boundary_share: Some(0.1),
            page: None,
            thresholds: FitThresholds::default(),
        };
        let deployments = python_deployments(&inputs);
        let by = |d: Deployment| deployments.iter().find(|f| f.deployment == d).unwrap();
        let page = by(Deployment::BrowserPage);
        assert_eq!(page.fit, Fit::Weak, "{page:?}");
        assert_eq!(page.figures[1].measured_in.as_deref(), Some("node"));
        let edge = by(Deployment::EdgeFunction);
        assert_eq!(edge.ship, "pyodide + snapshot");
        assert_eq!(edge.figures[0].value, 600_000.0);
        assert_eq!(edge.figures[1].value, 8_000_000.0, "bundle and snapshot");
        let plugin = by(Deployment::SandboxedPlugin);
        assert_eq!(plugin.figures[0].name, "interpreter_tax");
        assert_eq!(plugin.fit, Fit::Conditional, "{plugin:?}");
        assert_eq!(by(Deployment::ServerBatch).ship, "native-cpython");
        assert_eq!(by(Deployment::LatencyCriticalNative).ship, "native-cpython");

        // Without a snapshot, or with one that starts no sooner, the edge ships the bundle alone.
        let plain = python_deployments(&PythonFitInputs {
            snapshot: Some((4_000_000.0, 5_000_000)),
            interpreter_tax: 1.1,
            ..inputs
        });
        let edge = plain
            .iter()
            .find(|f| f.deployment == Deployment::EdgeFunction)
            .unwrap();
        assert_eq!(edge.ship, "pyodide");
        assert_eq!(edge.figures[1].value, 3_000_000.0);
        let server = plain
            .iter()
            .find(|f| f.deployment == Deployment::ServerBatch)
            .unwrap();
        assert_eq!(server.ship, "pyodide", "close enough to native: {server:?}");

        // Measured in Chromium, a page that has its first result in 80 ms is strong there.
        let measured = python_deployments(&PythonFitInputs {
            page: Some(PageMeasured {
                first_result_us: 80e3,
                steady_us: 250.0,
            }),
            upfront_brotli_bytes: 900_000,
            ..inputs
        });
        let page = &measured[0];
        assert_eq!(page.deployment, Deployment::BrowserPage);
        assert_eq!(page.fit, Fit::Strong, "{page:?}");
        assert_eq!(page.figures[1].measured_in.as_deref(), Some("chromium"));
    }
}
