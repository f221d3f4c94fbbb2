//! A Python project's dependencies: installed with pip from a wheelhouse (or pip's configured
//! index), zipped with the app for Pyodide and put on the path of a fresh venv for native
//! CPython. For Pyodide only pure-Python packages qualify: a compiled extension built for the
//! host cannot run there. The native sibling may add requirements of its own
//! (`[tool.wasmpack-infer.native]`), compiled ones included.

use crate::exit::input_error;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Installed dependencies.
#[derive(Debug)]
pub struct Installed {
    /// pip's `--target` directory.
    pub site: tempfile::TempDir,
    /// `name==version` of every installed distribution, sorted: the requirement lock.
    pub lock: Vec<String>,
}

/// Who runs what is installed: Pyodide takes pure Python only; the native sibling takes compiled
/// extensions too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum For {
    Pyodide,
    Native,
}

/// Installs `requirements` with `python -m pip` into a fresh directory.
pub fn install(
    python: &Path,
    requirements: &[String],
    wheelhouse: Option<&Path>,
    target: For,
) -> Result<Installed> {
    let site = tempfile::tempdir().context("creating a directory for dependencies")?;
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-compile",
            "--quiet",
        ])
        .arg("--target")
        .arg(site.path());
    if let Some(wheelhouse) = wheelhouse {
        if !wheelhouse.is_dir() {
            return Err(input_error(format!(
                "--wheelhouse {}: not a directory",
                wheelhouse.display()
            )));
        }
        command
            .arg("--no-index")
            .arg("--find-links")
            .arg(wheelhouse);
    }
    command.arg("--").args(requirements);
    let output = command
        .output()
        .with_context(|| format!("running {} -m pip", python.display()))?;
    if !output.status.success() {
        return Err(input_error(format!(
            "installing dependencies ({}) with pip failed{}:\n{}",
            requirements.join(", "),
            if wheelhouse.is_some() {
                " (from --wheelhouse only)"
            } else {
                ""
            },
            crate::tools::tail_lines(&String::from_utf8_lossy(&output.stderr), 15)
        )));
    }
    if target == For::Pyodide
        && let Some(compiled) = first_compiled_file(site.path())?
    {
        return Err(input_error(format!(
            "dependency file {} is a compiled extension: only pure-Python packages can go into \
             the Pyodide bundle (compiled ones need a wasm32 wheel from the distribution's lock)",
            compiled
                .strip_prefix(site.path())
                .unwrap_or(&compiled)
                .display()
        )));
    }
    // pip's console scripts point at this machine's interpreter: no use in either variant.
    let bin = site.path().join("bin");
    if bin.is_dir() {
        std::fs::remove_dir_all(&bin).with_context(|| format!("removing {}", bin.display()))?;
    }
    let lock = requirement_lock(site.path())?;
    Ok(Installed { site, lock })
}

fn first_compiled_file(dir: &Path) -> Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if let Some(found) = first_compiled_file(&path)? {
                return Ok(Some(found));
            }
        } else if path
            .extension()
            .is_some_and(|e| ["so", "pyd", "dylib", "dll"].contains(&e.to_string_lossy().as_ref()))
        {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The importable top-level names in `site` (packages and modules, not metadata).
pub fn top_level_names(site: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(site).with_context(|| format!("listing {}", site.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() && !name.contains('.') && name != "__pycache__" {
            names.push(name.into_owned());
        } else if let Some(module) = name.strip_suffix(".py") {
            names.push(module.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// `name==version` from every `*.dist-info/METADATA` in `site`.
fn requirement_lock(site: &Path) -> Result<Vec<String>> {
    let mut lock = Vec::new();
    for entry in std::fs::read_dir(site).with_context(|| format!("listing {}", site.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "dist-info") {
            continue;
        }
        let metadata = std::fs::read_to_string(path.join("METADATA"))
            .with_context(|| format!("reading {}/METADATA", path.display()))?;
        let field = |key: &str| {
            metadata
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        match (field("Name:"), field("Version:")) {
            (Some(name), Some(version)) => lock.push(format!("{name}=={version}")),
            _ => bail!("{}/METADATA has no Name or Version", path.display()),
        }
    }
    lock.sort();
    Ok(lock)
}

/// A venv without pip (seconds, offline) whose interpreter runs the native measurement, so the
/// user's site-packages cannot leak into it.
pub fn venv(python: &Path) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir().context("creating a directory for the venv")?;
    let status = Command::new(python)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir.path())
        .status()
        .with_context(|| format!("running {} -m venv", python.display()))?;
    if !status.success() {
        bail!("{} -m venv failed ({status})", python.display());
    }
    let interpreter = ["bin/python3", "bin/python", "Scripts/python.exe"]
        .iter()
        .map(|p| dir.path().join(p))
        .find(|p| p.is_file())
        .context("the venv has no interpreter")?;
    Ok((dir, interpreter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_reads_dist_info_and_compiled_files_are_found() {
        let site = tempfile::tempdir().unwrap();
        let info = site.path().join("tiny-1.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(
            info.join("METADATA"),
            "Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n\nbody\n",
        )
        .unwrap();
        assert_eq!(requirement_lock(site.path()).unwrap(), ["tiny==1.0"]);
        assert_eq!(first_compiled_file(site.path()).unwrap(), None);
        std::fs::create_dir_all(site.path().join("tiny")).unwrap();
        std::fs::write(site.path().join("tiny/_speedups.so"), "").unwrap();
        assert!(first_compiled_file(site.path()).unwrap().is_some());
    }
}
