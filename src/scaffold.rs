//! `new`: project scaffolds from `templates/`, embedded so an installed binary can write them.

use crate::exit::input_error;
use crate::fsx::StagingDir;
use crate::stages::pack::{self, BundleFile};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Template files of a kernel crate: path in the new project, text with `{{name}}` placeholders.
const KERNEL_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/kernel/Cargo.toml.tmpl"),
    ),
    ("src/lib.rs", include_str!("../templates/kernel/src/lib.rs")),
];
/// Samples `new` writes for the kernel template's 8-feature input.
const KERNEL_SAMPLES: usize = 16;
const KERNEL_FEATURES: usize = 8;

/// The files of a new kernel crate called `name`.
pub fn kernel_files(name: &str) -> Result<Vec<BundleFile>> {
    check_crate_name(name)?;
    let mut files: Vec<BundleFile> = KERNEL_TEMPLATE
        .iter()
        .map(|(path, text)| BundleFile::new(*path, text.replace("{{name}}", name).into_bytes()))
        .collect();
    files.push(BundleFile::new(
        "samples/inputs.bin",
        sample_inputs(KERNEL_SAMPLES * KERNEL_FEATURES),
    ));
    Ok(files)
}

/// Deterministic little-endian f32 values in [-1, 1) (a 64-bit LCG), so every scaffold measures
/// the same inputs until the user supplies real ones.
fn sample_inputs(count: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .flat_map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            (unit * 2.0 - 1.0).to_le_bytes()
        })
        .collect()
}

fn check_crate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(input_error(format!(
            "`{name}` is not a valid crate name: start with a letter, then letters, digits, `-` or `_`"
        )));
    }
    Ok(())
}

/// Writes `files` as a new project at `dir`, all or nothing; an existing non-empty `dir` is left
/// alone and reported.
pub fn write_project(dir: &Path, files: &[BundleFile]) -> Result<PathBuf> {
    let occupied =
        dir.is_file() || std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(input_error(format!(
            "{} already exists and is not empty",
            dir.display()
        )));
    }
    let staging = StagingDir::new(dir)?;
    pack::write_files(staging.path(), files)?;
    staging.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(kernel_files("my-kernel_2").is_ok());
        for bad in ["", "2fast", "has space", "../escape"] {
            assert!(kernel_files(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kernel_scaffold_fills_the_name_and_writes_samples() {
        let files = kernel_files("tiny").unwrap();
        let manifest = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert!(manifest.contains("name = \"tiny\"") && !manifest.contains("{{"));
        let samples = files
            .iter()
            .find(|f| f.path == "samples/inputs.bin")
            .unwrap();
        assert_eq!(samples.bytes.len(), KERNEL_SAMPLES * KERNEL_FEATURES * 4);
        let values = crate::project::kernel::Dtype::F32.decode(&samples.bytes);
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn existing_directories_are_not_overwritten() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
        assert!(write_project(root.path(), &kernel_files("x").unwrap()).is_err());
        assert_eq!(
            std::fs::read_to_string(root.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
