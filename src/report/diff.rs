//! `diff` tables: human and Markdown.

use super::check::value;
use super::{Tone, paint};
use crate::diff::{ContentChanges, FitChange, MetricChange};
use crate::manifest::metrics::Unit;
use crate::units::format_bytes;

pub(crate) fn cells(c: &MetricChange) -> [String; 5] {
    let change = if c.change >= 0.0 {
        format!("+{}", value(c.unit, c.change))
    } else {
        format!("−{}", value(c.unit, -c.change))
    };
    let relative = if c.relative.is_infinite() {
        "new".to_string()
    } else {
        format!("{:+.1} %", c.relative * 100.0)
    };
    [
        c.metric.clone(),
        value(c.unit, c.old),
        value(c.unit, c.new),
        change,
        relative,
    ]
}

const HEADER: [&str; 5] = ["metric", "old", "new", "change", "%"];

/// Changed metrics only (unchanged ones are counted), largest relative change first; `colour`
/// paints changes for the worse red and for the better green.
pub fn human(changes: &[MetricChange], colour: bool) -> String {
    let changed_metrics: Vec<&MetricChange> = changes.iter().filter(|c| c.change != 0.0).collect();
    let changed: Vec<[String; 5]> = changes
        .iter()
        .filter(|c| c.change != 0.0)
        .map(cells)
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            changed
                .iter()
                .map(|r| r[i].chars().count())
                .chain([HEADER[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cols: [&str; 5]| {
        let mut text = String::new();
        for (i, col) in cols.iter().enumerate() {
            text.push_str(&format!("{col:<w$}  ", w = widths[i]));
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(HEADER);
    for (row, change) in changed.iter().zip(&changed_metrics) {
        let text = line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
        let tone = if change.is_worse() {
            Tone::Bad
        } else {
            Tone::Good
        };
        out.push_str(&paint(text.trim_end_matches('\n'), tone, colour));
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} metrics changed, {} unchanged\n",
        changed.len(),
        changes.len() - changed.len()
    ));
    out
}

/// Tables longer than this are folded into `<details>` in Markdown, so a PR comment or job
/// summary stays short (size-limit's action does the same).
const LONG_TABLE_ROWS: usize = 10;

/// What `--fail-over` decided, for the Markdown verdict line.
pub struct FailOver<'a> {
    pub threshold: f64,
    pub grown: &'a [&'a MetricChange],
}

/// The whole `diff` as Markdown for a PR comment or the job summary: a verdict line, the sizes
/// that changed (the metrics `--fail-over` gates), then timings and the functions or files that
/// changed, folded when long. Timings are always folded: they vary run to run and are not gated.
pub fn markdown(
    changes: &[MetricChange],
    content: &ContentChanges,
    fail_over: Option<FailOver>,
) -> String {
    let changed: Vec<&MetricChange> = changes.iter().filter(|c| c.change != 0.0).collect();
    let (sizes, others): (Vec<&MetricChange>, Vec<&MetricChange>) =
        changed.iter().partition(|c| c.unit == Unit::Bytes);
    let mut out = format!(
        "**{} of {} metrics changed**: {} {}, {} {}\n",
        changed.len(),
        changes.len(),
        sizes.len(),
        if sizes.len() == 1 { "size" } else { "sizes" },
        others.len(),
        if others.len() == 1 {
            "timing or ratio"
        } else {
            "timings and ratios"
        },
    );
    if let Some(FailOver { threshold, grown }) = fail_over {
        let limit = format!("{:.1} %", threshold * 100.0);
        if grown.is_empty() {
            out.push_str(&format!("\n✅ no size grew over {limit}\n"));
        }
        for c in grown {
            out.push_str(&format!(
                "\n❌ `{}` grew {:+.1} %, over {limit}\n",
                c.metric,
                c.relative * 100.0
            ));
        }
    }
    if !sizes.is_empty() {
        let table = metric_table(&sizes);
        out.push_str(&fold_if_long(
            &format!("Sizes: {} changed", sizes.len()),
            &table,
            sizes.len() > LONG_TABLE_ROWS,
        ));
    }
    if !others.is_empty() {
        let table = metric_table(&others);
        out.push_str(&fold_if_long(
            &format!(
                "Timings and ratios: {} changed (not gated by --fail-over)",
                others.len()
            ),
            &table,
            true,
        ));
    }
    out.push_str(&content_markdown(content));
    out
}

fn metric_table(changes: &[&MetricChange]) -> String {
    let mut out = String::from("| metric | old | new | change | % |\n|---|---|---|---|---|\n");
    for c in changes {
        let [metric, old, new, change, relative] = cells(c);
        out.push_str(&format!(
            "| `{metric}` | {old} | {new} | {change} | {relative} |\n"
        ));
    }
    out
}

/// `table` under a heading, or inside a `<details>` block whose summary is the heading.
fn fold_if_long(heading: &str, table: &str, fold: bool) -> String {
    if fold {
        format!("\n<details><summary>{heading}</summary>\n\n{table}\n</details>\n")
    } else {
        format!("\n**{heading}**\n\n{table}")
    }
}

fn signed_bytes(change: i64) -> String {
    let magnitude = format_bytes(change.unsigned_abs());
    if change >= 0 {
        format!("+{magnitude}")
    } else {
        format!("−{magnitude}")
    }
}

fn maybe_bytes(bytes: Option<u64>) -> String {
    bytes.map_or("—".into(), format_bytes)
}

/// The functions table of a kernel diff, or the files table of a Python one: its first column's
/// title and its rows (name, old, new, change).
pub(crate) fn content_rows(changes: &ContentChanges) -> (&'static str, Vec<[String; 4]>) {
    let (what, list) = if changes.functions.is_empty() {
        ("file (brotli)", &changes.files)
    } else {
        ("function", &changes.functions)
    };
    let rows = list
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                maybe_bytes(c.old_bytes),
                maybe_bytes(c.new_bytes),
                signed_bytes(c.change),
            ]
        })
        .collect();
    (what, rows)
}

