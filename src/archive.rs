//! Unpacking archives we did not make (npm tarballs of a Pyodide distribution) without trusting
//! them: only regular files and directories, no absolute paths or `..`, and caps on entry count,
//! file size, total size and compression ratio, so a hostile archive fails with a reason instead
//! of escaping the directory or filling the disk.

use crate::exit::input_error;
use anyhow::{Context, Result};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// What an archive may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    /// Unpacked bytes over packed bytes.
    pub max_ratio: u64,
}

impl Limits {
    /// Generous for a Pyodide npm package (≈ 14 MB unpacked from 6.5 MB, 14 files), far below
    /// what a decompression bomb would need.
    pub const PYODIDE: Limits = Limits {
        max_entries: 10_000,
        max_file_bytes: 256 << 20,
        max_total_bytes: 1 << 30,
        max_ratio: 50,
    };
}

/// Unpacks a `.tar.gz` into `dest` (which must be empty or absent) and returns the files written,
/// relative to `dest`.
pub fn unpack_tar_gz(archive: &Path, dest: &Path, limits: Limits) -> Result<Vec<PathBuf>> {
    let (file, packed) = open_archive(archive)?;
    unpack_tar(
        flate2::read::GzDecoder::new(file),
        "tar.gz",
        archive,
        packed,
        dest,
        limits,
    )
}

/// Unpacks a `.tar.zst` (a bundle's archive) like [`unpack_tar_gz`].
pub fn unpack_tar_zst(archive: &Path, dest: &Path, limits: Limits) -> Result<Vec<PathBuf>> {
    let (file, packed) = open_archive(archive)?;
    let decoder = zstd::stream::read::Decoder::new(file)
        .with_context(|| format!("reading {}", archive.display()))?;
    unpack_tar(decoder, "tar.zst", archive, packed, dest, limits)
}

/// The archive and its size (at least 1, for the ratio cap).
fn open_archive(archive: &Path) -> Result<(std::fs::File, u64)> {
    let packed = std::fs::metadata(archive)
        .with_context(|| format!("reading {}", archive.display()))
        .map_err(|e| input_error(format!("{e:#}")))?
        .len()
        .max(1);
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    Ok((file, packed))
}

fn unpack_tar(
    decompressed: impl Read,
    format: &str,
    archive: &Path,
    packed: u64,
    dest: &Path,
    limits: Limits,
) -> Result<Vec<PathBuf>> {
    let mut tar = tar::Archive::new(decompressed);
    let problem = |what: String| input_error(format!("{}: {what}", archive.display()));
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let (mut written, mut total) = (Vec::new(), 0u64);
    let entries = tar
        .entries()
        .map_err(|e| problem(format!("not a {format} archive: {e}")))?;
    for (index, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| problem(format!("entry {index}: {e}")))?;
        if index >= limits.max_entries {
            return Err(problem(format!("more than {} entries", limits.max_entries)));
        }
        let raw_path = entry
            .path()
            .map_err(|e| problem(format!("entry {index}: bad path: {e}")))?
            .into_owned();
        let relative = safe_relative(&raw_path).ok_or_else(|| {
            problem(format!(
                "entry `{}` leaves the directory",
                raw_path.display()
            ))
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&relative))?;
            continue;
        }
        if !kind.is_file() {
            return Err(problem(format!(
                "entry `{}` is a {kind:?}, not a regular file (links are refused)",
                raw_path.display()
            )));
        }
        let declared = entry.header().size().unwrap_or(u64::MAX);
        if declared > limits.max_file_bytes {
            return Err(problem(format!(
                "entry `{}` declares {declared} bytes, over the {}-byte cap",
                raw_path.display(),
                limits.max_file_bytes
            )));
        }
        let target = dest.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Read no more than declared + 1: a lying header cannot stream past the caps.
        let mut bytes = Vec::new();
        (&mut entry)
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| problem(format!("entry `{}`: {e}", raw_path.display())))?;
        total += bytes.len() as u64;
        if total > limits.max_total_bytes || total / packed > limits.max_ratio {
            return Err(problem(format!(
                "unpacks to more than {} bytes or {}x its size: refused as a likely decompression bomb",
                limits.max_total_bytes, limits.max_ratio
            )));
        }
        crate::fsx::write(&target, &bytes)?;
        written.push(relative);
    }
    Ok(written)
}

/// `path` as a plain relative path (no root, no `..`, no prefix), or `None`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar.gz with raw headers, so hostile entries can be written at all.
    /// Name, kind and contents of one archive entry.
    type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);

    fn tar_gz(entries: &[Entry]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tgz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        let mut builder = tar::Builder::new(gz);
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            // set_path refuses `..`; write the raw name as an attacker would.
            let name_field = &mut header.as_old_mut().name;
            name_field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        (dir, path)
    }

    fn unpack(entries: &[Entry], limits: Limits) -> Result<Vec<PathBuf>> {
        let (dir, archive) = tar_gz(entries);
        unpack_tar_gz(&archive, &dir.path().join("out"), limits)
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn regular_files_unpack_under_the_destination() {
        let written = unpack(
            &[("package/a.txt", FILE, b"hi"), ("package/d/b", FILE, b"")],
            Limits::PYODIDE,
        )
        .unwrap();
        assert_eq!(
            written,
            [PathBuf::from("package/a.txt"), PathBuf::from("package/d/b")]
        );
    }

    #[test]
    fn hostile_entries_are_refused_with_a_reason() {
        let cases: [(&[Entry], &str); 3] = [
            (&[("../evil", FILE, b"x")], "leaves the directory"),
            (&[("/etc/evil", FILE, b"x")], "leaves the directory"),
            (
                &[("package/link", tar::EntryType::Symlink, b"")],
                "links are refused",
            ),
        ];
        for (entries, reason) in cases {
            let err = unpack(entries, Limits::PYODIDE).unwrap_err();
            assert!(err.is::<crate::exit::InputError>());
            assert!(format!("{err:#}").contains(reason), "{err:#}");
        }
    }

    #[test]
    fn size_count_and_ratio_caps_hold() {
        let zeros = vec![0u8; 1 << 20];
        let tight = Limits {
            max_entries: 2,
            max_file_bytes: 1 << 16,
            max_total_bytes: 1 << 30,
            max_ratio: 50,
        };
        let err = unpack(&[("big", FILE, &zeros)], tight).unwrap_err();
        assert!(format!("{err:#}").contains("over the"), "{err:#}");
        let err = unpack(
            &[("a", FILE, b""), ("b", FILE, b""), ("c", FILE, b"")],
            tight,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("more than 2 entries"),
            "{err:#}"
        );
        let bomb = Limits {
            max_file_bytes: 1 << 30,
            ..tight
        };
        let err = unpack(&[("zeros", FILE, &zeros)], bomb).unwrap_err();
        assert!(format!("{err:#}").contains("decompression bomb"), "{err:#}");
    }
}
