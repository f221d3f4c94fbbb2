//! Comparing two manifests metric by metric, largest relative change first.

use crate::budget::{Metric, Unit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricChange {
    pub metric: String,
    pub unit: Unit,
    pub old: f64,
    pub new: f64,
    /// `new - old`.
    pub change: f64,
    /// `(new - old) / old`; infinite when growing from zero.
    pub relative: f64,
}

/// Every metric both manifests have, sorted by the size of the relative change (then by name).
pub fn diff(old_metrics: &[Metric], new_metrics: &[Metric]) -> Vec<MetricChange> {
    let mut changes: Vec<MetricChange> = new_metrics
        .iter()
        .cloned()
        .filter_map(|n| {
            let o = old_metrics.iter().find(|o| o.name == n.name)?;
            let relative = match (o.value, n.value) {
                (a, b) if a == b => 0.0,
                (0.0, b) => f64::INFINITY.copysign(b),
                (a, b) => (b - a) / a,
            };
            Some(MetricChange {
                metric: n.name,
                unit: n.unit,
                old: o.value,
                new: n.value,
                change: n.value - o.value,
                relative,
            })
        })
        .collect();
    changes.sort_by(|a, b| {
        b.relative
            .abs()
            .total_cmp(&a.relative.abs())
            .then_with(|| a.metric.cmp(&b.metric))
    });
    changes
}

/// Byte metrics that grew by more than `threshold` (a fraction, 0.05 = 5 %). Timings are left out:
/// one noisy run must not fail a release; gate them with timing budgets on medians instead.
pub fn grown_beyond(changes: &[MetricChange], threshold: f64) -> Vec<&MetricChange> {
    changes
        .iter()
        .filter(|c| c.unit == Unit::Bytes && c.relative > threshold)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::metrics;
    use crate::manifest::Manifest;

    fn fixture() -> Manifest {
        serde_json::from_str(include_str!("../tests/fixtures/manifests/handwritten.json")).unwrap()
    }

    #[test]
    fn identical_manifests_change_nothing() {
        let m = fixture();
        assert!(
            diff(&metrics(&m), &metrics(&m))
                .iter()
                .all(|c| c.change == 0.0 && c.relative == 0.0)
        );
    }

    #[test]
    fn largest_relative_change_comes_first_and_only_bytes_gate() {
        let old = fixture();
        let mut new = old.clone();
        new.wasm.sizes.brotli_bytes = old.wasm.sizes.brotli_bytes * 2;
        new.timings.wasm.instantiate.median_us = old.timings.wasm.instantiate.median_us * 10.0;
        let changes = diff(&metrics(&old), &metrics(&new));
        assert_eq!(changes[0].metric, "wasm.instantiate_us");
        assert_eq!(changes[1].metric, "wasm.brotli_bytes");
        assert!((changes[1].relative - 1.0).abs() < 1e-9);
        let grown: Vec<&str> = grown_beyond(&changes, 0.05)
            .iter()
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(grown, vec!["wasm.brotli_bytes"]);
    }
}