/// Functions (or shipped files) whose size changed most, and modules added or removed.
pub fn content_human(changes: &ContentChanges) -> String {
    let mut out = String::new();
    let (what, rows) = content_rows(changes);
    if !rows.is_empty() {
        let width = rows
            .iter()
            .map(|r| r[0].chars().count())
            .max()
            .unwrap_or(0)
            .min(70);
        out.push_str(&format!(
            "\n{what:<width$}  {:>10}  {:>10}  {:>10}\n",
            "old", "new", "change"
        ));
        for [name, old, new, change] in &rows {
            let name: String = name.chars().take(70).collect();
            out.push_str(&format!(
                "{name:<width$}  {old:>10}  {new:>10}  {change:>10}\n"
            ));
        }
    }
    for (label, modules) in [
        ("modules added", &changes.modules_added),
        ("modules removed", &changes.modules_removed),
    ] {
        if !modules.is_empty() {
            out.push_str(&format!("{label}: {}\n", modules.join(", ")));
        }
    }
    for change in &changes.fits {
        out.push_str(&format!("verdict changed: {}\n", fit_change_text(change)));
    }
    for note in &changes.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// "browser page strong → weak (ship wasm → native-cpu)", the ship part only when it changed.
fn fit_change_text(change: &FitChange) -> String {
    let ship = if change.old_ship == change.new_ship {
        String::new()
    } else {
        format!(" (ship {} → {})", change.old_ship, change.new_ship)
    };
    format!(
        "{} {} → {}{ship}",
        change.deployment.as_str(),
        change.old_fit.as_str(),
        change.new_fit.as_str()
    )
}

fn content_markdown(changes: &ContentChanges) -> String {
    let mut out = String::new();
    let (what, rows) = content_rows(changes);
    if !rows.is_empty() {
        let mut table = format!("| {what} | old | new | change |\n|---|---|---|---|\n");
        for [name, old, new, change] in &rows {
            table.push_str(&format!(
                "| `{}` | {old} | {new} | {change} |\n",
                name.replace('|', "\\|")
            ));
        }
        let noun = if changes.functions.is_empty() {
            "Shipped files"
        } else {
            "Functions"
        };
        out.push_str(&fold_if_long(
            &format!("{noun}: {} changed most", rows.len()),
            &table,
            rows.len() > LONG_TABLE_ROWS,
        ));
    }
    for (label, modules) in [
        ("Modules added", &changes.modules_added),
        ("Modules removed", &changes.modules_removed),
    ] {
        if !modules.is_empty() {
            let list: Vec<String> = modules.iter().map(|m| format!("`{m}`")).collect();
            out.push_str(&format!("\n{label}: {}\n", list.join(", ")));
        }
    }
    if !changes.fits.is_empty() {
        out.push_str("\nVerdict changed:\n");
        for change in &changes.fits {
            out.push_str(&format!("- {}\n", fit_change_text(change)));
        }
    }
    for note in &changes.notes {
        out.push_str(&format!("\n_{note}_\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size_changes(count: usize) -> Vec<MetricChange> {
        (0..count)
            .map(|i| MetricChange {
                metric: format!("wasm.file{i}_bytes"),
                unit: Unit::Bytes,
                old: 100.0,
                new: 110.0 + i as f64,
                change: 10.0 + i as f64,
                relative: (10.0 + i as f64) / 100.0,
            })
            .collect()
    }

    #[test]
    fn long_tables_fold_into_details_and_short_ones_stay_open() {
        let content = ContentChanges::default();
        let short = markdown(&size_changes(3), &content, None);
        assert!(!short.contains("<details>"), "{short}");
        assert!(short.contains("**Sizes: 3 changed**"), "{short}");
        let long = markdown(&size_changes(LONG_TABLE_ROWS + 1), &content, None);
        assert!(
            long.contains("<details><summary>Sizes: 11 changed</summary>"),
            "{long}"
        );
        assert_eq!(long.matches("| `wasm.file").count(), LONG_TABLE_ROWS + 1);
    }

    #[test]
    fn the_verdict_names_each_size_over_the_limit() {
        let changes = size_changes(2);
        let grown: Vec<&MetricChange> = changes.iter().filter(|c| c.relative > 0.105).collect();
        let text = markdown(
            &changes,
            &ContentChanges::default(),
            Some(FailOver {
                threshold: 0.105,
                grown: &grown,
            }),
        );
        assert!(
            text.contains("❌ `wasm.file1_bytes` grew +11.0 %, over 10.5 %"),
            "{text}"
        );
        assert!(!text.contains("❌ `wasm.file0_bytes`"), "{text}");
        let text = markdown(
            &changes,
            &ContentChanges::default(),
            Some(FailOver {
                threshold: 0.5,
                grown: &[],
            }),
        );
        assert!(text.contains("✅ no size grew over 50.0 %"), "{text}");
    }

    /// A changed verdict reads the same in the terminal and in a PR comment; what to ship is
    /// named only when it changed.
    #[test]
    fn a_changed_verdict_is_printed_in_both_formats() {
        use crate::manifest::fit::{Deployment, Fit};
        let content = ContentChanges {
            fits: vec![
                FitChange {
                    deployment: Deployment::BrowserPage,
                    old_fit: Fit::Strong,
                    new_fit: Fit::Weak,
                    old_ship: "wasm".into(),
                    new_ship: "wasm".into(),
                },
                FitChange {
                    deployment: Deployment::ServerBatch,
                    old_fit: Fit::Strong,
                    new_fit: Fit::Conditional,
                    old_ship: "wasm".into(),
                    new_ship: "native-cpu".into(),
                },
            ],
            ..ContentChanges::default()
        };
        assert_eq!(
            content_human(&content),
            "verdict changed: browser page strong → weak\n\
             verdict changed: server, batches strong → conditional (ship wasm → native-cpu)\n"
        );
        assert!(
            markdown(&[], &content, None).contains(
                "Verdict changed:\n- browser page strong → weak\n- server, batches strong → \
                 conditional (ship wasm → native-cpu)\n"
            ),
            "{}",
            markdown(&[], &content, None)
        );
    }
}
