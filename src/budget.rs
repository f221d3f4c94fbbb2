//! Budgets: limits on manifest metrics (`wasm.brotli_bytes = "40 KiB"`), and the check that
//! compares a manifest against them. Timing metrics are medians of the runs the manifest
//! records; the check reports how many.

use crate::exit::input_error;
use crate::manifest::{Distribution, Manifest, Sizes};
use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A limit as written: a number, or a number with a unit (`"40 KiB"`, `"1.5 ms"`, `"100 µs"`).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Limit {
    Number(f64),
    Text(String),
}

/// Written by hand so that a wrong value says what a limit looks like, where an untagged enum
/// would say only "data did not match any variant".
impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl serde::de::Visitor<'_> for LimitVisitor {
            type Value = Limit;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(LIMIT_SHAPE)
            }
            fn visit_f64<E>(self, v: f64) -> Result<Limit, E> {
                Ok(Limit::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Limit, E> {
                Ok(Limit::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Limit, E> {
                Ok(Limit::Number(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Limit, E> {
                Ok(Limit::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(LimitVisitor)
    }
}

const LIMIT_SHAPE: &str =
    "a limit: a number, or a string with a unit such as \"40 KiB\", \"1.5 ms\" or \"100 us\"";

/// Budgets by flattened metric name (`variant.metric`).
pub type Budgets = BTreeMap<String, Limit>;

/// Reads budgets written as tables per variant (`[budgets.wasm] brotli_bytes = "40 KiB"` or the
/// dotted `wasm.brotli_bytes = …`), as both Cargo.toml metadata and budget files hold them.
pub fn from_tables(tables: BTreeMap<String, BTreeMap<String, Limit>>) -> Budgets {
    tables
        .into_iter()
        .flat_map(|(variant, metrics)| {
            metrics
                .into_iter()
                .map(move |(metric, limit)| (format!("{variant}.{metric}"), limit))
        })
        .collect()
}

/// Where a budgets file may keep its tables besides the top level: copied from a kernel's
/// Cargo.toml or a Python project's pyproject.toml, header included (or the whole file).
const EMBEDDED_BUDGETS: [&[&str]; 2] = [
    &["package", "metadata", "wasmpack-infer", "budgets"],
    &["tool", "wasmpack-infer", "budgets"],
];

/// Reads a budgets file: TOML with one table per variant (`[wasm] brotli_bytes = "40 KiB"`), or
/// the same under `[package.metadata.wasmpack-infer.budgets]` / `[tool.wasmpack-infer.budgets]`.
pub fn read_file(path: &std::path::Path) -> Result<Budgets> {
    let where_ = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error(format!("reading budgets {where_}: {e}")))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| input_error(format!("budgets {where_}: {e}")))?;
    let embedded = EMBEDDED_BUDGETS.iter().find_map(|path| {
        let (last, parents) = path.split_last()?;
        let parent = parents
            .iter()
            .try_fold(&mut table, |t, key| t.get_mut(*key)?.as_table_mut())?;
        parent.remove(*last)
    });
    let tables = match embedded {
        Some(toml::Value::Table(budgets)) => budgets,
        Some(_) => {
            return Err(input_error(format!(
                "budgets {where_}: the budgets entry must be a table of variants"
            )));
        }
        None if table.contains_key("package") || table.contains_key("tool") => {
            return Err(input_error(format!(
                "budgets {where_}: no [package.metadata.wasmpack-infer.budgets] or \
                 [tool.wasmpack-infer.budgets] table in it; {FILE_SHAPE}"
            )));
        }
        None => table,
    };
    let mut budgets = Budgets::new();
    for (variant, metrics) in tables {
        let toml::Value::Table(metrics) = metrics else {
            return Err(input_error(format!(
                "budgets {where_}: `{variant}` is not a table of metrics; {FILE_SHAPE}"
            )));
        };
        for (metric, limit) in metrics {
            let limit = Limit::deserialize(limit).map_err(|_| {
                input_error(format!(
                    "budgets {where_}: `{variant}.{metric}` must be {LIMIT_SHAPE}; \
                     {FILE_SHAPE}"
                ))
            })?;
            budgets.insert(format!("{variant}.{metric}"), limit);
        }
    }
    Ok(budgets)
}

const FILE_SHAPE: &str = "a budgets file holds one table per variant, e.g.\n\n\
    [wasm]\nbrotli_bytes = \"40 KiB\"\ninstantiate_us = \"1 ms\"\n\n\
    [ratio]\nwasm_over_native_steady = 4.0\n\n\
    (or the same under [package.metadata.wasmpack-infer.budgets] as in Cargo.toml)";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Microseconds,
    Ratio,
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
pub fn pyodide_metrics(manifest: &crate::pyodide::manifest::PyodideManifest) -> Vec<Metric> {
    use crate::pyodide::manifest::PyodideRun;
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
                Some(1),
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
    out
}

/// Every metric of a kernel `manifest` by name.
pub fn metrics(manifest: &Manifest) -> Vec<Metric> {
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

    let timing = |out: &mut Vec<Metric>, name: String, d: &Distribution| {
        out.push(Metric {
            name,
            value: d.median_us,
            unit: Unit::Microseconds,
            runs: Some(d.runs),
        })
    };
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
    out
}

/// Parses `limit` in `unit`: bytes accept B, kB/KB, KiB, MB, MiB, GB, GiB; times ns, µs/us, ms,
/// s (a bare number is µs); ratios take a bare number.
pub fn parse_limit(limit: &Limit, unit: Unit) -> std::result::Result<f64, String> {
    let text = match limit {
        Limit::Number(n) => return Ok(*n),
        Limit::Text(text) => text.trim(),
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let suffix = suffix.trim();
    let factor = match (unit, suffix) {
        (_, "") => 1.0,
        (Unit::Bytes, "B") => 1.0,
        (Unit::Bytes, "kB" | "KB") => 1e3,
        (Unit::Bytes, "KiB") => 1024.0,
        (Unit::Bytes, "MB") => 1e6,
        (Unit::Bytes, "MiB") => 1024.0 * 1024.0,
        (Unit::Bytes, "GB") => 1e9,
        (Unit::Bytes, "GiB") => 1024.0 * 1024.0 * 1024.0,
        (Unit::Microseconds, "ns") => 1e-3,
        (Unit::Microseconds, "µs" | "us") => 1.0,
        (Unit::Microseconds, "ms") => 1e3,
        (Unit::Microseconds, "s") => 1e6,
        (Unit::Ratio, "x" | "×") => 1.0,
        (Unit::Bytes, other) => {
            return Err(format!(
                "unknown size unit `{other}` (B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
        (Unit::Microseconds, other) => {
            return Err(format!("unknown time unit `{other}` (ns, µs, us, ms, s)"));
        }
        (Unit::Ratio, other) => return Err(format!("a ratio takes no unit, got `{other}`")),
    };
    Ok(number * factor)
}

/// One budget compared with its metric.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetResult {
    pub metric: String,
    pub unit: Unit,
    /// As written in the budget.
    pub limit_text: String,
    pub limit: f64,
    pub value: f64,
    /// `(limit - value) / limit`; negative when exceeded.
    pub headroom: f64,
    /// Runs behind a timing median.
    pub runs: Option<usize>,
    pub passed: bool,
}

/// Every metric name, for the error that lists them.
fn metric_names(available: &[Metric]) -> String {
    available
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares a manifest's `available` metrics with `budgets`. Unknown metric names and malformed
/// limits are input errors.
pub fn check(available: &[Metric], budgets: &Budgets) -> Result<Vec<BudgetResult>> {
    budgets
        .iter()
        .map(|(name, limit)| {
            let metric = available.iter().find(|m| &m.name == name).ok_or_else(|| {
                input_error(format!(
                    "unknown budget metric `{name}`; valid metrics: {}",
                    metric_names(available)
                ))
            })?;
            let parsed = parse_limit(limit, metric.unit)
                .map_err(|e| input_error(format!("budget `{name}`: {e}")))?;
            Ok(BudgetResult {
                metric: name.clone(),
                unit: metric.unit,
                limit_text: match limit {
                    Limit::Number(n) => n.to_string(),
                    Limit::Text(t) => t.clone(),
                },
                limit: parsed,
                value: metric.value,
                headroom: if parsed != 0.0 {
                    (parsed - metric.value) / parsed
                } else if metric.value == 0.0 {
                    0.0
                } else {
                    f64::NEG_INFINITY
                },
                runs: metric.runs,
                passed: metric.value <= parsed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_in_their_dimension_only() {
        assert_eq!(
            parse_limit(&Limit::Text("40 KiB".into()), Unit::Bytes),
            Ok(40960.0)
        );
        assert_eq!(
            parse_limit(&Limit::Text("4 MB".into()), Unit::Bytes),
            Ok(4e6)
        );
        assert_eq!(
            parse_limit(&Limit::Text("1.5 ms".into()), Unit::Microseconds),
            Ok(1500.0)
        );
        assert_eq!(
            parse_limit(&Limit::Text("100µs".into()), Unit::Microseconds),
            Ok(100.0)
        );
        assert_eq!(parse_limit(&Limit::Number(2.0), Unit::Ratio), Ok(2.0));
        assert!(
            parse_limit(&Limit::Text("40 ms".into()), Unit::Bytes)
                .unwrap_err()
                .contains("unknown size unit `ms`")
        );
        assert!(
            parse_limit(&Limit::Text("fast".into()), Unit::Ratio)
                .unwrap_err()
                .contains("does not start with a number")
        );
    }

    fn read_text(text: &str) -> Result<Budgets> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        read_file(file.path())
    }

    #[test]
    fn budget_files_take_tables_as_written_in_cargo_toml_or_pyproject() {
        let expected: Budgets = [
            (
                "ratio.wasm_over_native_steady".to_string(),
                Limit::Number(4.0),
            ),
            (
                "wasm.brotli_bytes".to_string(),
                Limit::Text("16 KiB".into()),
            ),
        ]
        .into();
        let body = "wasm.brotli_bytes = \"16 KiB\"\nratio.wasm_over_native_steady = 4\n";
        for header in [
            "",
            "[package.metadata.wasmpack-infer.budgets]\n",
            "[tool.wasmpack-infer.budgets]\n",
            "[package]\nname = \"k\"\n[package.metadata.wasmpack-infer]\ntolerance = 1e-5\n\
             [package.metadata.wasmpack-infer.budgets]\n",
        ] {
            assert_eq!(
                read_text(&format!("{header}{body}")).unwrap(),
                expected,
                "{header}"
            );
        }
    }

    #[test]
    fn a_malformed_budget_file_names_the_metric_and_the_shape() {
        let cases = [
            (
                "[wasm]\nbrotli_bytes = true\n",
                "`wasm.brotli_bytes` must be a limit",
            ),
            (
                "[package.metadata.wasmpack-infer.budgets]\nwasm.brotli_bytes = [1]\n",
                "`wasm.brotli_bytes` must be a limit",
            ),
            (
                "brotli_bytes = 3\n",
                "`brotli_bytes` is not a table of metrics",
            ),
            (
                "[package]\nname = \"k\"\n",
                "no [package.metadata.wasmpack-infer.budgets]",
            ),
        ];
        for (text, needle) in cases {
            let err = read_text(text).unwrap_err();
            assert!(err.is::<crate::exit::InputError>());
            let message = format!("{err:#}");
            assert!(message.contains(needle), "{needle}: {message}");
            assert!(message.contains("one table per variant"), "{message}");
        }
    }

    #[test]
    fn a_wrong_limit_in_metadata_says_what_a_limit_looks_like() {
        let err = toml::from_str::<BTreeMap<String, BTreeMap<String, Limit>>>(
            "[wasm]\nbrotli_bytes = true\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"40 KiB\""), "{err}");
    }

    #[test]
    fn nested_tables_flatten_to_dotted_names() {
        let tables: BTreeMap<String, BTreeMap<String, Limit>> = toml::from_str(
            "wasm.brotli_bytes = \"40 KiB\"\n[ratio]\nwasm_over_native_steady = 2.0\n",
        )
        .unwrap();
        let budgets = from_tables(tables);
        assert_eq!(
            budgets.keys().collect::<Vec<_>>(),
            vec!["ratio.wasm_over_native_steady", "wasm.brotli_bytes"]
        );
    }
}
