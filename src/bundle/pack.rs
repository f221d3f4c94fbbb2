//! Stage 5: lay the bundle out and pack the WASM variant into a reproducible `.tar.zst`.

use crate::bundle::npm::{NpmPackage, PACKAGE_FILE};
use crate::fsx;
use crate::manifest::metrics::{Metric, measured_by_flag};
use crate::manifest::{Budgets, FileEntry};
use anyhow::{Context, Result};
use std::path::Path;

/// A file of the bundle, held in memory until the bundle is written.
#[derive(Debug, Clone)]
pub struct BundleFile {
    /// Bundle-relative, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
    pub executable: bool,
}

impl BundleFile {
    pub fn new(path: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            path: path.into(),
            bytes,
            executable: false,
        }
    }

    fn mode(&self) -> u32 {
        if self.executable { 0o755 } else { 0o644 }
    }
}

/// A `.tar.zst` of `files` that depends on nothing but their paths and bytes: sorted entries,
/// `mtime` for every entry (`SOURCE_DATE_EPOCH`, else 0), uid/gid 0, no user names, fixed modes,
/// single-threaded zstd.
pub fn deterministic_tar_zst(files: &[&BundleFile], mtime: u64) -> Result<Vec<u8>> {
    crate::measure::sizes::zstd(&deterministic_tar(files, mtime, "")?)
}

/// The tarball `npm pack` would make of these files (package.json among them): gzip of a tar
/// whose entries sit under `package/`, made deterministically like the bundle's archive.
pub fn npm_tarball(files: &[&BundleFile], mtime: u64) -> Result<Vec<u8>> {
    crate::measure::sizes::gzip(&deterministic_tar(files, mtime, "package/")?)
}

/// A tar of `files` sorted by path, each named `prefix` + its path, with fixed owner and `mtime`.
fn deterministic_tar(files: &[&BundleFile], mtime: u64, prefix: &str) -> Result<Vec<u8>> {
    let mut sorted: Vec<&&BundleFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for file in sorted {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.bytes.len() as u64);
        header.set_mode(file.mode());
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(
                &mut header,
                format!("{prefix}{}", file.path),
                file.bytes.as_slice(),
            )
            .with_context(|| format!("adding {} to the archive", file.path))?;
    }
    builder.into_inner().context("finishing the tar archive")
}

/// Writes `files` under `dir` and describes each for the manifest, sorted by path.
pub fn write_files(dir: &Path, files: &[BundleFile]) -> Result<Vec<FileEntry>> {
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        fsx::write(&path, &file.bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode()))
                .with_context(|| format!("setting permissions of {}", path.display()))?;
        }
        entries.push(describe(file));
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Writes `manifest.json` last into the staging directory and renames the bundle into place.
/// Writes the manifest (and `npm`'s package.json, pinning the manifest by its sha256) and moves
/// the staged bundle into place. Its budgets are checked against
/// the manifest's metrics first: they name metrics and units only a manifest has, so a bad one
/// (named in `budgets_table`) is an input error before anything is committed. Budgets on figures
/// a host measures after the build (`node.load_us`) are checked once measured. Whether they
/// pass is for `check`.
pub fn commit(
    staging: fsx::StagingDir,
    manifest_json: &str,
    npm: Option<&NpmPackage>,
    metrics: &[Metric],
    budgets: &Budgets,
    budgets_table: &str,
) -> Result<std::path::PathBuf> {
    let known_now: Budgets = budgets
        .iter()
        .filter(|(name, _)| measured_by_flag(name).is_none())
        .map(|(name, limit)| (name.clone(), limit.clone()))
        .collect();
    crate::budget::check(metrics, &known_now).with_context(|| format!("in {budgets_table}"))?;
    fsx::write(
        &staging.path().join(crate::manifest::FILE_NAME),
        manifest_json.as_bytes(),
    )?;
    if let Some(npm) = npm {
        let package_json = npm.package_json(&fsx::sha256_hex(manifest_json.as_bytes()));
        fsx::write(&staging.path().join(PACKAGE_FILE), package_json.as_bytes())?;
        if let Some(mtime) = npm.tarball_mtime {
            let mut files = vec![BundleFile::new(PACKAGE_FILE, package_json.into_bytes())];
            for path in &npm.files {
                files.push(BundleFile::new(
                    path.clone(),
                    fsx::read(&staging.path().join(path))?,
                ));
            }
            let tarball = npm_tarball(&files.iter().collect::<Vec<_>>(), mtime)?;
            fsx::write(&staging.path().join(npm.tarball_name()), &tarball)?;
        }
    }
    staging.commit()
}

pub fn describe(file: &BundleFile) -> FileEntry {
    FileEntry {
        path: file.path.clone(),
        bytes: file.bytes.len() as u64,
        sha256: fsx::sha256_hex(&file.bytes),
        sri: fsx::sri_sha384(&file.bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_tarball_is_deterministic_with_entries_under_package() {
        let a = BundleFile::new("package.json", b"{}".to_vec());
        let b = BundleFile::new("pyodide/loader.mjs", b"export {}".to_vec());
        let one = npm_tarball(&[&a, &b], 0).unwrap();
        assert_eq!(one, npm_tarball(&[&b, &a], 0).unwrap());
        let tar = flate2::read::GzDecoder::new(one.as_slice());
        let mut archive = tar::Archive::new(tar);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["package/package.json", "package/pyodide/loader.mjs"]
        );
    }

    #[test]
    fn archive_is_independent_of_input_order_and_unpacks() {
        let a = BundleFile::new("b.wasm", b"\0asm".to_vec());
        let b = BundleFile::new("a.txt", b"hello".to_vec());
        let one = deterministic_tar_zst(&[&a, &b], 0).unwrap();
        let two = deterministic_tar_zst(&[&b, &a], 0).unwrap();
        assert_eq!(one, two);
        assert_ne!(
            one,
            deterministic_tar_zst(&[&a, &b], 1).unwrap(),
            "mtime is recorded"
        );

        let tar = zstd::decode_all(one.as_slice()).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.txt", "b.wasm"]);
    }

    #[test]
    fn written_files_are_described_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let entries = write_files(
            dir.path(),
            &[
                BundleFile::new("z.bin", vec![1]),
                BundleFile::new("a.bin", vec![2, 3]),
            ],
        )
        .unwrap();
        assert_eq!(entries[0].path, "a.bin");
        assert_eq!(entries[0].bytes, 2);
        assert_eq!(std::fs::read(dir.path().join("z.bin")).unwrap(), vec![1]);
    }
}
