//! `report`: one self-contained HTML page per bundle (inline CSS and SVG, no script, no network)
//! with bytes per variant and compression, latency per variant and batch size, cold start, the
//! runtime-fit verdict, budgets, and the metric diff against a baseline manifest.

use super::check::value;
use super::human;
use crate::budget::{self, BudgetResult};
use crate::diff::{self, ContentChanges, MetricChange};
use crate::manifest::fit::DeploymentFit;
use crate::manifest::kernel::KernelManifest;
use crate::manifest::kernel::Steady;
use crate::manifest::metrics::Unit;
use crate::manifest::python::PythonManifest;
use crate::manifest::{AnyManifest, Parity, Sizes, TransferBreakdown};
use crate::units::format_bytes;
use crate::units::format_duration_us;
use anyhow::Result;
use std::fmt::Write;

const STYLE: &str = include_str!("../../templates/report/style.css");
/// Every chart's width in SVG units (it scales to the page).
const CHART_WIDTH: f64 = 820.0;
/// Series colours, in order: colour-blind safe (Okabe–Ito).
const PALETTE: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
];

/// One row of bars in a chart: a label and a value per series (`None`: not measured).
struct Group {
    label: String,
    values: Vec<Option<f64>>,
}

impl Group {
    /// A row of a one-series chart.
    fn single(label: impl Into<String>, value: f64) -> Group {
        Group {
            label: label.into(),
            values: vec![Some(value)],
        }
    }
}

/// A horizontal grouped bar chart as inline SVG; `format` labels each bar's value.
fn bar_chart(
    title: &str,
    note: &str,
    series: &[&str],
    groups: &[Group],
    format: fn(f64) -> String,
) -> String {
    const LABEL: f64 = 190.0;
    const VALUE_ROOM: f64 = 110.0;
    const BAR: f64 = 16.0;
    const GAP: f64 = 14.0;
    let max = groups
        .iter()
        .flat_map(|g| g.values.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let scale = if max > 0.0 {
        (CHART_WIDTH - LABEL - VALUE_ROOM) / max
    } else {
        0.0
    };
    let mut svg = String::new();
    let mut y = 8.0;
    for group in groups {
        let bars = group.values.iter().filter(|v| v.is_some()).count().max(1) as f64;
        let height = bars * (BAR + 3.0);
        let _ = write!(
            svg,
            r#"<text x="{:.0}" y="{:.1}" class="group" text-anchor="end">{}</text>"#,
            LABEL - 10.0,
            y + height / 2.0 + 4.0,
            escape(&group.label)
        );
        let mut bar_y = y;
        for (index, v) in group.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let length = (v * scale).max(1.0);
            let _ = write!(
                svg,
                r#"<rect x="{LABEL}" y="{bar_y:.1}" width="{length:.1}" height="{BAR}" rx="3" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" class="value">{}</text>"#,
                PALETTE[index % PALETTE.len()],
                escape(series[index]),
                format(*v),
                LABEL + length + 6.0,
                bar_y + BAR - 4.0,
                format(*v)
            );
            bar_y += BAR + 3.0;
        }
        y += height + GAP;
    }
    chart_card(title, note, series, groups, y, &svg)
}

/// A chart's card: title, note, a legend of the series some group has a value for, and `svg`
/// drawn `height` high.
fn chart_card(
    title: &str,
    note: &str,
    series: &[&str],
    groups: &[Group],
    height: f64,
    svg: &str,
) -> String {
    let legend: String = series
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            groups
                .iter()
                .any(|g| g.values.get(*i).is_some_and(Option::is_some))
        })
        .map(|(i, name)| {
            format!(
                r#"<span class="key"><i style="background:{}"></i>{}</span>"#,
                PALETTE[i % PALETTE.len()],
                escape(name)
            )
        })
        .collect();
    format!(
        r#"<section class="card"><h2>{}</h2><p class="note">{}</p><div class="legend">{legend}</div><svg viewBox="0 0 {CHART_WIDTH} {height:.0}" width="100%" role="img" aria-label="{}">{svg}</svg></section>"#,
        escape(title),
        escape(note),
        escape(title)
    )
}

