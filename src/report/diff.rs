//! `diff` tables: human and Markdown.

use super::check::value;
use crate::diff::MetricChange;

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

/// Changed metrics only (unchanged ones are counted), largest relative change first.
pub fn human(changes: &[MetricChange]) -> String {
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
    for row in &changed {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
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
