//! Every manifest flattened into named metrics (`wasm.brotli_bytes`, `ratio.interpreter_tax`,
//! `fit.browser-page`): what budgets limit and `diff` compares.

use super::common::{Distribution, Sizes};
use super::fit::DeploymentFit;
use super::kernel::KernelManifest;
use super::python::PythonManifest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Microseconds,
    Ratio,
    /// A runtime-fit grade: 0 weak, 1 conditional, 2 strong ([`super::fit::Fit::rank`]). Unlike every other
    /// unit, more is better, so a budget on one is a floor.
    Grade,
}

/// One measured value a budget can limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: Unit,
    /// For timings: how many runs the median came from.
    pub runs: Option<usize>,
}

/// Every metric of a Python bundle's manifest by name: bytes shipped and timings of the stock
/// distribution, the bundle, the bundle booted from its snapshot and native CPython, and ratios.
pub fn pyodide_metrics(manifest: &PythonManifest) -> Vec<Metric> {
    use super::python::PyodideRun;
    let mut out = Vec::new();
    let mut push = |name: String, value: f64, unit: Unit, runs: Option<usize>| {
        out.push(Metric {
            name,
            value,
            unit,
            runs,
        })
    };
    let sizes =
        |push: &mut dyn FnMut(String, f64, Unit, Option<usize>), variant: &str, s: &Sizes| {
            push(
                format!("{variant}.raw_bytes"),
                s.raw_bytes as f64,
                Unit::Bytes,
                None,
            );
            push(
                format!("{variant}.zstd_bytes"),
                s.zstd_bytes as f64,
                Unit::Bytes,
                None,
            );
            push(
                format!("{variant}.gzip_bytes"),
                s.gzip_bytes as f64,
                Unit::Bytes,
                None,
            );
            push(
                format!("{variant}.brotli_bytes"),
                s.brotli_bytes as f64,
                Unit::Bytes,
                None,
            );
        };
    sizes(&mut push, "stock", &manifest.sizes.stock);
    sizes(&mut push, "bundle", &manifest.sizes.bundle);
    if let Some(upfront) = &manifest.sizes.upfront {
        sizes(&mut push, "upfront", upfront);
    }
    if let Some(snapshot) = &manifest.snapshot {
        sizes(&mut push, "snapshot", &snapshot.sizes);
    }
    let ms = |value: f64| value * 1e3;
    let run =
        |push: &mut dyn FnMut(String, f64, Unit, Option<usize>), variant: &str, r: &PyodideRun| {
            push(
                format!("{variant}.boot_us"),
                ms(r.boot_ms),
                Unit::Microseconds,
                Some(1),
            );
            push(
                format!("{variant}.import_us"),
                ms(r.import_ms),
                Unit::Microseconds,
                Some(1),
            );
            push(
                format!("{variant}.first_inference_us"),
                ms(r.first_inference_ms),
                Unit::Microseconds,
                Some(1),
            );
            push(
                format!("{variant}.cold_start_us"),
                ms(r.cold_start_ms),
                Unit::Microseconds,
                Some(r.boots.map_or(1, |b| b.runs)),
            );
            push(
                format!("{variant}.steady_us"),
                r.steady.median_us,
                Unit::Microseconds,
                Some(r.steady.runs),
            );
            push(
                format!("{variant}.steady_p95_us"),
                r.steady.p95_us,
                Unit::Microseconds,
                Some(r.steady.runs),
            );
        };
    let t = &manifest.timings;
    run(&mut push, "stock", &t.stock);
    run(&mut push, "bundle", &t.bundle);
    if let Some(snapshot) = &manifest.snapshot {
        run(&mut push, "snapshot", &snapshot.run);
    }
    let n = &t.native;
    push(
        "native.startup_us".into(),
        ms(n.startup_ms),
        Unit::Microseconds,
        Some(1),
    );
    push(
        "native.import_us".into(),
        ms(n.import_ms),
        Unit::Microseconds,
        Some(1),
    );
    push(
        "native.first_inference_us".into(),
        ms(n.first_inference_ms),
        Unit::Microseconds,
        Some(1),
    );
    push(
        "native.cold_start_us".into(),
        ms(n.cold_start_ms),
        Unit::Microseconds,
        Some(1),
    );
    push(
        "native.steady_us".into(),
        n.steady.median_us,
        Unit::Microseconds,
        Some(n.steady.runs),
    );
    let fit = &t.runtime_fit;
    push(
        "ratio.interpreter_tax".into(),
        fit.interpreter_tax,
        Unit::Ratio,
        Some(n.steady.runs),
    );
    push(
        "ratio.bytes_over_stock".into(),
        fit.bytes_over_stock,
        Unit::Ratio,
        None,
    );
    if let Some(ratio) = fit.upfront_bytes_over_stock {
        push(
            "ratio.upfront_bytes_over_stock".into(),
            ratio,
            Unit::Ratio,
            None,
        );
    }
    push(
        "ratio.cold_start_over_stock".into(),
        fit.cold_start_over_stock,
        Unit::Ratio,
        Some(1),
    );
    if let Some(ratio) = fit.steady_over_stock {
        push(
            "ratio.steady_over_stock".into(),
            ratio,
            Unit::Ratio,
            t.bundle.steady_blocks.map(|b| b.runs),
        );
    }
    push(
        "ratio.cold_start_over_native".into(),
        fit.cold_start_over_native,
        Unit::Ratio,
        Some(1),
    );
    if let Some(ratio) = fit.snapshot_cold_start_over_stock {
        push(
            "ratio.snapshot_cold_start_over_stock".into(),
            ratio,
            Unit::Ratio,
            Some(1),
        );
    }
    push(
        "parity.max_abs_diff".into(),
        manifest.parity.native.max_abs_diff,
        Unit::Ratio,
        None,
    );
    fit_grades(&fit.deployments, &mut out);
    out
}

