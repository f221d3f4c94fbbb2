//! A Pyodide distribution: from a directory, a `.tgz` (as `npm pack` writes it) or `npm:VERSION`
//! (`npm pack` run by the tool, cached). Tarballs are checked against npm's sha512 integrity and
//! unpacked with [`archive::Limits`]; every file the bundle takes is hashed into the manifest.

use crate::archive::{self, Limits};
use crate::exit::input_error;
use crate::fsx;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files a Node or browser app loads from a distribution.
/// The Pyodide release the tests and examples run; suggested in messages and by `new python`.
pub const TESTED_VERSION: &str = "314.0.7";

pub const CORE_FILES: [&str; 5] = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
];

/// Where the distribution came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Directory(PathBuf),
    Tarball(PathBuf),
    Npm(String),
}

impl Source {
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(version) = text.strip_prefix("npm:") {
            let valid = !version.is_empty()
                && version
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
            if !valid {
                return Err(input_error(format!(
                    "--pyodide {text}: expected npm:VERSION, e.g. npm:{TESTED_VERSION}"
                )));
            }
            return Ok(Self::Npm(version.to_string()));
        }
        let path = PathBuf::from(text);
        if path.is_dir() {
            Ok(Self::Directory(path))
        } else if path.is_file() {
            Ok(Self::Tarball(path))
        } else {
            Err(input_error(format!(
                "--pyodide {text}: no such directory or file (or use npm:VERSION)"
            )))
        }
    }
}

/// A distribution on disk, its core files present.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub dir: PathBuf,
    /// From the npm `package.json` when there is one.
    pub version: String,
    /// How it was obtained, e.g. `npm:314.0.7 (sha512-…)`.
    pub origin: String,
}

impl Distribution {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn read(&self, file: &str) -> Result<Vec<u8>> {
        fsx::read(&self.path(file))
    }
}

/// Resolves `source` to a checked distribution, unpacking and caching as needed.
pub fn resolve(source: &Source, offline: bool) -> Result<Distribution> {
    match source {
        Source::Directory(dir) => open(dir, format!("directory {}", dir.display())),
        Source::Tarball(tarball) => {
            let bytes = fsx::read(tarball).map_err(|e| input_error(format!("{e:#}")))?;
            let integrity = fsx::npm_integrity(&bytes);
            let dir = unpack_cached(tarball, &bytes)?;
            open(&dir, format!("tarball {} ({integrity})", tarball.display()))
        }
        Source::Npm(version) => {
            let (tarball, integrity) = npm_tarball(version, offline)?;
            let bytes = fsx::read(&tarball)?;
            let dir = unpack_cached(&tarball, &bytes)?;
            open(&dir, format!("npm:pyodide@{version} ({integrity})"))
        }
    }
}

