//! `verify` for a Python bundle: every file against the manifest, then the samples re-run in Node
//! on every way the bundle can boot, and against its native sibling, must give the recorded parity.

use crate::archive::{self, Limits};
use crate::bundle::layout::{PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE};
use crate::bundle::{self, Verified};
use crate::manifest::python::PythonManifest;
use crate::measure::parity;
use crate::python::deps;
use crate::python::run::{self, Boot, Mode, RunConfig, first_difference};
use anyhow::{Context, Result};
use std::path::Path;

/// What differs between the bundle in `dir` and its manifest; empty when it is intact. Runs code
/// only when every file matches the manifest's sha256.
pub fn verify(dir: &Path, manifest: &PythonManifest, python: &Path) -> Result<Verified> {
    let mut found = Verified::files_checked(
        dir,
        &manifest.files,
        manifest.project.samples,
        manifest.project.tolerance,
    )?;
    if !found.is_intact() {
        return Ok(found);
    }
    let runtime_dir = bundle::path_in(dir, PYTHON_RUNTIME_DIR)?;
    let app = runtime_dir.join(PYTHON_APP_ARCHIVE);
    let samples = bundle::path_in(dir, PYTHON_SAMPLES_FILE)?;
    let config = RunConfig {
        entry: &manifest.project.entry,
        samples: &samples,
        passes: 0,
        packages: &manifest.shake.packages,
    };
    let normal = run::pyodide(&runtime_dir, &app, Mode::Measure, &config, &Boot::default())
        .context("running the samples on the bundle in Node")?;
    let snapshot = match &manifest.snapshot {
        Some(snapshot) => Some(bundle::path_in(dir, &snapshot.file)?),
        None => None,
    };
    let mut other_boots = Vec::new();
    if manifest.runtime_split.is_some() {
        let boot = Boot {
            load_secondary: true,
            ..Boot::default()
        };
        other_boots.push(("with the deferred runtime loaded up front", boot));
    }
    if let Some(snapshot) = &snapshot {
        let boot = Boot {
            snapshot: Some(snapshot),
            ..Boot::default()
        };
        other_boots.push(("booted from the memory snapshot", boot));
    }
    for (how, boot) in other_boots {
        let run = run::pyodide(&runtime_dir, &app, Mode::Measure, &config, &boot)
            .with_context(|| format!("running the samples on the bundle {how}"))?;
        if let Some(sample) = first_difference(&normal.outputs, &run.outputs) {
            found.problems.push(format!(
                "{how}, the bundle's output on sample {sample} differs from a normal boot's"
            ));
        }
    }

    let native_dir = tempfile::tempdir().context("creating a directory for the native sibling")?;
    archive::unpack_tar_zst(
        &bundle::path_in(dir, &manifest.native.file)?,
        native_dir.path(),
        Limits::PYODIDE,
    )?;
    let mut paths = vec![native_dir.path().join("app")];
    let site = native_dir.path().join("site-packages");
    if site.is_dir() {
        paths.push(site);
    }
    let (_venv, venv_python) = deps::venv(python)?;
    let path_refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let native = run::native(&venv_python, &path_refs, &config, &[])
        .context("running the samples on the native sibling")?;
    let reproduced =
        parity::compare_json(&normal.outputs, &native.outputs, manifest.project.tolerance);
    found.record_parity(
        "between Pyodide and native CPython",
        &manifest.parity.native,
        &reproduced,
    );
    Ok(found)
}