/// Each deployment's fit as a grade (`fit.browser-page`), so a budget can ask for at least
/// `conditional` or `strong` there.
fn fit_grades(deployments: &[DeploymentFit], out: &mut Vec<Metric>) {
    out.extend(deployments.iter().map(|d| Metric {
        name: format!("fit.{}", d.deployment.key()),
        value: d.fit.rank(),
        unit: Unit::Grade,
        runs: None,
    }));
}

/// Every metric of a kernel `manifest` by name.
pub fn metrics(manifest: &KernelManifest) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut bytes = |name: String, value: u64| {
        out.push(Metric {
            name,
            value: value as f64,
            unit: Unit::Bytes,
            runs: None,
        })
    };
    let mut sizes = |variant: &str, sizes: &Sizes| {
        bytes(format!("{variant}.raw_bytes"), sizes.raw_bytes);
        bytes(format!("{variant}.zstd_bytes"), sizes.zstd_bytes);
        bytes(format!("{variant}.gzip_bytes"), sizes.gzip_bytes);
        bytes(format!("{variant}.brotli_bytes"), sizes.brotli_bytes);
    };
    sizes("wasm", &manifest.wasm.sizes);
    sizes("native", &manifest.native.sizes);
    let stages = &manifest.wasm.stages;
    out.push(Metric {
        name: "wasm.built_bytes".into(),
        value: stages.built_bytes as f64,
        unit: Unit::Bytes,
        runs: None,
    });
    out.push(Metric {
        name: "wasm.shaken_bytes".into(),
        value: stages.shake.bytes as f64,
        unit: Unit::Bytes,
        runs: None,
    });

    let t = &manifest.timings;
    timing(&mut out, "wasm.compile_us".into(), &t.wasm.compile);
    timing(&mut out, "wasm.deserialize_us".into(), &t.wasm.deserialize);
    timing(&mut out, "wasm.instantiate_us".into(), &t.wasm.instantiate);
    timing(&mut out, "native.load_us".into(), &t.native.load);
    for (variant, cold, steady) in [
        ("wasm", &t.wasm.cold, &t.wasm.steady),
        ("native", &t.native.cold, &t.native.steady),
    ] {
        timing(&mut out, format!("{variant}.init_us"), &cold.init);
        timing(
            &mut out,
            format!("{variant}.first_inference_us"),
            &cold.first_inference,
        );
        for s in steady {
            timing(
                &mut out,
                format!("{variant}.steady_batch{}_us", s.batch),
                &s.latency,
            );
            let p95 = Distribution {
                median_us: s.latency.p95_us,
                ..s.latency
            };
            timing(
                &mut out,
                format!("{variant}.steady_batch{}_p95_us", s.batch),
                &p95,
            );
        }
    }
    let fit = &t.runtime_fit;
    let cold_runs = Some(t.wasm.cold.first_inference.runs);
    out.push(Metric {
        name: "wasm.cold_start_us".into(),
        value: fit.wasm_cold_start_us,
        unit: Unit::Microseconds,
        runs: cold_runs,
    });
    out.push(Metric {
        name: "native.cold_start_us".into(),
        value: fit.native_cold_start_us,
        unit: Unit::Microseconds,
        runs: cold_runs,
    });
    let steady_runs = t.wasm.steady.first().map(|s| s.latency.runs);
    let worst = fit
        .steady_ratio
        .iter()
        .map(|r| r.wasm_over_native)
        .fold(0.0, f64::max);
    out.push(Metric {
        name: "ratio.wasm_over_native_steady".into(),
        value: worst,
        unit: Unit::Ratio,
        runs: steady_runs,
    });
    for r in &fit.steady_ratio {
        out.push(Metric {
            name: format!("ratio.wasm_over_native_steady_batch{}", r.batch),
            value: r.wasm_over_native,
            unit: Unit::Ratio,
            runs: steady_runs,
        });
    }
    let cold_ratio = if fit.native_cold_start_us > 0.0 {
        fit.wasm_cold_start_us / fit.native_cold_start_us
    } else {
        f64::INFINITY
    };
    out.push(Metric {
        name: "ratio.wasm_over_native_cold_start".into(),
        value: cold_ratio,
        unit: Unit::Ratio,
        runs: cold_runs,
    });
    out.push(Metric {
        name: "parity.max_abs_diff".into(),
        value: manifest.parity.max_abs_diff,
        unit: Unit::Ratio,
        runs: None,
    });
    variant_metrics(manifest, &mut out);
    host_metrics(manifest, &mut out);
    fit_grades(&fit.deployments, &mut out);
    out
}

