//! Budgets: limits on manifest metrics (`wasm.brotli_bytes = "40 KiB"`), and the check that
//! compares a manifest against them. Timing metrics are medians of the runs the manifest
//! records; the check reports how many.

use crate::exit::input_error;
use crate::manifest::fit::Fit;
use crate::manifest::metrics::{Metric, Unit, measured_by_flag};
use crate::manifest::{Budgets, LIMIT_SHAPE, Limit};
use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Budgets as written: a table per variant (`[budgets.wasm] brotli_bytes = "40 KiB"` or the
/// dotted `wasm.brotli_bytes = …`), whose entries are limits or, for one feature-level WASM
/// variant, a table of them (`[budgets.wasm.simd128] brotli_bytes = "20 KiB"`).
pub type BudgetTables = BTreeMap<String, BTreeMap<String, BudgetEntry>>;

/// One entry of a variant's budget table.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetEntry {
    Limit(Limit),
    Nested(BTreeMap<String, Limit>),
}

/// By hand, so a malformed limit keeps [`Limit`]'s own message.
impl<'de> Deserialize<'de> for BudgetEntry {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(deserializer)? {
            toml::Value::Table(table) => table
                .into_iter()
                .map(|(metric, limit)| {
                    Ok((metric, Limit::deserialize(limit).map_err(D::Error::custom)?))
                })
                .collect::<std::result::Result<_, D::Error>>()
                .map(BudgetEntry::Nested),
            other => Limit::deserialize(other)
                .map(BudgetEntry::Limit)
                .map_err(D::Error::custom),
        }
    }
}

