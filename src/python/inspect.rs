//! What a Python bundle is made of: its shipped files, and the stdlib modules in its trimmed
//! `python_stdlib.zip`, largest first, each with the reason the shake kept it.

use crate::bundle;
use crate::bundle::layout::PYTHON_RUNTIME_DIR;
use crate::manifest::python::PythonManifest;
use crate::python::static_reads::{self, StaticDataReads};
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PyodideReport {
    /// Shipped files, largest (brotli) first, with stock Pyodide's size of the same file.
    pub files: Vec<ShippedFile>,
    pub stdlib_modules: usize,
    /// The largest top-level stdlib modules and packages in the bundle.
    pub largest_modules: Vec<ModuleSize>,
    /// Which of the runtime's static data the samples read (`--static-data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_data: Option<StaticDataReads>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ShippedFile {
    pub file: String,
    pub brotli_bytes: u64,
    pub stock_brotli_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ModuleSize {
    /// Top-level module or package (`json`, `email`, …).
    pub module: String,
    /// Files of it in the zip.
    pub files: usize,
    pub uncompressed_bytes: u64,
    /// Deflated, as stored in the zip.
    pub stored_bytes: u64,
    /// Why the shake kept it: `boot` (loadPyodide imports it), `traced` (imported while the
    /// samples ran), `static` (the app's code names it), `--keep`; several when its submodules
    /// were kept for different reasons. `required by the zip` when none was recorded.
    pub kept_because: Vec<String>,
    /// The module outside it whose import pulled it (or its first submodule) in.
    pub pulled_in_by: Option<String>,
}

/// The report for the bundle at `dir`, listing the `top` largest modules (and with
/// `static_data`, the `top` largest data segments no sample read).
pub fn inspect(
    dir: &Path,
    manifest: &PythonManifest,
    top: usize,
    static_data: bool,
) -> Result<PyodideReport> {
    bundle::ensure_intact(dir, &manifest.files)?;
    let mut files: Vec<ShippedFile> = manifest
        .sizes
        .per_file
        .iter()
        .map(|f| ShippedFile {
            file: f.file.clone(),
            brotli_bytes: f.bundle.brotli_bytes,
            stock_brotli_bytes: f.stock.as_ref().map(|s| s.brotli_bytes),
        })
        .collect();
    files.sort_by(|a, b| {
        b.brotli_bytes
            .cmp(&a.brotli_bytes)
            .then(a.file.cmp(&b.file))
    });

    let zip_path = bundle::path_in(dir, &format!("{PYTHON_RUNTIME_DIR}/python_stdlib.zip"))?;
    let bytes = crate::fsx::read(&zip_path)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .with_context(|| format!("reading {}", zip_path.display()))?;
    let mut modules: BTreeMap<String, ModuleSize> = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).context("reading a zip entry")?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().context("a zip entry's name")?;
        let top_level = top_level_of(&name);
        let module = modules
            .entry(top_level.clone())
            .or_insert_with(|| ModuleSize {
                module: top_level,
                files: 0,
                uncompressed_bytes: 0,
                stored_bytes: 0,
                kept_because: Vec::new(),
                pulled_in_by: None,
            });
        module.files += 1;
        module.uncompressed_bytes += entry.size();
        module.stored_bytes += entry.compressed_size();
    }
    for module in modules.values_mut() {
        let prefix = format!("{}.", module.module);
        let mut reasons: Vec<String> = manifest
            .shake
            .modules
            .iter()
            .filter(|(name, _)| **name == module.module || name.starts_with(&prefix))
            .map(|(_, reason)| reason.clone())
            .collect();
        reasons.sort();
        reasons.dedup();
        if reasons.is_empty() {
            reasons.push("required by the zip".into());
        }
        module.kept_because = reasons;
        // Itself first, then its submodules in name order; imports from inside it don't count.
        let inside = |name: &str| name == module.module || name.starts_with(&prefix);
        module.pulled_in_by = manifest
            .shake
            .importers
            .iter()
            .filter(|(imported, importer)| inside(imported) && !inside(importer))
            .min_by_key(|(imported, _)| (*imported != &module.module, (*imported).clone()))
            .map(|(_, importer)| importer.clone());
    }
    let stdlib_modules = modules.len();
    let mut largest: Vec<ModuleSize> = modules.into_values().collect();
    largest.sort_by(|a, b| {
        b.uncompressed_bytes
            .cmp(&a.uncompressed_bytes)
            .then(a.module.cmp(&b.module))
    });
    largest.truncate(top);
    let static_data = match static_data {
        true => Some(static_reads::measure(dir, manifest, top)?),
        false => None,
    };
    Ok(PyodideReport {
        files,
        stdlib_modules,
        largest_modules: largest,
        static_data,
    })
}

/// `email/mime/text.py` → `email`, `json.py` → `json`, `_pyodide/__init__.pyc` → `_pyodide`.
fn top_level_of(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    first
        .strip_suffix(".py")
        .or_else(|| first.strip_suffix(".pyc"))
        .or_else(|| first.strip_suffix(".so"))
        .unwrap_or(first)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_paths_map_to_top_level_modules() {
        assert_eq!(top_level_of("email/mime/text.py"), "email");
        assert_eq!(top_level_of("json.py"), "json");
        assert_eq!(top_level_of("colorsys.pyc"), "colorsys");
        assert_eq!(top_level_of("LICENSE.txt"), "LICENSE.txt");
    }
}