/// Figures measured in a host after the bundle is written, by the flag that measures them: their
/// metrics exist only once measured, so a budget on one is checked then.
pub const MEASURED_IN_HOSTS: [(&str, &str); 3] = [
    ("browser.", "--browser"),
    ("plugin_host.", "--python-host"),
    ("node.", "--node"),
];

/// The flag that measures `name`'s figure, when it is one of [`MEASURED_IN_HOSTS`].
pub fn measured_by_flag(name: &str) -> Option<&'static str> {
    MEASURED_IN_HOSTS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, flag)| *flag)
}

/// The WASM variant in the hosts its loaders serve, where measured: load, first inference and
/// steady latency per batch (`node.load_us`, `plugin_host.steady_batch1_us`).
fn host_metrics(manifest: &KernelManifest, out: &mut Vec<Metric>) {
    let mut host = |prefix: &str,
                    load: &Distribution,
                    first_inference: &Distribution,
                    steady: &mut dyn Iterator<Item = (usize, &Distribution)>| {
        timing(out, format!("{prefix}.load_us"), load);
        timing(out, format!("{prefix}.first_inference_us"), first_inference);
        for (batch, latency) in steady {
            timing(out, format!("{prefix}.steady_batch{batch}_us"), latency);
        }
    };
    let t = &manifest.timings;
    for (prefix, measured) in [("plugin_host", &t.plugin_host), ("node", &t.node)] {
        if let Some(h) = measured {
            let steady = &mut h.steady.iter().map(|s| (s.batch, &s.latency));
            host(prefix, &h.load, &h.first_inference, steady);
        }
    }
    if let Some(b) = &t.browser {
        let steady = &mut b.steady.iter().map(|s| (s.batch, &s.latency));
        host("browser", &b.load, &b.first_inference, steady);
    }
}

/// A timing's median, with its run count.
fn timing(out: &mut Vec<Metric>, name: String, d: &Distribution) {
    out.push(Metric {
        name,
        value: d.median_us,
        unit: Unit::Microseconds,
        runs: Some(d.runs),
    })
}

/// Each feature-level variant's bytes, compile and steady latency (`wasm.simd128.brotli_bytes`,
/// `wasm.relaxed-simd.steady_batch256_us`) and its steady ratios over native
/// (`ratio.simd128_over_native_steady_batch256`, on one native thread where native used more).
fn variant_metrics(manifest: &KernelManifest, out: &mut Vec<Metric>) {
    for variant in &manifest.wasm.variants {
        let prefix = format!("wasm.{}", variant.level);
        for (name, value) in [
            ("raw_bytes", variant.sizes.raw_bytes),
            ("zstd_bytes", variant.sizes.zstd_bytes),
            ("gzip_bytes", variant.sizes.gzip_bytes),
            ("brotli_bytes", variant.sizes.brotli_bytes),
        ] {
            out.push(Metric {
                name: format!("{prefix}.{name}"),
                value: value as f64,
                unit: Unit::Bytes,
                runs: None,
            });
        }
        if let Some(agreement) = &variant.agreement {
            out.push(Metric {
                name: format!("{prefix}.max_abs_diff"),
                value: agreement.max_abs_diff,
                unit: Unit::Ratio,
                runs: None,
            });
        }
    }
    for t in &manifest.timings.variants {
        let prefix = format!("wasm.{}", t.level);
        timing(out, format!("{prefix}.compile_us"), &t.compile);
        for s in &t.steady {
            timing(
                out,
                format!("{prefix}.steady_batch{}_us", s.batch),
                &s.latency,
            );
        }
        for r in &t.over_native {
            out.push(Metric {
                name: format!("ratio.{}_over_native_steady_batch{}", t.level, r.batch),
                value: r
                    .wasm_over_native_single_thread
                    .unwrap_or(r.wasm_over_native),
                unit: Unit::Ratio,
                runs: t
                    .steady
                    .iter()
                    .find(|s| s.batch == r.batch)
                    .map(|s| s.latency.runs),
            });
        }
    }
}