/// Where the time of one call goes: a horizontal bar per group, its parts (µs, in `series`
/// order) stacked as shares of their sum, each share written inside its part when it fits and
/// the sum after the bar.
fn split_chart(title: &str, note: &str, series: &[&str], groups: &[Group]) -> String {
    const LABEL: f64 = 210.0;
    const VALUE_ROOM: f64 = 90.0;
    const BAR: f64 = 18.0;
    const GAP: f64 = 8.0;
    let span = CHART_WIDTH - LABEL - VALUE_ROOM;
    let mut svg = String::new();
    let mut y = 8.0;
    for group in groups {
        let total: f64 = group.values.iter().flatten().sum();
        if total <= 0.0 {
            continue;
        }
        let _ = write!(
            svg,
            r#"<text x="{:.0}" y="{:.1}" class="group" text-anchor="end">{}</text>"#,
            LABEL - 10.0,
            y + BAR - 4.0,
            escape(&group.label)
        );
        let mut x = LABEL;
        for (index, part) in group.values.iter().enumerate() {
            let Some(part) = part else { continue };
            let share = part / total;
            let length = share * span;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{length:.1}" height="{BAR}" fill="{}"><title>{}: {} ({:.0} %)</title></rect>"#,
                PALETTE[index % PALETTE.len()],
                escape(series[index]),
                format_duration_us(*part),
                share * 100.0
            );
            if length >= 34.0 {
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="inside" text-anchor="middle">{:.0} %</text>"#,
                    x + length / 2.0,
                    y + BAR - 5.0,
                    share * 100.0
                );
            }
            x += length;
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="value">{}</text>"#,
            LABEL + span + 6.0,
            y + BAR - 4.0,
            format_duration_us(total)
        );
        y += BAR + GAP;
    }
    chart_card(title, note, series, groups, y, &svg)
}

/// A kernel call's parts per host and batch, where timed apart: copies in and out of linear
/// memory (wasmtime, Node, Chromium, the Python host) or host ↔ device (CUDA), and the work.
fn kernel_split_groups(m: &KernelManifest) -> Vec<Group> {
    let t = &m.timings;
    let mut hosts: Vec<(&str, Vec<(usize, TransferBreakdown)>)> = Vec::new();
    let split = |steady: &[Steady]| -> Vec<(usize, TransferBreakdown)> {
        steady
            .iter()
            .filter_map(|s| Some((s.batch, s.transfer?)))
            .collect()
    };
    hosts.push(("wasmtime", split(&t.wasm.steady)));
    if let Some(node) = &t.node {
        hosts.push(("Node", split(&node.steady)));
    }
    if let Some(browser) = &t.browser {
        let steady = browser
            .steady
            .iter()
            .filter_map(|s| Some((s.batch, s.transfer?)))
            .collect();
        hosts.push(("Chromium", steady));
    }
    if let Some(host) = &t.plugin_host {
        hosts.push(("Python host", split(&host.steady)));
    }
    hosts.push(("CUDA", split(&t.cuda.steady)));
    let mut batches: Vec<usize> = hosts
        .iter()
        .flat_map(|(_, steady)| steady.iter().map(|(batch, _)| *batch))
        .collect();
    batches.sort_unstable();
    batches.dedup();
    batches
        .iter()
        .flat_map(|&batch| {
            hosts.iter().filter_map(move |(host, steady)| {
                let (_, t) = steady.iter().find(|(b, _)| *b == batch)?;
                Some(Group {
                    label: format!("batch {batch} · {host}"),
                    values: vec![Some(t.upload_us), Some(t.compute_us), Some(t.download_us)],
                })
            })
        })
        .collect()
}

/// A Python call's parts: in Pyodide, converting the sample into Python, the entry and
/// converting the result back; in native CPython, cProfile's shares of the steady call.
fn pyodide_split_groups(m: &PythonManifest) -> Vec<Group> {
    let t = &m.timings;
    let mut groups = Vec::new();
    if let Some(b) = &t.bundle.boundary {
        groups.push(Group {
            label: "Pyodide (Node)".into(),
            values: vec![
                Some(b.upload_us),
                None,
                None,
                Some(b.compute_us),
                Some(b.download_us),
            ],
        });
    }
    if let Some(a) = &t.native.attribution {
        let us = |share: f64| Some(share * t.native.steady.median_us);
        groups.push(Group {
            label: "native CPython (cProfile)".into(),
            values: vec![
                us(a.boundary_share),
                us(a.python_share),
                us(a.c_share),
                None,
                None,
            ],
        });
    }
    groups
}

fn bytes(v: f64) -> String {
    format_bytes(v.round() as u64)
}

fn size_values(sizes: &Sizes) -> Vec<Option<f64>> {
    [
        sizes.raw_bytes,
        sizes.gzip_bytes,
        sizes.brotli_bytes,
        sizes.zstd_bytes,
    ]
    .iter()
    .map(|&b| Some(b as f64))
    .collect()
}