/// Flattens budget tables to `variant.metric` (or `variant.level.metric`), as both Cargo.toml
/// metadata and budget files hold them.
pub fn from_tables(tables: BudgetTables) -> Budgets {
    tables
        .into_iter()
        .flat_map(|(variant, metrics)| {
            metrics
                .into_iter()
                .flat_map(move |(key, entry)| match entry {
                    BudgetEntry::Limit(limit) => vec![(format!("{variant}.{key}"), limit)],
                    BudgetEntry::Nested(metrics) => metrics
                        .into_iter()
                        .map(|(metric, limit)| (format!("{variant}.{key}.{metric}"), limit))
                        .collect(),
                })
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
        for (key, entry) in metrics {
            let (prefix, limits) = match entry {
                toml::Value::Table(nested) => (format!("{variant}.{key}."), nested),
                limit => (
                    format!("{variant}."),
                    toml::Table::from_iter([(key, limit)]),
                ),
            };
            for (metric, limit) in limits {
                let name = format!("{prefix}{metric}");
                let limit = Limit::deserialize(limit).map_err(|_| {
                    input_error(format!(
                        "budgets {where_}: `{name}` must be {LIMIT_SHAPE}; {FILE_SHAPE}"
                    ))
                })?;
                budgets.insert(name, limit);
            }
        }
    }
    Ok(budgets)
}

const FILE_SHAPE: &str = "a budgets file holds one table per variant, e.g.\n\n\
    [wasm]\nbrotli_bytes = \"40 KiB\"\ninstantiate_us = \"1 ms\"\n\n\
    [wasm.simd128]\nbrotli_bytes = \"20 KiB\"\n\n\
    [ratio]\nwasm_over_native_steady = 4.0\n\n\
    (or the same under [package.metadata.wasmpack-infer.budgets] as in Cargo.toml)";

/// A fit grade's floor, `strong`, `conditional` or `weak`, as its [`Fit::rank`].
fn parse_grade(limit: &Limit) -> std::result::Result<f64, String> {
    match limit {
        Limit::Text(text) => Fit::named(text.trim()).map(Fit::rank),
        Limit::Number(_) => None,
    }
    .ok_or_else(|| {
        format!(
            "a fit is the least grade allowed there: \"strong\", \"conditional\" or \"weak\", \
             got `{}`",
            limit_text(limit)
        )
    })
}

/// Parses `limit` in `unit`: bytes accept B, kB/KB, KiB, MB, MiB, GB, GiB; times ns, µs/us, ms,
/// s (a bare number is µs); ratios take a bare number; fit grades a name (`strong`).
pub fn parse_limit(limit: &Limit, unit: Unit) -> std::result::Result<f64, String> {
    let text = match (unit, limit) {
        (Unit::Grade, limit) => return parse_grade(limit),
        (_, Limit::Number(n)) => return Ok(*n),
        (_, Limit::Text(text)) => text.trim(),
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
        (Unit::Ratio | Unit::Grade, other) => {
            return Err(format!("a ratio takes no unit, got `{other}`"));
        }
    };
    Ok(number * factor)
}

fn limit_text(limit: &Limit) -> String {
    match limit {
        Limit::Number(n) => n.to_string(),
        Limit::Text(t) => t.clone(),
    }
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
    /// `(limit - value) / limit`; negative when exceeded. For a fit grade (a floor), the grades
    /// above the least one allowed; negative when below it.
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
            let metric =
                available.iter().find(|m| &m.name == name).ok_or_else(
                    || match measured_by_flag(name) {
                        Some(flag) => input_error(format!(
                            "budget `{name}` limits a figure this manifest has not measured: \
                         measure the bundle with {flag} (`build {flag}` or `measure {flag}`)"
                        )),
                        None => input_error(format!(
                            "unknown budget metric `{name}`; valid metrics: {}",
                            metric_names(available)
                        )),
                    },
                )?;
            let parsed = parse_limit(limit, metric.unit)
                .map_err(|e| input_error(format!("budget `{name}`: {e}")))?;
            let (headroom, passed) = if metric.unit == Unit::Grade {
                (metric.value - parsed, metric.value >= parsed)
            } else {
                let headroom = if parsed != 0.0 {
                    (parsed - metric.value) / parsed
                } else if metric.value == 0.0 {
                    0.0
                } else {
                    f64::NEG_INFINITY
                };
                (headroom, metric.value <= parsed)
            };
            Ok(BudgetResult {
                metric: name.clone(),
                unit: metric.unit,
                limit_text: limit_text(limit),
                limit: parsed,
                value: metric.value,
                headroom,
                runs: metric.runs,
                passed,
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
            (
                "wasm.simd128.brotli_bytes".to_string(),
                Limit::Text("15 KiB".into()),
            ),
        ]
        .into();
        let body = "wasm.brotli_bytes = \"16 KiB\"\nratio.wasm_over_native_steady = 4\n\
                    wasm.simd128.brotli_bytes = \"15 KiB\"\n";
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
                "[wasm.simd128]\nbrotli_bytes = true\n",
                "`wasm.simd128.brotli_bytes` must be a limit",
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
        for text in [
            "[wasm]\nbrotli_bytes = true\n",
            "[wasm.simd128]\nbrotli_bytes = true\n",
        ] {
            let err = toml::from_str::<BudgetTables>(text).unwrap_err();
            assert!(err.to_string().contains("\"40 KiB\""), "{err}");
        }
    }

    #[test]
    fn a_fit_budget_is_a_floor_on_the_grade() {
        let available = [Metric {
            name: "fit.browser-page".into(),
            value: Fit::Conditional.rank(),
            unit: Unit::Grade,
            runs: None,
        }];
        let result = |grade: &str| {
            let budgets =
                Budgets::from([("fit.browser-page".to_string(), Limit::Text(grade.into()))]);
            check(&available, &budgets).map(|r| (r[0].passed, r[0].headroom))
        };
        assert_eq!(result("weak").unwrap(), (true, 1.0));
        assert_eq!(result("conditional").unwrap(), (true, 0.0));
        assert_eq!(result("strong").unwrap(), (false, -1.0));
        let err = result("good").unwrap_err().to_string();
        assert!(
            err.contains("\"strong\", \"conditional\" or \"weak\""),
            "{err}"
        );
        let numeric = Budgets::from([("fit.browser-page".to_string(), Limit::Number(2.0))]);
        assert!(check(&available, &numeric).is_err());
    }

    #[test]
    fn a_budget_on_a_host_figure_not_measured_names_the_flag_that_measures_it() {
        let available = [Metric {
            name: "wasm.brotli_bytes".into(),
            value: 1000.0,
            unit: Unit::Bytes,
            runs: None,
        }];
        for (name, flag) in [
            ("node.steady_batch1_us", "--node"),
            ("plugin_host.load_us", "--python-host"),
            ("browser.load_us", "--browser"),
        ] {
            let budgets = Budgets::from([(name.to_string(), Limit::Text("1 ms".into()))]);
            let err = check(&available, &budgets).unwrap_err().to_string();
            assert!(
                err.contains("has not measured") && err.contains(&format!("measure {flag}")),
                "{err}"
            );
        }
        let budgets = Budgets::from([("wasm.brotli".to_string(), Limit::Number(1.0))]);
        let err = check(&available, &budgets).unwrap_err().to_string();
        assert!(err.contains("unknown budget metric `wasm.brotli`"), "{err}");
    }

    #[test]
    fn nested_tables_flatten_to_dotted_names() {
        let tables: BudgetTables = toml::from_str(
            "wasm.brotli_bytes = \"40 KiB\"\n[ratio]\nwasm_over_native_steady = 2.0\n\
             [wasm.relaxed-simd]\nsteady_batch1_us = \"2 µs\"\n",
        )
        .unwrap();
        let budgets = from_tables(tables);
        assert_eq!(
            budgets.keys().collect::<Vec<_>>(),
            vec![
                "ratio.wasm_over_native_steady",
                "wasm.brotli_bytes",
                "wasm.relaxed-simd.steady_batch1_us"
            ]
        );
    }
}
