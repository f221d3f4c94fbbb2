//! `manifest.json`: one typed, versioned description of a bundle, a leaf of the crate (it imports
//! nothing but the error type). The JSON Schema in `schema/manifest.schema.json` is generated
//! from these types; a test fails when they drift.
//!
//! [`common`] holds what both kinds record alike, [`kernel`] and [`python`] the two manifests,
//! [`metrics`] their flattening into named metrics; [`AnyManifest`] reads either.

pub mod common;
pub mod fit;
pub mod kernel;
pub mod metrics;
pub mod python;
pub mod variant;

pub use common::*;

use anyhow::{Context, Result};
use kernel::KERNEL_KIND;
use kernel::KernelManifest;
use python::PythonManifest;
use schemars::JsonSchema;
use serde::Serialize;
use std::path::Path;

/// 3: feature-level WASM variants (`wasm.variants`, `timings.variants`); 4: the Python host
/// (`timings.plugin_host`); 5: Node as a host (`timings.node`).
pub const SCHEMA_VERSION: u32 = 5;

/// Schema 2 to 4 manifests read as schema 5 ones: a schema 2 kernel's lists no variants (its one
/// module is `wasm`), older ones have no Python host or Node measured; a Python one is unchanged.
pub const OLDEST_READABLE_SCHEMA: u32 = 2;

pub fn is_readable_schema(version: Option<u64>) -> bool {
    version.is_some_and(|v| (OLDEST_READABLE_SCHEMA as u64..=SCHEMA_VERSION as u64).contains(&v))
}

pub const FILE_NAME: &str = "manifest.json";

/// Pretty JSON with a final newline, as every manifest and schema file is written.
pub fn pretty_json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("manifest types serialize");
    text.push('\n');
    text
}

/// The JSON Schema of a manifest type, as checked in under `schema/`.
pub fn schema_of<T: JsonSchema>() -> String {
    pretty_json(&schemars::schema_for!(T))
}

/// A manifest of either kind, as `check` and `diff` read them.
#[derive(Debug, Clone)]
pub enum AnyManifest {
    Kernel(Box<KernelManifest>),
    Pyodide(Box<PythonManifest>),
}

/// One schema for both kinds: a kernel manifest (`kind` "kernel", or absent in those written
/// before the tag) or a Python one (`kind` "pyodide").
impl JsonSchema for AnyManifest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BundleManifest".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "oneOf": [
                generator.subschema_for::<KernelManifest>(),
                generator.subschema_for::<PythonManifest>(),
            ]
        })
    }
}

impl AnyManifest {
    /// The JSON Schema of manifest.json, either kind, as checked in at
    /// `schema/manifest.schema.json`.
    pub fn json_schema() -> String {
        schema_of::<Self>()
    }

    /// Reads a manifest, picking the type from its `kind` (absent in kernel manifests written
    /// before the tag).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(|e| crate::exit::input_error(format!("{e:#}")))?;
        let kind = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("kind")?.as_str().map(str::to_string));
        match kind.as_deref() {
            Some(python::KIND) => Ok(Self::Pyodide(Box::new(PythonManifest::read(path)?))),
            _ => Ok(Self::Kernel(Box::new(KernelManifest::read(path)?))),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kernel(_) => KERNEL_KIND,
            Self::Pyodide(_) => python::KIND,
        }
    }

    pub fn metrics(&self) -> Vec<metrics::Metric> {
        match self {
            Self::Kernel(m) => metrics::metrics(m),
            Self::Pyodide(m) => metrics::pyodide_metrics(m),
        }
    }

    pub fn budgets(&self) -> &Budgets {
        match self {
            Self::Kernel(m) => &m.budgets,
            Self::Pyodide(m) => &m.budgets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_manifest_is_named_as_such_where_a_kernel_one_is_expected() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/digits-py.json");
        let err = KernelManifest::read(&path).unwrap_err();
        assert!(err.is::<crate::exit::InputError>());
        assert!(
            format!("{err}").contains("Python (Pyodide) bundle"),
            "{err}"
        );
        assert!(matches!(
            AnyManifest::read(&path).unwrap(),
            AnyManifest::Pyodide(_)
        ));
    }

    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/manifest.schema.json");
        let generated = AnyManifest::json_schema();
        if std::env::var_os("BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schema/manifest.schema.json is out of date: run `BLESS=1 cargo test manifest` and commit it"
        );
    }
}