const SIZE_SERIES: [&str; 4] = ["raw", "gzip -9", "brotli 11", "zstd 19"];

/// The page for `manifest`, with the metric diff against `baseline` when given (and what changed
/// inside, from [`diff::content_changes`]).
pub fn render(
    manifest: &AnyManifest,
    baseline: Option<(&AnyManifest, &ContentChanges)>,
) -> Result<String> {
    let (title, subtitle, body) = match manifest {
        AnyManifest::Kernel(m) => kernel_sections(m),
        AnyManifest::Pyodide(m) => pyodide_sections(m),
    };
    let mut page = String::new();
    page.push_str(&body);
    let budgets = budget::check(&manifest.metrics(), manifest.budgets())?;
    if !budgets.is_empty() {
        page.push_str(&budget_table(&budgets));
    }
    if let Some((baseline, content)) = baseline {
        let changes = diff::diff(&baseline.metrics(), &manifest.metrics());
        page.push_str(&diff_table(&changes));
        page.push_str(&content_table(content));
    }
    Ok(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} · cargo-wasmpack-infer report</title><style>{STYLE}</style></head><body><main><header><h1>{}</h1><p class="sub">{}</p></header>{page}<footer>Generated by cargo-wasmpack-infer {} from manifest.json. Every figure was measured in the run that wrote it.</footer></main></body></html>
"#,
        escape(&title),
        escape(&title),
        escape(&subtitle),
        env!("CARGO_PKG_VERSION"),
    ))
}