/// The npm tarball of `pyodide@version`, from the cache or `npm pack`, with its integrity
/// checked either way.
fn npm_tarball(version: &str, offline: bool) -> Result<(PathBuf, String)> {
    let dir = fsx::cache_dir().join("pyodide");
    let tarball = dir.join(format!("pyodide-{version}.tgz"));
    let integrity_file = dir.join(format!("pyodide-{version}.tgz.integrity"));
    if let (Ok(bytes), Ok(expected)) = (
        std::fs::read(&tarball),
        std::fs::read_to_string(&integrity_file),
    ) {
        let expected = expected.trim().to_string();
        if fsx::npm_integrity(&bytes) == expected {
            return Ok((tarball, expected));
        }
        // A corrupt cache entry is fetched again rather than trusted.
    }
    if offline {
        return Err(input_error(format!(
            "--pyodide npm:{version}: not in the cache ({}) and --offline forbids running npm; \
             pass a directory or .tgz instead",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let staging = tempfile::tempdir_in(&dir).context("creating a directory for npm pack")?;
    let output = Command::new("npm")
        .args(["pack", &format!("pyodide@{version}"), "--json", "--silent"])
        .arg("--pack-destination")
        .arg(staging.path())
        .output()
        .context("running `npm pack` (is Node.js with npm installed?)")?;
    if !output.status.success() {
        bail!(
            "`npm pack pyodide@{version}` failed ({}):\n{}",
            output.status,
            crate::tools::tail_lines(&String::from_utf8_lossy(&output.stderr), 20)
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading `npm pack --json` output")?;
    let (Some(filename), Some(integrity)) = (
        report[0]["filename"].as_str(),
        report[0]["integrity"].as_str(),
    ) else {
        bail!("`npm pack --json` reported no filename or integrity");
    };
    let packed = staging.path().join(filename);
    let bytes = fsx::read(&packed)?;
    if fsx::npm_integrity(&bytes) != integrity {
        return Err(input_error(format!(
            "pyodide@{version}: the tarball npm wrote does not match the registry's integrity {integrity}"
        )));
    }
    fsx::write_atomic(&tarball, &bytes)?;
    fsx::write_atomic(&integrity_file, integrity.as_bytes())?;
    Ok((tarball, integrity.to_string()))
}

/// Unpacks a tarball once into a directory named after its sha256, so a changed tarball never
/// reuses another's files. The unpack happens in a staging directory renamed into place when
/// complete, so concurrent builds (or a killed one) never see half a distribution.
fn unpack_cached(tarball: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let base = fsx::cache_dir().join("pyodide").join("unpacked");
    let dir = base.join(fsx::sha256_hex(bytes));
    let marker = dir.join(".complete");
    if !marker.is_file() {
        std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        let staging = tempfile::tempdir_in(&base).context("creating an unpack directory")?;
        archive::unpack_tar_gz(tarball, staging.path(), Limits::PYODIDE)?;
        fsx::write(&staging.path().join(".complete"), b"")?;
        let staged = staging.keep();
        if std::fs::rename(&staged, &dir).is_err() {
            if marker.is_file() {
                // Another build unpacked the same tarball first.
                let _ = std::fs::remove_dir_all(&staged);
            } else {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing a partial unpack at {}", dir.display()))?;
                std::fs::rename(&staged, &dir).with_context(|| {
                    format!("moving the unpacked distribution to {}", dir.display())
                })?;
            }
        }
    }
    // npm tarballs keep everything under `package/`.
    let package = dir.join("package");
    Ok(if package.is_dir() { package } else { dir })
}

fn open(dir: &Path, origin: String) -> Result<Distribution> {
    let missing: Vec<&str> = CORE_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(input_error(format!(
            "{origin}: not a Pyodide distribution: missing {}",
            missing.join(", ")
        )));
    }
    let lock_path = dir.join("pyodide-lock.json");
    let lock: serde_json::Value = serde_json::from_slice(&fsx::read(&lock_path)?)
        .map_err(|e| input_error(format!("{}: not JSON: {e}", lock_path.display())))?;
    if !lock["packages"].is_object() {
        return Err(input_error(format!(
            "{}: no `packages` table",
            lock_path.display()
        )));
    }
    // npm's package.json names the release; the lock only names the Python it was built for.
    let version = std::fs::read(dir.join("package.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|package| package["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| match lock["info"]["python"].as_str() {
            Some(python) => format!("unknown (Python {python})"),
            None => "unknown".into(),
        });
    Ok(Distribution {
        dir: dir.to_path_buf(),
        version,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_with_clear_errors() {
        assert_eq!(
            Source::parse("npm:314.0.7").unwrap(),
            Source::Npm("314.0.7".into())
        );
        for bad in ["npm:", "npm:1 2", "/no/such/path"] {
            let err = Source::parse(bad).unwrap_err();
            assert!(err.is::<crate::exit::InputError>(), "{bad}");
        }
    }

    #[test]
    fn a_directory_without_the_core_files_is_refused_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyodide.mjs"), "").unwrap();
        let err = resolve(&Source::Directory(dir.path().into()), true).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("missing pyodide.asm.mjs, pyodide.asm.wasm"),
            "{text}"
        );
    }
}
