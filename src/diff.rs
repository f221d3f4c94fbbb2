//! Comparing two manifests metric by metric, largest relative change first.

use crate::bundle::names::{NameMap, SizeChange, function_changes, size_changes};
use crate::manifest::AnyManifest;
use crate::manifest::fit::{Deployment, DeploymentFit, Fit};
use crate::manifest::kernel::KernelManifest;
use crate::manifest::metrics::{Metric, Unit};
use crate::manifest::python::PythonManifest;
use anyhow::{Result, anyhow, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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

impl MetricChange {
    /// Whether the change is for the worse: growth, except for throughput, where more is better.
    pub fn is_worse(&self) -> bool {
        if self.metric.contains("samples_per_second") {
            self.change < 0.0
        } else {
            self.change > 0.0
        }
    }
}

/// Every metric both manifests have, sorted by the size of the relative change (then by name).
/// Fit grades are left out: a verdict that changed is listed as such ([`ContentChanges::fits`]).
pub fn diff(old_metrics: &[Metric], new_metrics: &[Metric]) -> Vec<MetricChange> {
    let mut changes: Vec<MetricChange> = new_metrics
        .iter()
        .filter(|n| n.unit != Unit::Grade)
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

/// What changed inside two bundles beyond their metrics: the WASM functions whose size changed
/// most (from the sidecar name maps), or the Python modules and shipped files added, removed or
/// resized.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContentChanges {
    pub functions: Vec<SizeChange>,
    pub modules_added: Vec<String>,
    pub modules_removed: Vec<String>,
    /// Shipped files of a Python bundle, brotli bytes.
    pub files: Vec<SizeChange>,
    /// Deployment shapes whose runtime-fit verdict (fit or what to ship) changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fits: Vec<FitChange>,
    /// Why a comparison was left out (e.g. a bundle built before name maps existed).
    pub notes: Vec<String>,
}

/// One deployment shape judged differently by the new build.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FitChange {
    pub deployment: Deployment,
    pub old_fit: Fit,
    pub new_fit: Fit,
    pub old_ship: String,
    pub new_ship: String,
}

/// The shapes judged in both lists whose fit or what to ship changed, in the new list's order.
fn fit_changes(old: &[DeploymentFit], new: &[DeploymentFit]) -> Vec<FitChange> {
    new.iter()
        .filter_map(|n| {
            let o = old.iter().find(|o| o.deployment == n.deployment)?;
            (o.fit != n.fit || o.ship != n.ship).then(|| FitChange {
                deployment: n.deployment,
                old_fit: o.fit,
                new_fit: n.fit,
                old_ship: o.ship.clone(),
                new_ship: n.ship.clone(),
            })
        })
        .collect()
}

/// Functions listed by `diff`, at most.
pub const TOP_FUNCTIONS: usize = 10;

/// The content changes between the bundles at `old_dir` and `new_dir`, described by `old` and
/// `new` (of the same kind).
pub fn content_changes(
    old: &AnyManifest,
    old_dir: &Path,
    new: &AnyManifest,
    new_dir: &Path,
) -> ContentChanges {
    let mut out = ContentChanges::default();
    match (old, new) {
        (AnyManifest::Kernel(o), AnyManifest::Kernel(n)) => {
            out.fits = fit_changes(
                &o.timings.runtime_fit.deployments,
                &n.timings.runtime_fit.deployments,
            );
            match (name_map(o, old_dir), name_map(n, new_dir)) {
                (Ok(o), Ok(n)) => out.functions = function_changes(&o, &n, TOP_FUNCTIONS),
                (Err(e), _) => out
                    .notes
                    .push(format!("functions not compared: the old bundle {e:#}")),
                (_, Err(e)) => out
                    .notes
                    .push(format!("functions not compared: the new bundle {e:#}")),
            }
        }
        (AnyManifest::Pyodide(o), AnyManifest::Pyodide(n)) => {
            out.fits = fit_changes(
                &o.timings.runtime_fit.deployments,
                &n.timings.runtime_fit.deployments,
            );
            let (old_modules, new_modules) = (&o.shake.modules, &n.shake.modules);
            out.modules_added = new_modules
                .keys()
                .filter(|m| !old_modules.contains_key(*m))
                .cloned()
                .collect();
            out.modules_removed = old_modules
                .keys()
                .filter(|m| !new_modules.contains_key(*m))
                .cloned()
                .collect();
            let brotli = |m: &PythonManifest| -> BTreeMap<String, u64> {
                m.sizes
                    .per_file
                    .iter()
                    .map(|f| (f.file.clone(), f.bundle.brotli_bytes))
                    .collect()
            };
            out.files = size_changes(&brotli(o), &brotli(n));
        }
        _ => {}
    }
    out
}

/// The name map a kernel bundle's manifest points at, checked to describe its shipped module.
fn name_map(manifest: &KernelManifest, dir: &Path) -> Result<NameMap> {
    let file = manifest.wasm.name_map.as_deref().ok_or_else(|| {
        anyhow!("has no name map (built before they existed, or its module's twin with names did not reproduce it)")
    })?;
    let map = NameMap::read(&crate::bundle::path_in(dir, file)?)?;
    let shipped = manifest.files.iter().find(|f| f.path == manifest.wasm.file);
    if shipped.is_none_or(|f| f.sha256 != map.module_sha256) {
        bail!(
            "{file} describes another module than {}",
            manifest.wasm.file
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::kernel::KernelManifest;
    use crate::manifest::metrics::metrics;

    fn fixture() -> KernelManifest {
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

    /// A shape judged differently is listed with both fits and, when it changed, what to ship;
    /// one judged alike is not.
    #[test]
    fn a_changed_verdict_is_listed_per_shape() {
        let old: KernelManifest = serde_json::from_str(include_str!(
            "../tests/fixtures/manifests/handwritten-fit.json"
        ))
        .unwrap();
        let mut new = old.clone();
        let deployments = &mut new.timings.runtime_fit.deployments;
        assert!(
            !deployments.is_empty(),
            "the fixture has a verdict per shape"
        );
        deployments[0].fit = Fit::Weak;
        deployments[0].ship = "native-cpu".into();
        let changes = fit_changes(&old.timings.runtime_fit.deployments, deployments);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].deployment, deployments[0].deployment);
        assert_eq!(changes[0].new_fit, Fit::Weak);
        assert_eq!(changes[0].new_ship, "native-cpu");
        assert!(fit_changes(deployments, deployments).is_empty());
    }
}