fn verdict(
    text: &str,
    deployments: &[DeploymentFit],
    parity_lines: &[(String, &Parity)],
) -> String {
    let parity: String = parity_lines
        .iter()
        .map(|(name, p)| {
            format!(
                r#"<li class="{}"><b>{}</b>: {}/{} samples agree on argmax, max |Δ| {:.2e} (tolerance {:.0e})</li>"#,
                if p.passed { "ok" } else { "bad" },
                escape(name),
                p.argmax_agree,
                p.samples,
                p.max_abs_diff,
                p.tolerance
            )
        })
        .collect();
    let rows: String = deployments
        .iter()
        .map(|d| {
            let figures: Vec<String> = d.figures.iter().map(human::fit_figure_text).collect();
            format!(
                r#"<tr><td>{}</td><td class="fit-{}">{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(d.deployment.as_str()),
                d.fit.as_str(),
                d.fit.as_str(),
                escape(&d.ship),
                escape(&figures.join(", "))
            )
        })
        .collect();
    let table = if rows.is_empty() {
        String::new()
    } else {
        format!(
            r#"<table class="fit"><thead><tr><th>deployment</th><th>WASM fit</th><th>ship</th><th>decided by</th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    format!(
        r#"<section class="card verdict"><h2>Runtime fit</h2><p>{}</p>{table}<ul class="parity">{parity}</ul></section>"#,
        escape(text)
    )
}

fn kernel_sections(m: &KernelManifest) -> (String, String, String) {
    let t = &m.timings;
    let title = format!("{} {}", m.kernel.name, m.kernel.version);
    let mut subtitle = format!(
        "kernel · {} profile · measured on {} ({} cores), {}",
        m.profile.name, t.environment.cpu, t.environment.cores, t.environment.wasm_engine
    );
    if let Some(model) = &m.kernel.model {
        subtitle.push_str(&format!(" · model {}", human::model_text(model)));
    }
    let mut body = String::new();
    let mut parities = vec![("WASM vs native CPU".to_string(), &m.parity)];
    if let Some(p) = &t.cuda.parity {
        parities.push(("WASM vs CUDA".into(), p));
    }
    if let Some(p) = t.browser.as_ref().and_then(|b| b.parity.as_ref()) {
        parities.push(("Chromium vs wasmtime".into(), p));
    }
    body.push_str(&verdict(
        &t.runtime_fit.verdict,
        &t.runtime_fit.deployments,
        &parities,
    ));
    body.push_str(&bar_chart(
        "Bytes per variant",
        "What a CDN ships for each variant, per compressor.",
        &SIZE_SERIES,
        &size_groups(m),
        bytes,
    ));

    let mut batches: Vec<usize> = t.wasm.steady.iter().map(|s| s.batch).collect();
    batches.dedup();
    let per_sample = |steady: &[crate::manifest::kernel::Steady], batch: usize| {
        steady
            .iter()
            .find(|s| s.batch == batch)
            .map(|s| s.latency.median_us / batch as f64)
    };
    let groups: Vec<Group> = batches
        .iter()
        .map(|&batch| Group {
            label: format!("batch {batch}"),
            values: vec![
                per_sample(&t.wasm.steady, batch),
                per_sample(&t.native.steady, batch),
                per_sample(&t.cuda.steady, batch),
                t.browser.as_ref().and_then(|b| {
                    b.steady
                        .iter()
                        .find(|s| s.batch == batch)
                        .map(|s| s.latency.median_us / batch as f64)
                }),
                t.node.as_ref().and_then(|h| per_sample(&h.steady, batch)),
                t.plugin_host
                    .as_ref()
                    .and_then(|h| per_sample(&h.steady, batch)),
            ],
        })
        .collect();
    body.push_str(&bar_chart(
        "Steady latency per sample",
        "Median of one call divided by its batch size: lower is better. WASM in every host includes copies across the sandbox boundary.",
        &[
            "wasm (wasmtime)",
            "native cpu",
            "cuda",
            "wasm in Chromium",
            "wasm in Node",
            "wasm in a Python host",
        ],
        &groups,
        format_duration_us,
    ));

    if t.variants.len() > 1 {
        let levels: Vec<String> = t.variants.iter().map(|v| v.level.to_string()).collect();
        let level_refs: Vec<&str> = levels.iter().map(String::as_str).collect();
        let groups: Vec<Group> = batches
            .iter()
            .map(|&batch| Group {
                label: format!("batch {batch}"),
                values: t
                    .variants
                    .iter()
                    .map(|v| per_sample(&v.steady, batch))
                    .collect(),
            })
            .collect();
        body.push_str(&bar_chart(
            "Steady latency per sample, by SIMD level",
            "Each feature-level variant in wasmtime (median of one call over its batch size); the loader picks the most capable one the engine validates.",
            &level_refs,
            &groups,
            format_duration_us,
        ));
    }

    let cold =
        |c: &crate::manifest::kernel::ColdStart| c.init.median_us + c.first_inference.median_us;
    let mut cold_groups = vec![
        Group::single("wasm, precompiled", t.runtime_fit.wasm_cold_start_us),
        Group::single(
            "wasm, compiling",
            t.runtime_fit.wasm_cold_start_compiling_us,
        ),
        Group::single("native cpu", t.runtime_fit.native_cold_start_us),
    ];
    if let Some(c) = &t.cuda.cold {
        cold_groups.push(Group::single("cuda", cold(c)));
    }
    if let Some(b) = &t.browser {
        cold_groups.push(Group::single(
            "Chromium load()",
            b.load.median_us + b.first_inference.median_us,
        ));
    }
    let split = kernel_split_groups(m);
    if !split.is_empty() {
        body.push_str(&split_chart(
            "Where a call's time goes",
            "Per host and batch, each part timed on calls of its own (medians): for WASM the copy into linear memory, wpi_infer and the copy out; for CUDA host → device, the kernels and device → host. The copies are the sandbox boundary; the sum is after each bar.",
            &["copy in", "compute", "copy out"],
            &split,
        ));
    }
    body.push_str(&bar_chart(
        "Cold start to first result",
        "Load or instantiate, init, and the first inference of one sample (medians).",
        &["cold start"],
        &cold_groups,
        format_duration_us,
    ));
    (title, subtitle, body)
}

/// The bytes chart's rows: every WASM variant (the primary marked), then native.
fn size_groups(m: &KernelManifest) -> Vec<Group> {
    let mut groups: Vec<Group> = if m.wasm.variants.len() > 1 {
        m.wasm
            .variants
            .iter()
            .map(|v| Group {
                label: format!(
                    "wasm {}{} · {}",
                    v.level,
                    if v.primary { " (primary)" } else { "" },
                    v.file
                ),
                values: size_values(&v.sizes),
            })
            .collect()
    } else {
        vec![Group {
            label: format!("wasm · {}", m.wasm.file),
            values: size_values(&m.wasm.sizes),
        }]
    };
    groups.push(Group {
        label: format!("native · {}", m.native.file),
        values: size_values(&m.native.sizes),
    });
    groups
}

fn pyodide_sections(m: &PythonManifest) -> (String, String, String) {
    let t = &m.timings;
    let title = format!("{} {}", m.project.name, m.project.version);
    let subtitle = format!(
        "Python on Pyodide {} · entry {} · measured on {} ({} cores), {}",
        m.distribution.version,
        m.project.entry,
        t.environment.cpu,
        t.environment.cores,
        t.environment.wasm_engine
    );
    let mut body = String::new();
    let mut parities = vec![("bundle vs native CPython".to_string(), &m.parity.native)];
    if let Some(p) = t.browser.as_ref().and_then(|b| b.parity.as_ref()) {
        parities.push(("Chromium vs Node".into(), p));
    }
    body.push_str(&verdict(
        &t.runtime_fit.verdict,
        &t.runtime_fit.deployments,
        &parities,
    ));
    let mut size_groups = vec![
        Group {
            label: "stock Pyodide".into(),
            values: size_values(&m.sizes.stock),
        },
        Group {
            label: "shaken bundle".into(),
            values: size_values(&m.sizes.bundle),
        },
    ];
    if let Some(upfront) = &m.sizes.upfront {
        size_groups.push(Group {
            label: "before the first inference".into(),
            values: size_values(upfront),
        });
    }
    if let Some(s) = &m.snapshot {
        size_groups.push(Group {
            label: "memory snapshot".into(),
            values: size_values(&s.sizes),
        });
    }
    body.push_str(&bar_chart(
        "Bytes shipped",
        "Runtime, standard library, packages and app; with a split runtime, what is fetched before the first inference (its deferred half only if called); the snapshot is an extra download when the loader boots from it.",
        &SIZE_SERIES,
        &size_groups,
        bytes,
    ));
    let mut cold = vec![
        Group::single("stock Pyodide (Node)", t.stock.cold_start_ms * 1000.0),
        Group::single("bundle (Node)", t.bundle.cold_start_ms * 1000.0),
    ];
    if let Some(s) = &m.snapshot {
        cold.push(Group::single(
            "snapshot boot (Node)",
            s.run.cold_start_ms * 1000.0,
        ));
    }
    if let Some(b) = &t.browser {
        cold.push(Group::single(
            "bundle (Chromium)",
            b.load.median_us + b.first_inference.median_us,
        ));
        if let Some(s) = &b.snapshot_load {
            cold.push(Group::single(
                "snapshot boot (Chromium)",
                s.median_us + b.first_inference.median_us,
            ));
        }
    }
    cold.push(Group::single(
        "native CPython",
        t.native.cold_start_ms * 1000.0,
    ));
    body.push_str(&bar_chart(
        "Cold start to first result",
        "Boot, app import and the first inference.",
        &["cold start"],
        &cold,
        format_duration_us,
    ));
    let mut steady = vec![
        Group::single("stock Pyodide (Node)", t.stock.steady.median_us),
        Group::single("bundle (Node)", t.bundle.steady.median_us),
    ];
    if let Some(b) = &t.browser {
        steady.push(Group::single(
            "bundle (Chromium)",
            b.steady.latency.median_us,
        ));
    }
    steady.push(Group::single("native CPython", t.native.steady.median_us));
    body.push_str(&bar_chart(
        "Steady latency per sample",
        "Median of one call of the entry on one sample: the interpreter tax is the Pyodide bar over the CPython bar.",
        &["steady"],
        &steady,
        format_duration_us,
    ));
    let split = pyodide_split_groups(m);
    if !split.is_empty() {
        body.push_str(&split_chart(
            "Where a call's time goes",
            "In Pyodide, converting the sample from JS into Python, the entry and converting the result back (medians of calls of their own); in native CPython, cProfile's shares of the steady call. The interpreter tax falls on Python-level code; what converting costs stays in either.",
            &[
                "converting in (or both ways, native)",
                "Python-level code",
                "C: builtins and extensions",
                "the entry, not split",
                "converting out",
            ],
            &split,
        ));
    }
    (title, subtitle, body)
}

fn budget_table(results: &[BudgetResult]) -> String {
    let rows: String = results
        .iter()
        .map(|r| {
            format!(
                r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{:+.1} %</td></tr>"#,
                if r.passed { "ok" } else { "bad" },
                escape(&r.metric),
                escape(&value(r.unit, r.limit)),
                escape(&value(r.unit, r.value)),
                r.headroom * 100.0
            )
        })
        .collect();
    let exceeded = results.iter().filter(|r| !r.passed).count();
    format!(
        r#"<section class="card"><h2>Budgets</h2><p class="note">{}</p><table><thead><tr><th>metric</th><th>limit</th><th>value</th><th>headroom</th></tr></thead><tbody>{rows}</tbody></table></section>"#,
        if exceeded == 0 {
            format!("All {} budgets met.", results.len())
        } else {
            format!("{exceeded} of {} budgets exceeded.", results.len())
        }
    )
}

fn diff_table(changes: &[MetricChange]) -> String {
    let changed: Vec<&MetricChange> = changes.iter().filter(|c| c.change != 0.0).collect();
    let rows: String = changed
        .iter()
        .map(|c| {
            let [metric, old, new, change, relative] = super::diff::cells(c);
            let worse = c.is_worse();
            format!(
                r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                if worse { "bad" } else { "ok" },
                escape(&metric),
                escape(&old),
                escape(&new),
                escape(&change),
                escape(&relative)
            )
        })
        .collect();
    let timings = changed
        .iter()
        .filter(|c| c.unit == Unit::Microseconds)
        .count();
    format!(
        r#"<section class="card"><h2>Against the baseline</h2><p class="note">{} metrics changed, {} unchanged; largest relative change first.{}</p><table><thead><tr><th>metric</th><th>old</th><th>new</th><th>change</th><th>%</th></tr></thead><tbody>{rows}</tbody></table></section>"#,
        changed.len(),
        changes.len() - changed.len(),
        if timings > 0 {
            " Timings are single medians from each run: noisy across machines."
        } else {
            ""
        }
    )
}

fn content_table(content: &ContentChanges) -> String {
    let (what, rows) = super::diff::content_rows(content);
    let title = if content.functions.is_empty() {
        "Shipped files"
    } else {
        "Functions whose size changed most"
    };
    let mut html = String::new();
    if !rows.is_empty() {
        let body: String = rows
            .iter()
            .map(|[name, old, new, change]| {
                format!(
                    r#"<tr class="{}"><td class="name">{}</td><td>{old}</td><td>{new}</td><td>{change}</td></tr>"#,
                    if change.starts_with('+') { "bad" } else { "ok" },
                    escape(name),
                )
            })
            .collect();
        let _ = write!(
            html,
            r#"<table><thead><tr><th>{what}</th><th>old</th><th>new</th><th>change</th></tr></thead><tbody>{body}</tbody></table>"#
        );
    }
    for (label, modules) in [
        ("Modules added", &content.modules_added),
        ("Modules removed", &content.modules_removed),
    ] {
        if !modules.is_empty() {
            let _ = write!(
                html,
                "<p><b>{label}:</b> {}</p>",
                escape(&modules.join(", "))
            );
        }
    }
    for note in &content.notes {
        let _ = write!(html, r#"<p class="note">{}</p>"#, escape(note));
    }
    if html.is_empty() {
        return String::new();
    }
    format!(r#"<section class="card"><h2>{title}</h2>{html}</section>"#)
}

/// Text made safe for HTML and SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_to_the_largest_value_and_escape_labels() {
        let svg = bar_chart(
            "t",
            "n",
            &["a", "b"],
            &[
                Group {
                    label: "<x>".into(),
                    values: vec![Some(10.0), None],
                },
                Group {
                    label: "y".into(),
                    values: vec![Some(5.0), Some(2.5)],
                },
            ],
            |v| format!("{v}"),
        );
        assert!(svg.contains("&lt;x&gt;") && !svg.contains("<x>"));
        // The largest bar spans the chart; the others in proportion.
        assert!(svg.contains(r#"width="520.0""#), "{svg}");
        assert!(svg.contains(r#"width="260.0""#) && svg.contains(r#"width="130.0""#));
        assert_eq!(
            svg.matches("<rect").count(),
            3,
            "no bar for a missing value"
        );
    }

    #[test]
    fn split_bars_stack_shares_of_each_call() {
        let svg = split_chart(
            "t",
            "n",
            &["in", "compute", "out"],
            &[
                Group {
                    label: "batch 1".into(),
                    values: vec![Some(1.0), Some(2.0), Some(1.0)],
                },
                Group {
                    label: "not timed".into(),
                    values: vec![None, None, None],
                },
            ],
        );
        // 520 units of bar: a quarter, a half, a quarter, one after the other.
        for (x, width) in [("210.0", "130.0"), ("340.0", "260.0"), ("600.0", "130.0")] {
            assert!(
                svg.contains(&format!(r#"<rect x="{x}" y="8.0" width="{width}""#)),
                "{svg}"
            );
        }
        assert!(svg.contains(">50 %<") && svg.contains(">25 %<"), "{svg}");
        assert!(svg.contains(">4.0 µs<"), "the call's sum: {svg}");
        assert!(
            !svg.contains("not timed"),
            "a row with nothing timed is left out"
        );
    }
}
