//! `diff` tables: human and Markdown.

use super::check::value;
use super::{Tone, paint};
use crate::diff::{ContentChanges, MetricChange};
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

pub fn markdown(changes: &[MetricChange]) -> String {
    let mut out = String::from("| metric | old | new | change | % |\n|---|---|---|---|---|\n");
    for c in changes.iter().filter(|c| c.change != 0.0) {
        let [metric, old, new, change, relative] = cells(c);
        out.push_str(&format!(
            "| `{metric}` | {old} | {new} | {change} | {relative} |\n"
        ));
    }
    out
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
    for note in &changes.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

pub fn content_markdown(changes: &ContentChanges) -> String {
    let mut out = String::new();
    let (what, rows) = content_rows(changes);
    if !rows.is_empty() {
        out.push_str(&format!(
            "\n| {what} | old | new | change |\n|---|---|---|---|\n"
        ));
        for [name, old, new, change] in &rows {
            out.push_str(&format!(
                "| `{}` | {old} | {new} | {change} |\n",
                name.replace('|', "\\|")
            ));
        }
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
    for note in &changes.notes {
        out.push_str(&format!("\n_{note}_\n"));
    }
    out
}
