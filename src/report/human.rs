//! Human output: one line per stage on stderr (with a spinner on a terminal), and a table
//! comparing the variants.

use super::{Event, Reporter, Stage};
use crate::manifest::fit::{DeploymentFit, Fit, FitFigure};
use crate::manifest::kernel::{
    Accelerator, BrowserTimings, CudaRun, HostTimings, KernelManifest, ModelEngine, ModelSource,
    Steady,
};
use crate::manifest::variant::{FeatureVariant, SimdLevel};
use crate::manifest::{Distribution, Parity, TransferBreakdown};
use crate::units::format_duration_us;
use crate::units::{format_bytes, format_change};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::time::Duration;

pub struct Human {
    spinner: Option<ProgressBar>,
    show_progress: bool,
}

impl Human {
    /// `show_progress`: draw a spinner while a stage runs (only on a terminal, never under CI).
    pub fn new(show_progress: bool) -> Self {
        Self {
            spinner: None,
            show_progress,
        }
    }

    fn line(&mut self, stage: Stage, text: &str) {
        let line = format!("{:>8}  {text}", stage.name());
        match &self.spinner {
            Some(spinner) => spinner.println(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn finish_spinner(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }
}

impl Drop for Human {
    fn drop(&mut self) {
        self.finish_spinner();
    }
}

impl Reporter for Human {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Started(stage) = event {
            if self.show_progress {
                self.finish_spinner();
                let spinner = ProgressBar::new_spinner();
                spinner.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .expect("valid template"),
                );
                spinner.set_message(format!("{}…", stage.name()));
                spinner.enable_steady_tick(Duration::from_millis(100));
                self.spinner = Some(spinner);
            }
            return;
        }
        if let Some((stage, text)) = stage_line(&event) {
            self.line(stage, &text);
        }
        if matches!(event, Event::Packed { .. }) {
            self.finish_spinner();
        }
    }
}

/// The line a finished stage prints, or `None` for events without one.
pub fn stage_line(event: &Event<'_>) -> Option<(Stage, String)> {
    Some(match event {
        Event::Started(_) => return None,
        Event::AppPacked {
            pyodide_version,
            origin,
            app_bytes,
            entry,
            installed,
            from_distribution,
        } => {
            let mut dependencies = Vec::new();
            if !installed.is_empty() {
                dependencies.push(installed.join(", "));
            }
            if !from_distribution.is_empty() {
                dependencies.push(format!(
                    "from the distribution: {}",
                    from_distribution.join(", ")
                ));
            }
            if dependencies.is_empty() {
                dependencies.push("none".into());
            }
            (
                Stage::Build,
                format!(
                    "Pyodide {pyodide_version} from {origin}; app {} ({entry}); dependencies: {}",
                    format_bytes(*app_bytes),
                    dependencies.join("; ")
                ),
            )
        }
        Event::StdlibShaken {
            entries_before,
            entries_after,
            precompiled,
            bytecode_only,
            stripped,
            bytes_before,
            bytes_after,
            modules_kept,
            top_levels_dropped,
            packages,
        } => (
            Stage::Shake,
            format!(
                "python_stdlib.zip {entries_before} → {entries_after} entries{}{} ({} → {}, {}); \
                 {modules_kept} modules kept, {top_levels_dropped} top-level dropped; packages: {}",
                precompiled_text(*precompiled, *bytecode_only),
                match stripped {
                    Some((files, saved)) => format!(
                        ", {files} sources stripped of docstrings and comments (−{})",
                        format_bytes(*saved)
                    ),
                    None => String::new(),
                },
                format_bytes(*bytes_before),
                format_bytes(*bytes_after),
                format_change(*bytes_before, *bytes_after),
                if packages.is_empty() {
                    "none".into()
                } else {
                    packages.join(", ")
                }
            ),
        ),
        Event::RuntimeSplit {
            profiled_in,
            profiled_functions,
            functions,
            primary_bytes,
            deferred_bytes,
        } => (
            Stage::Split,
            format!(
                "pyodide.asm.wasm split by a profile of the samples ({}): the {profiled_functions} \
                 of {functions} functions they ran up front ({}), the rest deferred ({})",
                profiled_in.join("; "),
                format_bytes(*primary_bytes),
                format_bytes(*deferred_bytes),
            ),
        ),
        Event::RuntimeWhole { why } => (Stage::Split, why.to_string()),
        Event::RuntimeLinking { linking } => (Stage::Validate, linking.note.clone()),
        Event::BundleValidated {
            samples,
            with_snapshot,
        } => (
            Stage::Validate,
            format!(
                "shaken bundle reproduces stock Pyodide's outputs on all {samples} samples{}",
                if *with_snapshot {
                    ", booted normally and from its memory snapshot"
                } else {
                    ""
                }
            ),
        ),
        Event::NativeParity { parity } => (
            Stage::Measure,
            format!(
                "Pyodide vs native CPython: argmax agrees on {}/{} samples, max |Δ| {:.2e} \
                 (tolerance {:.0e})",
                parity.argmax_agree, parity.samples, parity.max_abs_diff, parity.tolerance
            ),
        ),
        Event::BrowserMeasured {
            browser,
            load_us,
            snapshot_load_us,
            steady_us,
            batch,
            reference,
            parity,
        } => (
            Stage::Measure,
            format!(
                "{browser}: load {} median{}, steady {} {}; outputs {} {reference}'s on {} samples",
                format_duration_us(*load_us),
                snapshot_load_us.map_or(String::new(), |us| format!(
                    " ({} from the snapshot)",
                    format_duration_us(us)
                )),
                steady_us.map_or("-".into(), format_duration_us),
                batch.map_or("per sample".to_string(), |b| format!(
                    "per call at batch {b}"
                )),
                if parity.passed {
                    "match"
                } else {
                    "DIFFER from"
                },
                parity.samples
            ),
        ),
        Event::HostMeasured { host, timings } => (
            Stage::Measure,
            format!(
                "{host} ({}, {}): load {} median, steady {} per call at batch {}; outputs {} wasmtime's on {} samples",
                timings.runtime,
                timings.variant,
                format_duration_us(timings.load.median_us),
                timings
                    .steady
                    .first()
                    .map_or("-".into(), |s| format_duration_us(s.latency.median_us)),
                timings.steady.first().map_or(0, |s| s.batch),
                if timings.parity.passed {
                    "match"
                } else {
                    "DIFFER from"
                },
                timings.parity.samples
            ),
        ),
        Event::TargetInstalled { target } => (
            Stage::Build,
            format!("installed the Rust target {target} with rustup"),
        ),
        Event::Built {
            wasm_target,
            wasm_bytes,
            native_target,
            native_bytes,
        } => (
            Stage::Build,
            format!(
                "{wasm_target} {} · native {native_target} {}",
                match wasm_bytes {
                    [(_, bytes)] => format_bytes(*bytes),
                    several => several
                        .iter()
                        .map(|(level, bytes)| format!("{level} {}", format_bytes(*bytes)))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                format_bytes(*native_bytes)
            ),
        ),
        Event::VariantSkipped { level, reason } => (
            Stage::Build,
            format!(
                "{level} variant not built, the others ship without it: {reason} \
                 (`--variant {level}` makes this an error)"
            ),
        ),
        Event::Shaken {
            variant,
            before,
            after,
            functions_before,
            functions_after,
            exports_removed,
            custom_sections_removed,
            glue_stubbed,
        } => (
            Stage::Shake,
            format!(
                "{}{} → {} ({}): {functions_before} → {functions_after} functions, \
                 {exports_removed} exports and {custom_sections_removed} custom sections dropped{}",
                variant_prefix(*variant),
                format_bytes(*before),
                format_bytes(*after),
                format_change(*before, *after),
                match glue_stubbed {
                    0 => String::new(),
                    n => format!(
                        ", {n} wasm-bindgen glue import{} made to trap",
                        if *n == 1 { "" } else { "s" }
                    ),
                },
            ),
        ),
        Event::Optimized {
            variant,
            before,
            after,
            level,
        } => (
            Stage::Optimize,
            format!(
                "{}{} → {} ({}) with wasm-opt -{level}",
                variant_prefix(*variant),
                format_bytes(*before),
                format_bytes(*after),
                format_change(*before, *after)
            ),
        ),
        Event::Validated {
            variant,
            samples,
            agreement,
        } => (
            Stage::Validate,
            format!(
                "{}valid; {samples} samples bit-identical to the module cargo built{}",
                variant_prefix(*variant),
                match agreement {
                    Some(a) if a.bit_exact => format!("; bit-exact with {}", a.reference),
                    Some(a) => format!(
                        "; within tolerance of {} (max |difference| {:.1e})",
                        a.reference, a.max_abs_diff
                    ),
                    None => String::new(),
                }
            ),
        ),
        Event::Measured { parity, cuda } => (
            Stage::Measure,
            match &cuda.parity {
                Some(cuda_parity) => format!(
                    "{}; on CUDA: {}",
                    parity_line(parity),
                    parity_line(cuda_parity)
                ),
                None => parity_line(parity),
            },
        ),
        Event::Packed { dir, files } => (
            Stage::Pack,
            format!(
                "{} ({} files, {})",
                dir.display(),
                files.len() + 1,
                format_bytes(files.iter().map(|f| f.bytes).sum())
            ),
        ),
    })
}

/// The table comparing both variants, plus the runtime-fit verdict.
pub fn summary(manifest: &KernelManifest) -> String {
    let wasm = &manifest.timings.wasm;
    let native = &manifest.timings.native;
    let dist = |d: &Distribution| {
        format!(
            "{} (p95 {})",
            format_duration_us(d.median_us),
            format_duration_us(d.p95_us)
        )
    };
    let none = || "—".to_string();
    let mut rows: Vec<(String, String, String)> = vec![
        (
            "file".into(),
            manifest.wasm.file.clone(),
            manifest.native.file.clone(),
        ),
        (
            "target".into(),
            manifest.wasm.target.clone(),
            format!("{} (cpu path)", manifest.native.target),
        ),
    ];
    for (label, pick) in [
        (
            "bytes raw",
            (|s: &crate::manifest::Sizes| s.raw_bytes) as fn(&crate::manifest::Sizes) -> u64,
        ),
        ("bytes brotli", |s| s.brotli_bytes),
        ("bytes zstd", |s| s.zstd_bytes),
        ("bytes gzip", |s| s.gzip_bytes),
    ] {
        rows.push((
            label.into(),
            format_bytes(pick(&manifest.wasm.sizes)),
            format_bytes(pick(&manifest.native.sizes)),
        ));
    }
    rows.push((
        "compile | load".into(),
        dist(&wasm.compile),
        dist(&native.load),
    ));
    rows.push((
        "deserialize precompiled".into(),
        dist(&wasm.deserialize),
        none(),
    ));
    rows.push(("instantiate".into(), dist(&wasm.instantiate), none()));
    rows.push((
        "init".into(),
        dist(&wasm.cold.init),
        dist(&native.cold.init),
    ));
    rows.push((
        "first inference".into(),
        dist(&wasm.cold.first_inference),
        dist(&native.cold.first_inference),
    ));
    for steady in &wasm.steady {
        let other = native.steady.iter().find(|n| n.batch == steady.batch);
        let single = native
            .single_thread
            .iter()
            .find(|n| n.batch == steady.batch);
        let native_cell = other.map_or_else(none, |other| match single {
            Some(single) => format!(
                "{}; {} on one",
                steady_cell(other),
                format_duration_us(single.latency.median_us)
            ),
            None => steady_cell(other),
        });
        rows.push((
            format!("steady, batch {}", steady.batch),
            steady_cell(steady),
            native_cell,
        ));
    }
    let width = |pick: fn(&(String, String, String)) -> &String| {
        rows.iter()
            .map(|r| pick(r).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(|r| &r.0), width(|r| &r.1));
    let mut out = format!("{:<w0$}  {:<w1$}  {}\n", "", "wasm", "native");
    for (label, a, b) in &rows {
        out.push_str(&format!("{label:<w0$}  {a:<w1$}  {b}\n"));
    }
    out.push_str(&variants_table(manifest));
    if let Some(model) = &manifest.kernel.model {
        out.push_str(&format!("\nmodel: {}", model_text(model)));
    }
    out.push_str(&format!("\nparity: {}\n", parity_line(&manifest.parity)));
    out.push_str(&boundary_line(
        "wasm boundary (copies in wasmtime)",
        wasm.steady.iter().map(|s| (s.batch, s.transfer)),
    ));
    out.push_str(&cuda_summary(&manifest.timings.cuda));
    if let Some(browser) = &manifest.timings.browser {
        out.push_str(&browser_summary(browser));
    }
    if let Some(host) = &manifest.timings.plugin_host {
        out.push_str(&host_summary("python host", "loader.py", host));
    }
    if let Some(host) = &manifest.timings.node {
        out.push_str(&host_summary("node", "loader.mjs", host));
    }
    out.push_str(&hosts_table(manifest));
    out.push_str(&format!(
        "runtime fit: {}\n",
        manifest.timings.runtime_fit.verdict
    ));
    out.push_str(&deployment_lines(&manifest.timings.runtime_fit.deployments));
    if !manifest.timings.stages.is_empty() {
        let stages: Vec<String> = manifest
            .timings
            .stages
            .iter()
            .map(|s| format!("{} {}", s.stage, format_duration_us(s.seconds * 1e6)))
            .collect();
        out.push_str(&format!("stages: {}\n", stages.join(", ")));
    }
    let env = &manifest.timings.environment;
    out.push_str(&format!(
        "measured on {} ({} cores), {}, {}\n",
        env.cpu, env.cores, env.os, env.wasm_engine
    ));
    out
}

/// The feature-level variants side by side, when the bundle ships more than one: bytes, compile,
/// steady latency over native's (on one thread where native used more), how each compares with
/// the lowest, and which engines of the floor run it.
fn variants_table(manifest: &KernelManifest) -> String {
    let variants = &manifest.wasm.variants;
    if variants.len() < 2 {
        return String::new();
    }
    let timings = |level| manifest.timings.variants.iter().find(|t| t.level == level);
    let mut header = vec!["wasm variants".to_string()];
    header.extend(variants.iter().map(|v| {
        if v.primary {
            format!("{} (primary)", v.level)
        } else {
            v.level.to_string()
        }
    }));
    let row = |label: &str, cell: &dyn Fn(&FeatureVariant) -> String| {
        std::iter::once(label.to_string())
            .chain(variants.iter().map(cell))
            .collect::<Vec<_>>()
    };
    let mut rows = vec![
        row("file", &|v| v.file.clone()),
        row("bytes brotli", &|v| format_bytes(v.sizes.brotli_bytes)),
        row("compile", &|v| {
            timings(v.level).map_or("—".into(), |t| format_duration_us(t.compile.median_us))
        }),
    ];
    let batches: Vec<usize> = manifest
        .timings
        .wasm
        .steady
        .iter()
        .map(|s| s.batch)
        .collect();
    for batch in batches {
        rows.push(row(&format!("steady, batch {batch}"), &|v| {
            let Some(t) = timings(v.level) else {
                return "—".into();
            };
            let latency = t.steady.iter().find(|s| s.batch == batch);
            let ratio = t.over_native.iter().find(|r| r.batch == batch);
            match (latency, ratio) {
                (Some(s), Some(r)) => format!(
                    "{} = {:.2}x native",
                    format_duration_us(s.latency.median_us),
                    r.wasm_over_native_single_thread
                        .unwrap_or(r.wasm_over_native)
                ),
                (Some(s), None) => format_duration_us(s.latency.median_us),
                _ => "—".into(),
            }
        }));
    }
    rows.push(row("outputs", &|v| match &v.agreement {
        None => "reference".into(),
        Some(a) if a.bit_exact => format!("bit-exact with {}", a.reference),
        Some(a) => format!("max |Δ| {:.1e} from {}", a.max_abs_diff, a.reference),
    }));
    if !manifest.wasm.engine_floor.is_empty() {
        rows.push(row("floor engines", &|v| {
            if v.floor_engines_lacking.is_empty() {
                "all".into()
            } else if v.floor_engines.is_empty() {
                "none".into()
            } else {
                let names: Vec<&str> = v.floor_engines.iter().map(|e| e.name()).collect();
                names.join(", ")
            }
        }));
    }
    let mut out = format!("\n{}", grid(&header, &rows));
    out.push_str("(× native: against the native library on one thread, like for like)\n");
    if variants.iter().any(|v| v.level.is_nondeterministic()) {
        out.push_str(
            "(relaxed-simd rounds as each engine chooses: it is compared within the kernel's \
             tolerance, not bit for bit)\n",
        );
    }
    for skipped in &manifest.wasm.skipped_variants {
        out.push_str(&format!(
            "({} not built: {})\n",
            skipped.level, skipped.reason
        ));
    }
    out
}

/// `header` and `rows` in columns as wide as their widest cell, two spaces apart.
fn grid(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            std::iter::once(header)
                .chain(rows.iter().map(Vec::as_slice))
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    std::iter::once(line(header))
        .chain(rows.iter().map(|r| line(r)))
        .collect()
}

/// Steady latency per call in every host that ran the WASM variant, beside native's on one
/// thread and wasmtime's from Rust: one row per batch, each host's column naming the level its
/// loader picked. Empty when no other host was measured.
fn hosts_table(manifest: &KernelManifest) -> String {
    let t = &manifest.timings;
    let medians = |steady: &[Steady]| -> Vec<(usize, f64)> {
        steady
            .iter()
            .map(|s| (s.batch, s.latency.median_us))
            .collect()
    };
    let mut columns: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    if let Some(browser) = &t.browser {
        let level = browser.variant.map_or(String::new(), |l| format!(" ({l})"));
        let steady = browser.steady.iter();
        columns.push((
            format!("chromium{level}"),
            steady.map(|s| (s.batch, s.latency.median_us)).collect(),
        ));
    }
    for (label, host) in [("node", &t.node), ("python host", &t.plugin_host)] {
        if let Some(host) = host {
            columns.push((format!("{label} ({})", host.variant), medians(&host.steady)));
        }
    }
    if columns.is_empty() {
        return String::new();
    }
    let native: Vec<(usize, f64)> = t
        .native
        .steady
        .iter()
        .map(|s| {
            let single = t.native.single_thread.iter().find(|o| o.batch == s.batch);
            (s.batch, single.unwrap_or(s).latency.median_us)
        })
        .collect();
    columns.insert(0, ("native, 1 thread".into(), native));
    columns.insert(
        1,
        (
            format!("wasmtime ({})", manifest.wasm.primary_level()),
            medians(&t.wasm.steady),
        ),
    );
    let header: Vec<String> = std::iter::once("steady per call".to_string())
        .chain(columns.iter().map(|(label, _)| label.clone()))
        .collect();
    let rows: Vec<Vec<String>> = t
        .wasm
        .steady
        .iter()
        .map(|s| {
            std::iter::once(format!("batch {}", s.batch))
                .chain(columns.iter().map(|(_, figures)| {
                    figures
                        .iter()
                        .find(|(batch, _)| *batch == s.batch)
                        .map_or("—".into(), |(_, us)| format_duration_us(*us))
                }))
                .collect()
        })
        .collect();
    format!("\n{}", grid(&header, &rows))
}

/// Where a WASM call's time goes at each batch: copying into and out of linear memory (the
/// sandbox boundary) against `wpi_infer` itself.
fn boundary_line(
    label: &str,
    steady: impl IntoIterator<Item = (usize, Option<TransferBreakdown>)>,
) -> String {
    let parts: Vec<String> = steady
        .into_iter()
        .filter_map(|(batch, transfer)| {
            let t = transfer?;
            let copies = t.upload_us + t.download_us;
            let total = copies + t.compute_us;
            Some(format!(
                "batch {batch} {:.0} % ({} in, {} out)",
                if total > 0.0 {
                    copies / total * 100.0
                } else {
                    0.0
                },
                format_duration_us(t.upload_us),
                format_duration_us(t.download_us)
            ))
        })
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!("{label}: {}\n", parts.join(", "))
}

/// One line per deployment shape: the WASM variant's fit there, what to ship, and the figures
/// that decided it.
fn deployment_lines(deployments: &[DeploymentFit]) -> String {
    let width = deployments
        .iter()
        .map(|d| d.deployment.as_str().len())
        .max()
        .unwrap_or(0);
    let ship_width = deployments.iter().map(|d| d.ship.len()).max().unwrap_or(0);
    deployments
        .iter()
        .map(|d| {
            let figures: Vec<String> = d.figures.iter().map(fit_figure_text).collect();
            format!(
                "  {:<width$}  {:<11}  ship {:<ship_width$}  {}\n",
                d.deployment.as_str(),
                d.fit.as_str(),
                d.ship,
                figures.join(", ")
            )
        })
        .collect()
}

/// A judged figure as a reader wants it: its value in its unit, and the limit it missed when it
/// is not strong.
pub fn fit_figure_text(figure: &FitFigure) -> String {
    let value = |v: f64| {
        if figure.name.ends_with("_bytes") {
            format_bytes(v as u64)
        } else if figure.name.ends_with("_us") {
            format_duration_us(v)
        } else if figure.name.ends_with("_share") {
            format!("{:.0} %", v * 100.0)
        } else {
            format!("{v:.2}x")
        }
    };
    let missed = match figure.grade {
        Fit::Strong => String::new(),
        Fit::Conditional => format!(" (over {})", value(figure.band.strong_up_to)),
        Fit::Weak => format!(" (weak: over {})", value(figure.band.weak_above)),
    };
    let host = figure
        .measured_in
        .as_deref()
        .map(|host| format!(" in {host}"))
        .unwrap_or_default();
    format!("{}{host} {}{missed}", figure.name, value(figure.value))
}

/// Median latency per batch, as the host summaries list it: "12 µs at batch 1, …".
fn steady_sweep<'a>(medians: impl Iterator<Item = (usize, &'a Distribution)>) -> String {
    medians
        .map(|(batch, latency)| {
            format!("{} at batch {batch}", format_duration_us(latency.median_us))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The WASM variant in Chromium: load, first call, steady sweep and parity with wasmtime.
fn browser_summary(browser: &BrowserTimings) -> String {
    let parity = browser
        .parity
        .as_ref()
        .map_or("not checked".into(), parity_line);
    let loaded = browser
        .variant
        .map(|level| format!(", loaded the {level} variant"))
        .unwrap_or_default();
    format!(
        "browser: {}{loaded}\n  load {} (p95 {}; download, SRI check, compile, instantiate), first inference {}\n  steady {}\n  {}  parity with wasmtime: {parity}\n",
        browser.environment.browser,
        format_duration_us(browser.load.median_us),
        format_duration_us(browser.load.p95_us),
        format_duration_us(browser.first_inference.median_us),
        steady_sweep(browser.steady.iter().map(|s| (s.batch, &s.latency))),
        boundary_line(
            "boundary (copies through loader.mjs)",
            browser.steady.iter().map(|s| (s.batch, s.transfer))
        ),
    )
}

/// The WASM variant in another host (`label`) through the bundle's `loader`: load, first call,
/// steady sweep, where a call's time goes, and parity with wasmtime from Rust.
fn host_summary(label: &str, loader: &str, host: &HostTimings) -> String {
    format!(
        "{label}: {}, loaded the {} variant\n  load {} (p95 {}; hash check, compile, instantiate), first inference {}\n  steady {}\n  {}  parity with wasmtime: {}\n",
        host.runtime,
        host.variant,
        format_duration_us(host.load.median_us),
        format_duration_us(host.load.p95_us),
        format_duration_us(host.first_inference.median_us),
        steady_sweep(host.steady.iter().map(|s| (s.batch, &s.latency))),
        boundary_line(
            &format!("boundary (copies through {loader})"),
            host.steady.iter().map(|s| (s.batch, s.transfer))
        ),
        parity_line(&host.parity),
    )
}

/// The model a kernel was made from, in one line: its file, size, the start of its hash and the
/// engine, e.g. `model/digits.onnx (206.1 KiB, sha256 3f2a9c01b7d4…, compiled ahead of time)`.
pub fn model_text(model: &ModelSource) -> String {
    let engine = match model.engine {
        Some(ModelEngine::AheadOfTime) => ", compiled ahead of time",
        Some(ModelEngine::Tract) => ", run by tract",
        None => "",
    };
    let hash: String = model.sha256.chars().take(12).collect();
    format!(
        "{} ({}, sha256 {hash}…{engine})",
        model.file,
        format_bytes(model.bytes)
    )
}

fn parity_line(parity: &Parity) -> String {
    format!(
        "{}: argmax agrees on {}/{} samples, max |Δ| {:.2e} (tolerance {:.0e})",
        if parity.passed { "ok" } else { "FAILED" },
        parity.argmax_agree,
        parity.samples,
        parity.max_abs_diff,
        parity.tolerance
    )
}

/// Whether the native library's CUDA path ran here, and its figures when it did.
fn cuda_summary(cuda: &CudaRun) -> String {
    let Some(device) = cuda
        .device
        .as_deref()
        .filter(|_| cuda.accelerator == Accelerator::Cuda)
    else {
        return format!(
            "cuda: not used ({})\n",
            cuda.reason.as_deref().unwrap_or("no reason recorded")
        );
    };
    let mut out = format!("cuda: {device}\n");
    if let Some(parity) = &cuda.parity {
        out.push_str(&format!("  parity vs wasm: {}\n", parity_line(parity)));
    }
    if let Some(cold) = &cuda.cold {
        out.push_str(&format!(
            "  init {} · first inference {}\n",
            format_duration_us(cold.init.median_us),
            format_duration_us(cold.first_inference.median_us)
        ));
    }
    for steady in &cuda.steady {
        out.push_str(&format!(
            "  batch {:>5}: {}",
            steady.batch,
            steady_cell(steady)
        ));
        if let Some(t) = &steady.transfer {
            out.push_str(&format!(
                " = upload {} + compute {} + download {}",
                format_duration_us(t.upload_us),
                format_duration_us(t.compute_us),
                format_duration_us(t.download_us)
            ));
        }
        out.push('\n');
    }
    out
}

fn steady_cell(steady: &Steady) -> String {
    let threads = match steady.threads {
        Some(threads) if threads > 1 => format!(" on {threads} threads"),
        _ => String::new(),
    };
    format!(
        "{} (p95 {}){threads}",
        format_duration_us(steady.latency.median_us),
        format_duration_us(steady.latency.p95_us)
    )
}

/// `boot, <variant>: <phases>` for stock, the bundle and the snapshot, where they were timed.
pub fn boot_phases_lines(manifest: &crate::manifest::python::PythonManifest) -> String {
    let t = &manifest.timings;
    let runs = [
        ("stock", Some(&t.stock)),
        ("bundle", Some(&t.bundle)),
        ("snapshot", manifest.snapshot.as_ref().map(|s| &s.run)),
    ];
    runs.iter()
        .filter_map(|(label, run)| {
            let phases = run.and_then(|run| run.boot_phases)?;
            Some(format!("boot, {label}: {}\n", boot_phases_text(&phases)))
        })
        .collect()
}

/// A boot's phases in order, those that took no time left out.
fn boot_phases_text(phases: &crate::manifest::python::BootPhases) -> String {
    let parts = [
        ("read snapshot", phases.snapshot_read_ms),
        ("fetch", phases.fetch_ms),
        ("compile", phases.compile_ms),
        ("instantiate", phases.instantiate_ms),
        ("restore", phases.restore_ms),
        ("start-up", phases.startup_ms),
        ("packages", phases.packages_ms),
    ];
    parts
        .iter()
        .filter(|(_, ms)| *ms > 0.0)
        .map(|(name, ms)| format!("{name} {}", format_duration_us(ms * 1e3)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// How the kept modules' bytecode ships: " + 120 precompiled .pyc" beside the sources, ", 120 of
/// them as .pyc without sources", or nothing.
fn precompiled_text(precompiled: usize, bytecode_only: bool) -> String {
    match (precompiled, bytecode_only) {
        (0, _) => String::new(),
        (count, false) => format!(" + {count} precompiled .pyc"),
        (count, true) => format!(", {count} of them as .pyc without sources"),
    }
}

/// What was done to make the snapshot compress: " (3.2 MB of free heap zeroed, 3.7 MB of static
/// data taken out, 3.6 MB of it unchanged)", or nothing for a bundle built before either.
fn snapshot_savings(snapshot: &crate::manifest::python::SnapshotInfo) -> String {
    let zeroed = snapshot
        .free_heap_zeroed
        .map(|zeroed| format!("{} of free heap zeroed", format_bytes(zeroed.bytes)));
    let static_data = snapshot.static_data.map(|data| {
        format!(
            "{} of static data taken out, {} of it unchanged",
            format_bytes(data.bytes),
            format_bytes(data.unchanged_bytes)
        )
    });
    let parts: Vec<String> = zeroed.into_iter().chain(static_data).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// A Pyodide cold start: the median of its interleaved boots with their range, or one run's.
fn cold_start_cell(run: &crate::manifest::python::PyodideRun) -> String {
    let ms = |value: f64| format_duration_us(value * 1000.0);
    match run.boots {
        Some(boots) if boots.runs > 1 => format!(
            "{} ({} boots, {}–{})",
            ms(boots.median_ms),
            boots.runs,
            ms(boots.min_ms),
            ms(boots.max_ms)
        ),
        _ => ms(run.cold_start_ms),
    }
}

/// The table comparing stock Pyodide, the shaken bundle and native CPython, plus the verdict.
pub fn python_summary(manifest: &crate::manifest::python::PythonManifest) -> String {
    let t = &manifest.timings;
    let ms = |value: f64| format_duration_us(value * 1e3);
    let dist = |d: &Distribution| {
        format!(
            "{} (p95 {})",
            format_duration_us(d.median_us),
            format_duration_us(d.p95_us)
        )
    };
    let sizes = &manifest.sizes;
    let mut rows: Vec<[String; 4]> = vec![
        [
            "shipped, brotli".into(),
            format_bytes(sizes.stock.brotli_bytes),
            format_bytes(sizes.bundle.brotli_bytes),
            "—".into(),
        ],
        [
            "shipped, raw".into(),
            format_bytes(sizes.stock.raw_bytes),
            format_bytes(sizes.bundle.raw_bytes),
            "—".into(),
        ],
        [
            "boot | interpreter start".into(),
            ms(t.stock.boot_ms),
            ms(t.bundle.boot_ms),
            ms(t.native.startup_ms),
        ],
        [
            "import app".into(),
            ms(t.stock.import_ms),
            ms(t.bundle.import_ms),
            ms(t.native.import_ms),
        ],
        [
            "first inference".into(),
            ms(t.stock.first_inference_ms),
            ms(t.bundle.first_inference_ms),
            ms(t.native.first_inference_ms),
        ],
        [
            "cold start".into(),
            cold_start_cell(&t.stock),
            cold_start_cell(&t.bundle),
            ms(t.native.cold_start_ms),
        ],
        [
            "steady, per sample".into(),
            dist(&t.stock.steady),
            dist(&t.bundle.steady),
            dist(&t.native.steady),
        ],
    ];
    if let (Some(stock), Some(bundle)) = (t.stock.steady_blocks, t.bundle.steady_blocks) {
        let blocks = |b: crate::manifest::python::SteadyBlocks| {
            format!(
                "{} ({} blocks, {}–{})",
                format_duration_us(b.median_us),
                b.runs,
                format_duration_us(b.min_us),
                format_duration_us(b.max_us)
            )
        };
        rows.push([
            "steady, interleaved".into(),
            blocks(stock),
            blocks(bundle),
            "—".into(),
        ]);
    }
    let width = |column: usize| {
        rows.iter()
            .map(|r| r[column].chars().count())
            .max()
            .unwrap_or(0)
            .max(12)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let header = format!("native CPython {}", t.native.python);
    let mut out = format!(
        "{:<w0$}  {:<w1$}  {:<w2$}  {header}\n",
        "", "stock Pyodide", "bundle"
    );
    for [label, a, b, c] in &rows {
        out.push_str(&format!("{label:<w0$}  {a:<w1$}  {b:<w2$}  {c}\n"));
    }
    let shake = &manifest.shake;
    out.push_str(&format!(
        "\nshake: {} modules kept; python_stdlib.zip {} → {} entries{}; {} top-level modules dropped\n",
        shake.modules.len(),
        shake.stdlib_entries_before,
        shake.stdlib_entries_after,
        precompiled_text(shake.precompiled, shake.bytecode_only),
        shake.dropped_top_levels.len()
    ));
    let loaded = |load_ms: Option<f64>| match load_ms {
        Some(load) => format!("loaded the deferred half ({})", ms(load)),
        None => "never needed the deferred half".to_string(),
    };
    match (&manifest.runtime_split, &manifest.sizes.upfront) {
        (Some(split), Some(upfront)) => out.push_str(&format!(
            "runtime: split by {} (profiled in {}): the {} of {} functions the samples ran up front \
             ({} brotli), the rest deferred ({} brotli); fetched before the first inference {} \
             brotli ({:.0} % of stock); the samples {}\n",
            split.tool,
            split.profiled_in.join("; "),
            split.profiled_functions,
            split.functions,
            format_bytes(split.primary.brotli_bytes),
            format_bytes(split.secondary.brotli_bytes),
            format_bytes(upfront.brotli_bytes),
            manifest.sizes.upfront_brotli_ratio.unwrap_or_default() * 100.0,
            loaded(t.bundle.secondary_load_ms),
        )),
        _ => out.push_str(&format!("runtime: {}\n", shake.runtime)),
    }
    if let Some(snapshot) = &manifest.snapshot {
        out.push_str(&format!(
            "memory snapshot{}: {} raw, {} brotli{}; booted from it: boot {}, cold start {}, steady {}{}\n",
            if snapshot.warmed {
                " (taken after one call of the entry)"
            } else {
                ""
            },
            format_bytes(snapshot.sizes.raw_bytes),
            format_bytes(snapshot.sizes.brotli_bytes),
            snapshot_savings(snapshot),
            ms(snapshot.run.boot_ms),
            cold_start_cell(&snapshot.run),
            dist(&snapshot.run.steady),
            if snapshot.default_boot { " (loader default)" } else { "" }
        ));
    }
    out.push_str(&boot_phases_lines(manifest));
    out.push_str(&format!(
        "parity vs native CPython: {}\n",
        parity_line(&manifest.parity.native)
    ));
    if let Some(b) = &t.bundle.boundary {
        let total = b.upload_us + b.compute_us + b.download_us;
        out.push_str(&format!(
            "Pyodide boundary per call (median): JS → Python {}, entry {}, Python → JS {} ({:.0} % converting)\n",
            format_duration_us(b.upload_us),
            format_duration_us(b.compute_us),
            format_duration_us(b.download_us),
            if total > 0.0 { (b.upload_us + b.download_us) / total * 100.0 } else { 0.0 }
        ));
    }
    if let Some(a) = &t.native.attribution {
        let hottest: Vec<String> = a
            .hottest
            .iter()
            .take(3)
            .map(|h| format!("{} {:.0} %", h.function, h.share * 100.0))
            .collect();
        out.push_str(&format!(
            "native CPython's time (cProfile, {} calls): {:.0} % Python-level code, {:.0} % C, \
             {:.0} % JSON in and out; hottest: {}\n",
            a.calls,
            a.python_share * 100.0,
            a.c_share * 100.0,
            a.boundary_share * 100.0,
            hottest.join(", ")
        ));
    }
    if !manifest.native.accelerated.is_empty() || t.native.cuda.is_some() {
        let imported = &t.native.accelerated_imported;
        out.push_str(&format!(
            "native sibling: {}; CUDA where measured: {}\n",
            if manifest.native.accelerated.is_empty() {
                "no native-only requirements".to_string()
            } else {
                format!(
                    "native-only {} (the app imported {})",
                    manifest.native.accelerated.join(", "),
                    if imported.is_empty() {
                        "none of them".to_string()
                    } else {
                        imported.join(", ")
                    }
                )
            },
            t.native
                .cuda
                .as_ref()
                .map_or("not probed".to_string(), |c| match c.available {
                    true => format!("yes, {}", c.detail),
                    false => format!("no ({})", c.detail),
                }),
        ));
    }
    if let Some(browser) = &t.browser {
        out.push_str(&format!(
            "browser: {}\n  load {} (p95 {}; boot and app import){}, first inference {}\n  steady {} per sample (p95 {})\n  parity with Node: {}\n",
            browser.environment.browser,
            format_duration_us(browser.load.median_us),
            format_duration_us(browser.load.p95_us),
            browser.snapshot_load.as_ref().map_or(String::new(), |d| format!(
                ", from the snapshot {}",
                format_duration_us(d.median_us)
            )),
            format_duration_us(browser.first_inference.median_us),
            format_duration_us(browser.steady.latency.median_us),
            format_duration_us(browser.steady.latency.p95_us),
            browser.parity.as_ref().map_or("not checked".into(), parity_line),
        ));
        if manifest.runtime_split.is_some() {
            out.push_str(&format!(
                "  split runtime: the samples {}",
                loaded(browser.deferred_load_ms)
            ));
            if browser.snapshot_load.is_some() {
                out.push_str(&format!(
                    "; from the snapshot, they {}",
                    loaded(browser.snapshot_deferred_load_ms)
                ));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!("runtime fit: {}\n", t.runtime_fit.verdict));
    out.push_str(&deployment_lines(&t.runtime_fit.deployments));
    let env = &t.environment;
    out.push_str(&format!(
        "measured on {} ({} cores), {}, {}\n",
        env.cpu, env.cores, env.os, env.wasm_engine
    ));
    out
}

/// "simd128: " when a build makes several variants.
fn variant_prefix(variant: Option<SimdLevel>) -> String {
    variant
        .map(|level| format!("{level}: "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_is_named_by_file_size_hash_and_engine() {
        let model = ModelSource {
            file: "model/digits.onnx".into(),
            sha256: "3f2a9c01b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e".into(),
            bytes: 211_046,
            engine: Some(ModelEngine::AheadOfTime),
        };
        assert_eq!(
            model_text(&model),
            "model/digits.onnx (206.1 KiB, sha256 3f2a9c01b7d4…, compiled ahead of time)"
        );
        let untagged = ModelSource {
            engine: None,
            ..model
        };
        assert!(model_text(&untagged).ends_with("sha256 3f2a9c01b7d4…)"));
    }

    #[test]
    fn boot_phases_are_listed_per_variant_without_the_empty_ones() {
        let mut manifest: crate::manifest::python::PythonManifest = serde_json::from_str(
            include_str!("../../tests/fixtures/manifests/digits-py.json"),
        )
        .unwrap();
        assert_eq!(
            boot_phases_lines(&manifest),
            "",
            "a manifest from before phases"
        );
        manifest.timings.bundle.boot_phases = Some(crate::manifest::python::BootPhases {
            snapshot_read_ms: 0.0,
            fetch_ms: 54.0,
            compile_ms: 21.0,
            instantiate_ms: 38.5,
            restore_ms: 0.0,
            startup_ms: 528.0,
            packages_ms: 0.0,
        });
        assert_eq!(
            boot_phases_lines(&manifest),
            "boot, bundle: fetch 54.00 ms · compile 21.00 ms · instantiate 38.50 ms · \
             start-up 528.00 ms\n"
        );
    }

    #[test]
    fn a_skipped_variant_is_said_under_the_variants_table() {
        let mut manifest: KernelManifest = serde_json::from_str(include_str!(
            "../../tests/fixtures/manifests/digits-mlp-variants.json"
        ))
        .unwrap();
        assert!(!variants_table(&manifest).contains("not built"));
        manifest
            .wasm
            .skipped_variants
            .push(crate::manifest::variant::SkippedVariant {
                level: SimdLevel::RelaxedSimd,
                reason: "could not compile `macerator` (lib) due to 2 previous errors".into(),
            });
        assert!(
            variants_table(&manifest).ends_with(
                "(relaxed-simd not built: could not compile `macerator` (lib) due to 2 previous \
                 errors)\n"
            ),
            "{}",
            variants_table(&manifest)
        );
    }
}
