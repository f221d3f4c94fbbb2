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

/// `[project] dependencies` split by where the Pyodide variant gets them.
#[derive(Debug, Default, PartialEq)]
pub struct Sources {
    /// Keys of `pyodide-lock.json` packages (loaded from the distribution), sorted.
    pub from_distribution: Vec<String>,
    /// Requirements pip installs (from the wheelhouse or pip's index), as written.
    pub from_pip: Vec<String>,
}

/// Reads each requirement with pip's own parser (PEP 508, run by `python`): a package that the
/// distribution's lock lists and whose wheel is in `dist_dir` comes from there, if the lock's
/// version satisfies the requirement's specifier (an input error otherwise); pip installs the
/// rest, as it does every package of a distribution without wheels (the npm package).
pub fn split_by_lock(
    python: &Path,
    requirements: &[String],
    lock: &serde_json::Value,
    dist_dir: &Path,
) -> Result<Sources> {
    if requirements.is_empty() {
        return Ok(Sources::default());
    }
    const READ_REQUIREMENTS: &str = r#"
import json, sys
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name
request = json.loads(sys.argv[1])
lock = {canonicalize_name(name): (key, version) for key, (name, version) in request["packages"].items()}
found = []
for text in request["requirements"]:
    requirement = Requirement(text)
    key, version = lock.get(canonicalize_name(requirement.name), (None, None))
    satisfied = key is not None and requirement.specifier.contains(version, prereleases=True)
    found.append({"key": key, "version": version, "satisfied": satisfied})
json.dump(found, sys.stdout)
"#;
    // Only names and versions: small enough for a command-line argument.
    let packages: serde_json::Map<String, serde_json::Value> = lock["packages"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, package)| {
            let name = package["name"].as_str().unwrap_or(key);
            let version = package["version"].as_str().unwrap_or_default();
            (key.clone(), serde_json::json!([name, version]))
        })
        .collect();
    let request = serde_json::json!({ "requirements": requirements, "packages": packages });
    let output = Command::new(python)
        .args(["-c", READ_REQUIREMENTS])
        .arg(request.to_string())
        .output()
        .with_context(|| format!("reading [project] dependencies with {}", python.display()))?;
    if !output.status.success() {
        return Err(input_error(format!(
            "[project] dependencies: not valid requirements ({}):\n{}",
            requirements.join(", "),
            crate::tools::tail_lines(&String::from_utf8_lossy(&output.stderr), 5)
        )));
    }
    #[derive(serde::Deserialize)]
    struct Found {
        key: Option<String>,
        version: Option<String>,
        satisfied: bool,
    }
    let found: Vec<Found> =
        serde_json::from_slice(&output.stdout).context("reading the parsed requirements")?;
    let mut sources = Sources::default();
    let has_wheel = |key: &str| {
        lock["packages"][key]["file_name"]
            .as_str()
            .is_some_and(|file| !file.contains('/') && dist_dir.join(file).is_file())
    };
    for (requirement, found) in requirements.iter().zip(found) {
        match found.key.filter(|key| has_wheel(key)) {
            Some(key) if found.satisfied => sources.from_distribution.push(key),
            Some(key) => {
                return Err(input_error(format!(
                    "dependency `{requirement}`: the Pyodide distribution provides {key} {}, \
                     which does not satisfy it",
                    found.version.unwrap_or_default()
                )));
            }
            None => sources.from_pip.push(requirement.clone()),
        }
    }
    sources.from_distribution.sort();
    sources.from_distribution.dedup();
    Ok(sources)
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
    fn requirements_the_lock_satisfies_come_from_the_distribution() {
        let lock = serde_json::json!({ "packages": {
            "tiny-lock": { "name": "Tiny_Lock", "version": "1.0", "file_name": "tiny_lock.whl" },
            "other": { "name": "other", "version": "2.0", "file_name": "other.whl" },
            "no-wheel": { "name": "no-wheel", "version": "1.0", "file_name": "no_wheel.whl" },
        }});
        let dist = tempfile::tempdir().unwrap();
        for wheel in ["tiny_lock.whl", "other.whl"] {
            std::fs::write(dist.path().join(wheel), "").unwrap();
        }
        let split = |requirements: &[&str]| {
            let requirements: Vec<String> = requirements.iter().map(|r| r.to_string()).collect();
            split_by_lock(Path::new("python3"), &requirements, &lock, dist.path())
        };
        assert_eq!(
            split(&[
                "tiny.lock>=0.5; python_version > '3'",
                "elsewhere==1.0",
                "no-wheel==1.0",
            ])
            .unwrap(),
            Sources {
                from_distribution: vec!["tiny-lock".into()],
                from_pip: vec!["elsewhere==1.0".into(), "no-wheel==1.0".into()],
            }
        );
        let err = split(&["other<2"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("provides other 2.0, which does not satisfy it"),
            "{err:#}"
        );
        let err = split(&["not a requirement!"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("not valid requirements"),
            "{err:#}"
        );
    }

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
