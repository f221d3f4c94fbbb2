//! File-system helpers: content hashes, atomic file writes and atomic directory replacement.

use anyhow::{Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::path::{Path, PathBuf};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An SRI string with SHA-256, for files checked by JS code of our own rather than the browser.
pub fn sri_sha256(bytes: &[u8]) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes).as_slice())
    )
}

/// Subresource-integrity string (`sha384-<base64>`) as browsers check it.
pub fn sri_sha384(bytes: &[u8]) -> String {
    let digest = Sha384::digest(bytes);
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_slice())
    )
}

/// npm's integrity string (`sha512-<base64>`), as `npm pack --json` reports it.
pub fn npm_integrity(bytes: &[u8]) -> String {
    let digest = Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_slice())
    )
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a file, naming it in the error.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Replaces `path` with `bytes` so readers see the old or the new file, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".wpi-tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A directory being filled next to its final location; [`StagingDir::commit`] swaps it in.
///
/// Until commit, the previous directory at the destination stays untouched; if the process dies,
/// the staging directory is left behind with this process's id in its name and removed by the
/// next run ([`remove_stale_staging`]).
pub struct StagingDir {
    dir: tempfile::TempDir,
    destination: PathBuf,
}

const STAGING_PREFIX: &str = ".wpi-staging-";
const RETIRED_PREFIX: &str = ".wpi-retired-";

impl StagingDir {
    /// Creates the staging directory beside `destination` (same file system, so rename is atomic).
    pub fn new(destination: &Path) -> Result<Self> {
        let parent = parent_dir(destination);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        remove_stale_staging(parent);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{}-", std::process::id()))
            .tempdir_in(parent)
            .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
        Ok(Self {
            dir,
            destination: destination.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves the staged directory to the destination, replacing what was there.
    pub fn commit(self) -> Result<PathBuf> {
        let staged = self.dir.keep();
        let destination = self.destination;
        let retired = if destination.exists() {
            let retired = parent_dir(&destination).join(format!(
                "{RETIRED_PREFIX}{}-{}",
                std::process::id(),
                file_name(&destination)
            ));
            std::fs::rename(&destination, &retired)
                .with_context(|| format!("moving the previous {} aside", destination.display()))?;
            Some(retired)
        } else {
            None
        };
        if let Err(err) = std::fs::rename(&staged, &destination) {
            // Put the previous bundle back so a failed commit changes nothing.
            if let Some(retired) = &retired {
                let _ = std::fs::rename(retired, &destination);
            }
            let _ = std::fs::remove_dir_all(&staged);
            return Err(err)
                .with_context(|| format!("moving the new bundle to {}", destination.display()));
        }
        if let Some(retired) = retired {
            std::fs::remove_dir_all(&retired)
                .with_context(|| format!("removing the previous bundle {}", retired.display()))?;
        }
        Ok(destination)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes staging and retired directories left by runs whose process is gone.
fn remove_stale_staging(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (rest, retired) = match (
            name.strip_prefix(STAGING_PREFIX),
            name.strip_prefix(RETIRED_PREFIX),
        ) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => continue,
        };
        let Some((pid, original)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_ok_and(process_alive) {
            continue;
        }
        // A process killed between its two renames left the previous bundle retired and nothing
        // in its place: put it back rather than lose it.
        let destination = parent.join(original);
        if retired && !destination.exists() && std::fs::rename(entry.path(), &destination).is_ok() {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // Without a portable liveness check, keep what might belong to a running build.
        true
    }
}

/// The tool's cache directory: `$WPI_CACHE_DIR`, else `$XDG_CACHE_HOME/cargo-wasmpack-infer`,
/// else `~/.cache/cargo-wasmpack-infer`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WPI_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("cargo-wasmpack-infer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_vectors() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sri_sha384(b"abc"),
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn"
        );
    }

    #[test]
    fn commit_replaces_previous_directory_and_leaves_no_staging() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("bundle");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old.txt"), "old").unwrap();

        let staging = StagingDir::new(&dest).unwrap();
        std::fs::write(staging.path().join("new.txt"), "new").unwrap();
        // Until commit the previous bundle is intact.
        assert!(dest.join("old.txt").exists());
        staging.commit().unwrap();

        assert!(dest.join("new.txt").exists());
        assert!(!dest.join("old.txt").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "only the bundle remains");
    }

    #[test]
    fn dropped_staging_dir_leaves_destination_untouched() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("bundle");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old.txt"), "old").unwrap();
        drop(StagingDir::new(&dest).unwrap());
        assert!(dest.join("old.txt").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_staging_of_dead_process_is_removed() {
        let root = tempfile::tempdir().unwrap();
        // pid 0 never names a live user process.
        let stale = root.path().join(format!("{STAGING_PREFIX}0-abc"));
        std::fs::create_dir(&stale).unwrap();
        let staging = StagingDir::new(&root.path().join("bundle")).unwrap();
        assert!(!stale.exists());
        drop(staging);
    }

    #[test]
    fn a_bundle_retired_by_a_dead_process_is_restored() {
        let root = tempfile::tempdir().unwrap();
        let retired = root.path().join(format!("{RETIRED_PREFIX}0-bundle"));
        std::fs::create_dir(&retired).unwrap();
        std::fs::write(retired.join("manifest.json"), "previous").unwrap();
        let staging = StagingDir::new(&root.path().join("bundle")).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("bundle/manifest.json")).unwrap(),
            "previous"
        );
        assert!(!retired.exists());
        drop(staging);
    }

    #[test]
    fn write_atomic_replaces_content() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("manifest.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
