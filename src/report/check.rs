//! Budget check results as a human table and as Markdown (for PR comments and job summaries).

use super::{Tone, paint};
use crate::budget::BudgetResult;
use crate::manifest::fit::Fit;
use crate::manifest::metrics::Unit;
use crate::units::format_bytes;
use crate::units::format_duration_us;

/// A metric value in its unit, as the tables show it.
pub fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Bytes => format_bytes(v.max(0.0).round() as u64),
        Unit::Microseconds => format_duration_us(v),
        Unit::Ratio => format!("{v:.3}"),
        Unit::Grade => Fit::of_rank(v).map_or_else(|| v.to_string(), |fit| fit.as_str().into()),
    }
}

fn cells(r: &BudgetResult) -> [String; 5] {
    let (limit, headroom) = match r.unit {
        // A grade's limit is a floor; its headroom counts grades, not a fraction.
        Unit::Grade => (
            format!("≥ {}", value(r.unit, r.limit)),
            match r.headroom {
                h if h.abs() == 1.0 => format!("{h:+} grade"),
                h => format!("{h:+} grades"),
            },
        ),
        _ => (
            value(r.unit, r.limit),
            format!("{:+.1} %", r.headroom * 100.0),
        ),
    };
    [
        r.metric.clone(),
        limit,
        value(r.unit, r.value),
        headroom,
        r.runs.map(|n| format!("median of {n}")).unwrap_or_default(),
    ]
}

const HEADER: [&str; 5] = ["metric", "limit", "value", "headroom", "runs"];

fn verdict(results: &[BudgetResult]) -> String {
    let exceeded = results.iter().filter(|r| !r.passed).count();
    if exceeded == 0 {
        format!("all {} budgets met", results.len())
    } else {
        format!("{exceeded} of {} budgets exceeded", results.len())
    }
}

/// The table for a terminal or a log; `colour` paints passing rows green and failing ones red.
pub fn human(results: &[BudgetResult], colour: bool) -> String {
    let rows: Vec<[String; 5]> = results.iter().map(cells).collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([HEADER[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |cols: [&str; 5], mark: &str| {
        let mut text = format!("{mark} ");
        for (i, col) in cols.iter().enumerate() {
            text.push_str(&format!("{col:<w$}  ", w = widths[i]));
        }
        text.trim_end().to_string() + "\n"
    };
    let tone = |passed: bool| if passed { Tone::Good } else { Tone::Bad };
    let mut out = line(HEADER, " ");
    for (r, c) in results.iter().zip(&rows) {
        let row = line(
            [&c[0], &c[1], &c[2], &c[3], &c[4]],
            if r.passed { " " } else { "✗" },
        );
        out.push_str(&paint(row.trim_end_matches('\n'), tone(r.passed), colour));
        out.push('\n');
    }
    let all_passed = results.iter().all(|r| r.passed);
    out.push_str(&format!(
        "\n{}\n",
        paint(&verdict(results), tone(all_passed), colour)
    ));
    out
}

pub fn markdown(results: &[BudgetResult]) -> String {
    let mut out =
        String::from("| | metric | limit | value | headroom | runs |\n|---|---|---|---|---|---|\n");
    for r in results {
        let c = cells(r);
        let mark = if r.passed { "✅" } else { "❌" };
        out.push_str(&format!(
            "| {mark} | `{}` | {} | {} | {} | {} |\n",
            c[0], c[1], c[2], c[3], c[4]
        ));
    }
    out.push_str(&format!("\n**{}**\n", verdict(results)));
    out
}
